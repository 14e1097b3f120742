"""The pollux policy: efficiency from the Pollux gradient statistics, the greedy
allocation by marginal speedup, and runs with elastic jobs (growth, shrink to admit)."""
from __future__ import annotations

import pytest

import lepsim
from lepsim.costs.adapters import load_pollux_gradient_stats
from lepsim.policies.elastic import efficiency, greedy, noise_scale
from tests.conftest import scenario


def test_greedy_two_jobs_by_hand():
    """Both jobs hold 1 GPU, 2 GPUs free.  Gains: A 1->2 +0.8, 2->3 +0.6; B 1->2 +0.5.
    First GPU to A (+0.8), second to A again (+0.6 > +0.5): A 3 GPUs, B 1."""
    sp = {0: [0, 1.0, 1.8, 2.4, 2.8], 1: [0, 1.0, 1.5, 1.9, 2.1]}
    assert greedy(sp, {0: 1, 1: 1}, 2) == {0: 3, 1: 1}
    assert greedy(sp, {0: 1, 1: 1}, 3) == {0: 3, 1: 2}     # third: B +0.5 > A 3->4 +0.4
    assert greedy(sp, {0: 4, 1: 4}, 3) == {0: 4, 1: 4}     # at their maxima
    assert greedy({0: [0, 1.0, 1.0]}, {0: 1}, 1) == {0: 1}  # no gain, no GPU


def test_noise_scale_and_efficiency_from_the_data():
    df = load_pollux_gradient_stats("cifar10")
    m_v = df["batch_size"].min()
    at = df[df["batch_size"] == m_v]
    phis = sorted(m_v * at["grad_var"] / at["grad_sqr"])
    assert noise_scale("cifar10", m_v) == phis[len(phis) // 2]
    phi = noise_scale("cifar10", 128)
    assert efficiency(phi, 128, 128) == 1.0
    assert efficiency(phi, 128, 256) == pytest.approx((phi + 128) / (phi + 256))
    assert efficiency(noise_scale("no-such-model", 1), 128, 1024) == 1.0   # no statistics: 1


def _run(jobs, gpus=4, round_s=60, preemption=None):
    sched = {"policy": "pollux", "params": {"round": round_s}}
    if preemption:
        sched["preemption"] = preemption
    pool = {"count": 1, "gpu_type": "T4", "gpus_per_node": gpus, "cpus": 64, "memory": "512GiB"}
    return lepsim.simulate(scenario({"cluster": {"pools": [pool]}, "workload": {"jobs": jobs}, "scheduler": sched}))


def _job(submit, iters, **kw):
    return {"submit": submit, "gpus": 2, "min_gpus": 1, "max_gpus": 4, "model": "cifar10", "batch_size": 128,
            "iterations": iters, **kw}


def test_two_elastic_jobs_start_at_min_then_grow_at_the_round():
    """4 T4 GPUs, two elastic cifar10 jobs (1..4 GPUs) at t=0: both start on 1 GPU; at the
    round (t=60) the 2 free GPUs go by marginal speedup, here one each (same model,
    batch and size: equal gains, the tie to the lower id first, then the other gains more)."""
    r = _run([_job(0, 3000), _job(0, 3000)], preemption={"checkpoint": 1, "restore": 1})
    ev = r.events
    starts = ev[(ev["event"] == "start") & (ev["time_s"] == 0.0)]
    assert len(starts) == 2
    resizes = ev[ev["event"] == "resize"]
    assert list(resizes["time_s"]) == [60.0, 60.0] and list(resizes["job_id"]) == [0, 1]
    run = r.intervals[(r.intervals["phase"] == "run") & (r.intervals["start_s"] >= 62.0)]
    assert sorted(run["gpus"].tolist())[:2] == [2, 2]
    assert r.jobs["status"].eq("completed").all()


def test_hysteresis_keeps_a_job_when_the_move_costs_more_than_the_round_gains():
    r = _run([_job(0, 3000)], preemption={"checkpoint": 40, "restore": 40})   # 80 s > the 60 s round
    assert (r.events["event"] != "resize").all()


def test_a_pending_job_is_admitted_by_shrinking_a_grown_one():
    r = _run([_job(0, 20000), _job(200, 2000)], preemption={"checkpoint": 1, "restore": 1})
    ev = r.events
    grown = ev[(ev["event"] == "resize") & (ev["job_id"] == 0)]
    assert len(grown) >= 2                      # grew at a round, shrank at t=200
    assert ev[(ev["event"] == "start") & (ev["job_id"] == 1)]["time_s"].iloc[0] == 200.0
    assert r.jobs["status"].eq("completed").all()
