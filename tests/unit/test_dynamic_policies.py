"""Hand-computed timelines for the dynamic family (lepsim/policies/dynamic.py).

Conventions as in test_timelines.py: duration jobs run at rate 1; first-fit takes the
lowest free GPU ids of the first node that fits; at one instant completions come before
arrivals and the policy is called once.  Checkpoint and restore are 0 unless stated, so
a preempted job's GPUs are free at once and later Starts of the same decision use them.
Every expected value was worked out by hand in the comments before running.
"""
from __future__ import annotations

import math

import pytest

import lepsim
from lepsim.policies.dynamic import SizeDistribution, progressive_filling
from tests.unit.test_timelines import assert_timeline, gpu_ids, one_node
from tests.unit.test_timelines import run as run_timeline

FREE = {"checkpoint": 0, "restore": 0}


def run(jobs, policy, params=None, cluster=None, preemption=FREE):
    """jobs: (name, submit, gpus, duration, extra fields); free preemption unless given."""
    return run_timeline(jobs, policy, params, cluster, preemption)


# ----------------------------------------------------------------------------- priority
PRIO = [
    ("lo1", 0, 2, 10),
    ("lo2", 0, 2, 10),
    ("hi", 2, 2, 3, {"priority": 5}),
    ("mid", 3, 2, 4, {"priority": 1}),
]


def test_priority_classes_preempt_lower_classes_newest_first():
    # t0: lo1 -> 0,1; lo2 -> 2,3 (class 0, submit order).
    # t2: hi (class 5) ranks first: room 4-2; lo1 kept (room 0); lo2 left out -> preempted
    #     (2 s done), hi -> 2,3 [2,5].
    # t3: mid (class 1): hi kept, mid admitted, lo1 left out -> preempted (3 s done);
    #     mid -> 0,1 [3,7].
    # t5: hi ends: lo1 (id 0) before lo2: lo1 resumes on 2,3 [5,12] (7 s left).
    # t7: mid ends: lo2 resumes on 0,1 [7,15] (8 s left).
    res, df = run(PRIO, "priority")
    assert_timeline(df, {"lo1": (0, 12), "lo2": (0, 15), "hi": (2, 5), "mid": (3, 7)})
    assert df["preemptions"].to_dict() == {"lo1": 1, "lo2": 1, "hi": 0, "mid": 0}
    assert gpu_ids(res, "lo1") == [("run", 0, 3, "0 1"), ("run", 5, 12, "2 3")]
    assert gpu_ids(res, "lo2") == [("run", 0, 2, "2 3"), ("run", 7, 15, "0 1")]
    assert gpu_ids(res, "hi") == [("run", 2, 5, "2 3")]
    assert gpu_ids(res, "mid") == [("run", 3, 7, "0 1")]


def test_priority_same_class_never_preempts():
    # all class 0: hi and mid wait like FIFO with skip (hi at 10 on 0,1 [10,13]; mid on 2,3 [10,14])
    jobs = [(n, s, g, d) for n, s, g, d, *_ in PRIO]
    res, df = run(jobs, "priority")
    assert_timeline(df, {"lo1": (0, 10), "lo2": (0, 10), "hi": (10, 13), "mid": (10, 14)})
    assert res.summary["preemptions_total"] == 0


def test_priority_charges_checkpoint_and_restore():
    # checkpoint 1, restore 2.  t2: lo2 preempted, checkpoints on 2,3 until 3; hi admitted
    # but not placed (no free GPU).  t3: checkpoint over -> lo2 pending; mid arrives: ranks
    # hi, mid, lo1, lo2: room 4: hi (2), mid (2) admitted, lo1 left out -> preempted
    # (checkpoint [3,4] on 0,1); hi -> 2,3 [3,6].  t4: mid -> 0,1 [4,8].
    # t6: hi ends: lo1 restores on 2,3 [6,8], runs 7 s [8,15].
    # t8: mid ends: lo2 restores on 0,1 [8,10], runs 8 s [10,18].
    res, df = run(PRIO, "priority", preemption={"checkpoint": 1, "restore": 2})
    assert_timeline(df, {"lo1": (0, 15), "lo2": (0, 18), "hi": (3, 6), "mid": (4, 8)})
    assert gpu_ids(res, "lo1") == [("run", 0, 3, "0 1"), ("checkpoint", 3, 4, "0 1"),
                                   ("restore", 6, 8, "2 3"), ("run", 8, 15, "2 3")]


