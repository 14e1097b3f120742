"""Shared test fixtures.

Every simulation run by the test suite is checked for the engine's invariants (no GPU
over-allocated, every job accounted for once, GPU-seconds conserved): the autouse fixture
wraps ``lepsim.simulate``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

import lepsim
import lepsim.api
from lepsim.scenario.spec import Scenario
from lepsim.testing import check_invariants

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "scenarios"


@pytest.fixture(autouse=True)
def _invariants_on_every_simulation(monkeypatch):
    real = lepsim.api.simulate

    def checked(*args, **kwargs):
        result = real(*args, **kwargs)
        check_invariants(result)
        return result

    monkeypatch.setattr(lepsim.api, "simulate", checked)
    monkeypatch.setattr(lepsim, "simulate", checked)
    yield


def scenario(data: dict) -> Scenario:
    """A Scenario from a dict (as a YAML file would give)."""
    return Scenario.model_validate(data)


def small_cluster(gpus_per_node: int = 4, nodes: int = 1, gpu_type: str = "V100") -> dict:
    return {"pools": [{"count": nodes, "gpu_type": gpu_type, "gpus_per_node": gpus_per_node, "cpus": 64,
                       "memory": "512GiB"}]}
