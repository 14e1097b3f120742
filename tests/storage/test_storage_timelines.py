"""Hand-computed timelines of the storage model: checkpoints and restores as transfers whose
length is their bytes over the bandwidth they get (max-min shared), failures losing the
work since the last checkpoint, storage outages.

Every expected value was worked out by hand in the comments, from the documented model
(docs/engine.md, "Storage, checkpoints and failures") and LAS's documented rules (see
tests/unit/test_timelines.py): thresholds in GPU-seconds, running jobs first inside a
queue, a lower queue's job preempted for a higher queue's.
"""
from __future__ import annotations

import pytest

import lepsim
from tests.conftest import scenario

GB = 1e9


def cluster(gpus=1, nodes=1):
    return {"pools": [{"name": "n", "count": nodes, "gpu_type": "V100", "gpus_per_node": gpus, "cpus": 64,
                       "memory": "512GiB"}]}


def run(jobs, policy="fifo", params=None, gpus=1, nodes=1, storage=None, failures=None, preemption=None):
    sched = {"policy": policy, "params": params or {}}
    if preemption:
        sched["preemption"] = preemption
    data = {"cluster": cluster(gpus, nodes), "workload": {"jobs": jobs}, "scheduler": sched}
    if storage is not None:
        data["storage"] = storage
    if failures is not None:
        data["failures"] = failures
    res = lepsim.simulate(scenario(data))
    return res, res.jobs.set_index("name")


def phases(res, name):
    jid = int(res.jobs.set_index("name").loc[name, "job_id"])
    iv = res.intervals[res.intervals["job_id"] == jid].sort_values("start_s")
    return [(p, pytest.approx(s), pytest.approx(e)) for p, s, e in zip(iv["phase"], iv["start_s"], iv["end_s"])]


def test_preemption_checkpoint_and_restore_take_size_over_bandwidth():
    # 1 GPU, storage 1 GB/s, checkpoints of 2 GB: writing or reading one takes 2 s alone.
    # LAS thresholds [4 GPU-s].  t0: a starts (q0).  t1: b arrives (q0; a runs first).
    # t4: a reaches 4 GPU-s -> q1; b (q0) preempts a: a writes 2 GB [4,6] holding the GPU.
    # t6: a re-queued; b runs [6,9] (never preempted: nothing to restore).
    # t9: b completes; a reads its 2 GB checkpoint [9,11], then runs its last 6 s [11,17].
    jobs = [{"name": "a", "gpus": 1, "duration": 10, "checkpoint_size": "2GB"},
            {"name": "b", "submit": 1, "gpus": 1, "duration": 3, "checkpoint_size": "2GB"}]
    res, df = run(jobs, "las", {"thresholds": [4]}, storage={"bandwidth": "1GB/s"})
    assert phases(res, "a") == [("run", 0, 4), ("checkpoint", 4, 6), ("restore", 9, 11), ("run", 11, 17)]
    assert phases(res, "b") == [("run", 6, 9)]
    assert df.loc["a", "checkpoint_s"] == pytest.approx(2) and df.loc["a", "restore_s"] == pytest.approx(2)
    assert df.loc["a", "checkpoints"] == 1 and df.loc["b", "checkpoints"] == 0
    # the storage service moved 2 GB on [4,6] and 2 GB on [9,11] at its full 1 GB/s
    st = res.storage.set_index("time_s")
    assert st.loc[4.0, "storage_write_bytes_per_s"] == pytest.approx(GB) and st.loc[6.0, "storage_write_bytes_per_s"] == 0
    assert st.loc[9.0, "storage_read_bytes_per_s"] == pytest.approx(GB)
    # utilization over the 17 s: 4 s of 17 at 100 %
    assert res.summary["storage_utilization"] == pytest.approx(4 / 17)
    # effective utilization (computing) = 13 s of work / 17 s; allocated = (13 + 2 + 2) / 17
    assert res.summary["effective_utilization"] == pytest.approx(13 / 17)
    assert res.summary["utilization"] == pytest.approx(17 / 17)
    assert res.summary["checkpoint_overhead_share"] == pytest.approx(2 / 17)


