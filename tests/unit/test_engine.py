"""Engine behaviours: refused policy actions, horizon, rounds, measurement window, determinism."""
from __future__ import annotations

import math

import pandas as pd
import pytest

import lepsim
from lepsim.errors import PolicyError
from lepsim.policies.actions import Preempt, Start, Wakeup
from lepsim.policies.base import Policy
from tests.conftest import scenario


@pytest.fixture
def registry(monkeypatch):
    """Register policies for one test only (the registry is process-wide)."""
    from lepsim.policies import registry as reg

    monkeypatch.setattr(reg, "_REGISTRY", dict(reg.available()))
    return reg


def make_policy(registry, name, decide):
    """Register a tiny policy whose decision is ``decide(view, calls)``; returns the call log."""
    calls: list[float] = []

    class Custom(Policy):
        family = "static"

        def decide(self, view):
            calls.append(view.now)
            return decide(view, calls)

    Custom.name = name
    registry.register(Custom)
    return calls


def greedy(view, _calls=None):
    """Start pending jobs in submit order on free GPUs (first fit), skipping misfits."""
    fm = view.free_map()
    out = []
    for job in view.pending():
        placed = fm.first_fit(job)
        if placed is not None:
            out.append(Start(job.job_id, placed) if job.gpus else Start(job.job_id, (), node=placed[1]))
    return out


def cluster(gpus=4, nodes=1, gpu_type="V100", cpus=64, memory="512GiB"):
    return {"pools": [{"count": nodes, "gpu_type": gpu_type, "gpus_per_node": gpus, "cpus": cpus, "memory": memory}]}


def two_types():
    return {"pools": [
        {"count": 1, "gpu_type": "V100", "gpus_per_node": 2, "cpus": 64, "memory": "512GiB"},
        {"count": 1, "gpu_type": "K80", "gpus_per_node": 2, "cpus": 64, "memory": "512GiB"},
    ]}


def sc(jobs, policy, *, cluster_=None, params=None, simulation=None, round_=None, preemption=None):
    sched = {"policy": policy, "params": params or {}}
    if round_ is not None:
        sched["round"] = round_
    if preemption is not None:
        sched["preemption"] = preemption
    data = {"cluster": cluster_ or cluster(), "workload": {"jobs": jobs}, "scheduler": sched}
    if simulation:
        data["simulation"] = simulation
    return scenario(data)


def job(submit, gpus, duration, **kw):
    return {"submit": submit, "gpus": gpus, "duration": duration, **kw}


# ------------------------------------------------------------------------- refused actions
def test_start_on_a_busy_gpu_is_refused(registry):
    # every pending job is started on GPU 0: the second one in the same decision collides
    make_policy(registry, "t-busy", lambda view, c: [Start(j.job_id, (0,)) for j in view.pending()])
    with pytest.raises(PolicyError, match="GPU 0 is held by job 0"):
        lepsim.simulate(sc([job(0, 1, 5), job(0, 1, 5)], "t-busy"))


def test_start_on_a_gpu_held_since_an_earlier_decision_is_refused(registry):
    make_policy(registry, "t-busy2", lambda view, c: [Start(j.job_id, (1,)) for j in view.pending()])
    with pytest.raises(PolicyError, match="GPU 1 is held by job 0"):
        lepsim.simulate(sc([job(0, 1, 5), job(2, 1, 5)], "t-busy2"))


def test_wrong_gang_size_is_refused(registry):
    make_policy(registry, "t-gang", lambda view, c: [Start(j.job_id, (0,)) for j in view.pending()])
    with pytest.raises(PolicyError, match="asks 2 GPUs"):
        lepsim.simulate(sc([job(0, 2, 5)], "t-gang"))


def test_the_same_gpu_twice_in_a_gang_is_refused(registry):
    make_policy(registry, "t-dup", lambda view, c: [Start(j.job_id, (0, 0)) for j in view.pending()])
    with pytest.raises(PolicyError, match="asks 2 GPUs"):
        lepsim.simulate(sc([job(0, 2, 5)], "t-dup"))


