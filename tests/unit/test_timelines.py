"""Hand-computed timelines: a few jobs on 4 GPUs, exact start and end times under each policy.

Every expected value below was worked out by hand (in the comments) from the policies'
documented rules and the engine's documented event order, before running anything:

* at one timestamp: phase ends (checkpoint/restore), then completions, then arrivals (job-id
  order), then wake-ups; the policy is invoked once for all of them;
* duration jobs run at rate 1, so a job of duration D needs D seconds of *running* time;
* first-fit placement takes the lowest free GPU ids of the first node that fits (in node
  order); a gang that fits no single node is spread over nodes in order ("prefer").

GPU ids are global: node 0 holds GPUs 0..k-1, node 1 the next ones, in pool order.
"""
from __future__ import annotations

import math

import pytest

import lepsim
from tests.conftest import scenario



def one_node(gpus=4, cpus=64, memory="512GiB", gpu_type="V100"):
    return {"pools": [{"count": 1, "gpu_type": gpu_type, "gpus_per_node": gpus, "cpus": cpus, "memory": memory}]}


def two_by_two():
    return {"pools": [{"count": 2, "gpu_type": "V100", "gpus_per_node": 2, "cpus": 64, "memory": "512GiB"}]}


def two_types():
    # node 0: V100 GPUs 0,1 ; node 1: K80 GPUs 2,3
    return {"pools": [
        {"count": 1, "gpu_type": "V100", "gpus_per_node": 2, "cpus": 64, "memory": "512GiB"},
        {"count": 1, "gpu_type": "K80", "gpus_per_node": 2, "cpus": 64, "memory": "512GiB"},
    ]}


def run(jobs, policy, params=None, cluster=None, preemption=None):
    """Simulate inline ``jobs`` (name, submit, gpus, duration, extra fields) and return
    (result, jobs frame indexed by name)."""
    inline = []
    for name, submit, gpus, duration, *extra in jobs:
        j = {"name": name, "submit": submit, "gpus": gpus, "duration": duration}
        if extra:
            j.update(extra[0])
        inline.append(j)
    sched = {"policy": policy, "params": params or {}}
    if preemption:
        sched["preemption"] = preemption
    sc = scenario({"cluster": cluster or one_node(), "workload": {"jobs": inline}, "scheduler": sched})
    res = lepsim.simulate(sc)
    return res, res.jobs.set_index("name")


def assert_timeline(df, expected):
    """``expected``: name -> (first_start, end); exact (these are sums of small integers)."""
    for name, (start, end) in expected.items():
        row = df.loc[name]
        assert row["status"] == "completed", name
        assert row["first_start_s"] == pytest.approx(start, abs=1e-9), f"{name} first start"
        assert row["end_s"] == pytest.approx(end, abs=1e-9), f"{name} end"
    assert set(df.index) == set(expected)


def gpu_ids(res, name):
    """GPU ids of each interval of job ``name``, in time order: [(phase, start, end, "ids")]."""
    jid = int(res.jobs.set_index("name").loc[name, "job_id"])
    iv = res.intervals[res.intervals["job_id"] == jid].sort_values("start_s")
    return [(p, s, e, str(g)) for p, s, e, g in zip(iv["phase"], iv["start_s"], iv["end_s"], iv["gpu_ids"])]


# --------------------------------------------------------------------------------------
# J1: one node of 4 GPUs.  name, submit, gpus, duration
J1 = [
    ("a", 0, 2, 10),
    ("b", 0, 1, 4),
    ("c", 1, 4, 2),   # needs the whole node
    ("d", 2, 1, 3),
    ("e", 4, 1, 1),   # arrives exactly when b completes
]


