"""The storage model's consequences, derived from its documented formulas (docs/engine.md):
data stalls from per-epoch reads, the node-local cache, preemption costing utilization,
and the checkpoint-interval trade-off at both extremes."""
from __future__ import annotations

import math

import pytest

import lepsim
from lepsim.costs import build_cost_model
from tests.conftest import scenario

GB = 1e9


def one_gpu(extra=None, jobs=None, policy="fifo", params=None):
    data = {"cluster": {"pools": [{"name": "n", "count": 1, "gpu_type": "V100", "gpus_per_node": 1, "cpus": 8,
                                   "memory": "64GiB"}]},
            "workload": {"jobs": jobs}, "scheduler": {"policy": policy, "params": params or {}}}
    data.update(extra or {})
    return lepsim.simulate(scenario(data))


# ----------------------------------------------------------------------------- data stalls
N = 2000  # iterations


def _iteration_time_and_batch():
    cost = build_cost_model()
    b = cost.default_batch("resnet18")
    return cost.iteration_time("resnet18", "V100", (1,), b), b


def _stall_job(samples_per_epoch_factor=5):
    t, b = _iteration_time_and_batch()
    # epochs E = N * b / samples = 5: the load reads the dataset once, the other 4 epochs
    # stream at 4 * D / (N * t) bytes/s
    return {"name": "r", "gpus": 1, "model": "resnet18", "iterations": N, "dataset_size": GB,
            "dataset_samples": int(N * b / samples_per_epoch_factor)}, t, b


def test_reads_slower_than_compute_stall_the_job():
    job, t, b = _stall_job()
    T0 = N * t
    samples = job["dataset_samples"]
    epochs = N * b / samples
    demand = (epochs - 1) * GB / T0            # bytes/s the stream wants at full compute speed
    bw = demand / 2                            # the storage gives half: the job runs at half speed
    res = one_gpu({"storage": {"bandwidth": bw}}, [job])
    row = res.jobs.iloc[0]
    load = GB / bw
    assert row["load_s"] == pytest.approx(load)
    assert row["end_s"] == pytest.approx(load + 2 * T0, rel=1e-9)
    assert row["data_stall_s"] == pytest.approx(T0, rel=1e-9)
    assert res.summary["effective_utilization"] == pytest.approx(T0 / (load + 2 * T0), rel=1e-9)
    # the storage service ran flat out all along: load, then the stream capped by it
    assert res.summary["storage_utilization"] == pytest.approx(1.0, rel=1e-9)


def test_a_dataset_that_fits_the_node_cache_does_not_stall():
    job, t, b = _stall_job()
    T0 = N * t
    demand = (N * b / job["dataset_samples"] - 1) * GB / T0
    bw = demand / 2
    cached = one_gpu({"storage": {"bandwidth": bw, "cache": {"size": "2GB", "bandwidth": demand * 10}}}, [job])
    row = cached.jobs.iloc[0]
    assert row["data_stall_s"] == pytest.approx(0.0, abs=1e-9)
    assert row["end_s"] == pytest.approx(GB / bw + T0, rel=1e-9)
    # a cache too small for the dataset: back to reading from storage, stalled as above
    small = one_gpu({"storage": {"bandwidth": bw, "cache": {"size": "0.5GB", "bandwidth": demand * 10}}}, [job])
    assert small.jobs.iloc[0]["data_stall_s"] == pytest.approx(T0, rel=1e-9)


def test_without_samples_only_the_load_is_read():
    job, t, _ = _stall_job()
    del job["dataset_samples"]
    res = one_gpu({"storage": {"bandwidth": "1GB/s"}}, [job])
    assert res.jobs.iloc[0]["end_s"] == pytest.approx(1.0 + N * t, rel=1e-9)
    assert res.jobs.iloc[0]["data_stall_s"] == 0


