"""Single-server theory for the dynamic policies (method: replications.py).

One GPU, 1-GPU jobs, Poisson arrivals, free preemption (checkpoint = restore = 0), mean
service time 1.  Closed forms from the project's queueing references ("SRPT / FB(LAS)"):

* ``srtf`` is SRPT here (it preempts for a strictly shorter remaining time; ties have
  probability 0): E[T] = ET_SRPT.
* processor sharing: the engine gives a GPU to one job at a time (no fractional shares in
  this engine), so PS is not simulated.  It is checked through the references' own
  equivalence for exponential sizes, ET_PS = ET_FB_LAS = 1/(1 - rho), by
  ``tests/theory/test_queueing.py::test_las_mm1_mean_response_time_is_that_of_fcfs``
  (``las`` with fine thresholds, rho 0.5 and 0.8).  That says nothing of PS's per-size
  response time x/(1 - rho), which FB does not share.
* FB / LAS for the references' bounded-Pareto sizes (alpha 1.1) is *not* tested: the
  sample mean of so heavy-tailed a response time converges far too slowly for a test
  (10 replications of 10,000 jobs, ``las`` with geometric thresholds 5% apart, gave
  1.26 +- 0.22 against ET_FB_LAS = 1.555; the draws themselves have the right E[S]).
"""
from __future__ import annotations

import numpy as np
import pytest

from tests.theory.replications import queue_scenario, replicate

PRIMARY = 0.99
EXP1 = {"dist": "exponential", "mean": 1}
# values copied from the queueing references ("SRPT / FB(LAS)")
ET_SRPT_EXP = {0.5: 1.4253726638777857, 0.8: 2.352773270299722}


def _response_time(res, m, out):
    out.add("T", m["jct_s"].mean())
    # free preemption: a job's response time is its time waiting plus its size
    assert np.allclose(m["jct_s"], m["wait_time_s"] + m["executed_s"], rtol=1e-9, atol=1e-9)


SRPT_CASES = [
    pytest.param(0.5, 10_000, 200, 200, 10, id="SRPT-M/M/1-rho0.5"),
    pytest.param(0.8, 30_000, 500, 500, 10, id="SRPT-M/M/1-rho0.8", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("rho,horizon,warmup,cooldown,reps", SRPT_CASES)
def test_srtf_is_srpt_on_one_server(rho, horizon, warmup, cooldown, reps):
    sc = queue_scenario(lam=rho, c=1, duration=EXP1, horizon=horizon, warmup=warmup, cooldown=cooldown,
                        policy="srtf")

    def measure(res, m, out):
        _response_time(res, m, out)
        assert res.summary["preemptions_total"] > 0.02 * len(m)

    r = replicate(sc, reps, measure)
    r.assert_contains("T", ET_SRPT_EXP[rho], PRIMARY)
    # SRPT is strictly better than FCFS/PS (1/(1-rho)) here: the test can tell them apart
    mean, half = r.interval("T", PRIMARY)
    assert mean + half < 1 / (1 - rho)
