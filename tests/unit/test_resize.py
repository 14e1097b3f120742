"""The Resize action (elastic jobs): hand-computed timelines, refusals, scenario fields."""
from __future__ import annotations

import pytest

import lepsim
from lepsim.costs import build_cost_model
from lepsim.errors import PolicyError
from lepsim.policies.actions import Resize
from lepsim.policies.base import Policy
from lepsim.policies.builtin import FIFO
from tests.conftest import scenario


@pytest.fixture
def registry(monkeypatch):
    from lepsim.policies import registry as reg

    monkeypatch.setattr(reg, "_REGISTRY", dict(reg.available()))
    return reg


def sc(jobs, policy, *, gpus=4, nodes=1, gpu_type="T4", preemption=None):
    pool = {"count": nodes, "gpu_type": gpu_type, "gpus_per_node": gpus, "cpus": 64, "memory": "512GiB"}
    sched = {"policy": policy}
    if preemption:
        sched["preemption"] = preemption
    return scenario({"cluster": {"pools": [pool]}, "workload": {"jobs": jobs}, "scheduler": sched})


def _resizer(registry, when, gpus, batch=None):
    """FIFO, and at ``when`` one Resize of job 0 to ``gpus``."""
    class Resizer(FIFO):
        name = "t-resizer"
        done = False

        def decide(self, view):
            acts = list(super().decide(view) or [])
            if view.now < when:
                from lepsim.policies.actions import Wakeup
                acts.append(Wakeup(when))
            elif not self.done:
                self.done = True
                acts.append(Resize(0, tuple(gpus), batch))
            return acts

    registry.register(Resizer)


def _elastic(iters, **kw):
    return {"submit": 0, "gpus": 1, "model": "cifar10", "batch_size": 128, "iterations": iters,
            "min_gpus": 1, "max_gpus": 4, **kw}


def test_grow_timeline_checkpoint_restore_new_rate(registry):
    """cifar10 on T4, 1 GPU, per-GPU batch 128, 1000 iterations.  At t=10 it grows to GPUs
    0,1 (same node): checkpoint 5 s, restore 3 s, then each iteration takes the profile's
    2-GPU time and carries twice the samples, so one submitted iteration costs it2 / 2:
    end = 18 + (1000 - 10 / it1) x it2 / 2."""
    cm = build_cost_model()
    it1 = cm.iteration_time("cifar10", "T4", (1,), 128)
    it2 = cm.iteration_time("cifar10", "T4", (2,), 128)
    _resizer(registry, 10.0, (0, 1))
    r = lepsim.simulate(sc([_elastic(1000)], "t-resizer", preemption={"checkpoint": 5, "restore": 3}))
    end = 18 + (1000 - 10 / it1) * it2 / 2
    iv = sorted(zip(r.intervals["phase"], r.intervals["start_s"], r.intervals["end_s"], r.intervals["gpu_ids"]),
                key=lambda x: x[1])
    assert [(p, s, g) for p, s, _e, g in iv] == [("run", 0.0, "0"), ("checkpoint", 10.0, "0 1"),
                                                 ("restore", 15.0, "0 1"), ("run", 18.0, "0 1")]
    assert iv[-1][2] == pytest.approx(end, rel=1e-12)
    j = r.jobs.iloc[0]
    assert j["end_s"] == pytest.approx(end, rel=1e-12)
    assert j["gpus"] == 1 and j["migrations"] == 1 and j["preemptions"] == 0   # gpus: as submitted
    assert list(r.events["event"]) == ["arrive", "start", "resize", "start", "complete"]


def test_shrink_with_a_larger_batch(registry):
    """2 GPUs at batch 64 -> 1 GPU at batch 256 at t=20 (no checkpoint costs): samples per
    iteration 256 / 128 = 2 x the submitted iteration."""
    cm = build_cost_model()
    a = cm.iteration_time("cifar10", "T4", (2,), 64)
    b = cm.iteration_time("cifar10", "T4", (1,), 256)
    _resizer(registry, 20.0, (3,), 256)
    r = lepsim.simulate(sc([_elastic(500, gpus=2, batch_size=64)], "t-resizer"))
    assert r.jobs.iloc[0]["end_s"] == pytest.approx(20 + (500 - 20 / a) * b / 2, rel=1e-12)