def test_mixed_gpu_types_are_refused(registry):
    # GPU 0 is a V100 (node 0), GPU 2 a K80 (node 1)
    make_policy(registry, "t-mixed", lambda view, c: [Start(j.job_id, (0, 2)) for j in view.pending()])
    with pytest.raises(PolicyError, match="mixed types"):
        lepsim.simulate(sc([job(0, 2, 5)], "t-mixed", cluster_=two_types()))


def test_required_gpu_type_is_enforced(registry):
    make_policy(registry, "t-type", lambda view, c: [Start(j.job_id, (0,)) for j in view.pending()])
    with pytest.raises(PolicyError, match="requires K80"):
        lepsim.simulate(sc([job(0, 1, 5, gpu_type="K80")], "t-type", cluster_=two_types()))


def test_cpu_share_is_enforced(registry):
    # 8 CPUs on the node; two 1-GPU jobs asking 6 CPUs each cannot both be placed
    make_policy(registry, "t-cpu", lambda view, c: [Start(j.job_id, (j.job_id,)) for j in view.pending()])
    with pytest.raises(PolicyError, match="lacks CPU or memory"):
        lepsim.simulate(sc([job(0, 1, 5, cpus=6), job(0, 1, 5, cpus=6)], "t-cpu", cluster_=cluster(cpus=8)))


def test_preempt_of_a_pending_job_is_refused(registry):
    make_policy(registry, "t-preempt", lambda view, c: [Preempt(j.job_id) for j in view.pending()])
    with pytest.raises(PolicyError, match="Preempt of job 0 in state pending"):
        lepsim.simulate(sc([job(0, 1, 5)], "t-preempt"))


def test_start_of_a_running_job_is_refused(registry):
    def decide(view, calls):
        out = greedy(view)
        # at the second decision (t=1) start job 0 again although it runs
        return out + ([Start(0, (3,))] if len(calls) == 2 else [])

    make_policy(registry, "t-restart", decide)
    with pytest.raises(PolicyError, match="state running, expected pending"):
        lepsim.simulate(sc([job(0, 1, 5), job(1, 1, 5)], "t-restart"))


def test_wakeup_in_the_past_is_refused(registry):
    make_policy(registry, "t-past", lambda view, c: [Wakeup(view.now - 1.0)])
    with pytest.raises(PolicyError, match="in the past"):
        lepsim.simulate(sc([job(3, 1, 5)], "t-past"))


def test_wakeup_at_infinity_is_refused(registry):
    make_policy(registry, "t-inf", lambda view, c: [Wakeup(math.inf)])
    with pytest.raises(PolicyError, match="Wakeup"):
        lepsim.simulate(sc([job(0, 1, 5)], "t-inf"))


def test_unknown_action_and_unknown_job_are_refused(registry):
    make_policy(registry, "t-junk", lambda view, c: ["start everything"])
    with pytest.raises(PolicyError, match="unknown action"):
        lepsim.simulate(sc([job(0, 1, 5)], "t-junk"))
    make_policy(registry, "t-ghost", lambda view, c: [Start(99, (0,))])
    with pytest.raises(PolicyError, match="unknown job id 99"):
        lepsim.simulate(sc([job(0, 1, 5)], "t-ghost"))


def test_cpu_only_job_must_name_a_node(registry):
    make_policy(registry, "t-cpuonly", lambda view, c: [Start(j.job_id, ()) for j in view.pending()])
    with pytest.raises(PolicyError, match="must name a node"):
        lepsim.simulate(sc([job(0, 0, 5, cpus=2)], "t-cpuonly"))


def test_valid_wakeup_and_custom_policy_run(registry):
    # A policy that starts nothing until its own wake-up at t=7: the job waits exactly 7 s.
    def decide(view, calls):
        if view.now < 7:
            return [Wakeup(7.0)]
        return greedy(view)

    calls = make_policy(registry, "t-late", decide)
    res = lepsim.simulate(sc([job(0, 1, 5)], "t-late"))
    j = res.jobs.iloc[0]
    assert (j["first_start_s"], j["end_s"], j["wait_time_s"]) == (7.0, 12.0, 7.0)
    assert calls == [0.0, 7.0]


