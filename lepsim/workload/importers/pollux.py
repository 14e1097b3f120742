"""Pollux workload CSVs (adaptdl osdi21-artifact, ``simulator/workloads/workload-<n>.csv``).

| upstream column | lepsim field | conversion |
| --- | --- | --- |
| ``name`` | ``name`` | as is |
| ``time`` (s) | ``submit`` | seconds as is, ≥ 0 |
| ``application`` | ``model`` | the Pollux profile model (bert, cifar10, deepspeech2, imagenet, ncf, yolov3) |
| ``num_replicas`` | ``gpus`` | integer ≥ 1 |
| ``batch_size`` (global) | ``batch_size`` (per GPU) | local = ⌈batch_size / num_replicas⌉, split into k = ⌈local / max⌉ accumulation micro-steps of ⌈local / k⌉ (max = the model's largest profiled ``local_bsz``) |
| – | ``iterations`` | k × the ``iteration`` of the last row of the model's bundled ``validation-<batch_size>.csv``: the length of the upstream training run at that global batch size (the Pollux profiles, ``lepsim/data/profiles/pollux/``) |

A row whose application or batch size has no validation profile is a bad row.

Gradient accumulation: Pollux runs a per-GPU batch larger than fits in GPU memory as
several micro-batches per step. Its profiles stop at the largest local batch that ran
(``placements.csv``; e.g. 12 for bert, 16 for yolov3 on a T4), so a step of a larger
local batch becomes k iterations of the micro-batch. This charges a gradient
synchronization per micro-step where Pollux has one per step: an overestimate of the
communication time of multi-GPU jobs that accumulate.
"""
from __future__ import annotations

import csv
import math
from functools import lru_cache
from pathlib import Path

from lepsim.costs.adapters.names import DATA_DIR, canonical_model
from lepsim.workload.importers.common import ImportResult, Rows, job_row, number

COLUMNS = ("name", "time", "application", "num_replicas", "batch_size")
PROFILE_DIR = DATA_DIR / "pollux"


@lru_cache(maxsize=64)
def run_iterations(model: str, global_batch: int) -> float | None:
    """Iterations of the upstream training run of ``model`` at ``global_batch`` (None: no profile)."""
    p = PROFILE_DIR / model / f"validation-{global_batch}.csv"
    if not p.is_file():
        return None
    with open(p, newline="", encoding="utf-8") as fh:
        last = None
        for last in csv.DictReader(fh):
            pass
    return float(last["iteration"]) if last else None


@lru_cache(maxsize=16)
def max_local_batch(model: str) -> int | None:
    """The largest per-GPU batch the model's Pollux profile measured (``placements.csv``)."""
    p = PROFILE_DIR / model / "placements.csv"
    if not p.is_file():
        return None
    with open(p, newline="", encoding="utf-8") as fh:
        return max((int(float(r["local_bsz"])) for r in csv.DictReader(fh)), default=None)


def _batches(model: str) -> str:
    found = sorted(int(p.stem.split("-", 1)[1]) for p in (PROFILE_DIR / model).glob("validation-*.csv"))
    return ", ".join(map(str, found))


def read(path: Path, display: str, options) -> ImportResult:
    rows = Rows(path, display, columns=COLUMNS)
    out: list[dict] = []
    models = sorted(p.name for p in PROFILE_DIR.iterdir() if p.is_dir()) if PROFILE_DIR.is_dir() else []
    for line, c in rows:
        mark = rows.start_row()
        t = number(rows, line, "time", c["time"], minimum=0, expected="a time in seconds")
        g = number(rows, line, "num_replicas", c["num_replicas"], minimum=1, integer=True)
        b = number(rows, line, "batch_size", c["batch_size"], minimum=1, integer=True)
        model = canonical_model(c["application"]) if c["application"] else ""
        its = None
        if model not in models:
            rows.bad(line, "application", c["application"], f"a Pollux profile model: {', '.join(models)}")
        elif b is not None:
            its = run_iterations(model, b)
            if its is None:
                rows.bad(line, "batch_size", c["batch_size"], f"a global batch size profiled for {model}: {_batches(model)}")
        if rows.row_ok(mark):
            local = math.ceil(b / g)
            steps = math.ceil(local / (max_local_batch(model) or local))  # accumulation micro-steps
            out.append(job_row(line, t, g, iterations=its * steps, name=c["name"], model=model,
                               batch_size=math.ceil(local / steps), tenant=options.tenant))
    return rows.result(out)