def test_fifo_strict_wide_job_blocks_the_queue():
    # t0: a -> GPUs 0,1; b -> GPU 2 (submit order).  free {3}
    # t1: c needs 4, only 1 free: head blocked.
    # t2: d fits on GPU 3, but strict FIFO keeps it behind c.
    # t4: b completes, e arrives (same instant); free {2,3}; c still blocked, d and e behind.
    # t10: a completes; c takes all 4 GPUs [10,12]; d: 0 free.
    # t12: c completes; d -> [12,15], e -> [12,13].
    res, df = run(J1, "fifo")
    assert_timeline(df, {"a": (0, 10), "b": (0, 4), "c": (10, 12), "d": (12, 15), "e": (12, 13)})
    assert df["queueing_delay_s"].to_dict() == pytest.approx({"a": 0, "b": 0, "c": 9, "d": 10, "e": 8})
    assert df["wait_time_s"].to_dict() == pytest.approx({"a": 0, "b": 0, "c": 9, "d": 10, "e": 8})
    assert (df["preemptions"] == 0).all()
    assert gpu_ids(res, "a") == [("run", 0, 10, "0 1")]
    assert gpu_ids(res, "b") == [("run", 0, 4, "2")]
    assert gpu_ids(res, "c") == [("run", 10, 12, "0 1 2 3")]
    # GPU 3 stayed idle from 0 to 10 although d waited: the cost of strict FIFO
    assert res.summary["makespan_s"] == 15


def test_fifo_skip_blocked_lets_small_jobs_pass():
    # t0: a -> 0,1; b -> 2.  t1: c blocked (1 free).
    # t2: c skipped; d -> GPU 3 [2,5].
    # t4: b completes, e arrives; free {2}; c skipped; e -> GPU 2 [4,5].
    # t5: d and e complete: free {2,3}; c still needs 4.
    # t10: a completes; c [10,12].
    res, df = run(J1, "fifo", {"skip_blocked": True})
    assert_timeline(df, {"a": (0, 10), "b": (0, 4), "c": (10, 12), "d": (2, 5), "e": (4, 5)})
    assert df["wait_time_s"].to_dict() == pytest.approx({"a": 0, "b": 0, "c": 9, "d": 0, "e": 0})
    assert gpu_ids(res, "d") == [("run", 2, 5, "3")]
    assert gpu_ids(res, "e") == [("run", 4, 5, "2")]


def test_sjf_strict():
    # Order by duration (ties: id).
    # t0: pending b(4), a(10): b -> GPU 0, then a -> GPUs 1,2.  free {3}
    # t1: c(2) blocked (4 GPUs).
    # t2: pending c(2), d(3): c is shortest and does not fit -> strict: nothing starts.
    # t4: b completes, e arrives: pending e(1), c(2), d(3): e -> GPU 0 [4,5]; c blocked.
    # t5: e completes; c blocked (free {0,3}); d stays behind c.
    # t10: a completes: c -> all 4 [10,12]; d: nothing free.  t12: d [12,15].
    res, df = run(J1, "sjf")
    assert_timeline(df, {"a": (0, 10), "b": (0, 4), "c": (10, 12), "d": (12, 15), "e": (4, 5)})
    assert gpu_ids(res, "b") == [("run", 0, 4, "0")]
    assert gpu_ids(res, "a") == [("run", 0, 10, "1 2")]
    assert gpu_ids(res, "e") == [("run", 4, 5, "0")]
    assert df["wait_time_s"].to_dict() == pytest.approx({"a": 0, "b": 0, "c": 9, "d": 10, "e": 0})


def test_sjf_skip_blocked():
    # as strict, but at t2 d(3) passes the blocked c(2): d -> GPU 3 [2,5]; e -> GPU 0 [4,5].
    res, df = run(J1, "sjf", {"skip_blocked": True})
    assert_timeline(df, {"a": (0, 10), "b": (0, 4), "c": (10, 12), "d": (2, 5), "e": (4, 5)})
    assert gpu_ids(res, "d") == [("run", 2, 5, "3")]


