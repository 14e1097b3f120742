"""Sweeps as Ray tasks give bit-for-bit the table a local run gives.

The test starts its own Ray instance (2 CPUs, no dashboard) on the loopback interface only
(Ray's single-machine mode, RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0, set before ray is
imported) and skips when ray is not installed (``pip install 'lepsim[ray]'``).  Starting
Ray takes seconds, hence the ``slow`` mark.
"""
from __future__ import annotations

import os
import sys

import pytest

from lepsim.cli import main
from lepsim.experiments.sweep import run_sweep

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def ray_local():
    if "ray" in sys.modules:
        from ray._private import ray_constants

        if ray_constants.ENABLE_RAY_CLUSTER:
            pytest.skip("ray was imported before this module could keep it on the loopback interface")
    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")   # single machine: every server on 127.0.0.1
    mp.setenv("RAY_USAGE_STATS_ENABLED", "0")
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
        yield ray
    finally:
        ray.shutdown()
        mp.undo()


def test_ray_sweep_equals_local_bit_for_bit(sweep_folder, ray_local, capsys):
    local = run_sweep(sweep_folder / "load.yaml", sweep_folder / "local", workers=1)
    remote = run_sweep(sweep_folder / "load.yaml", sweep_folder / "ray", ray="auto")
    assert (remote.ran, remote.failed) == (8, {})
    assert remote.path.read_bytes() == local.path.read_bytes()
    rc = main(["sweep", str(sweep_folder / "load.yaml"), "--out", str(sweep_folder / "cli"), "--ray", "auto", "--no-progress"])
    assert rc == 0, capsys.readouterr().err
    assert (sweep_folder / "cli" / "results.parquet").read_bytes() == local.path.read_bytes()
    assert sorted(os.listdir(sweep_folder / "cli" / "cells")) == sorted(os.listdir(sweep_folder / "local" / "cells"))

