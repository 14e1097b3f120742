"""The simpy-side network: transfers rescheduled as rates change, sustained rings, records."""
import math

import pytest
import simpy

from lepsim.engine.network import Network
from lepsim.engine.topology import build_topology
from lepsim.hardware import default_catalog
from lepsim.scenario.resolve import resolve_cluster
from lepsim.scenario.spec import ClusterSpec

GB = 1e9


def make_topology(network: dict | None, pools=None):
    spec = ClusterSpec.model_validate({"pools": pools or [{"template": "dgx-a100", "count": 4}], "network": network})
    cat = default_catalog()
    nodes, probs = resolve_cluster(spec, cat)
    assert not probs
    topo, probs = build_topology(spec.network, nodes, cat)
    return topo, probs


def make_net(network, pools=None):
    topo, probs = make_topology(network, pools)
    assert not probs, probs
    env = simpy.Environment()
    return env, Network(env, topo)


def test_leaf_spine_links_and_paths():
    topo, _ = make_topology({"nic_bandwidth": "100GB/s", "nodes_per_rack": 2, "oversubscription": 2})
    names = topo.link_names
    cap = dict(zip(names, topo.capacities))
    assert cap["node:0>tor:0"] == 100 * GB and cap["tor:1>spine"] == 100 * GB  # 2 x 100 / 2
    assert cap["node:0>gpus:0"] == pytest.approx(8 * 64 * GB / 2)  # 8 A100 PCIe 4 x16, each way
    path = [names[i] for i in topo.path("node:0", "node:3")]
    assert path == ["node:0>tor:0", "tor:0>spine", "spine>tor:1", "tor:1>node:3"]
    assert [names[i] for i in topo.path("node:0", "node:1")] == ["node:0>tor:0", "tor:0>node:1"]
    assert [names[i] for i in topo.path("storage", "node:2")] == ["storage>spine", "spine>tor:1", "tor:1>node:2"]
    # ring over nodes 3, 0, 2 in rack order 0, 2, 3: each rack's uplink crossed once each way
    ring = [names[i] for i in topo.ring(["node:3", "node:0", "node:2"])]
    assert ring.count("tor:0>spine") == 1 and ring.count("spine>tor:0") == 1
    assert ring.count("tor:1>spine") == 1 and ring.count("spine>tor:1") == 1


def test_two_transfers_share_an_uplink_hand_timeline():
    # uplink 100 GB/s each way (2 x 100 / 2).  A: node 0 -> node 2, 400 GB from t=0; B: node 1 -> node 3,
    # 100 GB from t=1.  t<1: A alone at 100 GB/s (moves 100 GB).  From 1 both cross tor:0>spine at 50:
    # B ends at 1 + 100/50 = 3 (A has moved 100 + 100 = 200 GB), then A alone again: 200 GB at 100 -> t=5.
    env, net = make_net({"nic_bandwidth": "100GB/s", "nodes_per_rack": 2, "oversubscription": 2})
    done = {}
    net.transfer("node:0", "node:2", 400 * GB, lambda: done.setdefault("A", env.now))
    env.timeout(1).callbacks.append(
        lambda _e: net.transfer("node:1", "node:3", 100 * GB, lambda: done.setdefault("B", env.now)))
    env.run()
    assert done == {"A": pytest.approx(5.0), "B": pytest.approx(3.0)}
    rows = [r for r in net.utilization_records() if r[1] == "tor:0>spine"]
    # the uplink stays full from 0 to 5 (A alone, then A and B at 50 each, then A alone): two rows
    assert [(t, load) for t, _, _, _, load in rows] == [(0.0, 100 * GB), (5.0, 0.0)]


def test_cancel_returns_bytes_moved_and_frees_the_link():
    env, net = make_net({"nic_bandwidth": "10GB/s"})
    done = []
    a = net.transfer("node:0", "node:1", 100 * GB, lambda: done.append(("a", env.now)))
    b = net.transfer("node:0", "node:2", 100 * GB, lambda: done.append(("b", env.now)))
    moved = {}
    env.timeout(4).callbacks.append(lambda _e: moved.setdefault("a", net.cancel(a)))
    env.run()
    # 5 GB/s each for 4 s -> a moved 20 GB; b then alone at 10: 80 GB left -> 4 + 8 = 12
    assert moved["a"] == pytest.approx(20 * GB)
    assert done == [("b", pytest.approx(12.0))]
    assert b.done and b.moved == 100 * GB


