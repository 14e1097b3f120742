"""Link outages (failures.link_outages): a cable at capacity 0 for a while.

Hand-computed timelines (a storage load and a multi-node job's all-reduce ring through a
cable that goes down finish exactly the outage's length later), the events and links
tables, the invariant that a down link carries nothing (checked after every simulate() by
the conftest fixture, and shown here to fail on a doctored result), and the Network API.
"""
from __future__ import annotations

import functools

import pandas as pd
import pytest
import simpy
from hypothesis import given, settings
from hypothesis import strategies as st

import lepsim
from lepsim.engine.network import Network
from lepsim.engine.topology import build_topology
from lepsim.hardware import default_catalog
from lepsim.scenario.resolve import resolve_cluster
from lepsim.scenario.spec import ClusterSpec
from lepsim.testing import InvariantError, check_invariants

GB = 1e9
RING_JOB = {"name": "ring", "gpus": 16, "model": "resnet50", "iterations": 2000}


def scenario(failures=None, storage=None, jobs=(RING_JOB,)):
    # two DGX-1 nodes in two racks: a 16-GPU job's ring crosses both uplinks; 100 Gb/s
    # (12.5 GB/s) uplinks are above the resnet50 ring's demand, so the fabric never binds
    data = {"cluster": {"pools": [{"template": "dgx1-v100", "count": 2}],
                        "network": {"nodes_per_rack": 1, "uplink_bandwidth": "100Gb/s"}},
            "workload": {"jobs": list(jobs)},
            "scheduler": {"policy": "fifo"}}
    if failures is not None:
        data["failures"] = failures
    if storage is not None:
        data["storage"] = storage
    return lepsim.Scenario.model_validate(data)


def outages(*items):
    return {"link_outages": [{"link": list(link), **when} for link, when in items]}


@functools.lru_cache(maxsize=1)
def _profiled_end() -> float:
    from lepsim.costs import build_cost_model

    return RING_JOB["iterations"] * build_cost_model(default_catalog()).iteration_time("resnet50", "V100", (8, 8))


def test_ring_through_a_down_uplink_finishes_exactly_the_outage_later():
    base = lepsim.simulate(scenario())
    t0 = _profiled_end()
    assert base.jobs["end_s"].iloc[0] == pytest.approx(t0, rel=1e-12)  # the fabric does not bind
    assert t0 > 150
    res = lepsim.simulate(scenario(outages((("tor:0", "spine"), {"at": 100, "duration": 50}))))
    job = res.jobs.iloc[0]
    assert job["end_s"] == pytest.approx(t0 + 50, rel=1e-12)
    # stalled in its all-reduce: the 50 s count as communication, the compute part is unchanged
    assert job["comm_s"] == pytest.approx(base.jobs["comm_s"].iloc[0] + 50, rel=1e-9)
    ev = res.events[res.events["event"].isin(["link_down", "link_up"])]
    assert ev[["time_s", "event", "job_id", "detail"]].values.tolist() == [
        [100.0, "link_down", -1, "tor:0>spine,spine>tor:0"], [150.0, "link_up", -1, "tor:0>spine,spine>tor:0"]]
    up = res.links[res.links["link"] == "tor:0>spine"].set_index("time_s")
    cap = 100e9 / 8
    assert up.loc[100.0, "capacity_bytes_per_s"] == 0 and up.loc[100.0, "load_bytes_per_s"] == 0
    assert up.loc[100.0, "utilization"] == 0
    assert up.loc[150.0, "capacity_bytes_per_s"] == cap and up.loc[150.0, "load_bytes_per_s"] > 0
    # the other rack's uplink is up but carries nothing: the ring makes no progress anywhere
    other = res.links[res.links["link"] == "tor:1>spine"].set_index("time_s")
    assert other.loc[100.0, "capacity_bytes_per_s"] == cap and other.loc[100.0, "load_bytes_per_s"] == 0


def test_a_job_started_during_an_outage_waits_for_the_link():
    # down from 0 to 30: the ring stalls from its first instant
    res = lepsim.simulate(scenario(outages((("node:1", "tor:1"), {"at": 0, "until": 30}))))
    assert res.jobs["end_s"].iloc[0] == pytest.approx(_profiled_end() + 30, rel=1e-12)


