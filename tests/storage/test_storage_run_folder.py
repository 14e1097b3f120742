"""The storage table in the run folder (docs/metrics.md, "The run folder"): written like the
other tables (Parquet and CSV, atomically, listed in manifest.json) when the scenario has a
storage section, and not at all without one."""
from __future__ import annotations

import json

import pandas as pd
import pytest

import lepsim
from tests.conftest import scenario

JOBS = [{"name": "a", "gpus": 1, "duration": 10, "checkpoint_size": "2GB"},
        {"name": "b", "submit": 1, "gpus": 1, "duration": 3, "checkpoint_size": "2GB"}]


def _run(storage: bool):
    # the LAS preemption timeline of test_storage_timelines: a writes 2 GB on [4, 6], reads them on [9, 11]
    data = {"cluster": {"pools": [{"name": "n", "count": 1, "gpu_type": "V100", "gpus_per_node": 1, "cpus": 64,
                                   "memory": "512GiB"}]},
            "workload": {"jobs": JOBS}, "scheduler": {"policy": "las", "params": {"thresholds": [4]}}}
    if storage:
        data["storage"] = {"bandwidth": "1GB/s"}
    return lepsim.simulate(scenario(data))


def test_storage_table_written_in_every_format_and_listed(tmp_path):
    res = _run(storage=True)
    assert len(res.storage) >= 4
    folder = res.save(tmp_path / "run")
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["files"]["storage"]["formats"] == ["storage.parquet", "storage.csv"]
    assert "storage service" in manifest["files"]["storage"]["content"]
    listed = {f for e in manifest["files"].values() for f in e["formats"]}
    assert listed | {"manifest.json"} == {p.name for p in folder.iterdir()}
    pd.testing.assert_frame_equal(pd.read_parquet(folder / "storage.parquet"), res.storage)
    pd.testing.assert_frame_equal(pd.read_csv(folder / "storage.csv"), res.storage, check_dtype=False)
    back = pd.read_csv(folder / "storage.csv").set_index("time_s")
    assert back.loc[4.0, "storage_write_bytes_per_s"] == pytest.approx(1e9)
    assert back.loc[9.0, "storage_read_bytes_per_s"] == pytest.approx(1e9)
    # one format only; the same run again is byte-identical
    csv_only = res.save(tmp_path / "csv", formats=("csv",))
    assert (csv_only / "storage.csv").read_bytes() == (folder / "storage.csv").read_bytes()
    assert not (csv_only / "storage.parquet").exists()
    again = _run(storage=True).save(tmp_path / "again")
    assert (again / "storage.parquet").read_bytes() == (folder / "storage.parquet").read_bytes()


def test_no_storage_table_without_a_storage_section(tmp_path):
    res = _run(storage=False)
    folder = res.save(tmp_path / "run")
    assert not list(folder.glob("storage.*"))
    assert "storage" not in json.loads((folder / "manifest.json").read_text())["files"]