def test_las_demotion_and_free_preemption():
    # thresholds [4] GPU-seconds: queue 0 below 4, queue 1 from 4.  In a queue: running
    # jobs first, then submit order.  Admission by capacity (4), skip_blocked.
    # t0: a(2 GPUs), b(1): both q0; a -> 0,1; b -> 2.  wake at 2 (a reaches 4 GPU-s).
    # t1: c(4) arrives: order a, b (running, q0), c: room 4-2-1 = 1 < 4: nothing.
    # t2: d arrives; a has 4 GPU-s -> q1.  order: b(q0 run), c(q0), d(q0), a(q1 run):
    #     b keeps (room 3), c no (4 > 3), d admitted (room 2), a keeps (room 0).
    #     d -> GPU 3 [2,5].
    # t4: b completes (4 GPU-s, at the threshold), e arrives: order d, c, e, a:
    #     d keeps, c no, e admitted -> GPU 2 [4,5], a keeps.
    # t5: d and e complete.  order c(q0 pending), a(q1 running): c takes the 4, a preempted
    #     (checkpoint 0: GPUs free at once, 5 s done) and c -> all 4 [5,7]; wake at 6.
    # t6: c reaches 4 GPU-s -> q1; a(q1, pending) does not preempt c (same queue).
    # t7: c completes; a resumes [7,12] (5 s left).
    res, df = run(J1, "las", {"thresholds": [4]})
    assert_timeline(df, {"a": (0, 12), "b": (0, 4), "c": (5, 7), "d": (2, 5), "e": (4, 5)})
    assert df["preemptions"].to_dict() == {"a": 1, "b": 0, "c": 0, "d": 0, "e": 0}
    assert df["wait_time_s"].to_dict() == pytest.approx({"a": 2, "b": 0, "c": 4, "d": 0, "e": 0})
    assert df["queueing_delay_s"].to_dict() == pytest.approx({"a": 0, "b": 0, "c": 4, "d": 0, "e": 0})
    assert df.loc["a", "executed_s"] == pytest.approx(10)
    assert gpu_ids(res, "a") == [("run", 0, 5, "0 1"), ("run", 7, 12, "0 1")]
    assert gpu_ids(res, "c") == [("run", 5, 7, "0 1 2 3")]
    assert res.summary["preemptions_total"] == 1


def test_las_without_demotion_is_different():
    # With a threshold a never reaches (100 GPU-s) there is one queue: a is never preempted
    # and c waits for it: c [10,12]; d and e as above.  (Shows the demotion above matters.)
    res, df = run(J1, "las", {"thresholds": [100]})
    assert_timeline(df, {"a": (0, 10), "b": (0, 4), "c": (10, 12), "d": (2, 5), "e": (4, 5)})
    assert res.summary["preemptions_total"] == 0


def test_las_charges_checkpoint_and_restore_exactly():
    # checkpoint 1 s (GPUs still held, no progress), restore 2 s (GPUs held, no progress).
    # Same as test_las_demotion_and_free_preemption until t5:
    # t5: a preempted: it checkpoints on GPUs 0,1 until 6.  c wants 4 GPUs, only {2,3}
    #     free: not placed.
    # t6: checkpoint ends, a re-queued (pending from 6); pass: c(q0) before a(q1):
    #     c -> all 4 [6,8] (never preempted: no restore).  wake at 7.
    # t7: c -> q1; a (q1, pending) does not preempt it.
    # t8: c completes; a resumes on 0,1: restore [8,10], then runs its last 5 s [10,15].
    res, df = run(J1, "las", {"thresholds": [4]}, preemption={"checkpoint": "1s", "restore": "2s"})
    assert_timeline(df, {"a": (0, 15), "b": (0, 4), "c": (6, 8), "d": (2, 5), "e": (4, 5)})
    assert df["preemptions"].to_dict() == {"a": 1, "b": 0, "c": 0, "d": 0, "e": 0}
    # pending time only: a from the end of its checkpoint (6) to its restart (8)
    assert df["wait_time_s"].to_dict() == pytest.approx({"a": 2, "b": 0, "c": 5, "d": 0, "e": 0})
    assert df.loc["a", "executed_s"] == pytest.approx(10)
    assert df.loc["a", "jct_s"] == pytest.approx(15)
    assert gpu_ids(res, "a") == [
        ("run", 0, 5, "0 1"), ("checkpoint", 5, 6, "0 1"), ("restore", 8, 10, "0 1"), ("run", 10, 15, "0 1"),
    ]
    # GPU-seconds held by a: 2 GPUs x (5 run + 1 checkpoint + 2 restore + 5 run)
    assert df.loc["a", "allocated_gpu_s"] == pytest.approx(26)
    # the utilization timeline shows a's GPUs held through the checkpoint: 2 allocated on [5,6)
    tl = res.timeline.set_index("time_s")["allocated_gpus"]
    assert tl.loc[5.0] == 2 and tl.loc[6.0] == 4 and tl.loc[8.0] == 2


