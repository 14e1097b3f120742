"""Fixtures of the experiment tests: a folder holding tests/data/small.yaml and a sweep file over it."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"

SWEEP = """\
name: load
scenario: small.yaml
set: {simulation.horizon: 8h}
grid:
  workload.generators[0].rate: [2/h, 4/h]
policies:
  - fifo
  - las[thresholds=[30min]]
seeds: 2
"""


@pytest.fixture
def sweep_folder(tmp_path):
    for name in ("small.yaml", "small_trace.csv"):
        shutil.copy(DATA / name, tmp_path / name)
    (tmp_path / "load.yaml").write_text(SWEEP)
    return tmp_path




@pytest.fixture
def sweep_text():
    """The sweep file in ``sweep_folder`` (2 rates × fifo, las × 2 seeds = 8 cells on small.yaml)."""
    return SWEEP
