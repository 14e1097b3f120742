"""Static policies: EASY backfilling and per-tenant quotas (hand-computed timelines), and
placement strategies through a queue policy's parameters."""
from __future__ import annotations

import numpy as np
import pytest

import lepsim
from tests.conftest import scenario


def sc(jobs, policy, *, nodes=1, gpus=4, params=None, preemption=None, pools=None):
    pools = pools or [{"count": nodes, "gpu_type": "V100", "gpus_per_node": gpus, "cpus": 64, "memory": "512GiB"}]
    sched = {"policy": policy, "params": params or {}}
    if preemption:
        sched["preemption"] = preemption
    return scenario({"cluster": {"pools": pools}, "workload": {"jobs": jobs}, "scheduler": sched})


def job(submit, gpus, duration, **kw):
    return {"submit": submit, "gpus": gpus, "duration": duration, **kw}


def col(r, name):
    return r.jobs.set_index("job_id")[name].tolist()


# ------------------------------------------------------------------------- EASY
EASY_JOBS = [
    job(0, 2, 100),   # 0: GPUs 0 1, 0-100
    job(1, 3, 50),    # 1: the head: shadow 100 (job 0 ends), 4 free then, extra 1
    job(2, 1, 300),   # 2: long, but 1 GPU <= extra: backfilled at 2 (extra now 0)
    job(3, 1, 500),   # 3: long, no extra left: waits
    job(4, 1, 50),    # 4: ends at 54 <= shadow 100: backfilled at 4
]


def test_easy_backfills_short_jobs_and_jobs_that_fit_beside_the_reservation():
    r = lepsim.simulate(sc(EASY_JOBS, "easy"))
    # t=54: job 4 ends; head still reserved for 100 (job 0), job 3 (to 554) may not pass
    # t=100: the head starts at its reservation on GPUs 0 1 3; t=150: job 3 starts
    assert col(r, "first_start_s") == [0.0, 100.0, 2.0, 150.0, 4.0]
    assert col(r, "end_s") == [100.0, 150.0, 302.0, 650.0, 54.0]
    gpu_ids = {j: g for j, g in zip(r.intervals["job_id"], r.intervals["gpu_ids"].astype(str))}
    assert gpu_ids == {0: "0 1", 1: "0 1 3", 2: "2", 3: "0", 4: "3"}


def test_easy_against_fifo_with_and_without_skipping():
    strict = lepsim.simulate(sc(EASY_JOBS, "fifo"))
    assert col(strict, "first_start_s") == [0.0, 100.0, 100.0, 150.0, 150.0]
    skip = lepsim.simulate(sc(EASY_JOBS, "fifo", params={"skip_blocked": True}))
    # no reservation: job 3 takes the last GPU at 3 and the head waits until job 2 ends
    assert col(skip, "first_start_s") == [0.0, 302.0, 2.0, 3.0, 100.0]


def test_easy_reservation_uses_remaining_times_of_running_jobs():
    """Two nodes of 2 GPUs.  Jobs 0 (0-100) and 1 (0-40) hold a node each; the head (4
    GPUs) is reserved at 100.  At t=40 node 1 is free: a 2-GPU job of 50 s (ends 90) is
    backfilled, one of 70 s (ends 110) is not."""
    jobs = [job(0, 2, 100), job(0, 2, 40), job(1, 4, 10), job(2, 2, 70), job(3, 2, 50)]
    r = lepsim.simulate(sc(jobs, "easy", nodes=2, gpus=2))
    assert col(r, "first_start_s") == [0.0, 0.0, 100.0, 110.0, 40.0]
    assert col(r, "end_s") == [100.0, 40.0, 110.0, 180.0, 90.0]


def test_easy_backfills_freely_on_another_gpu_type():
    pools = [{"count": 1, "gpu_type": "V100", "gpus_per_node": 2, "cpus": 64, "memory": "512GiB"},
             {"count": 1, "gpu_type": "K80", "gpus_per_node": 2, "cpus": 64, "memory": "512GiB"}]
    jobs = [job(0, 2, 100, gpu_type="V100"), job(1, 2, 10, gpu_type="V100"), job(2, 2, 500)]
    r = lepsim.simulate(sc(jobs, "easy", pools=pools))
    # the head waits for the V100s (100); the long any-type job runs on the K80s at once
    assert col(r, "first_start_s") == [0.0, 100.0, 2.0]
    assert col(r, "gpu_type") == ["V100", "V100", "K80"]


