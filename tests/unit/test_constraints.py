"""Placement constraints (node labels, tenant isolation), fractional GPUs, the
fragmentation measure, and the placement strategies, with hand-computed timelines."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

import lepsim
from lepsim.errors import PolicyError, ScenarioError
from lepsim.policies.actions import Start
from lepsim.policies.base import Policy
from lepsim.policies.placement import FreeMap, node_fragmentation
from lepsim.testing import InvariantError, check_invariants
from tests.conftest import scenario


@pytest.fixture
def registry(monkeypatch):
    from lepsim.policies import registry as reg

    monkeypatch.setattr(reg, "_REGISTRY", dict(reg.available()))
    return reg


def pool(count=1, gpus=4, labels=None, name=None):
    p = {"count": count, "gpu_type": "V100", "gpus_per_node": gpus, "cpus": 64, "memory": "512GiB"}
    if labels:
        p["labels"] = labels
    if name:
        p["name"] = name
    return p


def sc(jobs, *, pools, policy="fifo", params=None, tenants=None):
    wl = {"jobs": jobs}
    if tenants:
        wl["tenants"] = tenants
    return scenario({"cluster": {"pools": pools}, "workload": wl,
                     "scheduler": {"policy": policy, "params": params or {}}})


def job(submit, gpus, duration, **kw):
    return {"submit": submit, "gpus": gpus, "duration": duration, **kw}


def starts(r):
    return r.jobs.set_index("job_id")["first_start_s"].tolist()


def gpu_ids(r):
    return {j: g for j, g in zip(r.intervals["job_id"], r.intervals["gpu_ids"].astype(str))}


def forced(registry, name, where):
    """A policy that starts every pending job on the GPUs ``where[job_id]``."""
    class Forced(Policy):
        def decide(self, view):
            return [Start(j.job_id, where[j.job_id]) for j in view.pending()]

    Forced.name = name
    registry.register(Forced)


# ------------------------------------------------------------------------- node labels
def test_node_selector_timeline():
    """Nodes 0 (GPUs 0-3, no labels) and 1 (GPUs 4-7, zone=x).  Jobs needing zone=x queue
    for node 1 while node 0 stays idle: job 0 (4 GPUs, 0-100) on node 1; job 1 (2 GPUs,
    zone=x) waits until 100; job 2 (2 GPUs, any node) starts at once on node 0."""
    r = lepsim.simulate(sc([job(0, 4, 100, node_selector={"zone": "x"}), job(1, 2, 50, node_selector={"zone": "x"}),
                            job(2, 2, 10)], pools=[pool(), pool(labels={"zone": "x"})],
                           params={"skip_blocked": True}))
    assert starts(r) == [0.0, 100.0, 2.0]
    assert gpu_ids(r) == {0: "4 5 6 7", 1: "4 5", 2: "0 1"}


def test_engine_refuses_a_node_without_the_label(registry):
    forced(registry, "t-label", {0: (0,)})
    with pytest.raises(PolicyError, match="requires node label zone=x"):
        lepsim.simulate(sc([job(0, 1, 10, node_selector={"zone": "x"})], pools=[pool(), pool(labels={"zone": "x"})],
                           policy="t-label"))


def test_a_selector_no_node_satisfies_is_a_scenario_error():
    with pytest.raises(ScenarioError, match=r"workload.jobs\[0\].node_selector: job requires node labels zone=y"):
        lepsim.simulate(sc([job(0, 1, 10, node_selector={"zone": "y"})], pools=[pool(labels={"zone": "x"})]))


# ------------------------------------------------------------------------- tenant isolation
ISO_JOBS = [  # two nodes of 4 GPUs; tenant "bank" is isolated
    job(0, 1, 100, tenant="lab"),    # 0: node 0
    job(1, 1, 100, tenant="bank"),   # 1: node 0 has lab -> node 1
    job(2, 2, 100, tenant="lab"),    # 2: node 0 (node 1 has bank)
    job(3, 2, 10, tenant="bank"),    # 3: node 1 (3 free)
    job(4, 2, 10, tenant="lab"),     # 4: node 0 has 1 free, node 1 is bank's: waits for node 0 (t=100)
]


def test_tenant_isolation_timeline():
    r = lepsim.simulate(sc(ISO_JOBS, pools=[pool(count=2)], tenants={"bank": {"isolated": True}},
                           params={"skip_blocked": True}))
    assert starts(r) == [0.0, 1.0, 2.0, 3.0, 100.0]
    assert gpu_ids(r) == {0: "0", 1: "4", 2: "1 2", 3: "5 6", 4: "0 3"}  # at 100 job 0 freed GPU 0
    # without isolation job 4 spreads over the free GPUs of nodes 0 and 1 at t=4
    free = lepsim.simulate(sc(ISO_JOBS, pools=[pool(count=2)], params={"skip_blocked": True}))
    assert starts(free) == [0.0, 1.0, 1.0 + 1, 3.0, 4.0]
    assert gpu_ids(free)[1] == "1"  # bank joined lab on node 0


def test_engine_refuses_to_break_isolation(registry):
    forced(registry, "t-iso", {0: (0,), 1: (1,)})
    with pytest.raises(PolicyError, match="tenant isolation"):
        lepsim.simulate(sc([job(0, 1, 10, tenant="lab"), job(0, 1, 10, tenant="bank")], pools=[pool()],
                           tenants={"bank": {"isolated": True}}, policy="t-iso"))
    # a CPU-only job of another tenant may not join an isolated tenant's node either
    class CPU(Policy):
        name = "t-iso-cpu"

        def decide(self, view):
            return [Start(j.job_id, (0,)) if j.gpus else Start(j.job_id, (), node=0) for j in view.pending()]

    registry.register(CPU)
    with pytest.raises(PolicyError, match="tenant isolation"):
        lepsim.simulate(sc([job(0, 1, 10, tenant="bank"), job(0, 0, 10, tenant="lab", cpus=1)], pools=[pool()],
                           tenants={"bank": {"isolated": True}}, policy="t-iso-cpu"))


def test_invariant_catches_shared_node():
    r = lepsim.simulate(sc(ISO_JOBS, pools=[pool(count=2)], tenants={"bank": {"isolated": True}},
                           params={"skip_blocked": True}))
    check_invariants(r)
    iv = r.intervals.copy()
    iv.loc[iv["job_id"] == 1, "nodes"] = "0:1"  # pretend bank's job ran on lab's node
    r.intervals = iv
    with pytest.raises(InvariantError, match="one of them isolated"):
        check_invariants(r)


# ------------------------------------------------------------------------- fractional GPUs
FRACTION_JOBS = [
    job(0, 1, 100, gpu_fraction=0.5),   # 0: GPU 0 (0.5)
    job(0, 1, 50, gpu_fraction=0.5),    # 1: GPU 0 (full)
    job(0, 1, 10, gpu_fraction=0.25),   # 2: GPU 1 (0.25)
    job(0, 1, 20),                      # 3: a whole GPU: none free until job 2 ends at 10
    job(5, 2, 10),                      # 4: both GPUs: at 100
]


def test_fractional_timeline_and_accounting():
    r = lepsim.simulate(sc(FRACTION_JOBS, pools=[pool(gpus=2)]))
    jobs = r.jobs.set_index("job_id")
    assert starts(r) == [0.0, 0.0, 0.0, 10.0, 100.0]
    assert jobs["end_s"].tolist() == [100.0, 50.0, 10.0, 30.0, 110.0]
    assert gpu_ids(r) == {0: "0", 1: "0", 2: "1", 3: "1", 4: "0 1"}
    assert jobs["allocated_gpu_s"].tolist() == [50.0, 25.0, 2.5, 20.0, 20.0]
    tl = r.timeline.set_index("time_s")
    assert tl["allocated_gpus"].to_dict() == {0.0: 1.25, 5.0: 1.25, 10.0: 2.0, 30.0: 1.0, 50.0: 0.5, 100.0: 2.0,
                                              110.0: 0.0}
    assert r.summary["utilization"] == pytest.approx(117.5 / 220)


def test_fragmentation_timeline_hand_computed():
    """Mix: (1 GPU, 0.25) 1/5, (1, 0.5) 2/5, (1, whole) 1/5, (2, whole) 1/5; one node of 2 GPUs.
    t=0: GPU 0 full, GPU 1 at 0.75 free: the whole-GPU shapes cannot run: (0.2 + 0.2) x 0.75.
    t=30: GPU 1 wholly free: only the 2-GPU shape is stuck: 0.2 x 1.
    t=50: GPU 0 half free: 1-GPU shape loses the half (0.2 x 0.5), 2-GPU shape all 1.5 (0.2 x 1.5)."""
    r = lepsim.simulate(sc(FRACTION_JOBS, pools=[pool(gpus=2)]))
    frag = r.timeline.set_index("time_s")["fragmented_gpus"].round(12).to_dict()
    assert frag == {0.0: 0.3, 5.0: 0.3, 10.0: 0.0, 30.0: 0.2, 50.0: 0.4, 100.0: 0.0, 110.0: 0.0}
    assert r.summary["fragmented_gpus_mean"] == pytest.approx(27 / 110)
    assert r.summary["fragmentation_rate"] == pytest.approx(27 / 102.5)


def test_node_fragmentation_doc_example():
    mix = ((0.5, 1, 1.0, None), (0.25, 4, 1.0, None), (0.25, 1, 0.25, None))
    assert node_fragmentation([1.0, 1.0, 1.0, 0.5], 3, "V100", 8, mix) == pytest.approx(1.125)
    # a shape that needs another GPU type finds all the free capacity useless
    assert node_fragmentation([1.0, 0.5], 1, "V100", 8, ((1.0, 1, 1.0, "K80"),)) == 1.5


def test_engine_refuses_over_sharing(registry):
    forced(registry, "t-share", {0: (0,), 1: (0,)})
    with pytest.raises(PolicyError, match="needs 0.5 of GPU 0, which has 0.4 free"):
        lepsim.simulate(sc([job(0, 1, 10, gpu_fraction=0.6), job(0, 1, 10, gpu_fraction=0.5)], pools=[pool(gpus=2)],
                           policy="t-share"))
    forced(registry, "t-share2", {0: (0,), 1: (0,)})
    with pytest.raises(PolicyError, match="GPU 0 is shared by fractional jobs"):
        lepsim.simulate(sc([job(0, 1, 10, gpu_fraction=0.5), job(0, 1, 10)], pools=[pool(gpus=2)], policy="t-share2"))


def test_invariant_catches_a_gpu_over_one():
    r = lepsim.simulate(sc(FRACTION_JOBS, pools=[pool(gpus=2)]))
    iv = r.intervals.copy()
    iv.loc[iv["job_id"] == 2, "gpu_ids"] = "0"  # 0.25 more on the full GPU 0
    r.intervals = iv
    with pytest.raises(InvariantError, match="GPU 0 held 1.25"):
        check_invariants(r)


def test_fraction_needs_one_gpu():
    with pytest.raises(Exception, match="gpu_fraction"):
        sc([job(0, 2, 10, gpu_fraction=0.5)], pools=[pool()])


# ------------------------------------------------------------------------- strategies
def J(gpus, frac=1.0, **kw):
    return SimpleNamespace(**{"job_id": 0, "gpus": gpus, "cpus": 0.0, "memory_bytes": 0.0, "gpu_type": None,
                              "tenant": "t", "node_selector": (), "isolated": False, "gpu_fraction": frac, **kw})


def fmap(free_counts, racks=None, used=None, mix=()):
    """Nodes of 4 GPUs (ids 4i..4i+3) with the given wholly free counts (the lowest ids busy)."""
    n = len(free_counts)
    free = [list(range(4 * i + 4 - k, 4 * i + 4)) for i, k in enumerate(free_counts)]
    return FreeMap(free, [64.0] * n, [1e12] * n, ["V100"] * n, {"V100": list(range(n))}, [4] * n,
                   racks=racks, used=used, mix=mix)


@pytest.mark.parametrize("strategy, gpus, expected", [
    ("first_fit", 2, (0, 1)),            # node 0
    ("best_fit", 2, (6, 7)),             # node 1 (2 free -> 0 left)
    ("pack", 2, (6, 7)),
    ("spread", 2, (0, 1)),               # node 0 has the most free (4)
    ("topology", 2, (6, 7)),
    ("pack", 6, (6, 7, 9, 10, 11, 0)),   # spread: the fullest nodes first (1: 2 free, 2: 3, then 0)
    ("spread", 6, (0, 1, 2, 3, 9, 10)),  # the emptiest first
    ("first_fit", 6, (0, 1, 2, 3, 6, 7)),
])
def test_whole_gpu_strategies(strategy, gpus, expected):
    fm = fmap([4, 2, 3])
    assert fm.place(J(gpus), strategy) == expected


def test_topology_prefers_one_rack_among_the_fewest_nodes():
    # 6 GPUs need two nodes; nodes 0 (4 free) and 1 (2 free) share rack a, node 2 (3 free) is rack b
    fm = fmap([4, 2, 3], racks=["a", "a", "b"])
    assert fm.place(J(6), "topology") == (0, 1, 2, 3, 6, 7)
    fm = fmap([4, 2, 3], racks=["a", "b", "c"])  # no rack holds it: the two roomiest nodes
    assert sorted(fm.place(J(6), "topology")) == [0, 1, 2, 3, 9, 10]


def test_share_strategies():
    # node 0: GPU 0 at 0.5 used, GPUs 1-3 free; node 1: GPU 4 at 0.75 used, 5-7 free
    used = [{0: 0.5}, {4: 0.75}]
    mix = ((0.5, 1, 0.5, None), (0.5, 1, 1.0, None))
    def fm():
        return FreeMap([[1, 2, 3], [5, 6, 7]], [64.0] * 2, [1e12] * 2, ["V100"] * 2, {"V100": [0, 1]}, [4, 4],
                       used=[dict(u) for u in used], mix=mix)
    assert fm().place(J(1, 0.25), "first_fit") == (0,)
    assert fm().place(J(1, 0.25), "best_fit") == (4,)   # leaves 0 free share on GPU 4
    assert fm().place(J(1, 0.25), "spread") == (1,)     # a wholly free GPU
    # frag: 0.25 on GPU 0 leaves 0.25 that the 0.5-share shape cannot use (+0.125 x ...);
    # 0.25 on GPU 4 closes it (the 0.25 left there was a fragment for both shapes): less fragmentation
    assert fm().place(J(1, 0.25), "frag") == (4,)
    m = fm()
    assert m.place(J(1, 0.5), "frag") == (0,) and m.used[0] == {0: 1.0}
    assert m.free_share(0, 0) == 0.0 and m.free_gpus() == 6


def test_placement_honours_labels_and_isolation():
    def fm():
        return FreeMap([[0, 1], [2, 3]], [64.0] * 2, [1e12] * 2, ["V100"] * 2, {"V100": [0, 1]}, [2, 2],
                       labels=[{}, {"zone": "x"}], tenants=[{"lab": 1}, {}], iso=[{}, {}])
    for strategy in ("first_fit", "best_fit", "pack", "spread", "topology", "frag"):
        assert fm().place(J(1, node_selector=(("zone", "x"),)), strategy) == (2,), strategy
        assert fm().place(J(1, 0.5, node_selector=(("zone", "x"),)), strategy) == (2,), strategy
        # an isolated tenant avoids lab's node 0
        assert fm().place(J(1, tenant="bank", isolated=True), strategy) == (2,), strategy
    m = fm()
    assert m.place(J(2, tenant="bank", isolated=True), "first_fit") == (2, 3)
    assert m.place(J(1, tenant="bank", isolated=True), "first_fit") is None  # node 0 has lab
    assert m.place(J(2, tenant="lab"), "first_fit") == (0, 1)
    m.release(SimpleNamespace(**{**vars(J(2, tenant="bank", isolated=True)), "allocated_gpus": (2, 3)}),
              lambda g: g // 2)
    assert m.iso == [{}, {}] and m.tenants == [{"lab": 2}, {}]
    assert m.place(J(1, tenant="lab"), "first_fit") == (2,)  # node 1 is no longer bank's


def test_a_partial_release_keeps_the_tenant_only_where_the_job_keeps_gpus():
    """A shrinking job (pollux) gives back some GPUs: its isolated tenant leaves the nodes
    it no longer uses, and stays where it keeps GPUs."""
    m = FreeMap([[0, 1], [2, 3], [4, 5]], [64.0] * 3, [1e12] * 3, ["V100"] * 3, {"V100": [0, 1, 2]}, [2, 2, 2])
    bank = J(5, tenant="bank", isolated=True)
    assert m.place(bank, "first_fit") == (0, 1, 2, 3, 4)
    job = SimpleNamespace(**{**vars(bank), "allocated_gpus": (0, 1, 2, 3, 4)})
    m.release(job, lambda g: g // 2, gpus=(3, 4), keep=(0, 1, 2))
    assert m.free == [[], [3], [4, 5]] and m.free_gpus() == 3
    assert m.iso == [{"bank": 1}, {"bank": 1}, {}]      # node 1 still has GPU 2; node 2 is free of bank
    assert m.place(J(2, tenant="lab"), "first_fit") == (4, 5)
    assert m.place(J(1, tenant="lab"), "first_fit") is None   # GPU 3 sits on bank's node 1
