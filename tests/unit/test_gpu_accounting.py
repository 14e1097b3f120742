"""GPU-hour accounting in the window: training GPU-h and the part not computing, replica
GPU-h and the dollars per 1,000 requests in SLO (docs/metrics.md), on hand-computed timelines."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import lepsim
from lepsim.metrics.summary import window_gpu_dollars
from tests.conftest import scenario
from tests.storage.test_storage_model import GB, N, _stall_job, one_gpu
from tests.unit.test_services import write_trace

GPU = "A100-80GB"


def _data(tmp_path, *, price=8, slo=1.2) -> dict:
    # One node of 4 A100s at $8 per node-hour ($2 per GPU-hour).  A model-free service, one
    # replica of 1 GPU: cold start [0,10], then serving to the horizon (200).  Requests at 0
    # (before the warm-up, not measured), 20, 20.5 and 30, 1 s each: served [10,11], [20,21],
    # [21,22] (e2e 1.5 > 1.2: misses the SLO) and [30,31]: 2 measured requests meet the SLO.
    # Training, LAS thresholds [60 GPU-s], checkpoint 5 s, restore 5 s:
    #   a (3 GPUs, 100 s) runs [0,20]: 60 GPU-s -> queue 1; b (3 GPUs, 30 s) arrives at 20 in
    #   queue 0 and preempts a: a checkpoints [20,25]; b runs [25,55]; a restores [55,60] and
    #   runs its last 80 s [60,140].
    tr = write_trace(tmp_path / "t.csv", [(0, 1, 1), (20, 1, 1), (20.5, 1, 1), (30, 1, 1)])
    pool = {"count": 1, "gpu_type": GPU, "gpus_per_node": 4, "cpus": 64, "memory": "512GiB"}
    if price is not None:
        pool["price_per_hour"] = price
    return {
        "cluster": {"pools": [pool]},
        "workload": {
            "services": [{"name": "s", "gpu_type": GPU, "cold_start": 10, "service_time": 1.0,
                          "arrivals": {"kind": "trace", "path": tr}, "slo": {"e2e": {"p99": slo}}}],
            "jobs": [{"name": "a", "gpus": 3, "duration": 100}, {"name": "b", "submit": 20, "gpus": 3, "duration": 30}],
        },
        "scheduler": {"policy": "las", "params": {"thresholds": [60]}, "preemption": {"checkpoint": 5, "restore": 5}},
        "simulation": {"horizon": 200, "warmup": 5, "cooldown": 10},
    }


def _run(tmp_path, **kw):
    return lepsim.simulate(scenario(_data(tmp_path, **kw)))


def test_hand_computed_timeline(tmp_path):
    r = _run(tmp_path)
    iv = r.intervals
    got = sorted(zip(iv["job_id"], iv["phase"], iv["start_s"], iv["end_s"], iv["gpus"]), key=lambda x: (x[0], x[2]))
    assert got == [(0, "run", 0, 20, 3), (0, "checkpoint", 20, 25, 3), (0, "restore", 55, 60, 3),
                   (0, "run", 60, 140, 3), (1, "run", 25, 55, 3), (2, "cold_start", 0, 10, 1),
                   (2, "run", 10, 200, 1)]
    assert r.window == (5, 190)  # span 185 s
    assert r.requests["slo_met"].tolist() == [False, True, False, True]  # request 0 waited out the cold start
    s = r.summary
    # training in [5,190]: a 3 x (15 run + 5 checkpoint + 5 restore + 80 run) = 315, b 3 x 30 = 90
    assert s["training_gpu_h"] == pytest.approx(405 / 3600, rel=1e-12)
    # not computing: a's checkpoint and restore, 3 x (5 + 5)
    assert s["overhead_gpu_h"] == pytest.approx(30 / 3600, rel=1e-12)
    # the replica in [5,190]: 5 s of its cold start + 180 s serving, 1 GPU
    assert s["replica_gpu_h[s]"] == pytest.approx(185 / 3600, rel=1e-12)
    # 185 GPU-s x $2 per GPU-h, for 2 requests in SLO
    assert s["usd_per_1k_slo_requests[s]"] == pytest.approx(185 * 2 / 3600 / (2 / 1000), rel=1e-12)
    # beside the existing keys: held 405 + 185 of 4 x 185; computing 375 + 180
    assert s["utilization"] == pytest.approx((405 + 185) / (4 * 185), rel=1e-12)
    assert s["effective_utilization"] == pytest.approx((375 + 180) / (4 * 185), rel=1e-12)
    assert s["cost_usd"] == pytest.approx(200 / 3600 * 8, rel=1e-12)  # whole run, node-hours


def test_training_minus_overhead_is_what_effective_utilization_counts(tmp_path):
    r = _run(tmp_path)
    s, (lo, hi) = r.summary, r.window
    cap = sum(r.capacity.values())
    computing_all = s["effective_utilization"] * cap * (hi - lo) / 3600
    iv = r.intervals
    rep = iv[iv["job_id"].isin(r.jobs.loc[r.jobs["kind"] == "inference-replica", "job_id"]) & (iv["phase"] == "run")]
    replica_computing = float(((np.minimum(rep["end_s"], hi) - np.maximum(rep["start_s"], lo)).clip(lower=0)
                               * rep["gpus"]).sum()) / 3600
    assert s["training_gpu_h"] - s["overhead_gpu_h"] == pytest.approx(computing_all - replica_computing, rel=1e-12)


def _training_computing_by_hand(r) -> float:
    """GPU-h computing of training jobs in the window, interval by interval (run phases less
    their data-stall share): an independent reading of the records."""
    lo, hi = r.window
    train = set(r.jobs.loc[r.jobs["kind"] == "training", "job_id"].tolist())
    total = 0.0
    for row in r.intervals.itertuples():
        if row.job_id in train and row.phase == "run" and row.end_s > row.start_s:
            inside = max(0.0, min(row.end_s, hi) - max(row.start_s, lo))
            total += row.gpus * inside * (1 - row.data_stall_s / (row.end_s - row.start_s))
    return total / 3600


def test_data_stall_and_load_are_overhead():
    # the storage model's stall timeline (tests/storage): load D / bw, then 2 T0 running of
    # which T0 stalled; no other job: training = the whole run, overhead = load + stall
    job, t, b = _stall_job()
    T0 = N * t
    demand = (N * b / job["dataset_samples"] - 1) * GB / T0  # the per-epoch stream at full speed
    bw = demand / 2                                           # half of it: stalled half the time
    r = one_gpu({"storage": {"bandwidth": bw}}, [job])
    load = GB / bw
    s = r.summary
    assert s["training_gpu_h"] == pytest.approx((load + 2 * T0) / 3600, rel=1e-9)
    assert s["overhead_gpu_h"] == pytest.approx((load + T0) / 3600, rel=1e-9)
    assert s["training_gpu_h"] - s["overhead_gpu_h"] == pytest.approx(_training_computing_by_hand(r), rel=1e-9)
    assert s["training_gpu_h"] - s["overhead_gpu_h"] == pytest.approx(s["effective_utilization"] * r.window[1] / 3600,
                                                                      rel=1e-9)


def test_lost_work_counts_as_computing_and_is_reported_apart():
    # tests/storage's failure timeline: run [0,3], checkpoint [3,4], run [4,6], node down
    # [6,8] (2 s of work lost), restore [8,9], run [9,12], checkpoint [12,13], run [13,16],
    # checkpoint [16,17], run [17,18].  Held 16 GPU-s; not computing: 3 checkpoints + 1 restore
    data = {"cluster": {"pools": [{"name": "n", "count": 1, "gpu_type": "V100", "gpus_per_node": 1, "cpus": 64,
                                   "memory": "512GiB"}]},
            "workload": {"jobs": [{"name": "a", "gpus": 1, "duration": 10, "checkpoint_size": "1GB",
                                   "checkpoint_interval": "3s"}]},
            "scheduler": {"policy": "fifo"}, "storage": {"bandwidth": "1GB/s"},
            "failures": {"faults": [{"node": "n/0", "at": 6, "repair": 2}]}}
    r = lepsim.simulate(scenario(data))
    s = r.summary
    assert s["training_gpu_h"] == pytest.approx(16 / 3600)
    assert s["overhead_gpu_h"] == pytest.approx(4 / 3600)
    # the 2 s lost ran, so effective_utilization counts them: they are not in overhead_gpu_h
    assert s["training_gpu_h"] - s["overhead_gpu_h"] == pytest.approx(s["effective_utilization"] * 18 / 3600)
    assert s["lost_gpu_h"] == pytest.approx(2 / 3600)
    # the compare table shows the lost work beside the overhead when a run lost some
    from rich.console import Console

    from lepsim.cli import compare_table
    from lepsim.experiments import run_comparison

    console = Console(record=True, width=200)
    console.print(compare_table(run_comparison(scenario(data), "fifo", seeds=1)))
    text = console.export_text()
    assert "of which overhead (not computing)" in text and "GPU-h lost to failures" in text


def test_unpriced_pool_or_no_request_in_slo_gives_nan(tmp_path):
    r = _run(tmp_path, price=None)
    assert r.summary["replica_gpu_h[s]"] == pytest.approx(185 / 3600)
    assert math.isnan(r.summary["usd_per_1k_slo_requests[s]"]) and math.isnan(r.summary["cost_usd"])
    r = _run(tmp_path, slo=0.5)  # no request within 0.5 s
    assert r.summary["slo_attainment[s]"] == 0
    assert math.isnan(r.summary["usd_per_1k_slo_requests[s]"])


def test_dollars_split_a_job_over_nodes_by_its_gpus_there():
    iv = pd.DataFrame({"start_s": [0.0, 50.0], "end_s": [100.0, 150.0], "gpus": [4.0, 1.0],
                       "data_stall_s": [0.0, 0.0], "phase": ["run", "cold_start"], "nodes": ["0:3,1:1", "1:1"]})
    # window [0, 100]: 300 GPU-s on node 0 at $1/GPU-h, 100 + 50 on node 1 at $4/GPU-h
    assert window_gpu_dollars(iv, {0: 1.0, 1: 4.0}, 0.0, 100.0) == pytest.approx((300 * 1 + 150 * 4) / 3600)
    assert math.isnan(window_gpu_dollars(iv, {0: 1.0}, 0.0, 100.0))  # node 1 unpriced
    assert window_gpu_dollars(iv.iloc[1:], {0: 1.0}, 0.0, 40.0) == 0.0  # nothing held in the window


def _scenario_file(tmp_path, price):
    import yaml

    path = tmp_path / "acct.yaml"
    path.write_text(yaml.safe_dump({"name": "acct", **_data(tmp_path, price=price)}))
    return path


@pytest.mark.parametrize("price, dollars", [(8, "51.39"), (None, "–")])
def test_compare_table_rows(tmp_path, capsys, monkeypatch, price, dollars):
    from lepsim.cli import main

    monkeypatch.setenv("COLUMNS", "200")
    rc = main(["compare", str(_scenario_file(tmp_path, price)), "--policies", "las,fifo", "--seeds", "1",
               "--workers", "1", "--out", str(tmp_path / "out"), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    rows = {ln.split("│")[1].strip(): [c.strip() for c in ln.split("│")[2:-1]] for ln in out.splitlines()
            if ln.startswith("│")}
    # las: the timeline above (405 GPU-s of training, 30 of them overhead, the replica 185 GPU-s);
    # fifo runs a [0,100] then b [100,130] without preemption: 3 x (95 + 30) GPU-s, no overhead
    assert rows["effective GPU utilization (computing)"][0] == "75.0%"
    assert rows["training GPU-h"] == ["0.1125", f"{375 / 3600:.4g}"]
    assert rows["of which overhead (not computing)"] == ["0.008333", "0"]
    assert rows["s: replica GPU-h"] == ["0.05139", "0.05139"]
    assert rows["s: $ per 1k requests in SLO"][0] == dollars