def test_without_storage_section_the_fixed_times_stay():
    # the same jobs without a storage section: scheduler.preemption times (1 s, 2 s) apply,
    # checkpoint_size is ignored.  t4: checkpoint [4,5]; b [5,8]; a restores [8,10], runs [10,16].
    jobs = [{"name": "a", "gpus": 1, "duration": 10, "checkpoint_size": "2GB"},
            {"name": "b", "submit": 1, "gpus": 1, "duration": 3, "checkpoint_size": "2GB"}]
    res, _ = run(jobs, "las", {"thresholds": [4]}, preemption={"checkpoint": "1s", "restore": "2s"})
    assert phases(res, "a") == [("run", 0, 4), ("checkpoint", 4, 5), ("restore", 8, 10), ("run", 10, 16)]
    assert len(res.storage) == 0


def test_two_checkpoints_share_the_storage_bandwidth():
    # 2 GPUs; a and b (1 GPU, 10 s, 2 GB checkpoints) run from t0; c (2 GPUs, 2 s) arrives at 1
    # and cannot fit.  t4: a and b reach 4 GPU-s -> q1; c (q0) preempts both: two 2 GB writes
    # share 1 GB/s max-min, 0.5 GB/s each: both end at 4 + 2/0.5 = 8 (alone: 6).
    # t8: c runs [8,10].  t10: a and b restore together, 0.5 GB/s each: [10,14]; run 6 s [14,20].
    jobs = [{"name": "a", "gpus": 1, "duration": 10, "checkpoint_size": "2GB"},
            {"name": "b", "gpus": 1, "duration": 10, "checkpoint_size": "2GB"},
            {"name": "c", "submit": 1, "gpus": 2, "duration": 2, "checkpoint_size": "2GB"}]
    res, df = run(jobs, "las", {"thresholds": [4]}, gpus=2, storage={"bandwidth": "1GB/s"})
    for name in ("a", "b"):
        assert phases(res, name) == [("run", 0, 4), ("checkpoint", 4, 8), ("restore", 10, 14), ("run", 14, 20)]
    assert phases(res, "c") == [("run", 8, 10)]
    st = res.storage.set_index("time_s")["storage_write_bytes_per_s"]
    assert st.loc[4.0] == pytest.approx(GB)  # the two flows together fill the service


def test_staggered_transfers_share_max_min():
    # 2 GPUs.  LAS thresholds [4].  a (1 GPU, 10 s, 2 GB) from 0; b (1 GPU, 10 s, 2 GB) from 2;
    # c (1 GPU, 1 s) at 3 and d (1 GPU, 1 s) at 5.
    # t3: c arrives: no free GPU; a (3 GPU-s) and b (1) are q0 running: no preemption.
    # t4: a -> q1; c (q0) preempts a: a writes 2 GB alone at 1 GB/s from 4.
    # t5: d arrives (q0, waits).  t6: b reaches 4 -> q1: d preempts b: b writes from 6, but a
    #     has already finished (4 + 2 = 6, phase ends first at one timestamp) -> GPU 0 free at 6:
    #     c [6,7]; b writes alone [6,8]; d waits for a GPU: at 7 c completes -> d [7,8].
    # Not a sharing case; the sharing one: give b 4 GB -> b writes [6,10], alone.  So instead
    # check a's write overlapping b's: a 4 GB: a alone [4,6] moves 2 GB; from 6 both at
    # 0.5 GB/s: a's last 2 GB take 4 s -> a ends at 10; b has 2 GB left at 10, alone at
    # 1 GB/s -> b ends at 12.
    jobs = [{"name": "a", "gpus": 1, "duration": 10, "checkpoint_size": "4GB"},
            {"name": "b", "submit": 2, "gpus": 1, "duration": 10, "checkpoint_size": "4GB"},
            {"name": "c", "submit": 3, "gpus": 1, "duration": 1},
            {"name": "d", "submit": 5, "gpus": 1, "duration": 1}]
    res, _ = run(jobs, "las", {"thresholds": [4]}, gpus=2, storage={"bandwidth": "1GB/s"})
    assert phases(res, "a")[:2] == [("run", 0, 4), ("checkpoint", 4, 10)]
    assert phases(res, "b")[:2] == [("run", 2, 6), ("checkpoint", 6, 12)]