# --------------------------------------------------------------------------------------
def test_simultaneous_arrivals_are_one_decision_in_id_order():
    # Five 1-GPU jobs at t0; ids 0..3 are long (10 s), id 4 is short (1 s).
    # FIFO: one decision at t0 sees all five: jobs 0..3 -> GPUs 0..3 in id order, job 4
    #   waits for the first completion: [10,11].
    # SJF: the same single decision sees job 4 as well (arrivals are coalesced, not one
    #   decision per arrival): job 4 -> GPU 0 [0,1], jobs 0,1,2 -> GPUs 1,2,3; job 3 waits
    #   until job 4 completes: GPU 0 [1,11].
    jobs = [(f"L{i}", 0, 1, 10) for i in range(4)] + [("S", 0, 1, 1)]
    res, df = run(jobs, "fifo")
    assert_timeline(df, {"L0": (0, 10), "L1": (0, 10), "L2": (0, 10), "L3": (0, 10), "S": (10, 11)})
    assert [gpu_ids(res, f"L{i}")[0][3] for i in range(4)] == ["0", "1", "2", "3"]
    arrivals = res.events[res.events["event"] == "arrive"]
    assert arrivals["job_id"].tolist() == [0, 1, 2, 3, 4] and (arrivals["time_s"] == 0).all()
    res, df = run(jobs, "sjf")
    assert_timeline(df, {"L0": (0, 10), "L1": (0, 10), "L2": (0, 10), "L3": (1, 11), "S": (0, 1)})
    assert gpu_ids(res, "S") == [("run", 0, 1, "0")]
    assert gpu_ids(res, "L3") == [("run", 1, 11, "0")]
    assert [gpu_ids(res, f"L{i}")[0][3] for i in range(3)] == ["1", "2", "3"]
    # one policy invocation at t0 and one per completion time (1, 10); the last completion
    # (11) ends the run without a decision: 3 in all
    assert res.stats["policy_invocations"] == 3


def test_completion_before_arrival_at_the_same_instant():
    # One GPU.  x [0,2]; y arrives at 2 and starts at once on the freed GPU: the completion
    # is applied before the arrival and one decision sees both.  z arrives at 2 too and waits
    # for y: [3,4].
    res, df = run([("x", 0, 1, 2), ("y", 2, 1, 1), ("z", 2, 1, 1)], "fifo", cluster=one_node(gpus=1))
    assert_timeline(df, {"x": (0, 2), "y": (2, 3), "z": (3, 4)})
    ev = res.events[res.events["time_s"] == 2]
    assert list(zip(ev["event"], ev["job_id"])) == [("complete", 0), ("arrive", 1), ("arrive", 2), ("start", 1)]
    assert df.loc["y", "wait_time_s"] == 0 and df.loc["z", "wait_time_s"] == 1
    # decisions at t0, t2, t3 (the last completion, t4, ends the run)
    assert res.stats["policy_invocations"] == 3


# --------------------------------------------------------------------------------------
# Two nodes of 2 GPUs (node 0: GPUs 0,1; node 1: GPUs 2,3)
J2 = [
    ("a", 0, 1, 4),
    ("b", 0, 1, 2),
    ("c", 1, 1, 5),
    ("d", 1, 3, 2),   # never fits one node: always spread
    ("e", 2, 2, 1),
]