# ----------------------------------------------------------------------------- preemption costs utilization
def test_a_policy_that_preempts_often_loses_utilization():
    # Two 100 s jobs on one GPU.  LAS with thresholds every 10 GPU-s swaps them at every
    # crossing; each swap writes a 2 GB checkpoint and later reads it back (2 s each at
    # 1 GB/s).  FIFO runs them back to back.
    jobs = [{"name": n, "gpus": 1, "duration": 100, "checkpoint_size": "2GB"} for n in ("a", "b")]
    storage = {"storage": {"bandwidth": "1GB/s"}}
    fifo = one_gpu(storage, jobs)
    las = one_gpu(storage, jobs, "las", {"thresholds": [10 * k for k in range(1, 20)]})
    p = las.summary["preemptions_total"]
    assert p >= 5 and fifo.summary["preemptions_total"] == 0
    # every preemption costs its write and the resume its read: nothing overlaps on one GPU
    paid = float((las.jobs["checkpoint_s"] + las.jobs["restore_s"]).sum())
    assert paid == pytest.approx(p * (2 + 2))
    assert las.summary["makespan_s"] == pytest.approx(200 + paid)
    assert fifo.summary["effective_utilization"] == pytest.approx(1.0)
    assert las.summary["effective_utilization"] == pytest.approx(200 / (200 + paid))
    # allocation utilization hides it: the GPU is held all along
    assert las.summary["utilization"] == pytest.approx(1.0)
    # the same policy with preemption free (no storage section, zero fixed times) loses nothing
    free = one_gpu(None, jobs, "las", {"thresholds": [10 * k for k in range(1, 20)]})
    assert free.summary["effective_utilization"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- checkpoint interval
W = 10_000.0            # seconds of work
DELTA = 1.0             # one checkpoint: 1 GB at 1 GB/s (also the restore)
FAULTS = (1500, 3700, 6100, 8300)


def _interval_run(interval):
    job = {"name": "j", "gpus": 1, "duration": W, "checkpoint_size": "1GB"}
    if interval is not None:
        job["checkpoint_interval"] = interval
    res = one_gpu({"storage": {"bandwidth": "1GB/s"},
                   "failures": {"max_retries": 10,
                                "faults": [{"node": "n/0", "at": t, "repair": 10} for t in FAULTS]}}, [job])
    row = res.jobs.iloc[0]
    assert row["status"] == "completed" and row["failures"] == len(FAULTS)
    return row


def _total(row):
    return row["checkpoint_s"] + row["lost_s"] + row["restore_s"]


def test_checkpoint_interval_trade_off_at_both_extremes():
    mtbf = (FAULTS[-1] - FAULTS[0]) / (len(FAULTS) - 1)       # ~2267 s between failures
    young = math.sqrt(2 * DELTA * mtbf)                       # ~67 s
    frequent, rare, best = _interval_run(2 * DELTA), _interval_run(None), _interval_run(young)
    # very frequent: writing dominates what is lost (each loss is under one interval)
    assert frequent["checkpoint_s"] > 10 * frequent["lost_s"]
    assert frequent["lost_s"] <= len(FAULTS) * (2 * DELTA + DELTA)
    # each committed checkpoint costs exactly its write (nothing else uses the storage),
    # plus the part of a write a failure cut short
    n = frequent["checkpoints"]
    assert n * DELTA - 1e-6 <= frequent["checkpoint_s"] <= (n + len(FAULTS)) * DELTA + 1e-6
    # very rare (never): no checkpoint, every failure throws away all the work so far
    assert rare["checkpoint_s"] == 0 and rare["checkpoints"] == 0
    assert rare["lost_s"] == pytest.approx(sum(t - (FAULTS[k - 1] + 10 if k else 0) for k, t in enumerate(FAULTS)))
    # near Young's interval the total beats both extremes
    assert _total(best) < _total(frequent) and _total(best) < _total(rare)
    assert best["lost_s"] <= len(FAULTS) * (young + DELTA)


def test_with_a_network_the_nic_can_be_what_stalls_the_job():
    # the same stalled job, storage fast (100x the demand), the node's NIC at half the demand:
    # the load and the stream cross the NIC, so the timeline is the storage-limited one
    job, t, b = _stall_job()
    T0 = N * t
    demand = (N * b / job["dataset_samples"] - 1) * GB / T0
    nic = demand / 2
    data = {"cluster": {"pools": [{"name": "n", "count": 1, "gpu_type": "V100", "gpus_per_node": 1, "cpus": 8,
                                   "memory": "64GiB"}],
                        "network": {"topology": "leaf-spine", "nic_bandwidth": nic}},
            "workload": {"jobs": [job]}, "scheduler": {"policy": "fifo"}, "storage": {"bandwidth": demand * 100}}
    res = lepsim.simulate(scenario(data))
    row = res.jobs.iloc[0]
    assert row["load_s"] == pytest.approx(GB / nic)
    assert row["end_s"] == pytest.approx(GB / nic + 2 * T0, rel=1e-9)
    assert row["data_stall_s"] == pytest.approx(T0, rel=1e-9)


# ----------------------------------------------------------------------------- every policy copes
ROBUST = {
    "cluster": {"pools": [{"name": "v", "count": 4, "gpu_type": "V100", "gpus_per_node": 4, "cpus": 64,
                           "memory": "512GiB"},
                          {"name": "k", "count": 2, "gpu_type": "K80", "gpus_per_node": 4, "cpus": 64,
                           "memory": "512GiB"}],
                "network": {"topology": "leaf-spine", "nic_bandwidth": "3GB/s", "nodes_per_rack": 2,
                            "oversubscription": 2}},
    "workload": {"generators": [
        {"kind": "poisson", "rate": "20/h", "count": 60, "gpus": {"dist": "choice", "values": [1, 2, 4, 8]},
         "duration": {"dist": "exponential", "mean": "1h"}, "checkpoint_size": "20GB", "checkpoint_interval": "15min"},
        {"kind": "poisson", "rate": "10/h", "count": 20, "gpus": {"dist": "choice", "values": [1, 2]},
         "model": "resnet50", "iterations": {"dist": "uniform", "low": 1000, "high": 20000},
         "dataset_size": "50GB", "dataset_samples": 100000}]},
    "storage": {"bandwidth": "2GB/s", "capacity": "500GB", "cache": {"size": "60GB", "bandwidth": "4GB/s"}},
    "failures": {"mtbf": {"dist": "exponential", "mean": "6h"}, "mttr": {"dist": "exponential", "mean": "20min"},
                 "max_retries": 2, "storage_outages": [{"at": "2h", "duration": "10min"}]},
    "simulation": {"horizon": "12h", "seed": 3},
}


@pytest.mark.parametrize("policy, params", [
    ("fifo", {}), ("sjf", {"skip_blocked": True}), ("las", {"thresholds": [600, 3600]}), ("gavel", {}),
    ("gavel-throughput", {}),
], ids=lambda x: x if isinstance(x, str) else "")
def test_every_policy_runs_with_storage_failures_and_a_network(policy, params):
    # full storage (refused writes), outages, failures with retries, cached and streamed
    # datasets, a constrained network: the run ends and the invariants hold (conftest)
    data = {**ROBUST, "scheduler": {"policy": policy, "params": params,
                                    **({"round": "6min"} if policy.startswith("gavel") else {})}}
    res = lepsim.simulate(scenario(data))
    s = res.summary
    assert s["node_failures"] > 0 and s["lost_gpu_h"] > 0
    assert s["jobs_completed"] + s["jobs_failed"] + s["jobs_unfinished"] == s["jobs_total"]
    assert 0 < s["effective_utilization"] <= s["utilization"] + 1e-12


def test_checkpoint_size_from_the_model_catalog():
    # no checkpoint_size: the model's parameter count (models.yaml) x checkpoint_bytes_per_param
    params = build_cost_model().param_count("resnet50")
    assert params  # the catalog knows ResNet-50's architecture
    bw = 1e8
    job = {"name": "r", "gpus": 1, "model": "resnet50", "iterations": 3000, "checkpoint_interval": 20}
    for per_param in (4, 12):
        res = one_gpu({"storage": {"bandwidth": bw, "checkpoint_bytes_per_param": per_param}}, [job])
        row = res.jobs.iloc[0]
        assert row["checkpoints"] >= 1
        assert row["checkpoint_s"] == pytest.approx(row["checkpoints"] * params * per_param / bw, rel=1e-9)
    # a model without a known parameter count keeps the fixed scheduler.preemption times
    assert build_cost_model().param_count("transformer") is None
