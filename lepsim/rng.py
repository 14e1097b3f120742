"""Named, independent random streams derived from one seed (no global random state).

``Streams(seed).get("workload.generators[0].arrivals")`` always returns a generator with
the same state for the same (seed, name), whatever else was drawn before: each stream is a
child of ``SeedSequence(seed)`` keyed by a stable hash of its name.  Changing one
distribution in a scenario therefore does not shift the random numbers of another, and every
policy sees the identical workload (common random numbers).
"""
from __future__ import annotations

import hashlib

import numpy as np


def _name_key(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


class Streams:
    def __init__(self, seed: int):
        if seed < 0:
            raise ValueError("seed must be >= 0")
        self.seed = int(seed)

    def get(self, name: str) -> np.random.Generator:
        ss = np.random.SeedSequence(entropy=self.seed, spawn_key=(_name_key(name),))
        return np.random.Generator(np.random.PCG64(ss))