def test_spread_fifo_strict():
    # t0: a -> 0, b -> 1 (node 0 first).  t1: c -> node 1 GPU 2; d (3) blocked (free {3}).
    # t2: b completes, e arrives: free {1,3}; d blocked, e behind it.
    # t4: a completes: free {0,1,3}: d spreads: node 0 gives 0,1, node 1 gives 3 [4,6].
    # t6: c and d complete; e -> node 0 {0,1} [6,7].
    res, df = run(J2, "fifo", cluster=two_by_two())
    assert_timeline(df, {"a": (0, 4), "b": (0, 2), "c": (1, 6), "d": (4, 6), "e": (6, 7)})
    assert gpu_ids(res, "d") == [("run", 4, 6, "0 1 3")]
    assert gpu_ids(res, "e") == [("run", 6, 7, "0 1")]
    assert res.intervals.set_index("job_id").loc[3, "nodes"] == "0:2,1:1"


def test_spread_skip_blocked_prefer_spreads_a_two_gpu_job():
    # as strict until t2: b completes, e arrives: free {1,3} (one per node); d (3) skipped;
    # e: no single node has 2 free -> "prefer" spreads it: GPUs 1,3 [2,3].
    # t3: e completes: free {1,3}.  t4: a completes: free {0,1,3} -> d [4,6] on 0,1,3.
    res, df = run(J2, "fifo", {"skip_blocked": True}, cluster=two_by_two())
    assert_timeline(df, {"a": (0, 4), "b": (0, 2), "c": (1, 6), "d": (4, 6), "e": (2, 3)})
    assert gpu_ids(res, "e") == [("run", 2, 3, "1 3")]
    assert gpu_ids(res, "d") == [("run", 4, 6, "0 1 3")]


def test_spread_skip_blocked_require_waits_for_one_node():
    # consolidate: require: e (2 GPUs, fits one node) waits for a whole node.
    # t2: free {1,3}: e not placed.  t4: a completes: free {0,1,3}: d (3 GPUs cannot fit any
    # node, so it may spread) -> 0,1,3 [4,6]; e: nothing free.  t6: e -> node 0 {0,1} [6,7].
    res, df = run(J2, "fifo", {"skip_blocked": True, "consolidate": "require"}, cluster=two_by_two())
    assert_timeline(df, {"a": (0, 4), "b": (0, 2), "c": (1, 6), "d": (4, 6), "e": (6, 7)})
    assert gpu_ids(res, "e") == [("run", 6, 7, "0 1")]


# --------------------------------------------------------------------------------------
# One node, 4 GPUs, 8 CPUs, 64 GiB: CPU and memory, not GPUs, stop placement.
J3 = [
    ("a", 0, 1, 3, {"cpus": 6, "memory": "16GiB"}),
    ("b", 0, 1, 2, {"cpus": 2, "memory": "60GiB"}),  # memory-blocked while a runs (48 GiB free)
    ("c", 0, 1, 1, {"cpus": 4, "memory": "8GiB"}),   # CPU-blocked while a runs (2 CPUs free)
    ("d", 0, 1, 4, {"cpus": 2, "memory": "8GiB"}),
]


def test_cpu_and_memory_limits_strict_fifo():
    # t0: a [0,3] (2 CPUs, 48 GiB left); b needs 60 GiB: head blocked with 3 GPUs free.
    # t3: a completes: b [3,5] (6 CPUs, 4 GiB left); c needs 8 GiB: blocked.
    # t5: b completes: c [5,6], d [5,9] (8 CPUs, 64 GiB: both fit).
    res, df = run(J3, "fifo", cluster=one_node(cpus=8, memory="64GiB"))
    assert_timeline(df, {"a": (0, 3), "b": (3, 5), "c": (5, 6), "d": (5, 9)})
    # never more than 2 GPUs of 4 in use: the GPUs were never the limit
    assert res.timeline["allocated_gpus"].max() == 2


def test_cpu_and_memory_limits_skip_blocked():
    # t0: a [0,3]; b (memory) and c (CPU) skipped; d fits (0 CPUs, 40 GiB left) [0,4].
    # t3: a completes: 6 CPUs, 56 GiB: b (60 GiB) skipped; c [3,4].
    # t4: c and d complete: b [4,6].
    res, df = run(J3, "fifo", {"skip_blocked": True}, cluster=one_node(cpus=8, memory="64GiB"))
    assert_timeline(df, {"a": (0, 3), "b": (4, 6), "c": (3, 4), "d": (0, 4)})