def test_sustained_ring_rates_and_callbacks():
    env, net = make_net({"nic_bandwidth": "100GB/s", "nodes_per_rack": 2, "oversubscription": 2})
    seen = []
    s1 = net.sustain(["node:0", "node:2"], 80 * GB, on_rate=lambda r: seen.append(("s1", env.now, r)))
    env.run()
    assert s1.rate == 80 * GB  # its demand: the uplink (100) does not bind
    s2 = net.sustain(["node:1", "node:3"], 80 * GB, on_rate=lambda r: seen.append(("s2", env.now, r)))
    env.run()
    assert s1.rate == s2.rate == pytest.approx(50 * GB)  # both rings cross both uplinks: 100 / 2
    net.stop(s2)
    env.run()
    assert s1.rate == 80 * GB
    assert [x[0] for x in seen] == ["s1", "s1", "s2", "s1"]


def test_unconstrained_network_is_instant():
    env, net = make_net(None)
    assert not net.constrained
    done = []
    net.transfer("storage", "node:3", 1e15, lambda: done.append(env.now))
    env.run()
    assert done == [0.0]
    assert net.utilization_records() == []
    # a storage bandwidth set by the storage model binds
    net.set_endpoint_capacity("storage", 10 * GB)
    net.transfer("storage", "node:3", 100 * GB, lambda: done.append(env.now))
    env.run()
    assert done == [0.0, pytest.approx(10.0)]


def test_outage_stops_and_restores_a_transfer():
    env, net = make_net({"nic_bandwidth": "10GB/s"})
    done = []
    net.transfer("node:0", "node:1", 100 * GB, lambda: done.append(env.now))
    env.timeout(2).callbacks.append(lambda _e: net.set_capacity("tor:0>node:1", 0.0))
    env.timeout(7).callbacks.append(lambda _e: net.set_capacity("tor:0>node:1", 10 * GB))
    env.run()
    assert done == [pytest.approx(15.0)]  # 2 s of progress, 5 s stopped, 8 s more


@pytest.mark.parametrize("net,msg", [
    ({"topology": "edges", "edges": [{"a": "node:0", "b": "sw", "capacity": "1GB/s"}]}, "not connected"),
    ({"topology": "edges", "edges": [{"a": "node:9", "b": "sw", "capacity": "1GB/s"}]}, "0 <= i < 4"),
    ({"nodes_per_rack": 2, "storage": {"attach": "rack:5"}}, "rack:<r>"),
])
def test_topology_problems(net, msg):
    _, probs = make_topology(net)
    assert any(msg in m for _, m in probs), probs


def test_edges_topology_paths():
    edges = [{"a": f"node:{i}", "b": "sw0" if i < 2 else "sw1", "capacity": "10GB/s"} for i in range(4)]
    edges += [{"a": "sw0", "b": "sw1", "capacity": "5GB/s"}, {"a": "storage", "b": "sw1", "capacity": "20GB/s"}]
    topo, probs = make_topology({"topology": "edges", "edges": edges})
    assert not probs
    names = topo.link_names
    assert [names[i] for i in topo.path("node:0", "storage")] == ["node:0>sw0", "sw0>sw1", "sw1>storage"]


def test_draw(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    topo, _ = make_topology({"nic_bandwidth": "100GB/s", "nodes_per_rack": 2, "oversubscription": 2})
    fig, ax = plt.subplots()
    topo.draw(ax, utilization={"tor:0>spine": 0.5})
    fig.savefig(tmp_path / "t.png")
    plt.close(fig)
    assert (tmp_path / "t.png").stat().st_size > 0


def test_missing_nic_reported_once_per_pool_and_checks_go_on():
    pools = [{"template": "dgx-a100", "count": 2},
             {"count": 2, "gpu_type": "T4", "gpus_per_node": 4, "cpus": 8, "memory": "64GiB"}]
    _, probs = make_topology({"nodes_per_rack": 2, "storage": {"attach": "rack:7"}}, pools)
    assert [p for p, _ in probs] == ["cluster.network.nic_bandwidth", "cluster.network.storage.attach"]
    _, probs = make_topology({"nic_bandwidth": "100Gb/s"}, pools)
    assert probs == []


def test_one_way_sustained_flow_shares_with_a_transfer():
    env, net = make_net({"nic_bandwidth": "10GB/s"})
    f = net.flow("storage", "node:1", 8 * GB)
    done = []
    net.transfer("node:0", "node:1", 20 * GB, lambda: done.append(env.now))
    env.run()
    # node 1's NIC (10 GB/s down) is shared: both at 5 until the transfer's 20 GB are in (t=4)
    assert done == [pytest.approx(4.0)]
    assert f.rate == 8 * GB  # alone again: its demand
    net.stop(f)
    env.run()
