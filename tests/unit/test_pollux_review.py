"""pollux making room: CPUs, memory, node selectors and shared GPUs count (hand-computed
timelines of the bugs a review found: needless or repeated preemptions and resizes)."""
from __future__ import annotations

import lepsim
from tests.conftest import scenario


def _events(r):
    return [(t, e, j, d) for t, e, j, d in r.events[["time_s", "event", "job_id", "detail"]].itertuples(index=False)]


def _run(jobs, pools=None, cpus=32, gpus=4, checkpoint=5, restore=5):
    pools = pools or [{"count": 1, "gpu_type": "T4", "gpus_per_node": gpus, "cpus": cpus, "memory": "512GiB"}]
    return lepsim.simulate(scenario({"cluster": {"pools": pools}, "workload": {"jobs": jobs},
                                     "scheduler": {"policy": "pollux", "params": {"round": 60},
                                                   "preemption": {"checkpoint": checkpoint, "restore": restore}}}))


def _elastic(most=3, **kw):
    return {"submit": 0, "gpus": 1, "min_gpus": 1, "max_gpus": most, "model": "cifar10", "batch_size": 128,
            "iterations": 200000, **kw}


def test_a_preemption_frees_the_cpus_the_job_needs_not_only_gpus():
    """One node, 4 GPUs and 32 CPUs, held by job 0 (2 GPUs, 24 CPUs) and job 1 (2 GPUs,
    8 CPUs).  Job 2 (priority 10, 2 GPUs, 16 CPUs) arrives at t=100.  Preempting job 1
    (the latest submitted) frees 2 GPUs but leaves 8 CPUs: not room.  Only job 0 makes
    room: it is preempted (checkpoint 5 s), job 2 starts at 105 and ends at 205, when job 0
    resumes (restore 5 s) with 900 s of work left: it ends at 1110.  Job 1 is never
    preempted (it was preempted at every round until t=1000 and job 2 waited until then)."""
    r = _run([{"submit": 0, "gpus": 2, "cpus": 24, "duration": 1000},
              {"submit": 0, "gpus": 2, "cpus": 8, "duration": 1000},
              {"submit": 100, "gpus": 2, "cpus": 16, "priority": 10, "duration": 100}])
    ev = _events(r)
    assert [e for e in ev if e[1] == "preempt"] == [(100.0, "preempt", 0, "")]
    assert (105.0, "start", 2, "0:2") in ev and (205.0, "complete", 2, "") in ev
    assert (205.0, "start", 0, "0:2") in ev
    end = r.jobs.set_index("job_id")["end_s"]
    assert end.tolist() == [1110.0, 1000.0, 205.0]


def test_no_shrink_for_a_job_whose_cpus_cannot_be_freed():
    """One node, 4 GPUs, 32 CPUs.  A rigid job holds 1 GPU and 28 CPUs until t=1000; an
    elastic job (1..3 GPUs, 1 CPU per GPU) grows to 3 at the t=60 round (31 CPUs taken).
    A 1-GPU job asking 8 CPUs arrives at t=300: shrinking the elastic job to 1 GPU frees
    at most 2 CPUs (3 free < 8), so nothing is resized for it (it was shrunk at 300 and
    grew back at the next round, every round); it starts at 1000 on the rigid job's GPU."""
    r = _run([{"submit": 0, "gpus": 1, "cpus": 28, "duration": 1000}, _elastic(cpus=1),
              {"submit": 300, "gpus": 1, "cpus": 8, "duration": 100}], checkpoint=1, restore=1)
    ev = _events(r)
    assert [(e[0], e[3]) for e in ev if e[1] == "resize"] == [(60.0, "0:3")]
    assert [e[0] for e in ev if e[1] == "start" and e[2] == 2] == [1000.0]


