"""CSV job traces (lepsim's canonical format; plain or gzipped): one job per row.

Columns (header names, case-insensitive; aliases in brackets):

* ``submit_time`` [submit, time, timestamp] — plain numbers in the source's ``time_unit``
  (default seconds), or strings with units ("90s", "2h").
* ``gpus`` [num_gpus, gpu] — integer ≥ 0.
* ``duration`` [runtime] — reference runtime (same unit rules as submit_time), or
* ``iterations`` [num_iterations, total_steps].
* optional: ``name`` [job_id, job], ``tenant`` [user, vc, cluster], ``model`` [model_name,
  application, job_type], ``gpu_type``, ``cpus``, ``memory`` (bytes or "16GiB"),
  ``batch_size``, ``gpu_fraction`` [gpu_milli, in thousandths of a GPU as in the Alibaba
  openb trace] — the share of one GPU a 1-GPU job uses, ``node_selector`` — required node
  labels as ``key=value`` pairs separated by ``;``, ``priority``
  [priority_class] — an integer priority class (default 0).

Every bad row is reported as ``FILE:LINE: column: what was found, what was expected``.
"""
from __future__ import annotations

import csv
from pathlib import Path

from lepsim.errors import Problem
from lepsim.workload.importers.common import open_text
from lepsim.units import UnitError, parse_bytes, parse_duration

_ALIASES = {
    "submit_time": ("submit_time", "submit", "time", "timestamp"),
    "gpus": ("gpus", "num_gpus", "gpu", "num_gpu"),
    "duration": ("duration", "runtime"),
    "iterations": ("iterations", "num_iterations", "total_steps"),
    "name": ("name", "job_id", "job"),
    "tenant": ("tenant", "user", "vc", "cluster"),
    "model": ("model", "model_name", "application", "job_type"),
    "gpu_type": ("gpu_type",),
    "cpus": ("cpus", "num_cpus"),
    "memory": ("memory", "mem"),
    "batch_size": ("batch_size",),
    "gpu_fraction": ("gpu_fraction", "gpu_milli"),
    "node_selector": ("node_selector",),
    "priority": ("priority", "priority_class"),
}
_UNIT = {"s": 1.0, "min": 60.0, "h": 3600.0}


def read_trace(path: Path, src, display: str) -> tuple[list[dict], list[Problem]]:
    """Rows of a trace as dicts (SI units) and the problems found (file/line/column)."""
    problems: list[Problem] = []
    rows: list[dict] = []
    try:
        fh = open_text(path)
    except OSError as e:
        return [], [Problem(display, None, "", f"cannot read trace: {e.strerror or e}")]
    with fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            return [], [Problem(display, 1, "", "trace is empty, expected a header row")]
        except csv.Error as e:
            return [], [Problem(display, 1, "", f"malformed CSV: {e}")]
        cols = {h.strip().lower(): i for i, h in enumerate(header)}
        index: dict[str, int] = {}
        for key, names in _ALIASES.items():
            for n in names:
                if n in cols:
                    index[key] = cols[n]
                    break
        missing = [k for k in ("submit_time", "gpus") if k not in index]
        if "duration" not in index and "iterations" not in index:
            missing.append("duration or iterations")
        if missing:
            return [], [Problem(display, 1, "", f"header lacks {', '.join(missing)}; found columns {', '.join(header)}")]
        unit = _UNIT[src.time_unit]
        milli = "gpu_fraction" in index and header[index["gpu_fraction"]].strip().lower() == "gpu_milli"

        def time_value(text: str) -> float:
            try:
                return float(text) * unit
            except ValueError:
                return parse_duration(text)

        for line_rows in _numbered(reader):
            line, row = line_rows
            if not row or all(not c.strip() for c in row):
                continue
            row_problems: list[Problem] = []

            def cell(key):
                i = index.get(key)
                return row[i].strip() if i is not None and i < len(row) else ""

            def bad(col, found, expected):
                row_problems.append(Problem(display, line, col, f"found {found!r}, expected {expected}"))

            rec: dict = {"line": line}
            try:
                rec["submit"] = time_value(cell("submit_time")) * src.time_scale
                if rec["submit"] < 0:
                    bad("submit_time", cell("submit_time"), "a time >= 0")
            except UnitError:
                bad("submit_time", cell("submit_time"), "a number or a duration such as 90s")
            try:
                g = float(cell("gpus"))
                if g < 0 or g != int(g):
                    raise ValueError
                rec["gpus"] = int(g)
            except ValueError:
                bad("gpus", cell("gpus"), "an integer >= 0")
            d, it = cell("duration"), cell("iterations")
            rec["duration"] = rec["iterations"] = None
            if d:
                try:
                    rec["duration"] = time_value(d) * src.duration_scale
                    if rec["duration"] <= 0:
                        bad("duration", d, "a duration > 0")
                except UnitError:
                    bad("duration", d, "a number or a duration such as 1h")
            elif it:
                try:
                    rec["iterations"] = float(it)
                    if rec["iterations"] <= 0:
                        bad("iterations", it, "a number > 0")
                except ValueError:
                    bad("iterations", it, "a number > 0")
            else:
                bad("duration", "", "a duration or an iterations value")
            rec["name"] = cell("name") or None
            rec["tenant"] = cell("tenant") or src.tenant or "default"
            rec["model"] = cell("model") or None
            rec["gpu_type"] = cell("gpu_type") or None
            for key, parser, expected in (
                ("cpus", float, "a number >= 0"),
                ("memory", parse_bytes, "a size such as 16GiB"),
                ("batch_size", int, "an integer >= 1"),
            ):
                text = cell(key)
                rec[key] = None
                if text:
                    try:
                        rec[key] = parser(text)
                        if rec[key] < (1 if key == "batch_size" else 0):
                            raise ValueError
                    except (ValueError, UnitError):
                        bad(key, text, expected)
            rec["gpu_fraction"] = 1.0
            text = cell("gpu_fraction")
            if text:
                col = "gpu_milli" if milli else "gpu_fraction"
                try:
                    f = float(text) / (1000.0 if milli else 1.0)
                    if not 0 <= f <= 1:
                        raise ValueError
                    if rec.get("gpus") == 1 and f == 0:
                        raise ValueError
                    if 0 < f < 1 and rec.get("gpus", 1) != 1:
                        bad(col, text, f"a whole GPU for a job of {rec.get('gpus')} GPUs (shares only for 1-GPU jobs)")
                    elif rec.get("gpus", 0) > 0:
                        rec["gpu_fraction"] = f
                except ValueError:
                    bad(col, text, "a number in (0, 1000]" if milli else "a number in (0, 1]")
            rec["node_selector"] = ()
            text = cell("node_selector")
            if text:
                pairs = [p.strip() for p in text.split(";") if p.strip()]
                if all(p.count("=") == 1 and p.split("=")[0].strip() for p in pairs):
                    rec["node_selector"] = tuple(sorted((k.strip(), v.strip()) for k, v in (p.split("=") for p in pairs)))
                else:
                    bad("node_selector", text, "key=value pairs separated by ';'")
            text = cell("priority")
            rec["priority"] = 0
            if text:
                try:
                    rec["priority"] = int(text)
                except ValueError:
                    bad("priority", text, "an integer (priority class)")
            if row_problems:
                problems.extend(row_problems)
            else:
                rows.append(rec)
            if src.limit is not None and len(rows) >= src.limit:
                break
    return rows, problems


def _numbered(reader):
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        yield reader.line_num, row
