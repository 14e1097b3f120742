"""Cloud pools: AddNodes / RemoveNodes on hand-computed timelines, billing, energy."""
from __future__ import annotations

import pytest

import lepsim
from lepsim.errors import PolicyError
from lepsim.policies.actions import AddNodes, RemoveNodes, Start
from lepsim.policies.base import Policy
from tests.conftest import scenario


def _cloud(jobs, policy="cloud-autoscaler", params=None, min_nodes=1):
    return scenario({
        "cluster": {"pools": [{"name": "cloud", "count": 4, "gpu_type": "V100", "gpus_per_node": 4, "cpus": 32,
                               "memory": "64GiB", "price_per_hour": 10,
                               "autoscale": {"min": min_nodes, "provisioning_delay": 100}}]},
        "workload": {"jobs": jobs},
        "scheduler": {"policy": policy, "params": {"scale_down_after": 300} if params is None else params},
    })


def test_autoscaler_timeline_and_bill():
    # node 0 is up from t=0 (min 1).  a (4 GPUs) starts at 0 on it, runs to 1000.
    # b (8 GPUs) arrives at 10: nothing free -> AddNodes(cloud, 2) at 10; nodes 1, 2 up at 110
    # (provisioning delay 100); b runs 110..610.  Nodes 1, 2 idle from 610; nobody waits ->
    # removed at 610 + 300 = 910.  Billed: node 0 0..1000, nodes 1 and 2 10..910 -> 2800 s.
    r = lepsim.simulate(_cloud([{"name": "a", "gpus": 4, "duration": 1000},
                                {"name": "b", "submit": 10, "gpus": 8, "duration": 500}]))
    df = r.jobs.set_index("name")
    assert (df.loc["a", "first_start_s"], df.loc["a", "end_s"]) == (0, 1000)
    assert (df.loc["b", "first_start_s"], df.loc["b", "end_s"]) == (110, 610)
    ev = r.events[r.events["event"].isin(["node_add", "node_up", "node_remove"])]
    assert ev[["time_s", "event", "detail"]].values.tolist() == [
        [10.0, "node_add", "1"], [10.0, "node_add", "2"], [110.0, "node_up", "1:4 5 6 7"],
        [110.0, "node_up", "2:8 9 10 11"], [910.0, "node_remove", "1"], [910.0, "node_remove", "2"]]
    s = r.summary
    assert s["node_hours"] == pytest.approx(2800 / 3600)
    assert s["cost_usd"] == pytest.approx(2800 / 3600 * 10)
    # energy: (4 x 1000 + 8 x 500) GPU-s x 300 W (V100 TDP in the catalog) = 2.4 MJ
    assert s["energy_gpu_kwh"] == pytest.approx(8000 * 300 / 3.6e6)


def test_fixed_pools_are_billed_for_the_whole_run_and_unpriced_cost_is_nan():
    r = lepsim.simulate(scenario({
        "cluster": {"pools": [{"count": 2, "gpu_type": "K80", "gpus_per_node": 2, "cpus": 8, "memory": "64GiB"}]},
        "workload": {"jobs": [{"gpus": 1, "duration": 100}, {"gpus": 2, "duration": 50}]},
        "scheduler": {"policy": "fifo"},
    }))
    s = r.summary
    assert s["node_hours"] == pytest.approx(2 * 100 / 3600)
    assert s["cost_usd"] != s["cost_usd"]  # NaN: no pool has a price
    assert s["energy_gpu_kwh"] == pytest.approx((100 + 2 * 50) * 150 / 3.6e6)  # K80 (per die) TDP 150 W


class _Scripted(Policy):
    """Returns the actions given for each call, in order (a test double)."""

    name = "scripted"
    script: list = []

    def decide(self, view):
        return self.script.pop(0) if self.script else []


def _run_scripted(script, jobs):
    from lepsim.build import build_parts
    from lepsim.engine.simulation import Simulation

    sc = _cloud(jobs, policy="fifo", params={})
    parts, problems = build_parts(sc)
    assert not problems
    pol = _Scripted()
    pol.script = list(script)
    return Simulation(sc, parts.nodes, parts.jobs, pol, parts.cost_model).run()


def test_engine_checks_add_and_remove_nodes():
    with pytest.raises(PolicyError, match="can add 1..3 now"):
        _run_scripted([[AddNodes("cloud", 4)]], [{"gpus": 1, "duration": 10}])
    with pytest.raises(PolicyError, match="expected an autoscaling pool"):
        _run_scripted([[AddNodes("nope", 1)]], [{"gpus": 1, "duration": 10}])
    with pytest.raises(PolicyError, match="not idle"):
        _run_scripted([[Start(0, (0,)), RemoveNodes((0,))]], [{"gpus": 1, "duration": 10}])
    with pytest.raises(PolicyError, match="below its autoscale.min 1"):
        _run_scripted([[RemoveNodes((0,))]], [{"gpus": 1, "duration": 10}])
    with pytest.raises(PolicyError, match="which is not up"):
        _run_scripted([[RemoveNodes((3,))]], [{"gpus": 1, "duration": 10}])
    with pytest.raises(PolicyError, match="GPU 4 is on node cloud/1, which is down"):
        _run_scripted([[Start(0, (4,))]], [{"gpus": 1, "duration": 10}])  # node 1 is not provisioned


def test_autoscale_min_above_count_is_a_scenario_error():
    with pytest.raises(Exception, match="autoscale.min 5 > count 4"):
        _cloud([{"gpus": 1, "duration": 10}], min_nodes=5)
