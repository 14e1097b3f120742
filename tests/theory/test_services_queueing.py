"""Inference services against closed forms (method: tests/theory/replications.py).

* One replica serving one request at a time, Poisson arrivals, deterministic service:
  M/D/1, Wq = rho D / (2 (1 - rho)) (Pollaczek-Khinchine) — once with a model-free service
  time, once with prefill-only LLM requests whose service time is the cost model's prefill
  of a constant prompt (continuous batching with ``max_batch: 1``).
* c replicas taking one request at a time (``max_outstanding: 1``: the others wait in the
  service's FCFS queue) with exponential service: M/M/c, Erlang C.

Per replication: the mean wait (TTFT minus the service time) of the requests that arrived
in the measurement window, all of which must have completed; P(wait) as the fraction that
waited.  Primary statistic at 99 %, secondary ones at 99.9 % (as test_queueing.py).
"""
from __future__ import annotations

import pytest

import lepsim
from lepsim.scenario.spec import Scenario
from tests.theory.replications import SEED0, Replications

PRIMARY, SECONDARY = 0.99, 0.999
GPU = "A100-80GB"


def service_scenario(service: dict, *, c: int, horizon: float, warmup: float, cooldown: float) -> Scenario:
    return Scenario.model_validate({
        "name": "theory-services",
        "cluster": {"pools": [{"count": c, "gpu_type": GPU, "gpus_per_node": 1, "cpus": 8, "memory": "64GiB"}]},
        "workload": {"services": [{"name": "q", "gpu_type": GPU, "replicas": c, "cold_start": 0, **service}]},
        "scheduler": {"policy": "fifo"},
        "simulation": {"horizon": horizon, "warmup": warmup, "cooldown": cooldown},
    })


def replicate_requests(sc: Scenario, reps: int, service_time) -> Replications:
    out = Replications()
    for r in range(reps):
        res = lepsim.simulate(sc, seed=SEED0 + r)
        q = res.requests
        m = q[q["measured"]]
        assert len(m) > 0 and (m["status"] == "completed").all(), f"replication {r}: measured requests unfinished"
        wait = (m["first_token_s"] - m["arrival_s"]).to_numpy() - service_time(m)
        out.add("Wq", wait.mean())
        out.add("Pwait", (wait > 1e-9).mean())
        out.add("lambda", len(m) / (res.window[1] - res.window[0]))
    return out


MD1_CASES = [
    pytest.param(0.5, 6_000, 300, 100, 10, id="M/D/1-rho0.5"),
    pytest.param(0.8, 30_000, 500, 200, 10, id="M/D/1-rho0.8", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("rho,horizon,warmup,cooldown,reps", MD1_CASES)
def test_md1_model_free(rho, horizon, warmup, cooldown, reps):
    sc = service_scenario({"service_time": 1.0, "arrivals": {"kind": "poisson", "rate": rho}},
                          c=1, horizon=horizon, warmup=warmup, cooldown=cooldown)
    r = replicate_requests(sc, reps, lambda m: 1.0)
    r.assert_contains("Wq", rho / (2 * (1 - rho)), PRIMARY)
    r.assert_contains("Pwait", rho, SECONDARY)
    r.assert_contains("lambda", rho, SECONDARY)


def test_md1_prefill_only_llm_requests():
    from lepsim.costs import build_cost_model
    from lepsim.hardware import default_catalog

    d = build_cost_model(default_catalog()).prefill_time("llama-2-7b", GPU, 512, tp=1, batch_size=1)
    rho = 0.5
    sc = service_scenario({
        "model": "llama-2-7b", "batching": {"kind": "continuous", "max_batch": 1},
        "arrivals": {"kind": "poisson", "rate": rho / d}, "prompt_tokens": 512, "output_tokens": 1,
    }, c=1, horizon=6_000 * d, warmup=300 * d, cooldown=100 * d)
    r = replicate_requests(sc, 10, lambda m: d)
    r.assert_contains("Wq", rho * d / (2 * (1 - rho)), PRIMARY)
    r.assert_contains("Pwait", rho, SECONDARY)


# (lam, c) -> (P(wait), Wq) with mu = 1, from the queueing references
MMC_REFERENCE = {(3, 4): (0.509434, 0.509434), (6, 8): (0.356981, 0.178491)}
MMC_CASES = [
    pytest.param(3, 4, 4_000, 200, 100, 10, id="M/M/4-rho0.75"),
    pytest.param(6, 8, 6_000, 200, 100, 10, id="M/M/8-rho0.75", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("lam,c,horizon,warmup,cooldown,reps", MMC_CASES)
def test_mmc_erlang_c_with_a_shared_queue(lam, c, horizon, warmup, cooldown, reps):
    from lepsim.build import build_parts

    sc = service_scenario({"service_time": {"dist": "exponential", "mean": 1}, "max_outstanding": 1,
                           "arrivals": {"kind": "poisson", "rate": lam}},
                          c=c, horizon=horizon, warmup=warmup, cooldown=cooldown)

    def service_time(m):  # each request's drawn service time, from the built plan of this seed
        seed = service_time.seed
        parts, problems = build_parts(sc, seed=seed)
        return parts.services[0].service_time[m["request_id"].to_numpy()]

    out = Replications()
    for k in range(reps):
        service_time.seed = SEED0 + k
        res = lepsim.simulate(sc, seed=SEED0 + k)
        q = res.requests
        m = q[q["measured"]]
        assert len(m) > 0 and (m["status"] == "completed").all()
        wait = (m["first_token_s"] - m["arrival_s"]).to_numpy() - service_time(m)
        out.add("Wq", wait.mean())
        out.add("Pwait", (wait > 1e-9).mean())
        out.add("lambda", len(m) / (res.window[1] - res.window[0]))
    pw, wq = MMC_REFERENCE[(lam, c)]
    out.assert_contains("Wq", wq, PRIMARY)
    out.assert_contains("Pwait", pw, SECONDARY)
    out.assert_contains("lambda", lam, SECONDARY)
