"""Timeline export: a simulated run as a Chrome trace (Trace Event Format), for Perfetto.

The file opens in https://ui.perfetto.dev (or chrome://tracing), the viewer people use for
``torch.profiler`` traces.  Layout (docs/experiments.md, "Timeline export"):

* one process per node (``pid`` = 1 + node index, named by the node), one thread per GPU
  (``tid`` = 1 + the GPU's cluster-wide id, named ``GPU <id>``), and ``tid`` 0 ("CPU jobs")
  for jobs that hold no GPU; where slices would overlap on a thread (shares of a GPU,
  concurrent CPU jobs) the later ones go to lanes ``tid`` + k·LANE_STRIDE beside it;
* one complete event (``ph: "X"``) per allocation phase of a job (a row of the intervals
  table: ``run``, ``checkpoint``, ``restore``) on the track of each GPU it holds, ``ts`` =
  ``start_s``·10⁶ and ``dur`` = (``end_s`` − ``start_s``)·10⁶ microseconds;
* an instant event (``ph: "i"``) per preemption on the tracks of the GPUs the job held, and
  per arrival, start, preemption and completion on the cluster's ``events`` track;
* a flow arrow (``ph: "s"``/``"f"``) from a job's phase to its next phase wherever the next
  one is not right after it on the same GPUs (a resume after a preemption, a migration);
* counters (``ph: "C"``) on the cluster process (``pid`` 0): GPU allocation utilization,
  running and pending jobs, allocated GPUs per type, one sample per timeline row.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from lepsim.metrics.records import node_shares

US = 1e6          # microseconds per second
CLUSTER_PID = 0
LANE_STRIDE = 1_000_000   # lane k > 0 of a track is thread tid + k * LANE_STRIDE


def _us(seconds: float) -> float:
    return float(seconds) * US


def gpu_nodes(intervals: pd.DataFrame) -> dict[int, int]:
    """GPU id → node index, from the ``nodes`` ("node:count,...") and ``gpu_ids`` ("a b c")
    columns: GPU ids are numbered node by node, so the sorted ids of an allocation fall
    to its nodes in node order.  Raises ValueError if the table contradicts itself."""
    out: dict[int, int] = {}
    for nodes, ids in zip(intervals["nodes"], intervals["gpu_ids"]):
        gids = _ids(ids)
        shares = node_shares(nodes)
        if sum(k for _, k in shares) != len(gids):
            raise ValueError(f"intervals: nodes {nodes!r} do not account for GPUs {ids!r}")
        i = 0
        for node, k in shares:
            for g in gids[i:i + k]:
                if out.setdefault(g, node) != node:
                    raise ValueError(f"intervals: GPU {g} appears on nodes {out[g]} and {node}")
            i += k
    return out


def _ids(text) -> list[int]:
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return []
    return sorted(int(x) for x in str(text).split())


def chrome_trace(jobs: pd.DataFrame, intervals: pd.DataFrame, timeline: pd.DataFrame, events: pd.DataFrame, *,
                 node_names: dict[int, str] | None = None, title: str = "", metadata: dict | None = None) -> dict:
    """The trace as a dict ``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``."""
    node_names = dict(node_names or {})
    where = gpu_nodes(intervals)
    info = jobs.set_index("job_id")[["name", "tenant", "model"]].to_dict("index") if len(jobs) else {}
    meta: list[dict] = []
    out: list[dict] = []

    def label(jid: int) -> str:
        name = info.get(jid, {}).get("name")
        return f"job {jid}" + (f" ({name})" if isinstance(name, str) and name and name != str(jid) else "")

    # cluster process: counters and the event track
    meta.append({"ph": "M", "name": "process_name", "pid": CLUSTER_PID, "tid": 0, "args": {"name": title or "cluster"}})
    meta.append({"ph": "M", "name": "process_sort_index", "pid": CLUSTER_PID, "tid": 0, "args": {"sort_index": 0}})
    meta.append({"ph": "M", "name": "thread_name", "pid": CLUSTER_PID, "tid": 0, "args": {"name": "events"}})

    nodes_used = sorted(set(where.values()) | {n for s in intervals["nodes"] for n, _ in node_shares(s)})
    for n in nodes_used:
        pid = 1 + n
        meta.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0,
                     "args": {"name": f"node {node_names.get(n, n)}"}})
        meta.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": pid}})
    for g, n in sorted(where.items()):
        meta.append({"ph": "M", "name": "thread_name", "pid": 1 + n, "tid": 1 + g, "args": {"name": f"GPU {g}"}})
        meta.append({"ph": "M", "name": "thread_sort_index", "pid": 1 + n, "tid": 1 + g,
                     "args": {"sort_index": (1 + g) * 1000}})

    rows = list(intervals.itertuples(index=False))
    base: list[list] = []        # per row: its base tracks (pid, tid) before lanes
    for row in rows:
        gids = _ids(row.gpu_ids)
        if gids:
            base.append([(1 + where[g], 1 + g) for g in gids])
        else:
            base.append([(1 + n, 0) for n, _ in node_shares(row.nodes)] or [(CLUSTER_PID, 0)])
    lanes = _lanes(rows, base)   # (row, base track) → lane: slices sharing a track (GPU shares, CPU jobs) never overlap

    def track(i: int, t: tuple) -> tuple:
        k = lanes[(i, t)]
        return t if k == 0 else (t[0], t[1] + k * LANE_STRIDE)

    named: set = set()
    held: dict[int, list] = {}   # job → [(start, end, [(pid, tid)...])]
    for i, row in enumerate(rows):
        tracks = [track(i, t) for t in base[i]]
        for t, (pid, tid) in zip(base[i], tracks):
            if (pid, tid) not in named and (tid != t[1] or t[1] == 0) and pid != CLUSTER_PID:
                named.add((pid, tid))
                what = f"GPU {t[1] - 1}" if t[1] else "CPU jobs"
                k = lanes[(i, t)]
                meta.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid,
                             "args": {"name": what + (f" · lane {k + 1}" if k else "")}})
                meta.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
                             "args": {"sort_index": t[1] * 1000 + k}})
        jid = int(row.job_id)
        held.setdefault(jid, []).append((float(row.start_s), float(row.end_s), tracks))
        name = label(jid) if row.phase == "run" else f"{label(jid)} {row.phase}"
        gpus = float(row.gpus)
        args = {"job_id": jid, "phase": str(row.phase), "gpus": int(gpus) if gpus.is_integer() else gpus,
                "gpu_type": None if pd.isna(row.gpu_type) else str(row.gpu_type), "nodes": str(row.nodes)}
        for pid, tid in tracks:
            out.append({"ph": "X", "name": name, "cat": str(row.phase), "pid": pid, "tid": tid,
                        "ts": _us(row.start_s), "dur": (float(row.end_s) - float(row.start_s)) * US, "args": args})

    # flows: an arrow from each allocation phase of a job to its next one (where the job went
    # after a preemption or migration), from the first GPU track of one to that of the next
    flow_id = 0
    for jid, phases in held.items():
        phases.sort(key=lambda p: (p[0], p[1]))
        for (s0, e0, t0), (s1, _, t1) in zip(phases, phases[1:]):
            if t0 == t1 and s1 == e0:
                continue   # the next phase on the same GPUs right after (run → checkpoint): no arrow
            flow_id += 1
            out.append({"ph": "s", "name": label(jid), "cat": "job", "id": flow_id, "pid": t0[0][0],
                        "tid": t0[0][1], "ts": _us(s0)})
            out.append({"ph": "f", "bp": "e", "name": label(jid), "cat": "job", "id": flow_id, "pid": t1[0][0],
                        "tid": t1[0][1], "ts": _us(s1)})

    for row in events.itertuples(index=False):
        t, ev, jid = float(row.time_s), str(row.event), int(row.job_id)
        out.append({"ph": "i", "s": "t", "name": f"{ev} {label(jid)}", "cat": ev, "pid": CLUSTER_PID, "tid": 0,
                    "ts": _us(t), "args": {"job_id": jid, "detail": "" if pd.isna(row.detail) else str(row.detail)}})
        if ev == "preempt":   # visible on the GPUs the job held when it was preempted
            for start, end, tracks in held.get(jid, []):
                if start < t <= end:
                    for pid, tid in tracks:
                        out.append({"ph": "i", "s": "t", "name": f"preempt {label(jid)}", "cat": "preempt",
                                    "pid": pid, "tid": tid, "ts": _us(t), "args": {"job_id": jid}})
                    break

    types = [c[len("allocated_gpus["):-1] for c in timeline.columns if c.startswith("allocated_gpus[")]
    for row in timeline.to_dict("records"):
        ts = _us(row["time_s"])
        util = row.get("utilization")
        if util is not None and not (isinstance(util, float) and math.isnan(util)):
            out.append({"ph": "C", "name": "GPU allocation utilization", "pid": CLUSTER_PID, "tid": 0, "ts": ts,
                        "args": {"utilization": float(util)}})
        out.append({"ph": "C", "name": "jobs", "pid": CLUSTER_PID, "tid": 0, "ts": ts,
                    "args": {"running": int(row["running_jobs"]), "pending": int(row["pending_jobs"])}})
        out.append({"ph": "C", "name": "allocated GPUs", "pid": CLUSTER_PID, "tid": 0, "ts": ts,
                    "args": {t: int(row[f"allocated_gpus[{t}]"]) for t in types} if types
                    else {"all": int(row["allocated_gpus"])}})

    order = {"X": 0, "s": 1, "f": 2, "i": 3, "C": 4}
    out.sort(key=lambda e: (e["ts"], order[e["ph"]], e["pid"], e["tid"]))
    return {"traceEvents": meta + out, "displayTimeUnit": "ms",
            "otherData": {"generator": "lepsim", "time_unit": "microseconds of simulated time", **(metadata or {})}}


def _lanes(rows, base) -> dict:
    """Lane of each (row, base track): per track, slices sorted by (start, end) go to the
    first lane whose last slice has ended (greedy interval colouring), so that slices on one
    thread never overlap.  Whole GPUs hold one job at a time: their slices all get lane 0."""
    per: dict = {}
    for i, (row, tracks) in enumerate(zip(rows, base)):
        for t in tracks:
            per.setdefault(t, []).append((float(row.start_s), float(row.end_s), i))
    out: dict = {}
    for t, spans in per.items():
        ends: list[float] = []
        for start, end, i in sorted(spans):
            k = next((k for k, e in enumerate(ends) if e <= start), len(ends))
            if k == len(ends):
                ends.append(end)
            else:
                ends[k] = end
            out[(i, t)] = k
    return out


def _node_names(scenario) -> dict[int, str]:
    try:
        from lepsim.hardware import default_catalog
        from lepsim.scenario.loader import scenario_base
        from lepsim.scenario.resolve import resolve_cluster

        nodes, problems = resolve_cluster(scenario.cluster, default_catalog(), scenario_base(scenario)[0])
    except Exception:   # names are a nicety: a scenario that no longer resolves keeps numbers
        return {}
    return {} if problems else {n.index: n.name for n in nodes}


def trace_of_result(result) -> dict:
    """The trace of a :class:`lepsim.Result`."""
    sc = result.scenario
    return chrome_trace(result.jobs, result.intervals, result.timeline, result.events, node_names=_node_names(sc),
                        title=f"{sc.name or 'scenario'} · {result.label} · seed {result.seed}",
                        metadata={"scenario": sc.name, "policy": result.label, "seed": result.seed})


def _table(folder: Path, name: str) -> pd.DataFrame:
    if (folder / f"{name}.parquet").is_file():
        return pd.read_parquet(folder / f"{name}.parquet")
    if (folder / f"{name}.csv").is_file():
        return pd.read_csv(folder / f"{name}.csv", dtype={"nodes": "string", "gpu_ids": "string", "detail": "string"},
                           keep_default_na=False, na_values={"gpu_type": [""], "end_s": [""], "first_start_s": [""]})
    raise FileNotFoundError(f"{folder}: no {name}.parquet or {name}.csv, expected a run folder (lepsim run --out)")


def trace_of_run_folder(folder: str | Path) -> dict:
    """The trace of a run folder written by ``lepsim run`` (Parquet preferred, else CSV)."""
    from lepsim.scenario.spec import Scenario

    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8")) \
        if (folder / "manifest.json").is_file() else {}
    names: dict = {}
    if "scenario" in manifest:
        try:
            names = _node_names(Scenario.model_validate(manifest["scenario"]))
        except ValueError:
            names = {}
    title = " · ".join(str(x) for x in (manifest.get("scenario_name"), manifest.get("policy"),
                                        f"seed {manifest.get('seed')}" if "seed" in manifest else None) if x)
    return chrome_trace(_table(folder, "jobs"), _table(folder, "intervals"), _table(folder, "timeline"),
                        _table(folder, "events"), node_names=names, title=title or folder.name,
                        metadata={k: manifest.get(k) for k in ("scenario_name", "policy", "seed") if k in manifest})


def dumps(trace: dict) -> str:
    return json.dumps(trace, separators=(",", ":"), allow_nan=False) + "\n"


def write_trace(trace: dict, path: str | Path) -> Path:
    """Write the trace as JSON, atomically."""
    from lepsim.report.run_folder import atomic_write_text

    atomic_write_text(Path(path), dumps(trace))
    return Path(path)