def test_storage_load_through_a_down_nic_resumes_where_it_stopped():
    # 100 GB at 10 GB/s (the storage bandwidth; NIC 400 Gb/s = 50 GB/s): 10 s alone.  The
    # node's NIC is down from 5 to 12: 50 GB moved by 5, none until 12, the rest by 17; then
    # 100 s of work: the job ends at 117 instead of 110
    job = {"name": "load", "gpus": 8, "duration": 100, "dataset_size": "100GB"}
    st = {"bandwidth": "10GB/s"}
    base = lepsim.simulate(scenario(storage=st, jobs=[job]))
    assert base.jobs["end_s"].iloc[0] == pytest.approx(110.0)
    res = lepsim.simulate(scenario(outages((("node:0", "tor:0"), {"at": 5, "until": 12})), storage=st, jobs=[job]))
    iv = res.intervals[["phase", "start_s", "end_s"]].values.tolist()
    assert iv == [["load", 0.0, pytest.approx(17.0)], ["run", pytest.approx(17.0), pytest.approx(117.0)]]
    s = res.storage.set_index("time_s")
    assert s.loc[5.0, "storage_read_bytes_per_s"] == 0 and s.loc[12.0, "storage_read_bytes_per_s"] == 10 * GB


def test_a_data_stream_through_a_down_nic_stalls_the_job_for_the_outage():
    # one node (no ring); 3000 iterations x 128 x 8 GPUs over 50,000 samples: about 61
    # epochs, so after its 2 s load the job streams its dataset from storage through its
    # NIC.  The NIC is down from 20 to 50: the stream gets 0, the job stalls on data for
    # exactly those 30 s and ends 30 s later
    job = {"name": "s", "gpus": 8, "model": "resnet50", "iterations": 3000, "batch_size": 128,
           "dataset_size": "10GB", "dataset_samples": 50000}
    st = {"bandwidth": "5GB/s"}
    base = lepsim.simulate(scenario(storage=st, jobs=[job])).jobs.iloc[0]
    res = lepsim.simulate(scenario(outages((("node:0", "tor:0"), {"at": 20, "duration": 30})), storage=st,
                                   jobs=[job])).jobs.iloc[0]
    assert base["data_stall_s"] == 0 and base["load_s"] == pytest.approx(2.0)
    assert res["data_stall_s"] == pytest.approx(30.0, rel=1e-9)
    assert res["end_s"] == pytest.approx(base["end_s"] + 30.0, rel=1e-12)


def test_overlapping_outages_of_one_cable_are_one_down_period():
    job = {"name": "load", "gpus": 8, "duration": 100, "dataset_size": "100GB"}
    res = lepsim.simulate(scenario(outages((("tor:0", "node:0"), {"at": 5, "until": 10}),
                                           (("node:0", "tor:0"), {"at": 8, "duration": 4})),
                                   storage={"bandwidth": "10GB/s"}, jobs=[job]))
    assert res.jobs["end_s"].iloc[0] == pytest.approx(117.0)
    ev = res.events[res.events["event"].isin(["link_down", "link_up"])]
    assert ev[["time_s", "event"]].values.tolist() == [[5.0, "link_down"], [12.0, "link_up"]]


def test_an_outage_off_the_jobs_paths_changes_nothing():
    one = {"name": "one", "gpus": 8, "model": "resnet50", "iterations": 2000}  # one node: no ring
    base = lepsim.simulate(scenario(jobs=[one]))
    res = lepsim.simulate(scenario(outages((("tor:1", "spine"), {"at": 0, "duration": 1e6})), jobs=[one]))
    assert res.jobs["end_s"].iloc[0] == base.jobs["end_s"].iloc[0]


def test_the_invariant_catches_load_on_a_down_link():
    res = lepsim.simulate(scenario(outages((("tor:0", "spine"), {"at": 100, "duration": 50}))))
    check_invariants(res)
    links = res.links.copy()
    k = links.index[(links["link"] == "spine>tor:0") & (links["time_s"] == 100.0)][0]
    links.loc[k, "load_bytes_per_s"] = 1.0
    links.loc[k, "capacity_bytes_per_s"] = 2.0
    bad = type(res)(**{**res.__dict__, "links": links})
    with pytest.raises(InvariantError, match="spine>tor:0 is down"):
        check_invariants(bad)


def test_check_reports_a_missing_network_and_unknown_cables():
    from lepsim.scenario.loader import check_scenario

    (p,) = check_scenario(lepsim.Scenario.model_validate({
        "cluster": {"pools": [{"template": "dgx1-v100", "count": 2}]},
        "workload": {"jobs": [RING_JOB]}, "scheduler": {"policy": "fifo"},
        "failures": outages((("tor:0", "spine"), {"at": 1, "duration": 1}))}))
    assert p.path == "failures.link_outages" and "without cluster.network" in p.message
    (p,) = check_scenario(scenario(outages((("tor:0", "spine"), {"at": 1, "duration": 1}),
                                           (("tor:0", "tor:1"), {"at": 1, "duration": 1}))))
    assert p.path == "failures.link_outages[1].link"
    assert p.message.startswith("found [tor:0, tor:1], expected a cable of the network: 2 nic ([node:0, tor:0], "
                                "[node:1, tor:1]); 2 uplink ([tor:0, spine], [tor:1, spine]); 1 storage")


