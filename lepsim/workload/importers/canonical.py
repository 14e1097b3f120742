"""lepsim's canonical trace CSV: what ``lepsim trace convert`` writes, and what a scenario
reads with the default ``format: csv`` (see docs/scenario.md, "CSV traces").

Times are plain seconds, memory plain bytes, numbers written so that they read back
exactly (``repr``).  Columns ``gpu_fraction`` and ``node_selector`` are written only when
some row has a value other than the default (1, none), ``priority_weight`` and ``slo``
(seconds, Gavel) only when some row has them; the CSV reader ignores those two.
"""
from __future__ import annotations

import csv
import io

COLUMNS = ("name", "submit_time", "gpus", "duration", "iterations", "tenant", "model", "gpu_type", "cpus", "memory",
           "batch_size")
EXTRA = ("gpu_fraction", "node_selector", "priority_weight", "slo")
_DEFAULT = {"gpu_fraction": 1.0, "node_selector": ()}
_KEY = {"submit_time": "submit"}


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, tuple):  # node_selector: ((key, value), ...) -> key=value;key=value
        return ";".join(f"{k}={x}" for k, x in v)
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and abs(v) < 2**53 else repr(v)
    return str(v)


def to_csv_text(rows: list[dict]) -> str:
    """The canonical CSV of job rows (dicts as importers return them), in row order."""
    extra = [c for c in EXTRA if any(r.get(c, _DEFAULT.get(c)) not in (None, _DEFAULT.get(c)) for r in rows)]
    cols = [*COLUMNS, *extra]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(cols)
    for r in rows:
        w.writerow([_cell(r.get(_KEY.get(c, c))) for c in cols])
    return buf.getvalue()


def pools_yaml(pools: list[dict]) -> str:
    """A ``cluster.pools`` YAML block (memory in bytes) for a scenario."""
    import yaml

    return yaml.safe_dump({"pools": [{k: (int(v) if isinstance(v, float) and v.is_integer() else v)
                                      for k, v in p.items()} for p in pools]}, sort_keys=False)


def peak_concurrent_gpus(rows: list[dict]) -> tuple[int, float]:
    """(peak GPUs, time of the peak) if every job ran from its submit time for its duration:
    the demand a cluster would need so that no job ever waits (jobs with a duration only)."""
    ev: list[tuple[float, int]] = []
    for r in rows:
        if r["duration"] is not None and r["gpus"]:
            ev.append((r["submit"], r["gpus"]))
            ev.append((r["submit"] + r["duration"], -r["gpus"]))
    ev.sort(key=lambda e: (e[0], e[1]))  # ends before starts at the same instant
    cur = peak = 0
    at = 0.0
    for t, d in ev:
        cur += d
        if cur > peak:
            peak, at = cur, t
    return peak, at
