"""Inference-service metrics: per-request records, per-window series, summary keys.

Formulas are written once here and explained in docs/metrics.md.  A request *meets its SLO*
when it completed and each latency that has a target is within it (the p99 target of that
latency, else its p50 target).  Attainment and goodput count the requests that arrived in
the measurement window; dropped and unfinished requests count as missing the SLO.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from lepsim.engine.services import STATUS_NAMES
from lepsim.metrics.summary import window_gpu_dollars, window_gpu_seconds

REQUEST_COLUMNS = (
    "service", "request_id", "arrival_s", "first_token_s", "finish_s", "prompt_tokens", "output_tokens", "replica",
    "status", "reroutes", "ttft_s", "tpot_s", "e2e_s", "slo_met", "measured",
)
WINDOW_COLUMNS = (
    "service", "window_start_s", "window_end_s", "arrivals", "completed", "rejected", "timeouts", "slo_met",
    "slo_attainment", "goodput_rps", "ttft_p99_s", "tpot_p99_s", "e2e_p99_s", "replicas_mean",
    "replica_utilization",
)
LATENCIES = ("ttft", "tpot", "e2e")


def _bound(target) -> float:
    if target is None:
        return math.inf
    if target.p99 is not None:
        return target.p99
    return target.p50 if target.p50 is not None else math.inf


def _slo_met(spec, completed, ttft, tpot, e2e) -> np.ndarray:
    ok = completed.copy()
    for name, x in (("ttft", ttft), ("tpot", tpot), ("e2e", e2e)):
        b = _bound(getattr(spec.slo, name))
        if math.isfinite(b):
            ok &= ~(x > b)  # NaN tpot (one output token) passes its target
    return ok


def requests_frame(raw, window: tuple[float, float]) -> pd.DataFrame:
    """One row per request of every service (file order, then arrival order)."""
    svc = raw.services
    if svc is None:
        return pd.DataFrame({c: pd.Series(dtype="float64") for c in REQUEST_COLUMNS})
    lo, hi = window
    parts = []
    for s in svc.svcs:
        arr = s.plan.arrival
        n = len(arr)
        out = s.plan.output
        completed = s.status == 1
        ttft = s.first - arr
        e2e = np.where(completed, s.finish - arr, np.nan)
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = np.where(completed & (out > 1), (s.finish - s.first) / np.maximum(out - 1, 1), np.nan)
        parts.append(pd.DataFrame({
            "service": pd.Series([s.name] * n, dtype="string"),
            "request_id": np.arange(n, dtype=np.int64),
            "arrival_s": arr,
            "first_token_s": s.first,
            "finish_s": s.finish,
            "prompt_tokens": s.plan.prompt,
            "output_tokens": out,
            "replica": s.replica,
            "status": pd.Categorical.from_codes(s.status.astype(np.int64), categories=list(STATUS_NAMES)),
            "reroutes": s.reroutes,
            "ttft_s": ttft,
            "tpot_s": tpot,
            "e2e_s": e2e,
            "slo_met": _slo_met(s.spec, completed, ttft, tpot, e2e),
            "measured": (arr >= lo) & (arr <= hi),
        }))
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=list(REQUEST_COLUMNS))
    df["status"] = df["status"].astype("string")
    return df


def _q(x: np.ndarray, q: float) -> float:
    x = x[~np.isnan(x)]
    return float(np.quantile(x, q)) if len(x) else math.nan


def _serving_seconds(intervals: pd.DataFrame, job_ids, lo: float, hi: float) -> float:
    iv = intervals[(intervals["phase"] == "run") & intervals["job_id"].isin(job_ids)]
    if iv.empty:
        return 0.0
    return float((np.minimum(iv["end_s"], hi) - np.maximum(iv["start_s"], lo)).clip(lower=0).sum())


def service_summary(raw, requests: pd.DataFrame, intervals: pd.DataFrame, window: tuple[float, float],
                    gpu_price: dict | None = None) -> dict:
    """Summary keys per service, ``<metric>[<service>]``.  ``gpu_price``: $ per GPU-hour by
    node index, for the nodes whose pool has a ``price_per_hour`` (none: no dollar keys)."""
    svc = raw.services
    if svc is None:
        return {}
    lo, hi = window
    span = hi - lo
    out: dict = {}
    for s in svc.svcs:
        n = s.name
        m = requests[(requests["service"] == n) & requests["measured"]]
        done = m[m["status"] == "completed"]
        out[f"requests[{n}]"] = int(len(m))
        out[f"requests_completed[{n}]"] = int(len(done))
        out[f"requests_rejected[{n}]"] = int((m["status"] == "rejected").sum())
        out[f"requests_timeout[{n}]"] = int((m["status"] == "timeout").sum())
        out[f"requests_unfinished[{n}]"] = int((m["status"] == "unfinished").sum())
        for lat in LATENCIES:
            x = done[f"{lat}_s"].to_numpy(dtype=float)
            out[f"{lat}_p50_s[{n}]"] = _q(x, 0.50)
            out[f"{lat}_p99_s[{n}]"] = _q(x, 0.99)
        met = int(m["slo_met"].sum())
        out[f"slo_attainment[{n}]"] = met / len(m) if len(m) else math.nan
        out[f"goodput_rps[{n}]"] = met / span if span > 0 else math.nan
        out[f"throughput_rps[{n}]"] = len(done) / span if span > 0 else math.nan
        ok = True
        for lat in LATENCIES:
            t = getattr(s.spec.slo, lat)
            if t is None:
                continue
            for q, b in ((0.50, t.p50), (0.99, t.p99)):
                if b is not None and not (out[f"{lat}_p{int(q * 100)}_s[{n}]"] <= b):
                    ok = False
        out[f"slo_percentiles_met[{n}]"] = ok
        ids = [r.job_id for r in s.replicas]
        serving = _serving_seconds(intervals, ids, lo, hi)
        out[f"replicas_mean[{n}]"] = serving / span if span > 0 else math.nan
        busy = sum(r.busy for r in s.replicas)
        up = sum(r.serve_time for r in s.replicas)
        out[f"replica_utilization[{n}]"] = busy / up if up > 0 else math.nan
        mine = intervals[intervals["job_id"].isin(ids)]
        out[f"replica_gpu_h[{n}]"] = float(np.sum(window_gpu_seconds(mine, lo, hi)[0])) / 3600.0
        dollars = window_gpu_dollars(mine, gpu_price, lo, hi) if gpu_price else math.nan
        out[f"usd_per_1k_slo_requests[{n}]"] = dollars / (met / 1000.0) if met > 0 and dollars == dollars else math.nan
    return out


def service_windows_frame(raw, requests: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """Per service and metrics window [k w, (k+1) w) up to the end of the run: requests by
    arrival window, serving replicas and their busy fraction."""
    svc = raw.services
    rows = []
    if svc is not None:
        end = raw.end_time
        for s in svc.svcs:
            w = s.win
            nwin = max(1, int(math.ceil(end / w)))
            r = requests[requests["service"] == s.name]
            k = np.minimum((r["arrival_s"].to_numpy() // w).astype(np.int64), nwin - 1)
            status = r["status"].to_numpy()
            met = r["slo_met"].to_numpy()
            lat = {x: r[f"{x}_s"].to_numpy(dtype=float) for x in LATENCIES}
            ids = [rep.job_id for rep in s.replicas]
            order = np.argsort(k, kind="stable")
            bounds = np.searchsorted(k[order], np.arange(nwin + 1))
            for b in range(nwin):
                sel = order[bounds[b]:bounds[b + 1]]
                a, z = b * w, min((b + 1) * w, end)
                st = status[sel]
                comp = st == "completed"
                nmet = int(met[sel].sum())
                serving = _serving_seconds(intervals, ids, a, z)
                busy = s.busy_bins[b] if b < len(s.busy_bins) else 0.0
                rows.append((
                    s.name, a, z, int(len(sel)), int(comp.sum()), int((st == "rejected").sum()),
                    int((st == "timeout").sum()), nmet, nmet / len(sel) if len(sel) else math.nan,
                    nmet / (z - a) if z > a else math.nan,
                    _q(lat["ttft"][sel][comp], 0.99), _q(lat["tpot"][sel][comp], 0.99), _q(lat["e2e"][sel][comp], 0.99),
                    serving / (z - a) if z > a else math.nan, busy / serving if serving > 0 else math.nan,
                ))
    df = pd.DataFrame.from_records(rows, columns=list(WINDOW_COLUMNS))
    df["service"] = df["service"].astype("string")
    return df