# ----------------------------------------------------------------------------- the Network API
def _net(nodes: int, per_rack: int):
    spec = ClusterSpec.model_validate({"pools": [{"template": "dgx1-v100", "count": nodes}],
                                       "network": {"nodes_per_rack": per_rack, "uplink_bandwidth": "10GB/s",
                                                   "storage": {"bandwidth": "20GB/s"}}})
    cat = default_catalog()
    nodes_, _ = resolve_cluster(spec, cat)
    topo, probs = build_topology(spec.network, nodes_, cat)
    assert not probs
    env = simpy.Environment()
    return env, Network(env, topo)


def test_set_capacity_on_a_down_link_applies_when_it_comes_back():
    env, net = _net(2, 1)
    assert net.link_down("tor:0", "spine") is True
    assert net.link_down("spine", "tor:0") is False        # already down: nested
    net.set_capacity("tor:0>spine", 5 * GB)
    assert net.fabric.capacity(net.link_index("tor:0>spine")) == 0
    assert net.link_up("tor:0", "spine") is False          # one outage still holds it
    assert net.is_down("spine>tor:0")
    assert net.link_up("tor:0", "spine") is True
    assert net.fabric.capacity(net.link_index("tor:0>spine")) == 5 * GB
    assert net.fabric.capacity(net.link_index("spine>tor:0")) == 10 * GB
    with pytest.raises(ValueError, match="not down"):
        net.link_up("tor:0", "spine")


@st.composite
def _flows_and_outages(draw):
    nodes = draw(st.integers(2, 6))
    per_rack = draw(st.integers(1, 3))
    ends = [f"node:{i}" for i in range(nodes)] + ["storage"]
    flows = []
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["transfer", "flow", "ring"]))
        if kind == "ring":
            members = draw(st.lists(st.sampled_from(ends[:-1]), min_size=2, max_size=nodes, unique=True))
            flows.append((kind, members, draw(st.sampled_from([1 * GB, 5 * GB, float("inf")]))))
        else:
            a, b = draw(st.lists(st.sampled_from(ends), min_size=2, max_size=2, unique=True))
            flows.append((kind, [a, b], draw(st.sampled_from([1 * GB, 50 * GB]))))
    return nodes, per_rack, flows, draw(st.integers(0, 2 ** 16))


@settings(max_examples=40, deadline=None)
@given(_flows_and_outages())
def test_no_flow_gets_a_rate_across_a_down_link_and_rates_come_back(case):
    """Random flows over a random leaf-spine; random cables go down: every flow crossing a
    down link has rate 0 (the others keep a feasible max-min share); when every cable is up
    again, each flow has exactly the rate it had before the outages."""
    import random

    nodes, per_rack, flows, seed = case
    env, net = _net(nodes, per_rack)
    handles = []
    for kind, ends, size in flows:
        if kind == "transfer":
            handles.append(net.transfer(ends[0], ends[1], size, lambda: None))
        elif kind == "flow":
            handles.append(net.flow(ends[0], ends[1], size))
        else:
            handles.append(net.sustain(ends, size))
    net.settle()
    before = [h.rate for h in handles]
    cables = [(u, v) for u, v in net.topology.graph.edges() if net.topology.has_cable(u, v)]
    down = random.Random(seed).sample(cables, k=min(len(cables), 1 + seed % 3))
    for u, v in down:
        net.link_down(u, v)
    net.settle()
    down_links = {i for u, v in down for i in net.topology.cable(u, v)}
    for h in handles:
        crosses = bool(down_links & set(net.flow_links(h).tolist()))
        assert (h.rate == 0) if crosses else (h.rate >= 0)
    loads = net.fabric.link_loads()
    assert all(loads[i] == 0 for i in down_links)
    for u, v in down:
        net.link_up(u, v)
    net.settle()
    assert [h.rate for h in handles] == pytest.approx(before, rel=1e-12)


def test_links_table_follows_an_unlimited_link_taken_down():
    # no storage bandwidth in the network: the storage cable is unlimited (no rows) until it goes down
    env2 = simpy.Environment()
    spec = ClusterSpec.model_validate({"pools": [{"template": "dgx1-v100", "count": 2}],
                                       "network": {"nodes_per_rack": 1}})
    nodes_, _ = resolve_cluster(spec, default_catalog())
    topo, _ = build_topology(spec.network, nodes_, default_catalog())
    net = Network(env2, topo)
    done = []
    net.transfer("storage", "node:0", 10 * GB, lambda: done.append(env2.now))
    net.settle()
    assert not [r for r in net.utilization_records() if r[1].startswith("storage>")]
    env2.run(until=0.05)
    net.link_down("storage", "spine")
    net.settle()
    net.link_up("storage", "spine")
    net.settle()
    rows = pd.DataFrame(net.utilization_records(), columns=["t", "link", "kind", "cap", "load"])
    st_rows = rows[rows["link"] == "storage>spine"]
    assert st_rows[["cap", "load"]].values.tolist()[0] == [0.0, 0.0]
    assert st_rows["cap"].tolist()[-1] == float("inf") and st_rows["load"].tolist()[-1] > 0


