"""Gavel throughputs -> training-iteration rows.

Upstream: ``stanford-futuredata/gavel`` @ c4fa4009, ``scheduler/physical_cluster_throughputs.json``
(MIT), gzipped byte-identically in ``lepsim/data/profiles/gavel/``.  Format::

    {gpu_type: {"('<job type>', <scale factor>)": {"null": tput,
                                                   "('<other job type>', <scale factor>)": [tput, other_tput]}}}

Meaning and units (checked against Gavel's ``scripts/profiling/measure_throughput.py``):

* a throughput is **steps per second summed over the job's workers**: the profiler adds
  each worker's ``num_steps / execution_time``.  A data-parallel job on ``n`` GPUs therefore
  makes ``tput / n`` synchronous iterations per second, each iteration processing the
  per-GPU batch on every GPU.
* the batch size in the job type name is per worker (every worker runs the same command);
* ``<gpu>`` = the job's GPUs packed on one server; ``<gpu>_unconsolidated`` = spread, one
  GPU per server (placement ``'1'*n``);
* non-null inner keys: the two jobs space-share the same GPUs (co-location);
* a throughput of 0 marks a run that failed (typically out of memory): no row is written;
* ``<gpu>_unconsolidated`` entries for **one** GPU are skipped: one GPU is the same placement
  packed or spread, and upstream re-measured only the packed copy on its physical cluster
  (the two copies differ in 73 entries, e.g. Recommendation on V100 by 11x); the packed
  entry is the measurement.

SI conversion, in :func:`_iteration_seconds` only: ``time_s = num_gpus / tput`` seconds per
synchronous iteration.
"""
from __future__ import annotations

import ast
import gzip
import json
from pathlib import Path

from lepsim.costs.adapters.common import REF_GAVEL, to_store
from lepsim.costs.adapters.names import DATA_DIR, resolve_job_type
from lepsim.costs.store import ProfileStore

DEFAULT_FILE = DATA_DIR / "gavel" / "physical_cluster_throughputs.json.gz"
_DEVICE = {"k80": "K80", "p100": "P100", "v100": "V100"}


def _iteration_seconds(throughput_steps_per_s: float, num_gpus: int) -> float:
    """SI conversion: worker-summed steps/s on ``num_gpus`` GPUs -> seconds per iteration."""
    return num_gpus / throughput_steps_per_s


def _parse_key(key: str) -> tuple[str, int]:
    job_type, n = ast.literal_eval(key)
    return str(job_type), int(n)


def load_gavel(path: str | Path | None = None) -> ProfileStore:
    p = Path(path) if path else DEFAULT_FILE
    opener = gzip.open if p.name.endswith(".gz") else open
    with opener(p, "rt") as f:
        raw = json.load(f)
    ref = REF_GAVEL + p.name.removesuffix(".gz")
    rows: dict[str, list] = {k: [] for k in (
        "device", "model", "phase", "batch_size", "num_gpus", "placement", "co_located_with",
        "time_s", "source", "source_ref")}

    def add(device, model, batch, n, placement, other, tput):
        rows["device"].append(device)
        rows["model"].append(model)
        rows["phase"].append("train_iteration")
        rows["batch_size"].append(batch)
        rows["num_gpus"].append(n)
        rows["placement"].append(placement)
        rows["co_located_with"].append(other)
        rows["time_s"].append(_iteration_seconds(tput, n))
        rows["source"].append("gavel")
        rows["source_ref"].append(ref)

    for gpu_key, jobs in raw.items():
        base, _, spread = gpu_key.partition("_")
        device = _DEVICE[base]
        for key, entry in jobs.items():
            job_type, n = _parse_key(key)
            if spread and n == 1:
                continue
            model, batch = resolve_job_type(job_type)
            placement = ("1" * n) if spread else str(n)
            for inner, val in entry.items():
                if inner == "null":
                    if val and val > 0:
                        add(device, model, batch, n, placement, "", float(val))
                    continue
                other_type, _other_n = _parse_key(inner)
                other_model, other_batch = resolve_job_type(other_type)
                self_tput = val[0] if isinstance(val, (list, tuple)) else val
                if self_tput and self_tput > 0:
                    other = other_model + (f":{other_batch}" if other_batch is not None else "")
                    add(device, model, batch, n, placement, other, float(self_tput))
    return to_store(rows, where=str(p))