# ------------------------------------------------------------------------------ horizon
def test_horizon_reports_unfinished_jobs_with_partial_progress():
    # 4 GPUs, horizon 4 s:
    #   a: 1 GPU, 10 s from t0 -> runs [0,4]: unfinished, progress 0.4
    #   b: 4 GPUs from t1 -> never fits (a holds one GPU): unfinished, queued 3 s, no start
    #   c: 1 GPU, 4 s from t0 -> ends exactly at the horizon: completed
    #   d: submitted at 6 > horizon: not_submitted
    jobs = [job(0, 1, 10, name="a"), job(0, 1, 4, name="c"), job(1, 4, 2, name="b"), job(6, 1, 1, name="d")]
    res = lepsim.simulate(sc(jobs, "fifo", simulation={"horizon": 4}))
    df = res.jobs.set_index("name")
    assert res.end_time == 4
    assert df["status"].to_dict() == {"a": "unfinished", "c": "completed", "b": "unfinished", "d": "not_submitted"}
    assert df.loc["a", "progress"] == pytest.approx(0.4)
    assert df.loc["a", "executed_s"] == pytest.approx(4)
    assert math.isnan(df.loc["a", "end_s"]) and math.isnan(df.loc["a", "jct_s"])
    assert df.loc["c", "end_s"] == 4
    assert math.isnan(df.loc["b", "first_start_s"]) and df.loc["b", "wait_time_s"] == pytest.approx(3)
    assert df.loc["b", "progress"] == 0
    assert math.isnan(df.loc["d", "wait_time_s"])
    # a's interval is closed at the horizon
    iv = res.intervals
    a_iv = iv[iv["job_id"] == int(df.loc["a", "job_id"])]
    assert a_iv[["phase", "start_s", "end_s", "gpus"]].values.tolist() == [["run", 0.0, 4.0, 1]]
    s = res.summary
    assert (s["jobs_completed"], s["jobs_unfinished"], s["jobs_not_submitted"]) == (1, 2, 1)
    # utilization over [0, 4]: 2 GPUs of 4 busy throughout
    assert s["utilization"] == pytest.approx(0.5)


def test_horizon_closes_checkpoint_and_restore_phases():
    # LAS, one GPU, threshold 2 GPU-s, checkpoint 3 s:
    # t0: x (10 s) starts; t2: x -> q1.  t2.5: y arrives (q0) -> x preempted at 2.5 and
    # checkpoints on GPU 0 until 5.5; horizon 4 cuts the checkpoint at 4.
    jobs = [job(0, 1, 10, name="x"), job(2.5, 1, 1, name="y")]
    res = lepsim.simulate(sc(jobs, "las", params={"thresholds": [2]}, cluster_=cluster(gpus=1),
                             preemption={"checkpoint": 3}, simulation={"horizon": 4}))
    iv = res.intervals
    assert iv[["job_id", "phase", "start_s", "end_s"]].values.tolist() == [[0, "run", 0.0, 2.5], [0, "checkpoint", 2.5, 4.0]]
    df = res.jobs.set_index("name")
    assert df.loc["x", "allocated_gpu_s"] == pytest.approx(4.0)
    assert df.loc["x", "progress"] == pytest.approx(0.25) and df.loc["x", "preemptions"] == 1
    # y never got the GPU: queued from 2.5 to the horizon
    assert df.loc["y", "wait_time_s"] == pytest.approx(1.5) and df.loc["y", "status"] == "unfinished"


# ------------------------------------------------------------------------------- rounds
def test_round_invokes_the_policy_every_round(registry):
    # One 10 s job; round 3: decisions at 0 (arrival), 3, 6, 9; the completion at 10 ends the run.
    calls = make_policy(registry, "t-count", greedy)
    res = lepsim.simulate(sc([job(0, 1, 10)], "t-count", round_=3))
    assert calls == [0.0, 3.0, 6.0, 9.0]
    assert res.stats["policy_invocations"] == 4
    # without a round: only the arrival
    calls.clear()
    lepsim.simulate(sc([job(0, 1, 10)], "t-count"))
    assert calls == [0.0]


