"""Training jobs' all-reduce on the fabric: hand-computed timelines from the cost model's
split of an iteration (compute + gradient all-reduce) and max-min shares of the uplinks."""
from __future__ import annotations

import functools
import math

import pytest

import lepsim
from lepsim.costs.collectives import ring_factor
from lepsim.policies import registry
from lepsim.policies.actions import Start
from lepsim.policies.base import Policy, PolicyConfig


class PinnedConfig(PolicyConfig):
    nodes: tuple[tuple[int, ...], ...] = ()   # per job id: the nodes whose GPUs it takes, in order


class Pinned(Policy):
    """Test policy: start each pending job on the first GPUs of the nodes its entry names, when all free."""

    name = "test-pinned"
    Config = PinnedConfig

    def decide(self, view):
        out = []
        free = {g for n in view.nodes for g in n.free_gpus}
        for job in view.pending():
            nodes = self.config.nodes[job.job_id]
            gpus = tuple(g for i in nodes for g in view.nodes[i].gpu_ids)[: job.gpus]
            if free.issuperset(gpus):
                free.difference_update(gpus)
                out.append(Start(job.job_id, gpus))
        return out


@pytest.fixture(autouse=True)
def _pinned_policy(monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, Pinned.name, Pinned)


MODEL, GPU = "resnet18", "V100"


def split(cost, placement=(8, 8)):
    t = cost.iteration_time(MODEL, GPU, placement)
    c = min(cost.comm_time(MODEL, GPU, placement), t)
    v = ring_factor(sum(placement)) * cost.grad_bytes(MODEL)
    return t, c, v


@functools.lru_cache(maxsize=1)
def cost_model():
    from lepsim.costs import build_cost_model
    from lepsim.hardware import default_catalog

    return build_cost_model(default_catalog())


def scenario(jobs, nodes, network):
    return lepsim.Scenario.model_validate({
        "cluster": {"pools": [{"template": "dgx1-v100", "count": 4}], "network": network},
        "workload": {"jobs": jobs},
        "scheduler": {"policy": "test-pinned", "params": {"nodes": nodes}},
    })


def test_two_jobs_sharing_uplinks_rates_halve_and_completions_move():
    cost = cost_model()
    t, c, v = split(cost)
    demand = v / c                      # what the ring asks: the rate that gives the profiled comm time
    # racks {0,1} and {2,3}; each ToR uplink exactly one ring's demand.  A on nodes 0,2 and
    # B on nodes 1,3 both cross both uplinks (once each way): max-min gives each demand/2,
    # so each iteration's all-reduce takes 2c instead of c.
    net = {"nodes_per_rack": 2, "uplink_bandwidth": demand}
    na, nb = 1000.0, 3000.0
    jobs = [{"gpus": 16, "model": MODEL, "iterations": na, "gpu_type": GPU},
            {"gpus": 16, "model": MODEL, "iterations": nb, "gpu_type": GPU}]
    res = lepsim.simulate(scenario(jobs, [[0, 2], [1, 3]], net))
    j = res.jobs.set_index("job_id")
    t_shared = t - c + 2 * c
    end_a = na * t_shared
    end_b = end_a + (nb - na) * t          # B alone after A: its full demand again
    assert j.loc[0, "end_s"] == pytest.approx(end_a, rel=1e-9)
    assert j.loc[1, "end_s"] == pytest.approx(end_b, rel=1e-9)
    assert j.loc[0, "comm_s"] == pytest.approx(na * 2 * c, rel=1e-9)
    assert j.loc[1, "comm_s"] == pytest.approx(na * 2 * c + (nb - na) * c, rel=1e-9)
    # the uplink record: full from 0 (two rings at demand/2), one ring at demand after A: still full; 0 at the end
    up = res.links[res.links["link"] == "tor:0>spine"]
    assert up["time_s"].tolist() == pytest.approx([0.0, end_b])
    assert up["utilization"].tolist() == pytest.approx([1.0, 0.0])
    assert res.summary["busiest_link_utilization"] == pytest.approx(1.0)  # full over the whole window
    assert res.summary["comm_share"] == pytest.approx((na * 2 * c + na * 2 * c + (nb - na) * c) / (end_a + end_b))

    # packed: A on nodes 0,1 and B on 2,3 stay inside their racks: no sharing, profiled speed
    res = lepsim.simulate(scenario(jobs, [[0, 1], [2, 3]], net))
    j = res.jobs.set_index("job_id")
    assert j.loc[0, "end_s"] == pytest.approx(na * t, rel=1e-12)
    assert j.loc[1, "end_s"] == pytest.approx(nb * t, rel=1e-12)
    assert j.loc[1, "comm_s"] == pytest.approx(nb * c, rel=1e-9)
    assert res.summary["comm_share"] == pytest.approx(c / t)


def test_a_later_job_slows_a_running_one_from_its_start():
    cost = cost_model()
    t, c, v = split(cost)
    demand = v / c
    net = {"nodes_per_rack": 2, "uplink_bandwidth": demand}
    # A (nodes 0,2) from 0; B (nodes 1,3) submitted at s.  Before s, A runs at 1/t; from s both
    # at 1/(t + c) until B or A ends.  A has na iterations: na - s/t left at s.
    na, nb, s = 2000.0, 500.0, 30.0
    jobs = [{"gpus": 16, "model": MODEL, "iterations": na, "gpu_type": GPU},
            {"gpus": 16, "model": MODEL, "iterations": nb, "gpu_type": GPU, "submit": s}]
    res = lepsim.simulate(scenario(jobs, [[0, 2], [1, 3]], net))
    j = res.jobs.set_index("job_id")
    end_b = s + nb * (t + c)                      # B finishes first (500 < A's remainder)
    left_a = na - s / t - nb                       # A did s/t alone, nb while shared
    assert left_a > 0
    assert j.loc[1, "end_s"] == pytest.approx(end_b, rel=1e-9)
    assert j.loc[0, "end_s"] == pytest.approx(end_b + left_a * t, rel=1e-9)