def test_a_preemption_for_cpus_does_not_also_shrink_an_elastic_job_for_nothing():
    """One node, 4 GPUs, 32 CPUs.  A rigid job (1 GPU, 24 CPUs, to t=1000) and an elastic
    job (1..3 GPUs, 1 CPU per GPU) that grows to 3 at t=60: 5 CPUs free.  A 1-GPU job of
    priority 10 asking 10 CPUs arrives at t=300.  Shrinking the elastic job to 1 GPU frees
    GPUs but 2 CPUs only (7 < 10), so the rigid job is preempted (24 CPUs); that alone
    makes room, so the elastic job is not shrunk.  The new job starts at 305 when the
    checkpoint ends (it was: the elastic job shrank at every round, nothing was
    preempted, and the job waited until t=1000)."""
    r = _run([{"submit": 0, "gpus": 1, "cpus": 24, "duration": 1000}, _elastic(cpus=1),
              {"submit": 300, "gpus": 1, "cpus": 10, "priority": 10, "duration": 100}], checkpoint=5, restore=5)
    ev = _events(r)
    assert [(e[0], e[3]) for e in ev if e[1] == "resize" and e[0] < 400] == [(60.0, "0:3")]
    assert [e for e in ev if e[1] == "preempt"] == [(300.0, "preempt", 0, "")]
    assert [e[0] for e in ev if e[1] == "start" and e[2] == 2] == [305.0]


def test_a_job_wider_than_a_node_does_not_shrink_jobs_on_nodes_it_may_not_use():
    """Nodes a0, a1 (rack a) and b0 (rack b), 4 GPUs each.  A rigid 3-GPU job on rack a
    to t=1000; an elastic job pinned to rack b grows to 4 at t=60.  A 6-GPU job pinned to
    rack a arrives at t=300: 5 GPUs are free on rack a, and shrinking the elastic job on
    rack b cannot help, so it is not shrunk (it was, at 300, grew back at 360, shrank at
    420, ... every round).  The 6-GPU job starts at 1000."""
    pools = [{"name": k, "count": c, "gpu_type": "T4", "gpus_per_node": 4, "cpus": 64, "memory": "512GiB",
              "labels": {"rack": k}} for k, c in (("a", 2), ("b", 1))]
    r = _run([{"submit": 0, "gpus": 3, "duration": 1000, "node_selector": {"rack": "a"}},
              _elastic(most=4, node_selector={"rack": "b"}),
              {"submit": 300, "gpus": 6, "duration": 100, "node_selector": {"rack": "a"}}],
             pools=pools, checkpoint=1, restore=1)
    ev = _events(r)
    assert [(e[0], e[3]) for e in ev if e[1] == "resize"] == [(60.0, "2:4")]
    assert [e[0] for e in ev if e[1] == "start" and e[2] == 2] == [1000.0]


def test_a_fractional_job_sharing_a_gpu_is_not_preempted_for_a_gpu_it_cannot_free():
    """One node, 2 GPUs.  A rigid 1-GPU job (to t=1000) on one GPU and two jobs of half a
    GPU sharing the other, the second from its arrival at t=2 (it waited for a whole free GPU:
    the quick count reject ignored shares).  A 1-GPU job of priority 10 arrives at t=100.
    Preempting the latest half-GPU job frees no whole GPU (the other half is still taken),
    so the rigid job is preempted instead: one preemption, and the job starts at 105."""
    r = _run([{"submit": 0, "gpus": 1, "duration": 1000},
              {"submit": 1, "gpus": 1, "gpu_fraction": 0.5, "duration": 1000},
              {"submit": 2, "gpus": 1, "gpu_fraction": 0.5, "duration": 1000},
              {"submit": 100, "gpus": 1, "priority": 10, "duration": 100}], gpus=2)
    ev = _events(r)
    gpu = dict(zip(r.intervals["job_id"], r.intervals["gpu_ids"]))
    assert (2.0, "start", 2, "0:1") in ev and gpu[1] == gpu[2] != gpu[0]
    assert [e for e in ev if e[1] == "preempt"] == [(100.0, "preempt", 0, "")]
    assert [e[0] for e in ev if e[1] == "start" and e[2] == 3] == [105.0]


