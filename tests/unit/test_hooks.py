"""The hook protocol (HookPolicy, Plan), the Migrate action, and third-party policies
loaded through the real entry-point machinery from a policy package written here."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import lepsim
from lepsim.errors import PolicyError
from lepsim.policies.actions import Migrate, Wakeup
from lepsim.policies.base import HookPolicy, Plan, Policy, hooks_of
from tests.conftest import scenario


@pytest.fixture
def registry(monkeypatch):
    from lepsim.policies import registry as reg

    monkeypatch.setattr(reg, "_REGISTRY", dict(reg.available()))
    return reg


def sc(jobs, policy, *, nodes=1, gpus=4, params=None, preemption=None, labels=None):
    pool = {"count": nodes, "gpu_type": "V100", "gpus_per_node": gpus, "cpus": 64, "memory": "512GiB"}
    if labels:
        pool["labels"] = labels
    sched = {"policy": policy, "params": params or {}}
    if preemption:
        sched["preemption"] = preemption
    return scenario({"cluster": {"pools": [pool]}, "workload": {"jobs": jobs}, "scheduler": sched})


def job(submit, gpus, duration, **kw):
    return {"submit": submit, "gpus": gpus, "duration": duration, **kw}


# ------------------------------------------------------------------------- hook order
def test_decide_runs_the_hooks_in_the_documented_order(registry):
    log: list[str] = []

    class Recorder(HookPolicy):
        name = "t-recorder"

        def admit(self, view, job):
            log.append(f"admit{job.job_id}")
            return job.job_id != 1  # job 1 is never admitted

        def order(self, view, jobs):
            log.append("order:" + ",".join(str(j.job_id) for j in jobs))
            return list(reversed(jobs))

        def preempt(self, view, plan, queue):
            log.append("preempt")

        def allocate(self, view, plan, queue):
            log.append("allocate")
            super().allocate(view, plan, queue)

        def place(self, view, free, job):
            log.append(f"place{job.job_id}")
            return super().place(view, free, job)

        def resize(self, view, plan):
            log.append("resize")

        def scale(self, view, plan):
            log.append("scale")

        def wakeup(self, view, plan):
            log.append("wakeup")
            return None

    registry.register(Recorder)
    assert hooks_of(Recorder) == ("admit", "order", "preempt", "allocate", "place", "resize", "scale", "wakeup")
    r = lepsim.simulate(sc([job(0, 1, 10), job(0, 1, 10), job(0, 1, 10)], "t-recorder"))
    first = log[:log.index("wakeup") + 1]
    assert first == ["admit0", "admit1", "admit2", "order:0,2", "preempt", "allocate", "place2", "place0",
                     "resize", "scale", "wakeup"]
    jobs = r.jobs.set_index("job_id")
    # reversed order: job 2 got GPU 0; job 1 was never admitted and never ran
    assert r.intervals.set_index("job_id").at[2, "gpu_ids"] == "0"
    assert jobs.at[1, "status"] == "unfinished" and jobs.at[0, "end_s"] == 10.0


def test_default_allocate_blocks_or_passes_over_per_skip_blocked(registry):
    class Q(HookPolicy):
        name = "t-q"
        from lepsim.policies.builtin import QueueConfig as Config  # has skip_blocked

    registry.register(Q)
    jobs = [job(0, 3, 100), job(1, 4, 10), job(2, 1, 10)]
    strict = lepsim.simulate(sc(jobs, "t-q")).jobs.set_index("job_id")
    assert strict["first_start_s"].tolist() == [0.0, 100.0, 110.0]  # job 1 blocks job 2
    skip = lepsim.simulate(sc(jobs, "t-q", params={"skip_blocked": True})).jobs.set_index("job_id")
    assert skip["first_start_s"].tolist() == [0.0, 100.0, 2.0]
    # the same as the built-in fifo
    fifo = lepsim.simulate(sc(jobs, "fifo")).jobs.set_index("job_id")
    assert fifo["first_start_s"].tolist() == strict["first_start_s"].tolist()


def test_plan_gives_back_a_preempted_jobs_gpus_only_when_checkpoints_are_free(registry):
    """A job of 4 GPUs runs; a later job of 4 GPUs preempts it in the same plan."""
    seen: list[int] = []

    class Bully(HookPolicy):
        name = "t-bully"

        def preempt(self, view, plan, queue):
            for j in view.running():
                if j.job_id == 0 and any(q.job_id == 1 for q in queue):
                    plan.preempt(j)
            seen.append(plan.free.free_gpus())

    registry.register(Bully)
    r = lepsim.simulate(sc([job(0, 4, 100), job(10, 4, 10)], "t-bully"))
    # checkpoint 0: the 4 GPUs are free on the plan at once, job 1 starts at t=10
    assert seen[:2] == [4, 4]  # t=0: empty cluster; t=10: job 0's GPUs back on the plan
    assert r.jobs.set_index("job_id").at[1, "first_start_s"] == 10.0
    seen.clear()
    r = lepsim.simulate(sc([job(0, 4, 100), job(10, 4, 10)], "t-bully", preemption={"checkpoint": 5}))
    assert seen[:2] == [4, 0]  # t=10: still held during the checkpoint
    # at t=15 the GPUs are free; job 0 (first in submit order) resumes on them, ends at 105
    assert r.jobs.set_index("job_id")["first_start_s"].tolist() == [0.0, 105.0]
    assert r.jobs.set_index("job_id")["end_s"].tolist() == [105.0, 115.0]


def test_plan_collects_wakeups_into_one_at_the_earliest():
    class V:
        now = 5.0

        def preemption_costs(self):
            return 0.0, 0.0

    p = Plan(V())
    p.add(Wakeup(30.0))
    p.wakeup(20.0)
    p.wakeup(40.0)
    assert p.result() == [Wakeup(20.0)]


def test_a_plain_policy_still_decides_by_itself():
    assert not issubclass(type(lepsim.policies.registry.get("las")()), HookPolicy)
    assert hooks_of(lepsim.policies.registry.get("las")) == ()
    assert issubclass(HookPolicy, Policy)


# ------------------------------------------------------------------------- Migrate
def _migrator(registry, when, target):
    class Mover(HookPolicy):
        name = "t-mover"
        done = False

        def preempt(self, view, plan, queue):
            for j in view.running():
                if view.now >= when and not self.done:
                    self.done = True
                    plan.migrate(j, target)

        def wakeup(self, view, plan):
            return when if view.now < when else None

    registry.register(Mover)


def test_migrate_timeline_checkpoint_reserve_restore(registry):
    """1 GPU job of 100 s on GPU 0; at t=10 moved to GPU 2 with checkpoint 5 s, restore 3 s:
    run 0-10 on GPU 0, checkpoint 10-15 on GPU 0 while GPU 2 is reserved, restore 15-18
    on GPU 2, run 18-108 on GPU 2."""
    _migrator(registry, 10.0, (2,))
    r = lepsim.simulate(sc([job(0, 1, 100)], "t-mover", preemption={"checkpoint": 5, "restore": 3}))
    iv = [(p, s, e, g) for p, s, e, g in zip(r.intervals["phase"], r.intervals["start_s"], r.intervals["end_s"],
                                               r.intervals["gpu_ids"])]
    assert sorted(iv, key=lambda x: (x[1], x[0])) == [
        ("run", 0.0, 10.0, "0"), ("checkpoint", 10.0, 15.0, "0"), ("reserve", 10.0, 15.0, "2"),
        ("restore", 15.0, 18.0, "2"), ("run", 18.0, 108.0, "2")]
    j = r.jobs.iloc[0]
    assert j["end_s"] == 108.0 and j["migrations"] == 1 and j["preemptions"] == 0
    assert j["allocated_gpu_s"] == 10 + 5 + 5 + 3 + 90
    assert r.summary["migrations_total"] == 1 and r.summary["preemptions_total"] == 0
    assert list(r.events["event"]) == ["arrive", "start", "migrate", "start", "complete"]


def test_migrate_without_costs_is_immediate(registry):
    _migrator(registry, 10.0, (3,))
    r = lepsim.simulate(sc([job(0, 1, 100)], "t-mover"))
    assert list(zip(r.intervals["phase"], r.intervals["start_s"], r.intervals["end_s"], r.intervals["gpu_ids"])) == [
        ("run", 0.0, 10.0, "0"), ("run", 10.0, 100.0, "3")]


@pytest.mark.parametrize("target, message", [((0,), "GPUs it holds"), ((1, 2), "asks 1 GPUs"), ((9,), "no GPU")])
def test_bad_migrations_are_refused(registry, target, message):
    _migrator(registry, 10.0, target)
    with pytest.raises(PolicyError, match=message):
        lepsim.simulate(sc([job(0, 1, 100)], "t-mover"))


def test_migrating_a_pending_job_is_refused(registry):
    class Bad(Policy):
        name = "t-bad-migrate"

        def decide(self, view):
            return [Migrate(j.job_id, (1,)) for j in view.pending()]

    registry.register(Bad)
    with pytest.raises(PolicyError, match="Migrate of job 0 in state pending"):
        lepsim.simulate(sc([job(0, 1, 100)], "t-bad-migrate"))


def test_migrate_onto_a_busy_gpu_is_refused(registry):
    # jobs 0 and 1 hold GPUs 0 and 1; job 0 moved onto GPU 1
    _migrator(registry, 10.0, (1,))
    with pytest.raises(PolicyError, match="GPU 1 is held by job 1"):
        lepsim.simulate(sc([job(0, 1, 100), job(0, 1, 100)], "t-mover"))


# ------------------------------------------------------------------------- entry points
POLICY_PACKAGE = '''
"""A third-party policy package, as a user would ship it."""
from lepsim.policies.base import HookPolicy, PolicyConfig


class LargestFirstConfig(PolicyConfig):
    limit: int = 0


class LargestFirst(HookPolicy):
    """Largest GPU count first (a test package's policy).

    ```yaml
    scheduler: {policy: largest-first}
    ```
    """

    family = "static"
    reference = "a policy package defined in the tests"
    Config = LargestFirstConfig

    def order(self, view, jobs):
        return sorted(jobs, key=lambda j: (-j.gpus, j.job_id))
'''


@pytest.fixture
def policy_package(tmp_path):
    """An installed-looking distribution: a module and its dist-info with entry_points.txt."""
    (tmp_path / "lepsim_test_policies.py").write_text(POLICY_PACKAGE)
    info = tmp_path / "lepsim_test_policies-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lepsim-test-policies\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[lepsim.policies]\nlargest-first = lepsim_test_policies:LargestFirst\n")
    return tmp_path


def test_a_policy_package_is_found_through_its_entry_point(policy_package, monkeypatch):
    from lepsim.policies import registry

    monkeypatch.syspath_prepend(str(policy_package))
    monkeypatch.setattr(registry, "_REGISTRY", {})
    monkeypatch.setattr(registry, "_BROKEN", {})
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    monkeypatch.delitem(sys.modules, "lepsim_test_policies", raising=False)
    cls = registry.get("largest-first")  # loaded by importlib.metadata from the dist-info
    assert cls.__module__ == "lepsim_test_policies" and cls.name == "largest-first"
    assert registry.available()["largest-first"] is cls and registry.broken() == {}
    r = lepsim.simulate(sc([job(0, 4, 100), job(1, 1, 10), job(2, 2, 10)], "largest-first"))
    # at t=100 the 2-GPU job goes before the 1-GPU job (both fit)
    assert r.jobs.set_index("job_id")["first_start_s"].tolist() == [0.0, 100.0, 100.0]
    assert r.intervals.set_index("job_id").loc[[1, 2], "gpu_ids"].tolist() == ["2", "0 1"]


def test_lepsim_policies_lists_the_package_in_its_family(policy_package):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(policy_package), os.environ.get("PYTHONPATH", "")]),
               COLUMNS="200")
    out = subprocess.run([sys.executable, "-m", "lepsim", "policies"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    static = out.stdout[out.stdout.index("static:"):out.stdout.index("dynamic:")]
    assert "largest-first" in static and "limit=0" in static
    one = subprocess.run([sys.executable, "-m", "lepsim", "policies", "largest-first"], capture_output=True,
                         text=True, env=env)
    assert one.returncode == 0 and "a policy package defined in the tests" in one.stdout
    assert "hooks: order" in one.stdout


# ------------------------------------------------------------------------- registry
def test_every_registered_policy_documents_itself():
    """Family, reference, and a docstring whose YAML example names the policy with
    parameters its Config accepts (what `lepsim policies NAME` shows)."""
    import inspect
    import re

    import yaml

    from lepsim.policies import registry

    for name, cls in registry.available().items():
        assert cls.family in ("static", "dynamic", "adaptive"), name
        assert cls.reference, name
        blocks = re.findall(r"```yaml\n(.*?)```", inspect.cleandoc(cls.__doc__ or ""), re.S)
        assert blocks, f"{name}: no YAML example in its docstring"
        for block in blocks:
            sched = yaml.safe_load(block)["scheduler"]
            assert sched["policy"] == name
            cls.Config.model_validate(sched.get("params") or {})