# --------------------------------------------------------------------------------------
# Two pools: node 0 V100 (GPUs 0,1), node 1 K80 (GPUs 2,3).
J4 = [
    ("a", 0, 2, 4, {"gpu_type": "V100"}),
    ("b", 0, 1, 1, {"gpu_type": "V100"}),
    ("c", 0, 1, 2),                        # any type
    ("d", 1, 2, 2, {"gpu_type": "K80"}),
]


def test_gpu_type_strict_fifo():
    # t0: a -> V100 0,1.  b requires V100: none free -> head blocked (K80s idle).
    # t1: d (K80) behind b.
    # t4: a completes: b -> V100 0 [4,5]; c (any; V100 first in pool order) -> V100 1 [4,6];
    #     d -> K80 2,3 [4,6].
    res, df = run(J4, "fifo", cluster=two_types())
    assert_timeline(df, {"a": (0, 4), "b": (4, 5), "c": (4, 6), "d": (4, 6)})
    assert df["gpu_type"].to_dict() == {"a": "V100", "b": "V100", "c": "V100", "d": "K80"}
    assert gpu_ids(res, "d") == [("run", 4, 6, "2 3")]


def test_gpu_type_skip_blocked():
    # t0: a -> V100 0,1; b skipped; c (any) -> no V100 free -> K80 2 [0,2].
    # t1: d needs 2 K80s, 1 free: skipped.  t2: c completes: d -> K80 2,3 [2,4].
    # t4: a and d complete: b -> V100 0 [4,5].
    res, df = run(J4, "fifo", {"skip_blocked": True}, cluster=two_types())
    assert_timeline(df, {"a": (0, 4), "b": (4, 5), "c": (0, 2), "d": (2, 4)})
    assert df["gpu_type"].to_dict() == {"a": "V100", "b": "V100", "c": "K80", "d": "K80"}
    assert res.summary["utilization[K80]"] == pytest.approx((2 * 1 + 2 * 2) / (2 * 5))
    assert res.summary["utilization[V100]"] == pytest.approx((2 * 4 + 1 * 1) / (2 * 5))


def test_las_respects_gpu_type():
    # LAS with one queue (threshold never reached) is FIFO with skip_blocked and
    # capacity-based admission: same timeline as test_gpu_type_skip_blocked.
    res, df = run(J4, "las", {"thresholds": [1000]}, cluster=two_types())
    assert_timeline(df, {"a": (0, 4), "b": (4, 5), "c": (0, 2), "d": (2, 4)})
    assert not math.isnan(res.summary["jct_mean_s"])


def test_las_second_threshold_crossing_demotes():
    # (regression: LAS once asked to be woken only at a job's first crossing after its start,
    # so B below was never demoted to q2 and ran [1,6])
    # One GPU, thresholds [1, 2] GPU-s: queues q0 [0,1), q1 [1,2), q2 [2,inf).
    # t0: A, B (5 s each) in q0; A (lower id) -> GPU 0; A reaches 1 at t1.
    # t1: A -> q1; B (q0, pending) preempts A; B starts [1, ...).
    # t2: B -> q1; A waits in q1: same queue, B (holding the GPU) keeps it.
    # t3: B reaches 2 -> q2; A (q1) is now ahead: B preempted, A resumes (4 s left).
    # t4: A -> q2; B waits in q2: same queue, A keeps the GPU: A ends at 7.
    # t7: B resumes (3 s left) and ends at 10.
    res, df = run([("A", 0, 1, 5), ("B", 0, 1, 5)], "las", {"thresholds": [1, 2]}, cluster=one_node(gpus=1))
    assert_timeline(df, {"A": (0, 7), "B": (1, 10)})
    assert df["preemptions"].to_dict() == {"A": 1, "B": 1}
    assert df["wait_time_s"].to_dict() == pytest.approx({"A": 2, "B": 5})