def test_failure_loses_the_work_since_the_last_checkpoint():
    # 1 GPU, fifo.  a: 10 s, periodic checkpoint every 3 s of running, 1 GB at 1 GB/s (1 s).
    # run [0,3]; checkpoint [3,4] saves 3 s of work; run [4,6]; node n/0 fails at 6 for 2 s:
    # a loses the 2 s since its checkpoint (work back to 3) and is re-queued.
    # t8: node back; a restores 1 GB [8,9]; runs [9,12] (work 6); checkpoint [12,13];
    # run [13,16] (work 9); checkpoint [16,17]; run [17,18] (work 10): completes at 18.
    jobs = [{"name": "a", "gpus": 1, "duration": 10, "checkpoint_size": "1GB", "checkpoint_interval": "3s"}]
    res, df = run(jobs, storage={"bandwidth": "1GB/s"},
                  failures={"faults": [{"node": "n/0", "at": 6, "repair": 2}]})
    assert phases(res, "a") == [
        ("run", 0, 3), ("checkpoint", 3, 4), ("run", 4, 6), ("restore", 8, 9), ("run", 9, 12),
        ("checkpoint", 12, 13), ("run", 13, 16), ("checkpoint", 16, 17), ("run", 17, 18)]
    row = df.loc["a"]
    assert row["status"] == "completed" and row["end_s"] == pytest.approx(18)
    assert row["lost_s"] == pytest.approx(2) and row["lost_gpu_s"] == pytest.approx(2)
    assert row["failures"] == 1 and row["checkpoints"] == 3
    assert row["executed_s"] == pytest.approx(12)  # 10 s of work + the 2 s lost
    assert res.summary["lost_gpu_h"] == pytest.approx(2 / 3600)
    assert res.summary["node_failures"] == 1
    # the node's GPU was down (not free, not allocated) on [6,8]
    tl = res.timeline.set_index("time_s")
    assert tl.loc[6.0, "down_gpus"] == 1 and tl.loc[6.0, "allocated_gpus"] == 0 and tl.loc[8.0, "down_gpus"] == 0


def test_retries_exhausted_the_job_fails_once():
    # max_retries 1: the second interruption ends a as failed (at 5); b then runs [5,7].
    jobs = [{"name": "a", "gpus": 1, "duration": 10}, {"name": "b", "gpus": 1, "duration": 2}]
    res, df = run(jobs, failures={"max_retries": 1, "faults": [{"node": "n/0", "at": 2, "repair": 1},
                                                                {"node": "n/0", "at": 5, "repair": 0.5}]})
    # t0 a [0,2] (no checkpoint: loses 2 s); down [2,3]; t3 a [3,5] loses 2 s again -> failed;
    # down [5,5.5]; b [5.5,7.5].
    assert df.loc["a", "status"] == "failed" and df.loc["a", "lost_s"] == pytest.approx(4)
    assert df.loc["b", "status"] == "completed" and df.loc["b", "end_s"] == pytest.approx(7.5)
    assert res.summary["jobs_failed"] == 1 and res.summary["jobs_completed"] == 1


