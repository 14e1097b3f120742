"""Edge cases of LAS and the engine found in review, with hand-computed outcomes."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

import lepsim
from tests.conftest import ROOT, scenario

TWO_TYPES = {"pools": [
    {"name": "v", "count": 1, "gpu_type": "V100", "gpus_per_node": 4, "cpus": 64, "memory": "512GiB"},
    {"name": "t", "count": 1, "gpu_type": "T4", "gpus_per_node": 4, "cpus": 64, "memory": "512GiB"},
]}


def test_las_books_an_idle_gpu_type_before_preempting():
    # job 0 (any type) runs on V100 and is demoted at t=25 (100 GPU-s / 4 GPUs); job 1 (any
    # type, queue 0) arrives at 100: the 4 T4 are idle, so nobody is preempted.
    r = lepsim.simulate(scenario({
        "cluster": TWO_TYPES,
        "workload": {"jobs": [{"submit": 0, "gpus": 4, "duration": 1000},
                              {"submit": 100, "gpus": 4, "duration": 10}]},
        "scheduler": {"policy": "las", "params": {"thresholds": [100]},
                      "preemption": {"checkpoint": "5s", "restore": "5s"}},
    }))
    j = r.jobs.set_index("job_id")
    assert j.loc[0, "preemptions"] == 0 and j.loc[0, "jct_s"] == 1000
    assert j.loc[1, "gpu_type"] == "T4" and j.loc[1, "jct_s"] == 10


def test_a_job_preempted_without_checkpoint_time_restarts_at_once_where_it_fits():
    # job 0 (any type) runs on V100; job 1 requires V100 and arrives at 100 (queue 0) and
    # takes them; job 0, preempted with checkpoint 0, restarts on the idle T4 at t=100
    # (not at its next wake-up), restores 5 s and finishes its remaining 900 s at 1005.
    r = lepsim.simulate(scenario({
        "cluster": TWO_TYPES,
        "workload": {"jobs": [{"submit": 0, "gpus": 4, "duration": 1000},
                              {"submit": 100, "gpus": 4, "duration": 10, "gpu_type": "V100"}]},
        "scheduler": {"policy": "las", "params": {"thresholds": [100]},
                      "preemption": {"checkpoint": 0, "restore": "5s"}},
    }))
    j = r.jobs.set_index("job_id")
    assert j.loc[0, "preemptions"] == 1
    assert j.loc[0, "end_s"] == pytest.approx(1005.0)
    assert j.loc[1, "end_s"] == pytest.approx(110.0)
    starts = r.events[(r.events.event == "start") & (r.events.job_id == 0)].time_s.tolist()
    assert starts == [0.0, 100.0]


def test_las_demotes_at_large_absolute_times():
    base = 3e9 + 0.7
    r = lepsim.simulate(scenario({
        "cluster": {"pools": [{"count": 1, "gpu_type": "V100", "gpus_per_node": 8, "cpus": 64, "memory": "512GiB"}]},
        "workload": {"jobs": [{"submit": base, "gpus": 8, "duration": 1000},
                              {"submit": base + 10, "gpus": 8, "duration": 5}]},
        "scheduler": {"policy": "las", "params": {"thresholds": [100.1]}},
    }))
    j = r.jobs.set_index("job_id")
    # job 0 crosses 100.1 GPU-s at base + 12.5125 and yields to job 1 then (not at its end)
    assert j.loc[0, "preemptions"] == 1
    assert j.loc[1, "end_s"] - base == pytest.approx(12.5125 + 5, abs=1e-5)


def test_cli_param_merges_into_the_scenarios_own_policy_params(tmp_path):
    out = tmp_path / "run"
    subprocess.run([sys.executable, "-m", "lepsim", "run", "scenarios/philly_like.yaml", "--no-progress",
                    "--param", "promote_knob=8", "--out", str(out), "--seed", "5"],
                   check=True, capture_output=True, text=True, cwd=ROOT)
    params = json.loads((out / "manifest.json").read_text())["scenario"]["scheduler"]["params"]
    assert params == {"thresholds": ["1h", "10h"], "promote_knob": 8}
