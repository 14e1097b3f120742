"""Rebuild the packaged tidy profile table from the bundled upstream data.

    python -m lepsim.costs.build_store [--out PATH]

Runs every adapter on ``lepsim/data/profiles/`` and writes the concatenated rows (exactly
the columns of :mod:`lepsim.costs.schema`) to ``lepsim/data/profiles/store.parquet``, which
:func:`lepsim.costs.build_cost_model` loads (one Parquet read instead of six parsers).
Run it after changing an adapter or the bundled data; the tests check the two agree.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lepsim.costs.adapters import (
    load_distserve,
    load_gavel,
    load_pollux,
    load_splitwise,
    load_vidur_compute,
    load_vidur_network,
)
from lepsim.costs.adapters.names import DATA_DIR
from lepsim.costs.store import ProfileStore

STORE_FILE = DATA_DIR / "store.parquet"
ADAPTERS = (load_gavel, load_pollux, load_vidur_compute, load_vidur_network, load_splitwise, load_distserve)


def build() -> ProfileStore:
    """All bundled sources through their adapters, concatenated (deterministic order)."""
    return ProfileStore.concat(a() for a in ADAPTERS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m lepsim.costs.build_store", description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(STORE_FILE), help="output Parquet file (default: the packaged one)")
    args = ap.parse_args(argv)
    store = build()
    out = store.save(Path(args.out))
    counts = ", ".join(f"{k} {v}" for k, v in sorted(store.sources().items()))
    print(f"wrote {len(store)} rows to {out.name} ({counts})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
