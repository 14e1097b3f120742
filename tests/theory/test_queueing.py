"""Closed-form queueing results the engine must reproduce (see replications.py for the method).

Time unit: the mean service time is 1 s.  The closed forms are those of the project's
queueing references (M/M/c Erlang C, M/G/1 Pollaczek-Khinchine, and the invariance of
the mean number in an M/M/1 system under any work-conserving policy, which covers LAS).

Confidence: the primary statistic of each test (the mean waiting or response time) at
99%; the secondary ones (probability of waiting, time-average queue length, utilization)
at 99.9%, because several correlated intervals are checked per test.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from tests.theory.replications import queue_scenario, replicate

PRIMARY, SECONDARY = 0.99, 0.999
EXP1 = {"dist": "exponential", "mean": 1}


# ------------------------------------------------------------------ closed forms (self-check)
def erlang_c(lam: float, c: int) -> tuple[float, float]:
    """(P(wait), Wq) of M/M/c with mu = 1."""
    a = lam
    rho = a / c
    s = sum(a**k / math.factorial(k) for k in range(c))
    top = a**c / math.factorial(c) / (1 - rho)
    pw = top / (s + top)
    return pw, pw / (c - a)


def pk_wq(lam: float, es: float, es2: float) -> float:
    """Pollaczek-Khinchine mean wait of M/G/1."""
    return lam * es2 / (2 * (1 - lam * es))


# H2 with E[S] = 1, E[S^2] = 5 (SCV 4), balanced means: p*m1 = (1-p)*m2 = 1/2
H2_P = (1 - math.sqrt(0.6)) / 2
H2 = {"dist": "hyperexponential", "means": [0.5 / H2_P, 0.5 / (1 - H2_P)], "probs": [H2_P, 1 - H2_P]}

# values copied from the queueing references (lam, c) -> (P(wait), Wq)
MMC_REFERENCE = {(0.8, 1): (0.8, 4.0), (1.5, 2): (0.642857, 1.285714), (3, 4): (0.509434, 0.509434),
                 (6, 8): (0.356981, 0.178491), (7.2, 8): (0.701533, 0.876916)}
MG1_REFERENCE = {  # (name, rho) -> Wq; all from the references but uniform(0.5,1.5), by P-K here
    ("deterministic", 0.5): 0.5, ("h2", 0.5): 2.5, ("deterministic", 0.8): 2.0, ("erlang2", 0.8): 3.0,
    ("uniform", 0.8): 0.8 * (13 / 12) / (2 * 0.2),
}
# E[S], E[S^2].  The references' Uniform(0,2) cannot be used: a scenario may not draw a
# duration <= 0, so Uniform(0.5, 1.5) (E[S^2] = 1 + 1/12) stands for the uniform case.
MG1_MOMENTS = {"deterministic": (1, 1), "h2": (1, 5), "erlang2": (1, 1.5), "uniform": (1, 13 / 12)}
MG1_DURATION = {
    "deterministic": 1,
    "h2": H2,
    "erlang2": {"dist": "erlang", "k": 2, "mean": 1},
    "uniform": {"dist": "uniform", "low": 0.5, "high": 1.5},
}


def test_reference_values_match_the_formulas():
    for (lam, c), (pw, wq) in MMC_REFERENCE.items():
        assert erlang_c(lam, c) == pytest.approx((pw, wq), abs=1e-6)
    for (name, rho), wq in MG1_REFERENCE.items():
        es, es2 = MG1_MOMENTS[name]
        assert pk_wq(rho, es, es2) == pytest.approx(wq, abs=1e-6)
    m = np.array(H2["means"])
    p = np.array(H2["probs"])
    assert (p * m).sum() == pytest.approx(1.0) and (2 * p * m**2).sum() == pytest.approx(5.0)


# ------------------------------------------------------------------------------- helpers
def _fifo_measures(lam: float):
    def measure(res, m, out):
        s = res.summary
        lo, hi = s["window_start_s"], s["window_end_s"]
        wait = m["queueing_delay_s"]
        # under FIFO nobody is preempted: the wait is the queueing delay
        assert np.allclose(m["wait_time_s"], wait, rtol=0, atol=1e-9)
        out.add("Wq", wait.mean())
        out.add("P(wait)", (wait > 1e-12).mean())
        out.add("W", m["jct_s"].mean())
        out.add("Lq", s["queue_length_mean"])
        out.add("utilization", s["utilization"])
        # Sample-path identity behind Little's law: the area under the queue-length curve on
        # the window equals the time the jobs spent queued inside the window (all jobs, each
        # queued on [submit, first start)).
        j = res.jobs
        started = j["first_start_s"].fillna(np.inf)  # never started: queued to the end
        inside = (np.minimum(started, hi) - np.maximum(j["submit_time_s"], lo)).clip(lower=0).sum()
        assert s["queue_length_mean"] * (hi - lo) == pytest.approx(inside, rel=1e-9)
        # Little's law on the window, L = lambda W with the observed arrival rate; they differ
        # only by the jobs queued across the window's two edges.
        lam_hat = len(m) / (hi - lo)
        assert s["queue_length_mean"] == pytest.approx(lam_hat * wait.mean(), rel=0.03)
        out.add("lambda", lam_hat)

    return measure


def _check_common(reps, lam, rho, wq):
    reps.assert_contains("Wq", wq, PRIMARY)
    reps.assert_contains("W", wq + 1.0, SECONDARY)
    reps.assert_contains("Lq", lam * wq, SECONDARY)  # Little: Lq = lambda Wq
    reps.assert_contains("utilization", rho, SECONDARY)
    reps.assert_contains("lambda", lam, SECONDARY)


# ------------------------------------------------------------------------------- M/M/c
MMC_CASES = [
    # lam, c, horizon, warm-up, cool-down, replications
    pytest.param(0.8, 1, 12_000, 500, 200, 12, id="M/M/1-rho0.8"),
    pytest.param(3, 4, 3_000, 200, 100, 10, id="M/M/4-rho0.75"),
    pytest.param(1.5, 2, 20_000, 500, 200, 10, id="M/M/2-rho0.75", marks=pytest.mark.slow),
    pytest.param(6, 8, 6_000, 200, 100, 10, id="M/M/8-rho0.75", marks=pytest.mark.slow),
    pytest.param(7.2, 8, 6_000, 500, 200, 12, id="M/M/8-rho0.9", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("lam,c,horizon,warmup,cooldown,reps", MMC_CASES)
def test_mmc_erlang_c(lam, c, horizon, warmup, cooldown, reps):
    pw, wq = MMC_REFERENCE[(lam, c)]
    sc = queue_scenario(lam=lam, c=c, duration=EXP1, horizon=horizon, warmup=warmup, cooldown=cooldown)
    r = replicate(sc, reps, _fifo_measures(lam))
    _check_common(r, lam, lam / c, wq)
    r.assert_contains("P(wait)", pw, SECONDARY)


# ------------------------------------------------------------------------ M/G/1 (P-K)
MG1_CASES = [
    # distribution, rho, horizon, warm-up, cool-down, replications
    pytest.param("deterministic", 0.5, 10_000, 200, 100, 10, id="M/D/1-rho0.5"),
    pytest.param("h2", 0.5, 20_000, 500, 200, 10, id="M/H2/1-scv4-rho0.5"),
    pytest.param("deterministic", 0.8, 30_000, 500, 200, 10, id="M/D/1-rho0.8", marks=pytest.mark.slow),
    pytest.param("erlang2", 0.8, 30_000, 500, 200, 10, id="M/E2/1-rho0.8", marks=pytest.mark.slow),
    pytest.param("uniform", 0.8, 30_000, 500, 200, 10, id="M/U(0.5,1.5)/1-rho0.8", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("dist,rho,horizon,warmup,cooldown,reps", MG1_CASES)
def test_mg1_pollaczek_khinchine(dist, rho, horizon, warmup, cooldown, reps):
    wq = MG1_REFERENCE[(dist, rho)]
    sc = queue_scenario(lam=rho, c=1, duration=MG1_DURATION[dist], horizon=horizon, warmup=warmup,
                        cooldown=cooldown)
    r = replicate(sc, reps, _fifo_measures(rho))
    _check_common(r, rho, rho, wq)
    # on one server the probability of waiting is rho whatever the service distribution
    r.assert_contains("P(wait)", rho, SECONDARY)


# ------------------------------------------------------------------------ LAS on M/M/1
# With exponential sizes the remaining size of every job is Exp(1) whatever service it has
# attained, so under any work-conserving policy that does not know sizes (LAS preempting
# for free included) the number in system is the same birth-death process as under FCFS:
# E[N] = rho/(1-rho) and E[T] = 1/(1-rho), however the thresholds discretize LAS.
FINE_THRESHOLDS = [round(0.25 * k, 2) for k in range(1, 21)]  # 0.25 .. 5 GPU-seconds

LAS_CASES = [
    pytest.param(0.5, 10_000, 200, 200, 10, id="LAS-M/M/1-rho0.5"),
    pytest.param(0.8, 30_000, 500, 500, 10, id="LAS-M/M/1-rho0.8", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("rho,horizon,warmup,cooldown,reps", LAS_CASES)
def test_las_mm1_mean_response_time_is_that_of_fcfs(rho, horizon, warmup, cooldown, reps):
    sc = queue_scenario(lam=rho, c=1, duration=EXP1, horizon=horizon, warmup=warmup, cooldown=cooldown,
                        policy="las", params={"thresholds": FINE_THRESHOLDS})

    def measure(res, m, out):
        s = res.summary
        out.add("T", m["jct_s"].mean())
        out.add("N", s["queue_length_mean"] + s["running_jobs_mean"])
        out.add("utilization", s["utilization"])
        # LAS really preempts here (else this would only re-test FCFS)
        assert s["preemptions_total"] > 0.05 * len(m)
        # free preemption: a job's response time is its queued time plus its size
        assert np.allclose(m["jct_s"], m["wait_time_s"] + m["executed_s"], rtol=1e-9, atol=1e-9)

    r = replicate(sc, reps, measure)
    r.assert_contains("T", 1 / (1 - rho), PRIMARY)
    r.assert_contains("N", rho / (1 - rho), SECONDARY)
    r.assert_contains("utilization", rho, SECONDARY)
