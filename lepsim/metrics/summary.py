"""Summary metrics from the records.  Each formula is written once; docs/metrics.md explains them."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lepsim.metrics.records import node_shares


def step_integral(times: np.ndarray, values: np.ndarray, lo: float, hi: float) -> float:
    """∫_lo^hi f(t) dt of the right-continuous step function f(t) = values[i] on [times[i], times[i+1])."""
    if hi <= lo or len(times) == 0:
        return 0.0
    t = np.clip(np.append(times, hi), lo, hi)
    return float(np.sum(values * np.diff(t)))


def _q(x: pd.Series, q: float) -> float:
    return float(np.quantile(x.to_numpy(dtype=float), q)) if len(x) else math.nan


def _mean(x: pd.Series) -> float:
    return float(x.mean()) if len(x) else math.nan


def _makespan(jobs: pd.DataFrame) -> float:
    ends = jobs.loc[jobs["status"] == "completed", "end_s"]
    return float(ends.max() - jobs["submit_time_s"].min()) if len(ends) else math.nan


def summarize(jobs: pd.DataFrame, intervals: pd.DataFrame, timeline: pd.DataFrame, *, capacity: dict,
              window: tuple[float, float], storage: pd.DataFrame | None = None,
              events: pd.DataFrame | None = None, links: pd.DataFrame | None = None) -> dict:
    """The summary dict.  ``window`` = [lo, hi] seconds: the measurement window (warm-up to end
    or to horizon − cool-down).  JCT, queueing and slowdown use completed jobs submitted
    inside the window; utilizations integrate allocations over the window."""
    lo, hi = window
    cap_total = sum(capacity.values())
    all_jobs = jobs
    if "kind" in jobs.columns:  # service replicas hold GPUs (utilization) but are not jobs to count
        jobs = jobs[jobs["kind"] == "training"]
    measured = jobs[jobs["measured"]]
    done = measured[measured["status"] == "completed"]
    span = hi - lo
    out: dict = {
        "jobs_total": int(len(jobs)),
        "jobs_completed": int((jobs["status"] == "completed").sum()),
        "jobs_unfinished": int((jobs["status"] == "unfinished").sum()),
        "jobs_failed": int((jobs["status"] == "failed").sum()),
        "jobs_not_submitted": int((jobs["status"] == "not_submitted").sum()),
        "jobs_measured": int(len(measured)),
        "jobs_measured_completed": int(len(done)),
        "jct_mean_s": _mean(done["jct_s"]),
        "jct_p50_s": _q(done["jct_s"], 0.50),
        "jct_p95_s": _q(done["jct_s"], 0.95),
        "jct_p99_s": _q(done["jct_s"], 0.99),
        "queueing_delay_mean_s": _mean(done["queueing_delay_s"]),
        "queueing_delay_p95_s": _q(done["queueing_delay_s"], 0.95),
        "wait_time_mean_s": _mean(done["wait_time_s"]),
        "slowdown_mean": _mean(done["slowdown"]),
        "preemptions_total": int(jobs["preemptions"].sum()),
        "migrations_total": int(jobs["migrations"].sum()),
        "makespan_s": _makespan(jobs),
        "window_start_s": float(lo),
        "window_end_s": float(hi),
    }
    times = timeline["time_s"].to_numpy()
    out["utilization"] = (
        step_integral(times, timeline["allocated_gpus"].to_numpy(dtype=float), lo, hi) / (cap_total * span)
        if cap_total and span > 0 else math.nan
    )
    for t, c in capacity.items():
        col = f"allocated_gpus[{t}]"
        out[f"utilization[{t}]"] = (
            step_integral(times, timeline[col].to_numpy(dtype=float), lo, hi) / (c * span) if c and span > 0 else math.nan
        )
    frag = step_integral(times, timeline["fragmented_gpus"].to_numpy(dtype=float), lo, hi)
    out["fragmented_gpus_mean"] = frag / span if span > 0 else math.nan
    idle = cap_total * span - step_integral(times, timeline["allocated_gpus"].to_numpy(dtype=float), lo, hi)
    out["fragmentation_rate"] = frag / idle if idle > 1e-9 * max(cap_total * span, 1.0) else math.nan
    out["queue_length_mean"] = step_integral(times, timeline["pending_jobs"].to_numpy(dtype=float), lo, hi) / span if span > 0 else math.nan
    out["running_jobs_mean"] = step_integral(times, timeline["running_jobs"].to_numpy(dtype=float), lo, hi) / span if span > 0 else math.nan
    # per tenant: share of the cluster's GPU-seconds in the window held by the tenant's jobs
    if len(intervals) and cap_total and span > 0:
        iv = intervals.merge(all_jobs[["job_id", "tenant"]], on="job_id")
        overlap = (np.minimum(iv["end_s"], hi) - np.maximum(iv["start_s"], lo)).clip(lower=0) * iv["gpus"]
        per = overlap.groupby(iv["tenant"]).sum().sort_index()
        for tenant, v in per.items():
            out[f"utilization_tenant[{tenant}]"] = float(v) / (cap_total * span)
    out["throughput_jobs_per_h"] = float(len(done)) / span * 3600.0 if span > 0 else math.nan
    out.update(_storage_and_failures(jobs, intervals, timeline, cap_total, lo, hi, storage, events))
    out.update(_network(measured, links, lo, hi))
    return out


def _network(measured: pd.DataFrame, links: pd.DataFrame | None, lo: float, hi: float) -> dict:
    """Communication share of running time; the busiest link's mean utilization (docs/metrics.md)."""
    span = hi - lo
    known = measured[measured["comm_s"].notna()] if "comm_s" in measured.columns else measured.iloc[:0]
    ex = float(known["executed_s"].sum()) if len(known) else 0.0
    out = {"comm_share": float(known["comm_s"].sum()) / ex if ex > 0 else math.nan}
    best = math.nan
    if links is not None and len(links) and span > 0:
        for _, g in links.groupby("link", sort=False):
            u = step_integral(g["time_s"].to_numpy(dtype=float), g["utilization"].to_numpy(dtype=float), lo, hi) / span
            if math.isnan(best) or u > best:
                best = u
    out["busiest_link_utilization"] = best
    return out