def test_round_coincident_with_arrival_and_completion_is_one_decision(registry):
    # round 2: ticks at 2, 4, 6, ...; an arrival at 4 and a completion at 4 (job 0, 4 s)
    # coalesce with the tick: one decision at 4.  Job 1 (2 s) ends at 6, ending the run.
    calls = make_policy(registry, "t-count2", greedy)
    lepsim.simulate(sc([job(0, 1, 4), job(4, 1, 2)], "t-count2", round_=2, cluster_=cluster(gpus=1)))
    assert calls == [0.0, 2.0, 4.0]


# ------------------------------------------------------------------- measurement window
def test_warmup_and_cooldown_exclude_jobs_from_measured():
    # 8 GPUs, no waiting: a job's JCT is its duration.  Window [5, 100 - 82] = [5, 18]
    # (bounds included): measured = submitted at 5, 10, 15.
    subs, durs = [0, 5, 10, 15, 20, 30], [7, 1, 2, 3, 50, 60]
    jobs = [job(s, 1, d) for s, d in zip(subs, durs)]
    res = lepsim.simulate(sc(jobs, "fifo", cluster_=cluster(gpus=8),
                             simulation={"warmup": 5, "cooldown": 82, "horizon": 100}))
    assert res.jobs["measured"].tolist() == [False, True, True, True, False, False]
    s = res.summary
    assert (s["window_start_s"], s["window_end_s"]) == (5, 18)
    assert s["jobs_measured"] == 3 and s["jobs_measured_completed"] == 3
    assert s["jct_mean_s"] == pytest.approx((1 + 2 + 3) / 3)
    # utilization over [5, 18] of 8 GPUs: job0 [5,7]=2, job1 [5,6]=1, job2 [10,12]=2,
    # job3 [15,18]=3 (of [15,18]) -> 8 GPU-s
    assert s["utilization"] == pytest.approx(8 / (8 * 13))


def test_warmup_without_horizon_measures_to_the_end():
    jobs = [job(s, 1, d) for s, d in zip([0, 1, 2], [4, 5, 6])]
    res = lepsim.simulate(sc(jobs, "fifo", simulation={"warmup": 1}))
    assert res.jobs["measured"].tolist() == [False, True, True]
    assert res.summary["window_end_s"] == res.end_time == 8
    assert res.summary["jct_mean_s"] == pytest.approx(5.5)


# -------------------------------------------------------------------------- determinism
def generated(seed=None):
    data = {
        "cluster": {"pools": [{"count": 2, "gpu_type": "V100", "gpus_per_node": 4, "cpus": 64, "memory": "512GiB"}]},
        "workload": {"generators": [{
            "kind": "poisson", "rate": "30/h", "count": 80,
            "gpus": {"dist": "choice", "values": [1, 2, 4, 8], "weights": [0.5, 0.25, 0.15, 0.1]},
            "duration": {"dist": "exponential", "mean": "20min"},
            "tenant": {"dist": "choice", "values": ["t1", "t2", "t3"]},
        }]},
        "scheduler": {"policy": "las", "params": {"thresholds": ["10min", "1h"]},
                      "preemption": {"checkpoint": "10s", "restore": "20s"}},
        "simulation": {"seed": 11},
    }
    s = scenario(data)
    return s if seed is None else s.with_overrides(seed=seed)


def test_same_seed_same_results_different_seed_different():
    a, b = lepsim.simulate(generated()), lepsim.simulate(generated())
    pd.testing.assert_frame_equal(a.jobs, b.jobs)
    pd.testing.assert_frame_equal(a.intervals, b.intervals)
    pd.testing.assert_frame_equal(a.timeline, b.timeline)
    assert a.summary == b.summary
    assert a.summary["preemptions_total"] > 0  # the run exercises preemption
    c = lepsim.simulate(generated(), seed=12)
    assert c.seed == 12 and a.seed == 11
    with pytest.raises(AssertionError):
        pd.testing.assert_frame_equal(a.jobs, c.jobs)
    assert not (a.jobs["submit_time_s"].to_numpy() == c.jobs["submit_time_s"].to_numpy()).any()