# ------------------------------------------------------------------------- quotas
def test_quota_timeline():
    """One node of 4 GPUs; quota a: 2 GPUs, b: default 50% = 2 GPUs."""
    jobs = [job(0, 2, 100, tenant="a"), job(1, 1, 10, tenant="a"), job(2, 2, 50, tenant="b"),
            job(3, 1, 10, tenant="b")]
    r = lepsim.simulate(sc(jobs, "quota", params={"quotas": {"a": 2}}))
    # job 1 would bring a to 3 > 2: passed over (not blocking); job 3 would bring b to 3 at t=3
    assert col(r, "first_start_s") == [0.0, 100.0, 2.0, 52.0]
    assert col(r, "end_s") == [100.0, 110.0, 52.0, 62.0]
    plain = lepsim.simulate(sc(jobs, "fifo"))  # no quota: a holds 3 GPUs from t=1 to 11
    assert col(plain, "first_start_s") == [0.0, 1.0, 11.0, 61.0]


def _held_over_time(r, tenant):
    iv = r.intervals.merge(r.jobs[["job_id", "tenant"]], on="job_id")
    iv = iv[iv["tenant"] == tenant]
    times = np.unique(np.concatenate([iv["start_s"], iv["end_s"]]))
    return max((iv[(iv["start_s"] <= t) & (iv["end_s"] > t)]["gpus"].sum() for t in times), default=0)


def test_no_tenant_ever_exceeds_its_quota():
    gen = {"kind": "poisson", "rate": "60/h", "count": 300, "gpus": {"dist": "choice", "values": [1, 2, 4, 8]},
           "duration": {"dist": "exponential", "mean": "1h"},
           "tenant": {"dist": "choice", "values": ["a", "b", "c"], "weights": [0.6, 0.3, 0.1]}}
    data = {"cluster": {"pools": [{"count": 4, "template": "dgx1-v100"}]}, "workload": {"generators": [gen]},
            "scheduler": {"policy": "quota", "params": {"quotas": {"a": 12, "b": "25%"}, "default": 8,
                                                        "skip_blocked": True}}}
    r = lepsim.simulate(scenario(data))
    assert r.summary["jobs_completed"] == 300
    limits = {"a": 12, "b": 8, "c": 8}
    peaks = {t: _held_over_time(r, t) for t in limits}
    assert all(peaks[t] <= limits[t] for t in limits), peaks
    assert peaks["a"] == 12  # the quota binds (a asks for far more)


def test_quota_parameters_are_checked():
    with pytest.raises(Exception, match="percentage"):
        lepsim.simulate(sc([job(0, 1, 1)], "quota", params={"quotas": {"a": "lots"}}))
    with pytest.raises(Exception, match="percentage"):
        lepsim.simulate(sc([job(0, 1, 1)], "quota", params={"default": "120%"}))


# ------------------------------------------------------------------------- strategies via params
@pytest.mark.parametrize("strategy, expected", [
    ("first_fit", "0 1"), ("best_fit", "6 7"), ("pack", "6 7"), ("spread", "0 1"), ("topology", "6 7"),
    ("frag", "6 7"),
])
@pytest.mark.parametrize("policy", ["fifo", "sjf", "easy", "quota", "las"])
def test_queue_policies_take_any_placement_strategy(policy, strategy, expected):
    """Three nodes of 4 GPUs (labels n=0, 1, 2); jobs pinned by label leave 4, 2 and 3 GPUs
    free; then a 2-GPU job arrives.  first_fit: node 0; best_fit/pack/topology: node 1 (0
    left); spread: node 0 (most free); frag: node 1 or 0 add no fragmentation against the
    mix {2 GPUs: 2/3, 1 GPU: 1/3} while node 2 would keep 1 GPU useless to 2-GPU jobs
    (+2/3); the tie goes to the node with fewer free GPUs, node 1."""
    pools = [{"count": 1, "gpu_type": "V100", "gpus_per_node": 4, "cpus": 64, "memory": "512GiB",
              "labels": {"n": str(i)}, "name": f"p{i}"} for i in range(3)]
    jobs = [job(0, 2, 100, node_selector={"n": "1"}), job(0, 1, 100, node_selector={"n": "2"}), job(1, 2, 10)]
    r = lepsim.simulate(sc(jobs, policy, pools=pools, params={"placement": strategy}))
    gpu_ids = dict(zip(r.intervals["job_id"], r.intervals["gpu_ids"].astype(str)))
    assert gpu_ids == {0: "4 5", 1: "8", 2: expected}
