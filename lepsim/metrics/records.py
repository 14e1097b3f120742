"""Records → DataFrames.  Column names carry their units (``_s`` seconds, ``_gpu_s`` GPU-seconds)."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lepsim.engine.view import DONE, FAILED

JOB_COLUMNS = (
    "job_id", "name", "tenant", "model", "source", "gpus", "cpus", "memory_bytes", "requested_gpu_type",
    "gpu_type", "submit_time_s", "first_start_s", "end_s", "status", "preemptions", "queueing_delay_s",
    "wait_time_s", "jct_s", "isolated_runtime_s", "slowdown", "executed_s", "allocated_gpu_s",
    "progress", "measured", "migrations", "comm_s", "kind", "load_s", "restore_s", "checkpoint_s", "data_stall_s", "checkpoints",
    "failures", "lost_s", "lost_gpu_s", "min_gpus", "max_gpus",
)


def jobs_frame(raw, window: tuple[float, float]) -> pd.DataFrame:
    """One row per job.  status: completed | failed (interrupted by node failures more than
    failures.max_retries times) | unfinished (started or queued at the end) |
    not_submitted (submit time after the horizon).  ``measured``: submitted inside the
    metrics window (after warm-up, before cool-down)."""
    lo, hi = window
    end = raw.end_time
    rows = []
    for j in raw.jobs:
        r = j.req0  # as submitted (a Resize changes j.req)
        if r.kind != "training":
            status = "retired" if j.state == DONE else "serving"
        elif j.state == DONE:
            status = "completed"
        elif j.state == FAILED:
            status = "failed"
        elif r.submit_time > end:
            status = "not_submitted"
        else:
            status = "unfinished"
        jct = (j.end - r.submit_time) if j.state == DONE else math.nan
        pt = j.phase_time
        qd = (j.first_start - r.submit_time) if j.first_start is not None else math.nan
        rows.append((
            r.job_id, r.name, r.tenant, r.model, r.source, r.gpus, r.cpus, r.memory_bytes, r.gpu_type,
            j.alloc_type if j.alloc_type is not None else None, r.submit_time,
            j.first_start if j.first_start is not None else math.nan,
            j.end if j.end is not None else math.nan, status, j.preemptions, qd,
            j.wait_total if status != "not_submitted" else math.nan, jct, j.isolated_runtime,
            jct / j.isolated_runtime if j.state == DONE and j.isolated_runtime > 0 else math.nan,
            j.executed, j.gpu_seconds, (j.work_done / j.work_total) if j.work_total > 0 else 1.0,
            bool(lo <= r.submit_time <= hi) and r.kind == "training", j.migrations, j.comm_s, r.kind,
            pt.get("load", 0.0), pt.get("restore", 0.0), pt.get("checkpoint", 0.0), j.stall_s, j.ckpt_count,
            j.failures, j.lost_s, j.lost_gpu_s,
            math.nan if r.min_gpus is None else r.min_gpus, math.nan if r.max_gpus is None else r.max_gpus,
        ))
    df = pd.DataFrame.from_records(rows, columns=list(JOB_COLUMNS))
    for c in ("name", "tenant", "model", "source", "requested_gpu_type", "gpu_type", "status", "kind"):
        df[c] = df[c].astype("string")
    return df


def intervals_frame(raw) -> pd.DataFrame:
    df = pd.DataFrame.from_records(
        raw.intervals,
        columns=["job_id", "phase", "start_s", "end_s", "gpus", "gpu_type", "nodes", "gpu_ids", "data_stall_s"],
    )
    for c in ("phase", "gpu_type", "nodes", "gpu_ids"):
        df[c] = df[c].astype("string")
    df["gpu_s"] = df["gpus"] * (df["end_s"] - df["start_s"])
    return df


def node_shares(text) -> list[tuple[int, int]]:
    """An ``intervals`` row's ``nodes`` (``"node:GPUs,node:GPUs"``) as [(node, GPUs), ...];
    [] when empty or missing."""
    if text is None or (isinstance(text, float) and math.isnan(text)) or text is pd.NA or not str(text):
        return []
    return [(int(n), int(k)) for n, k in (part.split(":") for part in str(text).split(",") if part)]


def timeline_frame(raw) -> pd.DataFrame:
    cols = ["time_s", "allocated_gpus", "running_jobs", "pending_jobs", "fragmented_gpus", "down_gpus"] + [f"allocated_gpus[{t}]" for t in raw.gpu_types]
    df = pd.DataFrame.from_records(raw.timeline, columns=cols)
    cap = sum(raw.capacity.values())
    df["utilization"] = df["allocated_gpus"] / cap if cap else np.nan
    return df


def events_frame(raw) -> pd.DataFrame:
    df = pd.DataFrame.from_records(raw.events, columns=["time_s", "event", "job_id", "detail"])
    df["event"] = df["event"].astype("string")
    df["detail"] = df["detail"].astype("string")
    return df


def storage_frame(raw) -> pd.DataFrame:
    """The storage service over time (a step function, one row per change; empty without a
    storage section): bytes/s read and written, bandwidth available (lower during an outage),
    utilization against the nominal bandwidth, and checkpoint bytes kept."""
    return pd.DataFrame.from_records(list(raw.storage), columns=[
        "time_s", "storage_read_bytes_per_s", "storage_write_bytes_per_s", "storage_bandwidth_bytes_per_s",
        "checkpoint_bytes_stored", "storage_utilization"])


LINK_COLUMNS = ["time_s", "link", "kind", "capacity_bytes_per_s", "load_bytes_per_s", "utilization"]


def links_frame(raw) -> pd.DataFrame:
    """Network link load as step functions: a row whenever a finite link's load or capacity
    changes (each row holds until the link's next row; a link taken down has capacity 0 and
    utilization 0).  Empty without ``cluster.network``."""
    df = pd.DataFrame.from_records(list(raw.links), columns=LINK_COLUMNS[:-1])
    for c in ("link", "kind"):
        df[c] = df[c].astype("string")
    cap = df["capacity_bytes_per_s"].to_numpy(dtype=float)
    load = df["load_bytes_per_s"].to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        # a link at capacity 0 (down: a link outage, a storage outage) carries nothing: 0
        df["utilization"] = np.where(cap > 0, load / np.where(cap > 0, cap, 1.0), 0.0)
    return df
