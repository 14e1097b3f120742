"""Gavel ``.trace`` files (``scheduler/traces/``): tab-separated, no header, one job a line.

| upstream field (position) | lepsim field | conversion |
| --- | --- | --- |
| ``job_type`` (1), e.g. ``ResNet-50 (batch size 64)`` | ``model``, ``batch_size`` | the cost model's name table (``lepsim/data/profiles/models.yaml``): ``resnet50``, per-GPU batch 64; a type without a batch keeps the profile's default batch |
| ``command``, ``working_directory``, ``num_steps_arg``, ``needs_data_dir`` (2–5) | – | not used (how Gavel launched the job) |
| ``total_steps`` (6) | ``iterations`` | number > 0; the runtime then comes from the Gavel profiles |
| ``scale_factor`` (7) | ``gpus`` | integer ≥ 1 |
| ``priority_weight`` (8) | ``priority_weight`` (carried in the canonical CSV) | number > 0; not used by the engine yet |
| ``SLO`` (9), −1 = none | ``slo`` (carried in the canonical CSV) | number; not used by the engine yet |
| ``arrival_time`` (10, s) | ``submit`` | seconds as is, ≥ 0 |
"""
from __future__ import annotations

from pathlib import Path

from lepsim.costs.adapters.names import resolve_job_type
from lepsim.workload.importers.common import ImportResult, Rows, job_row, number

COLUMNS = ("job_type", "command", "working_directory", "num_steps_arg", "needs_data_dir", "total_steps",
           "scale_factor", "priority_weight", "slo", "arrival_time")


def read(path: Path, display: str, options) -> ImportResult:
    rows = Rows(path, display, columns=COLUMNS, header=False, delimiter="\t")
    out: list[dict] = []
    for line, c in rows:
        mark = rows.start_row()
        if not c["job_type"]:
            rows.bad(line, "job_type", "", "a Gavel job type such as 'ResNet-50 (batch size 64)'")
        model, batch = resolve_job_type(c["job_type"])
        steps = number(rows, line, "total_steps", c["total_steps"], minimum=0, strict=True)
        g = number(rows, line, "scale_factor", c["scale_factor"], minimum=1, integer=True)
        w = number(rows, line, "priority_weight", c["priority_weight"], minimum=0, strict=True)
        slo = number(rows, line, "slo", c["slo"])
        t = number(rows, line, "arrival_time", c["arrival_time"], minimum=0, expected="a time in seconds")
        if rows.row_ok(mark):
            r = job_row(line, t, g, iterations=steps, model=model, batch_size=batch, tenant=options.tenant)
            r["priority_weight"] = w
            r["slo"] = None if slo is not None and slo < 0 else slo
            out.append(r)
    return rows.result(out)