def cost_and_energy(intervals: pd.DataFrame, billing, power: dict) -> dict:
    """Whole-run cost and energy (not windowed: what the run cost).

    * ``node_hours``: Σ over provisioned node intervals (fixed pools: the whole run) / 3600;
    * ``cost_usd``: Σ node-hours × the pool's ``price_per_hour``; NaN when no pool is priced;
    * ``energy_gpu_kwh``: Σ over allocation intervals of ``gpu_s`` × the GPU type's
      ``tdp_watts`` in the catalog / 3.6e6: every GPU draws its TDP while a job holds it,
      nothing while it is free (the catalog gives no idle power).
    """
    out: dict = {}
    node_s = sum(e - s for _, _, s, e, _ in billing)
    priced = [(e - s, price) for _, _, s, e, price in billing if price is not None]
    out["node_hours"] = node_s / 3600.0
    out["cost_usd"] = sum(d * p for d, p in priced) / 3600.0 if priced else math.nan
    if len(intervals):
        by_type = intervals.groupby(intervals["gpu_type"].astype(object))["gpu_s"].sum()
        joules = sum(float(v) * power.get(t, math.nan) for t, v in by_type.items() if t is not None and v > 0)
    else:
        joules = 0.0
    out["energy_gpu_kwh"] = joules / 3.6e6
    return out