def test_priority_field_is_validated_and_read_from_traces(tmp_path):
    from lepsim.errors import ScenarioError

    bad = tmp_path / "bad.yaml"
    bad.write_text("cluster: {pools: [{count: 1, gpu_type: V100, gpus_per_node: 4, cpus: 8, memory: 64GiB}]}\n"
                   "workload:\n  jobs: [{gpus: 1, duration: 1h, priority: high}]\n"
                   "scheduler: {policy: priority}\n")
    with pytest.raises(ScenarioError) as e:
        lepsim.load_scenario(bad)
    assert [(p.line, p.path) for p in e.value.problems] == [(3, "workload.jobs[0].priority")]
    trace = tmp_path / "t.csv"
    trace.write_text("submit_time,gpus,duration,priority\n0,1,10,3\n0,1,10,\n0,1,10,x\n")
    sc = tmp_path / "s.yaml"
    sc.write_text("cluster: {pools: [{count: 1, gpu_type: V100, gpus_per_node: 4, cpus: 8, memory: 64GiB}]}\n"
                  "workload: {traces: [{path: t.csv}]}\nscheduler: {policy: priority}\n")
    with pytest.raises(ScenarioError) as e:
        lepsim.load_scenario(sc)
    assert [(p.line, p.path) for p in e.value.problems] == [(4, "priority")]
    trace.write_text("submit_time,gpus,duration,priority\n0,1,10,3\n0,1,10,\n")
    res = lepsim.simulate(sc)
    from lepsim.build import build_parts

    parts, _ = build_parts(lepsim.load_scenario(sc))
    assert [j.priority for j in parts.jobs] == [3, 0]
    assert res.summary["jobs_completed"] == 2


# ----------------------------------------------------------------------------- SRTF
SRTF_JOBS = [
    ("a", 0, 2, 10),
    ("b", 0, 2, 6),
    ("c", 1, 4, 2),
    ("d", 2, 2, 1),
]


def test_srtf_preempts_for_shorter_remaining_time():
    # t0: ranks b (ends 6), a (ends 10): b -> 0,1; a -> 2,3.
    # t1: c (ends 1+2 = 3) ranks first and takes the 4 GPUs: a and b preempted (a 9 s
    #     left, b 5 s left); c -> 0..3 [1,3].
    # t2: d ends at 2+1 = 3, c (running) at 3: tie, the running job goes first; no room.
    # t3: c ends.  d (3+1), b (3+5), a (3+9): d -> 0,1 [3,4]; b -> 2,3 [3,8].
    # t4: d ends: b (running, ends 8) before a (4+9 = 13): a -> 0,1 [4,13].
    res, df = run(SRTF_JOBS, "srtf")
    assert_timeline(df, {"a": (0, 13), "b": (0, 8), "c": (1, 3), "d": (3, 4)})
    assert df["preemptions"].to_dict() == {"a": 1, "b": 1, "c": 0, "d": 0}
    assert gpu_ids(res, "b") == [("run", 0, 1, "0 1"), ("run", 3, 8, "2 3")]
    assert gpu_ids(res, "a") == [("run", 0, 1, "2 3"), ("run", 4, 13, "0 1")]


def test_srtf_counts_preemption_costs():
    # restore 3 (checkpoint 0): a running job ranks by its planned end minus 3 (what being
    # preempted would cost it); a preempted waiting job by now + remaining + 3.
    # t0: b (ends 6, rank 3) -> 0,1; a (ends 10, rank 7) -> 2,3.
    # t1: c ranks 1+2 = 3: b (3, running) goes first on the tie; c does not fit in the 2 left.
    # t2: d ranks 3: b kept, c still does not fit, d admitted, a (7) left out: preempted
    #     (8 s left); d -> 2,3 [2,3].
    # t3: d ends: b kept, c (5) does not fit, a (3+8+3 = 14) admitted: restores on 2,3
    #     [3,6], would run [6,14] (rank 14-3 = 11).
    # t6: b ends: c (6+2 = 8) before a (11): c admitted, a left out: preempted at the end of
    #     its restore.  c -> 0..3 [6,8].
    # t8: c ends: a restores on 0,1 [8,11] and runs [11,19].
    res, df = run(SRTF_JOBS, "srtf", preemption={"checkpoint": 0, "restore": 3})
    assert_timeline(df, {"a": (0, 19), "b": (0, 6), "c": (6, 8), "d": (2, 3)})
    assert df["preemptions"].to_dict() == {"a": 2, "b": 0, "c": 0, "d": 0}
    assert gpu_ids(res, "a") == [("run", 0, 2, "2 3"), ("restore", 3, 6, "2 3"), ("restore", 8, 11, "0 1"),
                                 ("run", 11, 19, "0 1")]