@pytest.mark.parametrize("gpus, message", [((0, 1, 2, 3, 4), "expected 1..4"), ((9,), "no GPU"),
                                           ((0, 0), "distinct")])
def test_bad_resizes_are_refused(registry, gpus, message):
    _resizer(registry, 10.0, gpus)
    with pytest.raises(PolicyError, match=message):
        lepsim.simulate(sc([_elastic(1000)], "t-resizer", gpus=8))


def test_resize_of_a_rigid_job_or_onto_a_busy_gpu_is_refused(registry):
    _resizer(registry, 10.0, (0, 1))
    rigid = {"submit": 0, "gpus": 1, "duration": 100}
    with pytest.raises(PolicyError, match="not elastic"):
        lepsim.simulate(sc([rigid], "t-resizer"))
    with pytest.raises(PolicyError, match="GPU 1 is held by job 1"):
        lepsim.simulate(sc([_elastic(1000), _elastic(1000)], "t-resizer"))


def test_resize_of_a_pending_job_is_refused(registry):
    class Bad(Policy):
        name = "t-bad-resize"

        def decide(self, view):
            return [Resize(j.job_id, (0, 1)) for j in view.pending()]

    registry.register(Bad)
    with pytest.raises(PolicyError, match="Resize of job 0 in state pending"):
        lepsim.simulate(sc([_elastic(10)], "t-bad-resize"))


def test_elastic_bounds_are_validated():
    with pytest.raises(ValueError, match="1 <= min_gpus <= gpus <= max_gpus"):
        sc([_elastic(10, gpus=2, min_gpus=3)], "fifo")
    with pytest.raises(ValueError, match="1 <= min_gpus <= gpus <= max_gpus"):
        sc([_elastic(10, gpus=2, max_gpus=1)], "fifo")
    r = lepsim.simulate(sc([{"submit": 0, "gpus": 2, "duration": 5, "max_gpus": 4}], "fifo"))
    assert r.jobs.iloc[0]["end_s"] == 5.0


def test_generator_elastic_bounds_must_cover_every_count():
    gen = {"kind": "poisson", "rate": "1/min", "count": 3, "gpus": {"dist": "choice", "values": [1, 2]}, "duration": 10,
           "min_gpus": 2, "max_gpus": 4}
    s = scenario({"cluster": {"pools": [{"count": 1, "gpu_type": "T4", "gpus_per_node": 4, "cpus": 64, "memory": "512GiB"}]},
                  "workload": {"generators": [gen]}, "scheduler": {"policy": "fifo"}, "simulation": {"seed": 1}})
    with pytest.raises(Exception, match="min_gpus"):
        lepsim.simulate(s)


def test_a_node_failure_during_the_resize_checkpoint(registry):
    """Grow at t=10 onto GPUs 0,1 (node p/0), checkpoint 5 s; node p/0 fails at t=12 before the
    checkpoint is committed: the 10 s run is lost, the job re-queues with its new request (2
    GPUs) and FIFO restarts it at once on node p/1 (GPUs 2,3) from scratch, nothing to
    restore: end = 12 + 1000 x it2 / 2."""
    it2 = build_cost_model().iteration_time("cifar10", "T4", (2,), 128)
    _resizer(registry, 10.0, (0, 1))
    pool = {"name": "p", "count": 2, "gpu_type": "T4", "gpus_per_node": 2, "cpus": 64, "memory": "512GiB"}
    s = scenario({"cluster": {"pools": [pool]}, "workload": {"jobs": [_elastic(1000)]},
                  "scheduler": {"policy": "t-resizer", "preemption": {"checkpoint": 5, "restore": 3}},
                  "failures": {"faults": [{"node": "p/0", "at": 12, "repair": 100}]}})
    r = lepsim.simulate(s)
    j = r.jobs.iloc[0]
    assert j["failures"] == 1 and j["lost_s"] == 10.0 and j["status"] == "completed"
    assert j["end_s"] == pytest.approx(12 + 1000 * it2 / 2, rel=1e-12)
    last = r.intervals.iloc[-1]
    assert (last["phase"], last["start_s"], last["gpu_ids"]) == ("run", 12.0, "2 3")
