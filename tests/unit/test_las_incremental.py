"""The incremental LAS takes exactly the decisions of the straightforward one.

``tests/unit/las_reference.py`` is LAS as it was before it kept its ranked sets across
decisions (an O(running) scan per decision).  Both run on the bundled scenarios and on
random small clusters and workloads (hypothesis), and every output record must be equal:
jobs, allocation intervals, events and the utilization timeline.
"""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import lepsim
from lepsim.policies.registry import _REGISTRY, register
from lepsim.scenario.spec import Scenario
from tests.property.strategies import clusters, jobs_for, placement_params
from tests.property.test_engine_properties import SETTINGS
from tests.unit.las_reference import LASReference


@pytest.fixture(autouse=True, scope="module")
def _reference_registered():
    register(LASReference)
    yield
    _REGISTRY.pop(LASReference.name, None)


def assert_same_run(a, b):
    for frame in ("jobs", "intervals", "events", "timeline"):
        x, y = getattr(a, frame), getattr(b, frame)
        assert x.equals(y), f"{frame} differ"
    assert a.stats["policy_invocations"] == b.stats["policy_invocations"]


@pytest.mark.slow
@pytest.mark.parametrize("path,params", [
    ("scenarios/burst.yaml", {"thresholds": [600, 3600, 20000], "promote_knob": 2}),
    ("scenarios/philly_like.yaml", {"thresholds": [300, 3000], "promote_knob": 1}),
    ("scenarios/steady.yaml", None),
])
def test_bundled_scenarios_identical(path, params):
    sc = lepsim.load_scenario(path)
    assert_same_run(lepsim.simulate(sc, policy="las", params=params),
                    lepsim.simulate(sc, policy="las-reference", params=params))


@st.composite
def cases(draw):
    pools = draw(clusters())
    jobs = draw(jobs_for(pools, max_jobs=25))
    params = dict(draw(placement_params))
    params["thresholds"] = sorted(draw(st.sets(st.sampled_from([0.5, 1, 2, 3, 5, 10, 30]), min_size=1, max_size=3)))
    params["promote_knob"] = draw(st.sampled_from([None, 0.5, 1, 4]))
    pre = {"checkpoint": draw(st.sampled_from([0, 0.5, 2])), "restore": draw(st.sampled_from([0, 0.5, 2]))}
    return pools, jobs, params, pre


@settings(max_examples=40, **SETTINGS)
@given(cases())
def test_random_workloads_identical(case):
    pools, jobs, params, pre = case
    runs = []
    for name in ("las", "las-reference"):
        sc = Scenario.model_validate({"cluster": {"pools": pools}, "workload": {"jobs": jobs},
                                      "scheduler": {"policy": name, "params": params, "preemption": pre}})
        runs.append(lepsim.simulate(sc))
    assert_same_run(*runs)