def test_every_policy_sees_the_identical_workload():
    cols = ["job_id", "name", "tenant", "submit_time_s", "gpus", "cpus", "memory_bytes", "isolated_runtime_s"]
    runs = {p: lepsim.simulate(generated(), policy=p, params={}) for p in ("fifo", "sjf", "las")}
    base = runs["fifo"].jobs[cols]
    for p in ("sjf", "las"):
        pd.testing.assert_frame_equal(runs[p].jobs[cols], base)
    # ... while the schedules differ
    assert not runs["fifo"].jobs["first_start_s"].equals(runs["sjf"].jobs["first_start_s"])
    assert runs["las"].summary["preemptions_total"] > 0
    assert runs["fifo"].summary["preemptions_total"] == 0
    # the draws are those of the seed, not of the policy run before
    again = lepsim.simulate(generated(), policy="sjf", params={})
    pd.testing.assert_frame_equal(again.jobs, runs["sjf"].jobs)


# ------------------------------------------------------------------------ LAS livelock
def test_las_promotion_does_not_livelock(registry):
    """Regression: LAS's promotion test (now - last_stop >= patience) and its wake-up time
    (last_stop + patience) once disagreed under rounding, and it woke itself forever."""
    from lepsim.policies.builtin import LAS

    class GuardedLAS(LAS):
        """LAS that gives up after 1000 decisions at one instant (the engine has no such guard)."""

        name = "t-las-guarded"

        def __init__(self, config=None):
            super().__init__(config)
            self._at, self._same = None, 0

        def decide(self, view):
            if view.now == self._at:
                self._same += 1
                if self._same > 1000:
                    raise RuntimeError(f"LAS invoked 1000 times at t={view.now!r}: livelock")
            else:
                self._at, self._same = view.now, 0
            return super().decide(view)

    registry.register(GuardedLAS)
    # 4 nodes x 2 GPUs, 4 CPUs each.  Job 1 (7 GPUs) is preempted at 3.8214285714285716 after
    # running 0.9285714285714284 s: with promote_knob 4 it is due back in queue 0 at
    # 7.535714285714285, where 7.535714285714285 - 3.8214285714285716 < 4 x 0.9285714285714284.
    jobs = [job(0, 4, 1, cpus=16), job(0, 7, 3), job(1, 2, 20)]
    res = lepsim.simulate(sc(jobs, "t-las-guarded", params={"thresholds": [3], "promote_knob": 4},
                             cluster_=cluster(gpus=2, nodes=4, cpus=4, memory="16GiB"),
                             preemption={"restore": 0.5}))
    assert (res.jobs["status"] == "completed").all()


def test_spread_placement_on_a_node_with_exactly_enough_memory():
    # 2 nodes x 2 GPUs, 16 CPUs, 64 GiB.  t0: job 0 (3 GPUs, 8 GiB: 8/3 GiB per GPU) spreads
    # 2 + 1; job 1 (CPU-only, 32 GiB) goes to node 0; job 2 (2 GPUs, 32 GiB) waits.
    # t1: job 0 ends: node 0 has 2 GPUs and (up to rounding) exactly 32 GiB free; with
    # consolidate none job 2 takes node 0's two GPUs.  Expected: job 2 runs [1, 2].
    jobs = [job(0, 3, 1, cpus=4, memory="8GiB"), job(0, 0, 9, cpus=1, memory="32GiB"),
            job(0, 2, 1, cpus=8, memory="32GiB")]
    res = lepsim.simulate(sc(jobs, "fifo", params={"consolidate": "none"},
                             cluster_=cluster(gpus=2, nodes=2, cpus=16, memory="64GiB")))
    df = res.jobs
    assert (df["first_start_s"].tolist(), df["end_s"].tolist()) == ([0.0, 0.0, 1.0], [1.0, 9.0, 2.0])
