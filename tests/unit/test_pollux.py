"""The pollux policy: efficiency from the Pollux gradient statistics, the greedy
allocation by marginal speedup, and runs with elastic jobs (growth, shrink to admit)."""
from __future__ import annotations

import pytest

import lepsim
from lepsim.costs import build_cost_model
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


def test_hysteresis_waits_until_the_job_has_run_long_enough_to_pay_for_the_move():
    """One cifar10 job (1..4 T4 GPUs) alone on 4 GPUs, checkpoint + restore = 80 s, rounds
    of 60 s from t=0: growing 1 -> 4 GPUs pays when g4 x (H - 80) > g1 x H, H = max(round,
    executed time) = the round time t; so at the first round t with t > 80 r / (r - 1),
    r = g4 / g1 (throughput ratio from the profile x Pollux efficiency) - never at t=60."""
    cm = build_cost_model()
    phi = noise_scale("cifar10", 128)
    g = {n: n * 128 / cm.iteration_time("cifar10", "T4", (n,), 128) * efficiency(phi, 128, n * 128) for n in (1, 4)}
    r = g[4] / g[1]
    assert r > 1
    first = next(k * 60.0 for k in range(1, 100) if g[4] * (k * 60.0 - 80) > g[1] * k * 60.0)
    res = _run([_job(0, 20000, gpus=1)], preemption={"checkpoint": 40, "restore": 40})
    resizes = res.events[res.events["event"] == "resize"]
    assert first > 60.0 and list(resizes["time_s"])[:1] == [first]
    run = res.intervals[(res.intervals["phase"] == "run") & (res.intervals["start_s"] > first)]
    assert set(run["gpus"]) == {4}


def test_a_pending_job_is_admitted_by_shrinking_a_grown_one():
    r = _run([_job(0, 20000), _job(200, 2000)], preemption={"checkpoint": 1, "restore": 1})
    ev = r.events
    grown = ev[(ev["event"] == "resize") & (ev["job_id"] == 0)]
    assert len(grown) >= 2                      # grew at a round, shrank at t=200
    assert ev[(ev["event"] == "start") & (ev["job_id"] == 1)]["time_s"].iloc[0] == 200.0
    assert r.jobs["status"].eq("completed").all()


def _events(r):
    return [(t, e, j, d) for t, e, j, d in r.events[["time_s", "event", "job_id", "detail"]].itertuples(index=False)]


def _elastic(submit=0, most=8, **kw):
    return {"submit": submit, "gpus": 1, "min_gpus": 1, "max_gpus": most, "model": "cifar10", "batch_size": 128,
            "iterations": 200000, **kw}


def test_a_higher_priority_job_shrinks_an_elastic_job_which_grows_back_at_the_next_round():
    """8 T4 GPUs on one node.  The elastic job starts on 1 GPU at t=0 and grows at the
    t=60 round to n GPUs (greedy by marginal speedup; n > 4 here).  A 4-GPU job of a higher
    priority arrives at t=300 with 8 - n GPUs free: the elastic job shrinks by 4 - (8 - n)
    to n - (4 - (8 - n)) = 4 GPUs at once (no preemption) and the new job starts at t=300
    on the GPUs given back.  It ends at 900, a round: the elastic job grows back to n."""
    r = _run([_elastic(), {"submit": 300, "gpus": 4, "priority": 10, "duration": 600}], gpus=8,
             preemption={"checkpoint": 1, "restore": 1})
    ev = _events(r)
    grow = [e for e in ev if e[1] == "resize" and e[0] == 60.0]
    assert len(grow) == 1
    n = int(grow[0][3].split(":")[1])
    assert n > 4
    assert (300.0, "resize", 0, "0:4") in ev and (300.0, "start", 1, "0:4") in ev
    assert (900.0, "resize", 0, f"0:{n}") in ev
    assert not [e for e in ev if e[1] == "preempt"]
    assert r.jobs["status"].eq("completed").all()


def test_a_higher_priority_job_preempts_when_shrinking_cannot_make_room_and_waits_for_the_checkpoint():
    """4 GPUs, a rigid 4-GPU job running; a 2-GPU job of priority 5 arrives at t=100:
    nothing elastic to shrink, so the rigid job is preempted (checkpoint 5 s) and the new
    job starts at 105 on its GPUs.  A 1-GPU job arriving at 102, during the checkpoint,
    neither triggers a second preemption nor takes the room held for the waiting job."""
    r = _run([{"submit": 0, "gpus": 4, "duration": 1000}, {"submit": 100, "gpus": 2, "priority": 5, "duration": 100},
              {"submit": 102, "gpus": 1, "duration": 10}], preemption={"checkpoint": 5, "restore": 5})
    ev = _events(r)
    assert [e for e in ev if e[1] == "preempt"] == [(100.0, "preempt", 0, "")]
    assert (105.0, "start", 1, "0:2") in ev and (105.0, "start", 2, "0:1") in ev
    assert (205.0, "start", 0, "0:4") in ev         # resumes when the 2-GPU job ends


