"""Helpers to pin scheduler metrics and check a run's invariants (for your own tests too).

Baselines
---------
One JSON file per (scenario, policy) holds summary metrics with explicit tolerances::

    lepsim baseline update scenarios/burst.yaml --policies fifo,las   # write / refresh on purpose
    lepsim baseline check  scenarios/burst.yaml --policies fifo,las   # exit 1 on drift

or from Python/pytest::

    from lepsim.testing import check_baseline
    check_baseline("scenarios/burst.yaml", "my-policy", directory="tests/baselines")

A policy with parameters is named as in ``lepsim compare``: ``las[thresholds=[1h, 10h]]``
(file ``burst-las[thresholds=[1h,10h]].json``; characters other than letters, digits and
``._-=,[]+`` become ``_`` in the file name).

A metric drifts when ``|new - old| > abs_tol + rel_tol * |old|``.  Edit a file's
tolerances by hand to loosen one metric on purpose; ``update`` keeps edited tolerances.

Invariants
----------
:func:`check_invariants` verifies on a :class:`lepsim.Result` that no GPU was ever held by
two jobs at once nor while its node was down, that every job is accounted for exactly once
(completed, failed, unfinished or not submitted), and that GPU-seconds are conserved
(allocation intervals = the utilization timeline's integral = per-job totals).
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

DEFAULT_METRICS = (
    "jobs_completed", "jobs_unfinished", "jct_mean_s", "jct_p50_s", "jct_p95_s", "jct_p99_s",
    "queueing_delay_mean_s", "queueing_delay_p95_s", "slowdown_mean", "utilization", "makespan_s",
    "queue_length_mean", "preemptions_total", "jobs_failed", "effective_utilization", "lost_gpu_h",
)
INTEGER_METRICS = {"jobs_completed", "jobs_unfinished", "preemptions_total", "jobs_total", "jobs_failed",
                   "requests_completed", "requests_timeout", "requests_rejected"}
# pinned for every inference service of a run (keys FAMILY[SERVICE])
SERVICE_METRICS = ("requests_completed", "requests_timeout", "requests_rejected", "slo_attainment", "goodput_rps",
                   "ttft_p99_s", "tpot_p99_s", "e2e_p99_s", "replicas_mean")
DEFAULT_REL_TOL = 1e-6


class BaselineMismatch(AssertionError):
    pass


class InvariantError(AssertionError):
    pass


def baseline_path(scenario: str | Path, policy: str, directory: str | Path) -> Path:
    """The baseline file of ``policy`` (a name, or ``name[key=value,...]``) on ``scenario``."""
    from lepsim.experiments.policyspec import parse_policy

    label = re.sub(r"[^A-Za-z0-9._=,\[\]+-]", "_", parse_policy(policy).label)
    return Path(directory) / f"{Path(scenario).stem}-{label}.json"


def _run(scenario, policy, seed):
    import lepsim
    from lepsim.experiments.policyspec import parse_policy

    spec = parse_policy(policy)
    return lepsim.simulate(scenario, policy=spec.name, params=dict(spec.params) or None, seed=seed)


def update_baseline(scenario, policy: str, *, directory, seed: int | None = None, metrics=DEFAULT_METRICS,
                    result=None) -> Path:
    """Run and (re)write the baseline file; keeps tolerances already set in an existing file."""
    from lepsim.report.run_folder import atomic_write_text, dumps

    result = result or _run(scenario, policy, seed)
    path = baseline_path(scenario, policy, directory)
    old = json.loads(path.read_text())["metrics"] if path.exists() else {}
    entries = {}
    metrics = list(metrics) + [k for k in result.summary if k.split("[")[0] in SERVICE_METRICS and k.endswith("]")]
    for m in metrics:
        v = result.summary.get(m)
        tol = ({"rel_tol": 0.0, "abs_tol": 0.0} if m.split("[")[0] in INTEGER_METRICS
               else {"rel_tol": DEFAULT_REL_TOL, "abs_tol": 1e-9})
        if m in old:
            tol = {"rel_tol": old[m].get("rel_tol", tol["rel_tol"]), "abs_tol": old[m].get("abs_tol", tol["abs_tol"])}
        entries[m] = {"value": v, **tol}
    from lepsim.experiments.policyspec import parse_policy

    doc = {
        "scenario": Path(scenario).as_posix(),
        "policy": parse_policy(policy).label,
        "seed": result.seed,
        "metrics": entries,
    }
    atomic_write_text(path, dumps(doc))
    return path


def compare_to_baseline(summary: dict, baseline: dict) -> list[str]:
    """Drifted metrics as messages (empty: all within tolerance)."""
    out = []
    for m, e in baseline["metrics"].items():
        old, new = e["value"], summary.get(m)
        if old is None or new is None or (isinstance(new, float) and math.isnan(new)):
            if not ((old is None) and (new is None or (isinstance(new, float) and math.isnan(new)))):
                out.append(f"{m}: baseline {old}, now {new}")
            continue
        tol = e.get("abs_tol", 0.0) + e.get("rel_tol", 0.0) * abs(old)
        if abs(new - old) > tol:
            out.append(f"{m}: baseline {old:.10g}, now {new:.10g} (tolerance ±{tol:.3g})")
    return out


def check_baseline(scenario, policy: str, *, directory, seed: int | None = None, result=None) -> dict:
    """Run the scenario and compare with its baseline; raise :class:`BaselineMismatch` on drift."""
    path = baseline_path(scenario, policy, directory)
    if not path.exists():
        raise FileNotFoundError(
            f"no baseline {path}; create it with `lepsim baseline update {scenario} --policies {policy} --dir {directory}`"
        )
    baseline = json.loads(path.read_text())
    if seed is None:
        seed = baseline.get("seed")
    result = result or _run(scenario, policy, seed)
    drift = compare_to_baseline(result.summary, baseline)
    if drift:
        raise BaselineMismatch(
            f"{scenario} under {policy} drifted from {path}:\n  " + "\n  ".join(drift)
            + f"\nIf the change is intended: lepsim baseline update {scenario} --policies {policy} --dir {directory}"
        )
    return result.summary


def check_invariants(result, *, tol: float = 1e-6) -> None:
    """Raise :class:`InvariantError` when a run breaks an invariant of the engine."""
    jobs, iv, tl = result.jobs, result.intervals, result.timeline
    cap = sum(result.capacity.values())
    # every job exactly once
    ids = jobs["job_id"].to_numpy()
    if len(ids) != len(set(ids.tolist())) or (len(ids) and (ids.min() != 0 or ids.max() != len(ids) - 1)):
        raise InvariantError("job ids are not exactly 0..n-1, once each")
    replicas = jobs[jobs["kind"] == "inference-replica"] if "kind" in jobs.columns else jobs.iloc[:0]
    bad = set(replicas["status"].astype(str)) - {"serving", "retired"}
    if bad:
        raise InvariantError(f"unexpected replica statuses {bad}")
    jobs = jobs[jobs["kind"] == "training"] if "kind" in jobs.columns else jobs
    ok_status = {"completed", "failed", "unfinished", "not_submitted"}
    bad = set(jobs["status"].astype(str)) - ok_status
    if bad:
        raise InvariantError(f"unexpected job statuses {bad}")
    s = result.summary
    if (s["jobs_completed"] + s["jobs_failed"] + s["jobs_unfinished"] + s["jobs_not_submitted"] != s["jobs_total"]
            or s["jobs_total"] != len(jobs)):
        raise InvariantError("completed + failed + unfinished + not_submitted != jobs")
    failed = jobs[jobs["status"] == "failed"]
    if failed["end_s"].isna().any() or (failed["failures"] < 1).any():
        raise InvariantError("a failed job has no end or was never interrupted by a failure")
    if (jobs["lost_s"] > jobs["executed_s"] + tol).any() or (jobs["data_stall_s"] > jobs["executed_s"] + tol).any():
        raise InvariantError("a job lost or stalled longer than it ran")
    done = jobs[jobs["status"] == "completed"]
    if done["end_s"].isna().any() or (done["end_s"] < done["submit_time_s"] - tol).any():
        raise InvariantError("a completed job has no end, or ends before it was submitted")
    if (done["progress"] < 1 - 1e-9).any():
        raise InvariantError("a completed job did not do all its work")
    if (done["first_start_s"] < done["submit_time_s"] - tol).any():
        raise InvariantError("a job started before it was submitted")
    # no GPU over-allocated: per GPU, the shares held at any instant add up to at most 1
    if len(iv):
        gpu_rows = []
        for start, end, n, gids in zip(iv["start_s"].to_numpy(), iv["end_s"].to_numpy(), iv["gpus"].to_numpy(dtype=float),
                                       iv["gpu_ids"].astype(str)):
            if gids:
                ids = gids.split()
                share = n / len(ids)
                for g in ids:
                    gpu_rows.append((int(g), start, share))
                    gpu_rows.append((int(g), end - tol, -share))  # touching intervals do not overlap
        if gpu_rows:
            arr = np.array(gpu_rows, dtype=float)
            order = np.lexsort((arr[:, 2], arr[:, 1], arr[:, 0]))  # by GPU, time, releases first
            arr = arr[order]
            held = np.cumsum(arr[:, 2])  # each GPU's deltas sum to 0: the running sum restarts per GPU
            over = held > 1.0 + 1e-9
            if over.any():
                k = int(np.argmax(over))
                raise InvariantError(f"GPU {int(arr[k, 0])} held {held[k]:.6g} times over at t={arr[k, 1]:g}")
        _check_isolation(result, iv, tol)
        _check_elastic(jobs, iv)
        _check_down_gpus(result, iv, tol)
        if (iv["end_s"] < iv["start_s"]).any():
            raise InvariantError("an interval ends before it starts")
    if (tl["allocated_gpus"] > cap + 1e-9).any() or (tl["allocated_gpus"] < -1e-9).any():  # shares add in floats
        raise InvariantError("allocated GPUs outside [0, capacity]")
    if "down_gpus" in tl and ((tl["allocated_gpus"] + tl["down_gpus"] > cap).any() or (tl["down_gpus"] < 0).any()):
        raise InvariantError("allocated + down GPUs exceed the capacity")
    # GPU-seconds conserved
    from lepsim.metrics.summary import step_integral

    total_iv = float(iv["gpu_s"].sum()) if len(iv) else 0.0
    total_tl = step_integral(tl["time_s"].to_numpy(), tl["allocated_gpus"].to_numpy(dtype=float), 0.0, result.end_time)
    total_jobs = float(result.jobs["allocated_gpu_s"].sum())
    scale = max(total_iv, 1.0)
    if abs(total_iv - total_tl) > tol * scale or abs(total_iv - total_jobs) > tol * scale:
        raise InvariantError(
            f"GPU-seconds not conserved: intervals {total_iv:.9g}, timeline {total_tl:.9g}, jobs {total_jobs:.9g}"
        )
    # the window's GPU-hours split into training and service replicas; overhead within training
    if "training_gpu_h" in s and getattr(result, "window", None) is not None:
        lo, hi = result.window
        held_tl = step_integral(tl["time_s"].to_numpy(), tl["allocated_gpus"].to_numpy(dtype=float), lo, hi) / 3600.0
        parts = s["training_gpu_h"] + sum(v for k, v in s.items() if k.startswith("replica_gpu_h["))
        if abs(parts - held_tl) > tol * max(held_tl, 1.0):
            raise InvariantError(f"window GPU-h: training + replicas {parts:.9g} != timeline {held_tl:.9g}")
        if not -tol <= s["overhead_gpu_h"] <= s["training_gpu_h"] * (1 + tol) + tol:
            raise InvariantError(f"overhead_gpu_h {s['overhead_gpu_h']:g} outside [0, training_gpu_h "
                                 f"{s['training_gpu_h']:g}]")
    # communication is part of running time; no network link carries more than its capacity
    if "comm_s" in jobs:
        comm = jobs["comm_s"].to_numpy(dtype=float)
        ex = jobs["executed_s"].to_numpy(dtype=float)
        bad = ~np.isnan(comm) & ((comm < -tol) | (comm > ex * (1 + tol) + tol))
        if bad.any():
            k = int(np.argmax(bad))
            raise InvariantError(f"job {int(jobs['job_id'].iloc[k])}: comm_s {comm[k]:g} outside [0, executed_s {ex[k]:g}]")
    links = getattr(result, "links", None)
    if links is not None and len(links):
        load = links["load_bytes_per_s"].to_numpy(dtype=float)
        cap = links["capacity_bytes_per_s"].to_numpy(dtype=float)
        over = load > cap * (1 + 1e-9) + 1e-6
        if over.any():
            k = int(np.argmax(over))
            raise InvariantError(f"link {links['link'].iloc[k]} carries {load[k]:g} B/s over its capacity {cap[k]:g} "
                                 f"at t={links['time_s'].iloc[k]:g}")
        _check_down_links(result, links)
    if getattr(result, "requests", None) is not None:
        _check_requests(result, replicas, tol)


def _check_down_links(result, links) -> None:
    """While a cable is down (between its ``link_down`` and ``link_up`` events, or the end),
    both its directed links have capacity 0 and carry nothing: no flow crossing a down link
    gets a rate > 0."""
    ev = result.events
    if ev is None or not len(ev):
        return
    ev = ev[ev["event"].isin(["link_down", "link_up"])]
    if not len(ev):
        return
    since: dict[str, float] = {}
    spans: list[tuple[str, float, float]] = []
    for t, kind, detail in zip(ev["time_s"].to_numpy(dtype=float), ev["event"].astype(str), ev["detail"].astype(str)):
        if kind == "link_down":
            since[detail] = t
        elif detail in since:
            spans.append((detail, since.pop(detail), t))
    spans += [(d, t0, result.end_time) for d, t0 in since.items()]
    by_link = {name: g for name, g in links.groupby(links["link"].astype(str), sort=False)}
    for detail, t0, t1 in spans:
        for name in detail.split(","):
            g = by_link.get(name)
            if g is None:
                raise InvariantError(f"link {name} went down at t={t0:g} but has no row in the links table")
            t = g["time_s"].to_numpy(dtype=float)
            at = np.flatnonzero(t <= t0)
            rows = np.flatnonzero((t > t0) & (t < t1))
            if at.size:
                rows = np.append(at[-1], rows)
            if not at.size or (g["capacity_bytes_per_s"].to_numpy(dtype=float)[rows] != 0).any() or \
                    (g["load_bytes_per_s"].to_numpy(dtype=float)[rows] > 0).any():
                raise InvariantError(f"link {name} is down from t={t0:g} to t={t1:g} but has capacity or load then")


def _check_requests(result, replicas, tol: float) -> None:
    """Invariants of the inference requests (see lepsim.engine.services)."""
    rq = result.requests
    st = rq["status"].astype(str)
    bad = set(st) - {"completed", "unfinished", "rejected", "timeout"}
    if bad:
        raise InvariantError(f"unexpected request statuses {bad}")
    done = rq[st == "completed"]
    if done[["first_token_s", "finish_s"]].isna().any().any():
        raise InvariantError("a completed request has no first token or finish time")
    if ((done["first_token_s"] < done["arrival_s"] - tol) | (done["finish_s"] < done["first_token_s"] - tol)).any():
        raise InvariantError("a request's first token precedes its arrival, or its finish precedes its first token")
    if (done["finish_s"] > result.end_time + tol).any():
        raise InvariantError("a request finished after the end of the run")
    names = dict(zip(replicas["job_id"], replicas["source"]))
    if len(done) and not done["replica"].isin(list(names)).all():
        raise InvariantError("a completed request names a replica that is not a service replica")
    dropped = rq[st.isin(["rejected", "timeout"])]
    if (dropped["finish_s"] < dropped["arrival_s"] - tol).any():
        raise InvariantError("a request was dropped before it arrived")
    s = result.summary
    for name in rq["service"].unique():
        m = rq[(rq["service"] == name) & rq["measured"]]
        parts = sum(s[f"requests_{k}[{name}]"] for k in ("completed", "rejected", "timeout", "unfinished"))
        if parts != s[f"requests[{name}]"] or s[f"requests[{name}]"] != len(m):
            raise InvariantError(f"service {name}: completed + rejected + timeout + unfinished != requests")
        u = s[f"replica_utilization[{name}]"]
        if u == u and not (0.0 <= u <= 1.0 + tol):
            raise InvariantError(f"service {name}: replica utilization {u} outside [0, 1]")


def _check_isolation(result, iv, tol: float) -> None:
    """No node hosts an isolated tenant's job and another tenant's job at the same instant."""
    from lepsim.metrics.records import node_shares

    tenants = getattr(getattr(result.scenario, "workload", None), "tenants", {}) or {}
    isolated = {t for t, spec in tenants.items() if spec.isolated}
    if not isolated:
        return
    tenant_of = dict(zip(result.jobs["job_id"].tolist(), result.jobs["tenant"].astype(str).tolist()))
    per_node: dict[int, list] = {}
    for jid, start, end, nodes in zip(iv["job_id"].tolist(), iv["start_s"].tolist(), iv["end_s"].tolist(),
                                      iv["nodes"].astype(str).tolist()):
        for node, _k in node_shares(nodes):
            per_node.setdefault(node, []).append((start, end, tenant_of[jid]))
    for node, spans in per_node.items():
        events = sorted([(s, 1, t) for s, e, t in spans] + [(e - tol, -1, t) for s, e, t in spans],
                        key=lambda x: (x[0], x[1]))
        count: dict[str, int] = {}
        for t_, d, ten in events:
            count[ten] = count.get(ten, 0) + d
            present = [x for x, c in count.items() if c > 0]
            if len(present) > 1 and any(x in isolated for x in present):
                raise InvariantError(f"node {node} hosts tenants {sorted(present)} at t={t_:g}, "
                                     "one of them isolated")


def _check_elastic(jobs, iv) -> None:
    """An elastic job (min_gpus/max_gpus) holds between min_gpus and max_gpus GPUs in every
    phase; one GPU id per GPU."""
    if "min_gpus" not in jobs or jobs["min_gpus"].isna().all():
        return
    el = jobs[jobs["min_gpus"].notna()].set_index("job_id")
    rows = iv[iv["job_id"].isin(el.index)]
    if not len(rows):
        return
    n = rows["gpus"].to_numpy(dtype=float)
    lo = el.loc[rows["job_id"], "min_gpus"].to_numpy(dtype=float)
    hi = el.loc[rows["job_id"], "max_gpus"].to_numpy(dtype=float)
    ids = rows["gpu_ids"].astype(str).map(lambda s: len(s.split())).to_numpy()
    bad = (n < lo) | (n > hi) | (ids != n)
    if bad.any():
        k = int(np.argmax(bad))
        raise InvariantError(f"elastic job {int(rows['job_id'].iloc[k])} held {n[k]:g} GPUs, outside "
                             f"[{lo[k]:g}, {hi[k]:g}] or not one id per GPU")


def _check_down_gpus(result, iv, tol: float) -> None:
    """No GPU is held by a job while its node is down (node_down/node_up events)."""
    ev = result.events
    if not len(ev):
        return
    marks = ev[ev["event"].isin(["node_down", "node_up"])]
    if not len(marks):
        return
    down: dict[int, list] = {}  # gpu -> [[start, end], ...]
    for t, kind, detail in zip(marks["time_s"], marks["event"].astype(str), marks["detail"].astype(str)):
        for g in detail.split(":", 1)[1].split():
            spans = down.setdefault(int(g), [])
            if kind == "node_down":
                spans.append([t, result.end_time])
            elif spans:
                spans[-1][1] = t
    for start, end, gids in zip(iv["start_s"].to_numpy(), iv["end_s"].to_numpy(), iv["gpu_ids"].astype(str)):
        for g in gids.split():
            for a, b in down.get(int(g), ()):
                if start < b - tol and a < end - tol:
                    raise InvariantError(f"GPU {g} held on [{start:g}, {end:g}] while its node was down [{a:g}, {b:g}]")