# ----------------------------------------------------------------------------- Gittins
ONE_GPU = one_node(gpus=1)
GITTINS_JOBS = [("S", 0, 1, 5), ("P", 0, 1, 20), ("Q", 0, 1, 20), ("X", 7, 1, 1)]


def test_gittins_index_hand_values():
    d = SizeDistribution(prior_mean=10.0, prior_weight=0.0)
    d.fit([1.0, 5.0])
    # last queue (b = inf): G(a) = #(S > a) / sum over S > a of (S - a)
    assert d.index(2.0, math.inf) == pytest.approx(1 / 3)
    assert d.index(3.0, math.inf) == pytest.approx(1 / 2)
    assert d.index(6.0, math.inf) == 0.0
    # quantum [0, 2]: P(S <= 2) / E[min(S, 2)] = (1/2) / ((1 + 2) / 2)
    assert d.index(0.0, 2.0) == pytest.approx(1 / 3)
    # an exponential prior alone is memoryless: the index is 1/mean whatever a and b
    e = SizeDistribution(prior_mean=4.0, prior_weight=5.0)
    for a, b in ((0, 2), (3, 7), (10, math.inf)):
        assert e.index(a, b) == pytest.approx(0.25)
    # mixed: w=1, m=1, one observation 2; a=0, b=inf: (1 + 1) / (1*1 + 2)
    m = SizeDistribution(prior_mean=1.0, prior_weight=1.0)
    m.fit([2.0])
    assert m.index(0.0, math.inf) == pytest.approx(2 / 3)


def test_gittins_orders_a_queue_by_index_where_las_uses_submit_order():
    # 1 GPU, thresholds [2] GPU-s, no prior (prior_weight 0), refit at every completion.
    # t0: S, P, Q in queue 0 (no observations: every index 0, submit order): S [0,2).
    # t2: S reaches 2 -> queue 1; P (queue 0) preempts it: P [2,4).  t4: Q preempts P: Q [4,6).
    # t6: Q -> queue 1, keeps the GPU (holding first).  t7: X (queue 0) preempts Q (3 done).
    # t8: X ends: sizes {1}: index 0 for all in queue 1 -> submit order: S resumes [8,11].
    # t11: S ends: sizes {1, 5}: P (a = 2) has 1/(5-2) = 1/3, Q (a = 3) has 1/(5-3) = 1/2:
    #      Q first [11,28], then P [28,46].  LAS would run P [11,29] then Q [29,46].
    params = {"thresholds": [2], "prior_weight": 0, "refit_growth": 0}
    res, df = run(GITTINS_JOBS, "gittins", params, cluster=ONE_GPU)
    assert_timeline(df, {"S": (0, 11), "P": (2, 46), "Q": (4, 28), "X": (7, 8)})
    assert df["preemptions"].to_dict() == {"S": 1, "P": 1, "Q": 1, "X": 0}
    res, las = run(GITTINS_JOBS, "las", {"thresholds": [2]}, cluster=ONE_GPU)
    assert_timeline(las, {"S": (0, 11), "P": (2, 29), "Q": (4, 46), "X": (7, 8)})


# ----------------------------------------------------------------------------- fair share / DRF
FS_JOBS = [
    ("a1", 0, 2, 10, {"tenant": "A"}),
    ("a2", 0, 2, 10, {"tenant": "A"}),
    ("b1", 1, 2, 4, {"tenant": "B"}),
]