def window_gpu_seconds(intervals: pd.DataFrame, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray]:
    """Per interval: the GPU-seconds held inside [lo, hi] (``gpus`` × length of [start, end] ∩ [lo, hi]),
    and the part of them *computing*: a ``run`` phase's held GPU-seconds × (1 − its
    ``data_stall_s`` / length); 0 for every other phase (load, restore, checkpoint, reserve,
    cold_start).  The basis of ``effective_utilization``, ``training_gpu_h``, ``overhead_gpu_h``
    and ``replica_gpu_h[SERVICE]`` (docs/metrics.md)."""
    s, e = intervals["start_s"].to_numpy(float), intervals["end_s"].to_numpy(float)
    inside = np.clip(np.minimum(e, hi) - np.maximum(s, lo), 0.0, None)
    held = inside * intervals["gpus"].to_numpy(float)
    length = e - s
    stall_share = np.divide(intervals["data_stall_s"].to_numpy(float), length, out=np.zeros_like(length),
                            where=length > 0)
    run = intervals["phase"].astype(str).to_numpy() == "run"
    return held, np.where(run, held * (1.0 - stall_share), 0.0)


def window_gpu_dollars(intervals: pd.DataFrame, gpu_price: dict, lo: float, hi: float) -> float:
    """Σ over intervals of the GPU-seconds held inside [lo, hi] × the $ per GPU-hour of the node
    each of its GPUs is on (``gpu_price[node index]`` = the pool's ``price_per_hour`` / the
    node's GPUs) / 3600.  A job over several nodes splits its GPU-seconds by its GPUs there
    (``nodes``).  NaN when any of those GPU-seconds is on a node without a price."""
    held, _ = window_gpu_seconds(intervals, lo, hi)
    dollars = 0.0
    for gs, nodes in zip(held.tolist(), intervals["nodes"].astype(object).tolist()):
        if gs <= 0:
            continue
        shares = node_shares(nodes)
        total = sum(k for _, k in shares)
        if total <= 0:
            return math.nan
        for ni, k in shares:
            price = gpu_price.get(ni)
            if price is None:
                return math.nan
            dollars += gs * k / total * price / 3600.0
    return dollars


def _storage_and_failures(jobs, intervals, timeline, cap_total, lo, hi, storage, events) -> dict:
    """Effective utilization, training GPU-hours and their overhead, checkpoint overhead,
    lost work, storage use (docs/metrics.md)."""
    span = hi - lo
    out: dict = {}
    if len(intervals):
        held_iv, computing_iv = window_gpu_seconds(intervals, lo, hi)
        phase = intervals["phase"].astype(str).to_numpy()
        held = float(np.sum(held_iv))
        computing = float(np.sum(computing_iv))
        ckpt = float(np.sum(np.where(phase == "checkpoint", held_iv, 0.0)))
        training = intervals["job_id"].isin(jobs["job_id"]).to_numpy()  # ``jobs``: the training jobs
        train_held = float(np.sum(held_iv[training]))
        train_idle = float(np.sum(held_iv[training] - computing_iv[training]))
    else:
        held = computing = ckpt = train_held = train_idle = 0.0
    out["effective_utilization"] = computing / (cap_total * span) if cap_total and span > 0 else math.nan
    out["checkpoint_overhead_share"] = ckpt / held if held > 0 else math.nan
    out["training_gpu_h"] = train_held / 3600.0
    out["overhead_gpu_h"] = train_idle / 3600.0
    out["data_stall_gpu_h"] = float((jobs["data_stall_s"] * jobs["gpus"]).sum()) / 3600.0
    out["lost_gpu_h"] = float(jobs["lost_gpu_s"].sum()) / 3600.0
    out["node_failures"] = int((events["event"] == "node_down").sum()) if events is not None and len(events) else 0
    times = timeline["time_s"].to_numpy()
    out["down_gpus_mean"] = (step_integral(times, timeline["down_gpus"].to_numpy(dtype=float), lo, hi) / span
                             if span > 0 else math.nan)
    if storage is not None and len(storage) and span > 0:
        out["storage_utilization"] = step_integral(
            storage["time_s"].to_numpy(), storage["storage_utilization"].to_numpy(dtype=float), lo, hi) / span
    else:
        out["storage_utilization"] = math.nan
    return out
