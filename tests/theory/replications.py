"""Independent seeded replications and t-based confidence intervals for the theory tests.

Method: R replications (seeds ``SEED0 + r``), each starting from an empty system with its
warm-up discarded (``simulation.warmup``: jobs submitted earlier are not measured) and a
cool-down before the horizon (jobs submitted in the last ``cooldown`` seconds are not
measured; the horizon is far enough that every measured job completes, which is
asserted).  Each replication gives one number per statistic (a mean over its measured
jobs, or a time average over its measurement window); the R numbers are treated as i.i.d.
and the closed form must lie in the two-sided Student-t interval

    mean ± t_{1-(1-conf)/2, R-1} · s / sqrt(R).

The seeds are fixed, so a test is deterministic: a failure is a result to investigate,
never a reason to loosen ``conf``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

import lepsim
from lepsim.scenario.spec import Scenario

SEED0 = 20_000


def single_gpu_nodes(c: int) -> dict:
    """``c`` nodes of one GPU each: an M/G/c system for 1-GPU jobs."""
    return {"pools": [{"count": c, "gpu_type": "V100", "gpus_per_node": 1, "cpus": 8, "memory": "64GiB"}]}


def queue_scenario(*, lam: float, c: int, duration, horizon: float, warmup: float, cooldown: float,
                   policy: str = "fifo", params: dict | None = None) -> Scenario:
    """Poisson(lam) arrivals of 1-GPU jobs with the given duration distribution (seconds)."""
    return Scenario.model_validate({
        "name": "theory",
        "cluster": single_gpu_nodes(c),
        "workload": {"generators": [{"kind": "poisson", "rate": lam, "gpus": 1, "duration": duration}]},
        "scheduler": {"policy": policy, "params": params or {}},
        "simulation": {"horizon": horizon, "warmup": warmup, "cooldown": cooldown},
    })


@dataclass
class Replications:
    """Per-replication statistics, one list per name."""

    values: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, v: float) -> None:
        self.values.setdefault(name, []).append(float(v))

    def interval(self, name: str, conf: float) -> tuple[float, float]:
        """(mean, half-width) of the t interval at confidence ``conf``."""
        v = np.asarray(self.values[name], dtype=float)
        r = len(v)
        half = stats.t.ppf(0.5 + conf / 2, r - 1) * v.std(ddof=1) / math.sqrt(r)
        return float(v.mean()), float(half)

    def assert_contains(self, name: str, expected: float, conf: float) -> None:
        mean, half = self.interval(name, conf)
        assert abs(mean - expected) <= half, (
            f"{name}: closed form {expected:.6g} outside the {conf:.1%} interval {mean:.6g} ± {half:.3g} "
            f"over {len(self.values[name])} replications {np.round(self.values[name], 4).tolist()}"
        )


def replicate(scenario: Scenario, reps: int, measure) -> Replications:
    """Run ``reps`` seeded replications; ``measure(result, measured_jobs, out)`` adds statistics."""
    out = Replications()
    for r in range(reps):
        res = lepsim.simulate(scenario, seed=SEED0 + r)
        jobs = res.jobs
        m = jobs[jobs["measured"]]
        assert len(m) > 0
        # every measured job must complete, or the means would be biased by the horizon
        assert (m["status"] == "completed").all(), f"replication {r}: measured jobs unfinished at the horizon"
        measure(res, m, out)
    return out