def test_fair_share_preempts_the_tenant_above_its_share():
    # t0: only A: share 4: a1 -> 0,1; a2 -> 2,3.
    # t1: b1 of B: demands A 4, B 2 -> shares 2 and 2.  A keeps a1 (inside 2), a2 is beyond;
    #     b1 fits B's share -> admitted; no GPU left for a2: preempted (9 s left).
    #     b1 -> 2,3 [1,5].
    # t5: b1 ends: A alone again: a2 resumes on 2,3 [5,14].
    res, df = run(FS_JOBS, "fair-share")
    assert_timeline(df, {"a1": (0, 10), "a2": (0, 14), "b1": (1, 5)})
    assert df["preemptions"].to_dict() == {"a1": 0, "a2": 1, "b1": 0}
    assert gpu_ids(res, "a2") == [("run", 0, 1, "2 3"), ("run", 5, 14, "2 3")]


def test_fair_share_weights():
    # weights A 3, B 1: shares A 3, B 1.  b1 (2 GPUs) does not fit B's share of 1; in the
    # second pass a2 (running, beyond A's share) keeps its GPUs first: no preemption, b1
    # waits for a1/a2 to end: [10,14].
    res, df = run(FS_JOBS, "fair-share", {"weights": {"A": 3, "B": 1}})
    assert_timeline(df, {"a1": (0, 10), "a2": (0, 10), "b1": (10, 14)})
    assert res.summary["preemptions_total"] == 0


DRF_NODE = one_node(gpus=4, cpus=16)
DRF_JOBS = [
    ("g1", 0, 2, 10, {"tenant": "G", "cpus": 6}),
    ("g2", 0, 2, 10, {"tenant": "G", "cpus": 6}),
    ("c1", 1, 0, 4, {"tenant": "C", "cpus": 8}),
]


def test_drf_counts_cpus_where_gpu_fair_share_does_not():
    # cluster 4 GPUs, 16 CPUs.  t1: demands G (4 GPUs, 12 CPUs), dominant share 1; C (8 CPUs),
    # dominant share 1/2.  Progressive filling: C is satisfied at level 1/2 (G then holds
    # half its demand: 2 GPUs, 6 CPUs, and C 8 CPUs); G grows on until the CPUs run out at
    # 8 CPUs: 2/3 of its demand, 2.67 GPUs.  G keeps g1 (2, 6); g2 would exceed; c1 fits
    # C's share; 16 - 6 - 8 = 2 CPUs left, g2 needs 6: preempted.  c1 [1,5]; g2 [5,14].
    res, df = run(DRF_JOBS, "drf", cluster=DRF_NODE)
    assert_timeline(df, {"g1": (0, 10), "g2": (0, 14), "c1": (1, 5)})
    assert df["preemptions"].to_dict() == {"g1": 0, "g2": 1, "c1": 0}
    # fair-share counts GPUs only: C's job asks none, nothing is preempted, c1 waits for CPUs
    res, fs = run(DRF_JOBS, "fair-share", cluster=DRF_NODE)
    assert_timeline(fs, {"g1": (0, 10), "g2": (0, 10), "c1": (10, 14)})


def test_progressive_filling_hand_values():
    caps = [4.0, 16.0]
    out = progressive_filling({"G": [4.0, 12.0], "C": [0.0, 8.0]}, {}, caps)
    assert out["C"] == pytest.approx([0.0, 8.0])
    assert out["G"] == pytest.approx([8 / 3, 8.0])
    # one resource: weighted water-filling; a tenant asking less than its share gets it all
    out = progressive_filling({"a": [10.0], "b": [10.0], "c": [1.0]}, {"a": 2.0}, [9.0])
    assert out["c"] == pytest.approx([1.0])
    assert out["a"] == pytest.approx([16 / 3]) and out["b"] == pytest.approx([8 / 3])


# ----------------------------------------------------------------------------- Themis
def test_themis_reallocates_at_lease_ends_by_finish_time_fairness():
    # lease 5 s.  t0 (a lease end): a -> all 4 [0,...).  t1: b arrives, no idle GPU, no
    # preemption between lease ends.  t5: N = 2 active jobs, fair share 2 GPUs, so
    # T_id = runtime x 4*2/4: rho(a) = (5 + 15) / 40 = 0.5, rho(b) = (4 + 2) / 4 = 1.5:
    # b first, a preempted (15 s left); b [5,7].  t7: a resumes [7,22].
    jobs = [("a", 0, 4, 20), ("b", 1, 4, 2)]
    res, df = run(jobs, "themis", {"lease": "5s"})
    assert_timeline(df, {"a": (0, 22), "b": (5, 7)})
    assert df["preemptions"].to_dict() == {"a": 1, "b": 0}