@pytest.mark.parametrize("policy, params", [("fifo", {}), ("las", {"thresholds": [600, 3600]}),
                                            ("sjf", {"skip_blocked": True})])
def test_policies_cope_with_link_outages_storage_and_node_failures(policy, params):
    """Loads, restores, checkpoints and rings through cables that go down (overlapping, and
    one still down at the horizon), with node failures and preemptions: the run ends, every
    job is accounted for and no down link carries anything (the conftest invariants)."""
    data = {
        "cluster": {"pools": [{"name": "v", "count": 4, "gpu_type": "V100", "gpus_per_node": 4, "cpus": 64,
                               "memory": "512GiB"}],
                    "network": {"nic_bandwidth": "3GB/s", "nodes_per_rack": 2, "oversubscription": 2}},
        "workload": {"generators": [
            {"kind": "poisson", "rate": "20/h", "count": 30, "gpus": {"dist": "choice", "values": [2, 4, 8]},
             "model": "resnet50", "iterations": {"dist": "uniform", "low": 1000, "high": 20000},
             "dataset_size": "20GB", "dataset_samples": 100000, "checkpoint_interval": "10min"}]},
        "scheduler": {"policy": policy, "params": params},
        "storage": {"bandwidth": "2GB/s"},
        "failures": {"mtbf": {"dist": "exponential", "mean": "4h"}, "mttr": {"dist": "exponential", "mean": "10min"},
                     "link_outages": [{"link": ["tor:0", "spine"], "at": "20min", "duration": "30min"},
                                      {"link": ["spine", "tor:0"], "at": "40min", "duration": "30min"},
                                      {"link": ["node:3", "tor:1"], "at": "1h", "until": "2h"},
                                      {"link": ["storage", "spine"], "at": "3h", "duration": "15min"},
                                      {"link": ["tor:1", "spine"], "at": "5h", "duration": "1d"}]},
        "simulation": {"horizon": "6h", "seed": 2},
    }
    res = lepsim.simulate(lepsim.Scenario.model_validate(data))
    ev = res.events[res.events["event"].isin(["link_down", "link_up"])]
    up0, up1, nic, st = "tor:0>spine,spine>tor:0", "tor:1>spine,spine>tor:1", "node:3>tor:1,tor:1>node:3", \
        "spine>storage,storage>spine"
    assert ev[["time_s", "event", "detail"]].values.tolist() == [
        [1200.0, "link_down", up0], [3600.0, "link_down", nic], [4200.0, "link_up", up0], [7200.0, "link_up", nic],
        [10800.0, "link_down", st], [11700.0, "link_up", st], [18000.0, "link_down", up1]]
    assert res.summary["jobs_completed"] > 0


def test_replica_cold_start_from_storage_crosses_the_fabric_and_its_outages():
    """A service replica reading its weights from storage (no cold_start given) over a
    network: one transfer to its node through the fabric (it used to crash there), so a
    1 GB/s NIC makes it weights / 1 GB/s, and the NIC down for 5 s makes it 5 s longer."""
    def run(network=None, failures=None):
        data = {"cluster": {"pools": [{"count": 2, "template": "dgx-a100"}]},
                "workload": {"services": [{"name": "chat", "model": "llama-2-7b", "gpu_type": "A100-80GB",
                                           "replicas": 1, "arrivals": {"kind": "poisson", "rate": "1/s"},
                                           "prompt_tokens": 100, "output_tokens": 10}]},
                "scheduler": {"policy": "fifo"}, "storage": {"bandwidth": "10GB/s"},
                "simulation": {"horizon": "1min"}}
        if network is not None:
            data["cluster"]["network"] = network
        if failures is not None:
            data["failures"] = failures
        iv = lepsim.simulate(lepsim.Scenario.model_validate(data)).intervals
        (cold,) = iv.loc[iv["phase"] == "cold_start", "end_s"] - iv.loc[iv["phase"] == "cold_start", "start_s"]
        return cold

    weights = run() * 10 * GB                      # alone on the 10 GB/s service
    assert run({"nodes_per_rack": 1}) == pytest.approx(weights / (10 * GB), rel=1e-12)
    slow = {"nodes_per_rack": 1, "nic_bandwidth": "1GB/s"}
    assert run(slow) == pytest.approx(weights / GB, rel=1e-12)
    assert run(slow, outages((("node:0", "tor:0"), {"at": 1, "duration": 5}))) == pytest.approx(weights / GB + 5,
                                                                                               rel=1e-12)