def test_storage_outage_stops_the_transfer():
    # as the first test, with the storage stopped on [5,6]: a's checkpoint has 1 GB left at 5,
    # moves nothing until 6, ends at 7; b runs [7,10]; a restores [10,12], runs [12,18].
    jobs = [{"name": "a", "gpus": 1, "duration": 10, "checkpoint_size": "2GB"},
            {"name": "b", "submit": 1, "gpus": 1, "duration": 3, "checkpoint_size": "2GB"}]
    res, _ = run(jobs, "las", {"thresholds": [4]}, storage={"bandwidth": "1GB/s"},
                 failures={"storage_outages": [{"at": 5, "duration": 1}]})
    assert phases(res, "a") == [("run", 0, 4), ("checkpoint", 4, 7), ("restore", 10, 12), ("run", 12, 18)]


# ----------------------------------------------------------------------------- through the network
def run_net(jobs, storage_bw, **kw):
    sched = {"policy": "fifo", "params": {}}
    cl = cluster(1, 2)
    cl["network"] = {"topology": "leaf-spine", "nic_bandwidth": "1GB/s", "nodes_per_rack": 2}
    data = {"cluster": cl, "workload": {"jobs": jobs}, "scheduler": sched, "storage": {"bandwidth": storage_bw}}
    data.update(kw)
    res = lepsim.simulate(scenario(data))
    return res, res.jobs.set_index("name")


def _two_writers():
    return [{"name": n, "gpus": 1, "duration": 10, "checkpoint_size": "2GB", "checkpoint_interval": 5}
            for n in ("a", "b")]


def test_with_a_network_a_checkpoint_is_limited_by_the_nic():
    # a on node 0, b on node 1 (first fit).  At 5 both write 2 GB: the storage cables allow
    # 10 GB/s, each node's NIC 1 GB/s: 2 s each, [5,7]; then 5 s more work: both end at 12.
    res, df = run_net(_two_writers(), "10GB/s")
    for n in ("a", "b"):
        assert phases(res, n) == [("run", 0, 5), ("checkpoint", 5, 7), ("run", 7, 12)]
    # without a network the two writes share the 10 GB/s service: 5 GB/s each, 0.4 s
    plain, _ = run(_two_writers(), gpus=1, nodes=2, storage={"bandwidth": "10GB/s"})
    assert phases(plain, "a") == [("run", 0, 5), ("checkpoint", 5, 5.4), ("run", 5.4, 10.4)]


def test_with_a_network_writes_share_the_storage_cable():
    # storage 1.5 GB/s (each direction), below the two NICs together: 0.75 GB/s each,
    # 2 GB in 8/3 s: [5, 7.667]; end 12.667.  The storage table shows the cable full.
    res, _ = run_net(_two_writers(), "1.5GB/s")
    for n in ("a", "b"):
        assert phases(res, n) == [("run", 0, 5), ("checkpoint", 5, 5 + 8 / 3), ("run", 5 + 8 / 3, 10 + 8 / 3)]
    st = res.storage.set_index("time_s")
    assert st.loc[5.0, "storage_write_bytes_per_s"] == pytest.approx(1.5 * GB)
    assert st.loc[5.0, "storage_utilization"] == pytest.approx(1.0)


def test_with_a_network_a_multi_node_job_writes_from_every_node():
    # one 2-GPU job over both nodes (1 GPU each): 1 GB from each node at 1 GB/s: [5,6]; end 11
    jobs = [{"name": "a", "gpus": 2, "duration": 10, "checkpoint_size": "2GB", "checkpoint_interval": 5}]
    res, _ = run_net(jobs, "10GB/s")
    assert phases(res, "a") == [("run", 0, 5), ("checkpoint", 5, 6), ("run", 6, 11)]


def test_with_a_network_a_storage_outage_stops_the_writes():
    # as the NIC-limited case with the storage stopped on [6,7]: 1 GB written by 6, the rest
    # [7,8]; runs [8,13]
    res, _ = run_net(_two_writers(), "10GB/s", failures={"storage_outages": [{"at": 6, "duration": 1}]})
    assert phases(res, "a") == [("run", 0, 5), ("checkpoint", 5, 8), ("run", 8, 13)]