def test_no_network_keeps_profiled_times_and_comm_share():
    cost = cost_model()
    t, c, _ = split(cost)
    jobs = [{"gpus": 16, "model": MODEL, "iterations": 100.0, "gpu_type": GPU},
            {"gpus": 16, "model": MODEL, "iterations": 100.0, "gpu_type": GPU},
            {"gpus": 2, "duration": 10.0}]
    res = lepsim.simulate(scenario(jobs, [[0, 2], [1, 3], [0]], None))
    j = res.jobs.set_index("job_id")
    assert j.loc[0, "end_s"] == j.loc[1, "end_s"] == pytest.approx(100 * t, rel=1e-12)
    assert j.loc[0, "comm_s"] == pytest.approx(100 * c, rel=1e-9)
    assert math.isnan(j.loc[2, "comm_s"])  # a duration job: its communication is not modelled
    assert res.links.empty


# ----------------------------------------------------------------------------- scenarios/network_contention.yaml
def test_network_contention_scenario_spread_is_slower_because_of_the_uplinks():
    """Spread over racks (first_fit), the 2-node jobs' rings share the oversubscribed ToR
    uplinks and their all-reduce stretches; packed in racks (topology) they run at the
    profiled speed.  Same GPUs per node in both, so the compute part is identical: the
    whole JCT difference is communication time, and without the network it vanishes."""
    from tests.conftest import SCENARIOS

    path = SCENARIOS / "network_contention.yaml"
    spread = lepsim.simulate(path, params={"placement": "first_fit"})
    packed = lepsim.simulate(path, params={"placement": "topology"})
    s, p = spread.jobs.set_index("name"), packed.jobs.set_index("name")
    multi = [n for n in s.index if s.loc[n, "gpus"] > 8]
    assert multi
    topo_racks = {0: "A", 1: "B"}  # rack index by first appearance: node 0 is in A

    def racks_of(res, name):
        jid = int(res.jobs.set_index("name").loc[name, "job_id"])
        nodes = res.intervals[res.intervals["job_id"] == jid]["nodes"].iloc[0]
        return {topo_racks[int(x.split(":")[0]) % 2] for x in nodes.split(",")}

    cost = cost_model()
    for n in multi:
        assert racks_of(spread, n) == {"A", "B"} and len(racks_of(packed, n)) == 1
        assert s.loc[n, "first_start_s"] == p.loc[n, "first_start_s"] == 0.0
        # longer, and by exactly the extra communication time (compute identical)
        assert s.loc[n, "jct_s"] > p.loc[n, "jct_s"]
        assert s.loc[n, "comm_s"] > p.loc[n, "comm_s"]
        compute_s = s.loc[n, "executed_s"] - s.loc[n, "comm_s"]
        compute_p = p.loc[n, "executed_s"] - p.loc[n, "comm_s"]
        assert compute_s == pytest.approx(compute_p, rel=1e-9)
        # packed: the profiled iteration time, untouched by the fabric
        model, iters = s.loc[n, "model"], spread.scenario.workload.jobs[int(s.loc[n, "job_id"])].iterations
        assert p.loc[n, "jct_s"] == pytest.approx(iters * cost.iteration_time(model, "V100", (8, 8)), rel=1e-12)
    # where the time went: spread saturates both racks' uplinks, packed leaves them idle
    up = spread.links[spread.links["kind"] == "uplink"]
    assert up["utilization"].max() == pytest.approx(1.0)
    assert (packed.links[packed.links["kind"] == "uplink"]["load_bytes_per_s"] == 0.0).all()
    assert (packed.links[packed.links["kind"] == "nic"]["load_bytes_per_s"] > 0).any()  # rings on the NICs only
    # without the network both placements give the same times (the cost model alone sees 8 + 8)
    no_net = spread.scenario.with_overrides(values={"cluster.network": None})
    a = lepsim.simulate(no_net, params={"placement": "first_fit"}).jobs.set_index("name")
    b = lepsim.simulate(no_net, params={"placement": "topology"}).jobs.set_index("name")
    for n in multi:
        assert a.loc[n, "jct_s"] == b.loc[n, "jct_s"] == p.loc[n, "jct_s"]


def test_link_utilization_plot_and_topology_drawing():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lepsim.report import plots

    cost = cost_model()
    t, c, v = split(cost)
    jobs = [{"gpus": 16, "model": MODEL, "iterations": 100.0, "gpu_type": GPU}]
    res = lepsim.simulate(scenario(jobs, [[0, 2]], {"nodes_per_rack": 2, "uplink_bandwidth": v / c}))
    fig, (a, b) = plt.subplots(1, 2)
    plots.link_utilization_over_time(res, a)
    # the ring crosses both racks' uplinks, one way each: four directed uplinks at 100 %
    assert sorted(line.get_label() for line in a.get_lines()) == [
        "spine>tor:0", "spine>tor:1", "tor:0>spine", "tor:1>spine"]
    assert all(max(line.get_ydata()) == pytest.approx(1.0) for line in a.get_lines())
    from lepsim.build import build_parts

    parts, _ = build_parts(res.scenario)
    parts.topology.draw(b)
    assert b.get_title().startswith("leaf-spine topology: 4 nodes")
    plt.close(fig)