def test_themis_fills_idle_gpus_between_lease_ends():
    # b (2 GPUs) arrives at 1 while a holds 2 of 4: it starts at once on 2,3, no lease wait.
    jobs = [("a", 0, 2, 20), ("b", 1, 2, 2)]
    res, df = run(jobs, "themis", {"lease": "5s"})
    assert_timeline(df, {"a": (0, 20), "b": (1, 3)})
    assert gpu_ids(res, "b") == [("run", 1, 3, "2 3")]


def test_priority_lets_an_inference_replica_preempt_training(tmp_path):
    # one 8-GPU node; a training job takes all 8 GPUs at t0; the service's replica (priority
    # 100 by default) arrives at 0 too.  Under `priority` the replica is admitted first and
    # the 8-GPU job waits (7 GPUs left); under fifo the training job (lower id) goes first.
    from tests.unit.test_services import model_free, svc_scenario, write_trace

    tr = write_trace(tmp_path / "t.csv", [(1, 1, 1), (2, 1, 1)])
    train = [{"name": "train", "gpus": 8, "duration": 50}]
    pr = lepsim.simulate(svc_scenario(model_free(tr), policy="priority", jobs=train))
    ff = lepsim.simulate(svc_scenario(model_free(tr), policy="fifo", jobs=train))
    jp, jf = pr.jobs.set_index("name"), ff.jobs.set_index("name")
    assert jp.loc["train", "status"] == "unfinished" and math.isnan(jp.loc["train", "first_start_s"])
    assert jf.loc["train", "first_start_s"] == 0 and jf.loc["train", "end_s"] == 50
    assert (pr.requests["status"] == "completed").all()


# ----------------------------------------------------------------------------- every policy, random workloads
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tests.property.strategies import clusters, jobs_for, layout, placement_params  # noqa: E402
from tests.property.test_engine_properties import SETTINGS, _check_resources, make  # noqa: E402

DYNAMIC_PARAMS = {
    "srtf": st.just({}),
    "priority": st.just({}),
    "gittins": st.fixed_dictionaries({"thresholds": st.sampled_from([[1], [2, 10]]),
                                      "prior_mean": st.sampled_from([1, 10]),
                                      "prior_weight": st.sampled_from([0, 5]),
                                      "refit_growth": st.sampled_from([0, 0.5])}),
    "fair-share": st.fixed_dictionaries({"weights": st.sampled_from([{}, {"alice": 3, "bob": 0.5}])}),
    "drf": st.fixed_dictionaries({"weights": st.sampled_from([{}, {"carol": 2}])}),
    "themis": st.fixed_dictionaries({"lease": st.sampled_from([0.5, 3])}),
}


@st.composite
def dynamic_cases(draw):
    pools = draw(clusters())
    jobs = draw(jobs_for(pools, max_jobs=20))
    for j in jobs:
        j["priority"] = draw(st.integers(0, 2))
    name = draw(st.sampled_from(sorted(DYNAMIC_PARAMS)))
    params = {**draw(placement_params), **draw(DYNAMIC_PARAMS[name])}
    pre = {"checkpoint": draw(st.sampled_from([0, 0.5, 2])), "restore": draw(st.sampled_from([0, 0.5, 2]))}
    return pools, jobs, name, params, pre


@settings(max_examples=60, **SETTINGS)
@given(dynamic_cases())
def test_every_dynamic_policy_completes_every_job(case):
    # invariants (conftest) plus: with no horizon and jobs that fit, every job completes,
    # having done exactly its work, and no node's CPUs or memory are over-committed
    pools, jobs, name, params, pre = case
    res = lepsim.simulate(make(pools, jobs, name, params, pre))
    df = res.jobs
    assert (df["status"] == "completed").all(), (name, df[df["status"] != "completed"])
    spec = {j["name"]: j for j in jobs}
    duration = df["name"].map(lambda n: spec[n]["duration"]).astype(float)
    assert duration.to_numpy() == pytest.approx(df["executed_s"].to_numpy(), rel=1e-6)
    _check_resources(res, layout(pools), {jid: spec[n] for jid, n in zip(df["job_id"], df["name"])})