def test_a_job_waiting_for_vacated_room_starts_as_soon_as_room_frees_otherwise():
    """One node, 8 GPUs.  Job 0 (4 GPUs, to t=120) and job 1 (2 GPUs, submitted later, to
    t=1000).  A 4-GPU job of priority 10 arrives at t=100 with 2 GPUs free: job 1 is
    preempted (checkpoint 50 s).  Job 0 ends at 120 and leaves 6 GPUs free: the waiting job
    starts then (it waited for the checkpoint, to 150, with the GPUs held idle), and job 1
    resumes at 150 when its checkpoint ends, on the 4 GPUs left."""
    r = _run([{"submit": 0, "gpus": 4, "duration": 120}, {"submit": 1, "gpus": 2, "duration": 1000},
              {"submit": 100, "gpus": 4, "priority": 10, "duration": 100}], gpus=8, checkpoint=50, restore=5)
    ev = _events(r)
    assert [e for e in ev if e[1] == "preempt"] == [(100.0, "preempt", 1, "")]
    assert [e[0] for e in ev if e[1] == "start" and e[2] == 2] == [120.0]
    assert [e[0] for e in ev if e[1] == "start" and e[2] == 1] == [1.0, 150.0]


def test_room_held_for_a_waiting_job_is_its_own_size_not_the_whole_node():
    """One node, 8 GPUs, 32 CPUs.  Job 0 (2 GPUs, 24 CPUs, to t=1000).  A 1-GPU job of
    priority 10 asking 12 CPUs arrives at t=100: 6 GPUs but 8 CPUs free, so job 0 is
    preempted (checkpoint 50 s) and the job waits for its CPUs.  A 2-GPU job asking no CPUs
    arrives at t=110 and starts at once on GPUs the waiting job does not need (they were
    all held until t=150)."""
    r = _run([{"submit": 0, "gpus": 2, "cpus": 24, "duration": 1000},
              {"submit": 100, "gpus": 1, "cpus": 12, "priority": 10, "duration": 100},
              {"submit": 110, "gpus": 2, "cpus": 0, "duration": 100}], gpus=8, checkpoint=50, restore=5)
    ev = _events(r)
    assert [e for e in ev if e[1] == "preempt"] == [(100.0, "preempt", 0, "")]
    assert [e[0] for e in ev if e[1] == "start" and e[2] == 1] == [150.0]
    assert [e[0] for e in ev if e[1] == "start" and e[2] == 2] == [110.0]


def test_a_lower_class_job_does_not_shrink_a_higher_class_elastic_job():
    """One node, 4 GPUs.  An elastic job of priority 10 (1..4 GPUs) grows to 4 at the t=60
    round.  A 1-GPU job of priority 0 arrives at t=300: it does not take a GPU from the
    higher class (it did: the elastic job shrank to 3 at once, paying a checkpoint and a
    restore), so it starts when the elastic job ends."""
    r = _run([_elastic(most=4, priority=10, iterations=20000), {"submit": 300, "gpus": 1, "duration": 100}],
             checkpoint=1, restore=1)
    ev = _events(r)
    assert [(e[0], e[3]) for e in ev if e[1] == "resize"] == [(60.0, "0:4")]
    end = r.jobs.set_index("job_id")["end_s"]
    assert [e[0] for e in ev if e[1] == "start" and e[2] == 1] == [end[0]]


def test_a_higher_class_preempts_an_elastic_job_that_cannot_shrink_enough():
    """One node, 4 GPUs.  An elastic job of priority 0 (1..4 GPUs) grows to 4 at the t=60
    round.  A 4-GPU job of priority 10 arrives at t=300: shrinking frees at most 3, so the
    elastic job is preempted (checkpoint 5 s) and the new job starts at 305 (it was never
    a candidate for preemption once counted as shrinking, and the job waited for its end)."""
    r = _run([_elastic(most=4, iterations=20000), {"submit": 300, "gpus": 4, "priority": 10, "duration": 100}],
             checkpoint=5, restore=5)
    ev = _events(r)
    assert [e for e in ev if e[1] == "preempt"] == [(300.0, "preempt", 0, "")]
    assert [e[0] for e in ev if e[1] == "start" and e[2] == 1] == [305.0]
    assert not [e for e in ev if e[1] == "resize" and e[0] == 300.0]
