"""Philly job table as processed by the Pollux authors (``philly.csv`` of adaptdl's
osdi21-artifact simulator): one job per row.

| upstream column | lepsim field | conversion |
| --- | --- | --- |
| ``timestamp`` (wall clock, 2017) | ``submit`` | ``common.wallclock_seconds``, then minus the earliest timestamp of the file (the first job submits at 0 s) |
| ``duration`` (s) | ``duration`` | seconds as is; must be > 0 |
| ``num_gpus`` | ``gpus`` | integer ≥ 1 |
| ``gpu_time`` (GPU·s) | – | checked: must equal duration × num_gpus (1e-6 relative) |
| ``cluster`` (virtual cluster id) | ``tenant`` | as is |

The jobs carry no model: their runtime is the recorded duration on any GPU type.
"""
from __future__ import annotations

from pathlib import Path

from lepsim.workload.importers.common import ImportResult, Rows, from_earliest, job_row, number, wallclock_cell

COLUMNS = ("timestamp", "duration", "num_gpus", "gpu_time", "cluster")


def read(path: Path, display: str, options) -> ImportResult:
    rows = Rows(path, display, columns=COLUMNS)
    out: list[dict] = []
    for line, c in rows:
        mark = rows.start_row()
        t = wallclock_cell(rows, line, "timestamp", c["timestamp"], "2017-10-09 07:01:55")
        d = number(rows, line, "duration", c["duration"], minimum=0, strict=True, expected="a duration in seconds")
        g = number(rows, line, "num_gpus", c["num_gpus"], minimum=1, integer=True)
        gt = number(rows, line, "gpu_time", c["gpu_time"], minimum=0)
        if d is not None and g is not None and gt is not None and abs(gt - d * g) > 1e-6 * max(1.0, d * g):
            rows.bad(line, "gpu_time", c["gpu_time"], f"duration x num_gpus = {d * g:g}")
        if not c["cluster"]:
            rows.bad(line, "cluster", "", "a virtual cluster id")
        if rows.row_ok(mark):
            out.append(job_row(line, t, g, duration=d, tenant=c["cluster"]))
    from_earliest(out, "submit")
    return rows.result(out)