def test_equal_priority_does_not_preempt():
    r = _run([{"submit": 0, "gpus": 4, "duration": 1000}, {"submit": 100, "gpus": 2, "duration": 100}],
             preemption={"checkpoint": 5, "restore": 5})
    assert (r.events["event"] != "preempt").all()
    assert r.jobs.set_index("job_id").loc[1, "first_start_s"] == 1000.0


def test_room_is_made_on_one_node_rather_than_spread():
    """Two 4-GPU nodes (racks a, b), an elastic job pinned to each, both grown to 3 GPUs
    at t=60, so each node has 1 GPU free.  A 2-GPU job arriving at t=300 would fit spread
    over the two free GPUs; pollux instead shrinks one elastic job by one GPU and starts
    the new job on one node."""
    pools = [{"name": k, "count": 1, "gpu_type": "T4", "gpus_per_node": 4, "cpus": 64, "memory": "512GiB",
              "labels": {"rack": k}} for k in "ab"]
    jobs = [_elastic(most=3, node_selector={"rack": "a"}), _elastic(most=3, node_selector={"rack": "b"}),
            {"submit": 300, "gpus": 2, "duration": 100}]
    r = lepsim.simulate(scenario({"cluster": {"pools": pools}, "workload": {"jobs": jobs},
                                  "scheduler": {"policy": "pollux", "params": {"round": 60},
                                                "preemption": {"checkpoint": 1, "restore": 1}}}))
    ev = _events(r)
    assert sorted(e[3] for e in ev if e[1] == "resize" and e[0] == 60.0) == ["0:3", "1:3"]
    start = [e for e in ev if e[1] == "start" and e[2] == 2]
    assert start[0][0] == 300.0 and start[0][3] in ("0:2", "1:2")
    shrunk = [e for e in ev if e[1] == "resize" and e[0] == 300.0]
    assert len(shrunk) == 1 and shrunk[0][3].endswith(":2")


def test_inference_replicas_shrink_elastic_training_and_it_grows_back(tmp_path):
    """The adaptive composition of burst.yaml in small: inference-autoscaler over pollux on
    one 8-GPU A100 node.  The training job (1..8 GPUs) grows to 7 at the t=60 round beside
    the one replica.  Requests jump to 4/s at t=200: at the t=210 decision the service
    scales to 4 replicas, the three new ones start at once on GPUs the training job gives
    back (one resize 7 -> 4, no preemption); scaled back to 1 at t=300 (scale-down delay),
    the training job grows back to 7 at the next round, t=360."""
    from lepsim.scenario.spec import Scenario
    from tests.unit.test_services import model_free, svc_scenario, write_trace

    tr = write_trace(tmp_path / "t.csv", [(0, 1, 1)] + [(k / 4, 1, 1) for k in range(800, 1040)])
    train = {"name": "train", "submit": 0, "gpus": 1, "min_gpus": 1, "max_gpus": 8, "model": "resnet18",
             "iterations": 10**6}
    sc = svc_scenario({**model_free(tr, service_time=1.0), "replicas": {"min": 1, "max": 4, "initial": 1}},
                      policy="inference-autoscaler", horizon=500, jobs=[train],
                      params={"base": "pollux", "interval": 10, "window": 10, "target_concurrency": 1,
                              "scale_down_delay": 30})
    data = sc.model_dump()
    data["scheduler"]["preemption"] = {"checkpoint": 1, "restore": 1}
    r = lepsim.simulate(Scenario.model_validate(data))
    ev = _events(r)
    assert [e for e in ev if e[2] == 0 and e[1] == "resize"] == [
        (60.0, "resize", 0, "0:7"), (210.0, "resize", 0, "0:4"), (360.0, "resize", 0, "0:7")]
    assert [e[0] for e in ev if e[1] == "start" and e[2] >= 2] == [210.0] * 3
    assert [e[0] for e in ev if e[1] == "retire"] == [300.0] * 3
    assert not [e for e in ev if e[1] == "preempt"]
