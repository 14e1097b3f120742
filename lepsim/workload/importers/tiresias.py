"""Tiresias simulator traces (``simulator/*_job.csv``) and cluster files (``cluster_spec.csv``).

Jobs:

| upstream column | lepsim field | conversion |
| --- | --- | --- |
| ``job_id`` | ``name`` | ``tiresias-<job_id>`` |
| ``num_gpu`` | ``gpus`` | integer ≥ 1 |
| ``submit_time`` (s) | ``submit`` | seconds as is, ≥ 0 |
| ``duration`` (s) | ``duration`` | seconds as is, > 0 |
| ``model_name`` | ``model`` | as is (no profile needed: the job runs for its duration) |
| ``iterations`` | – | not used (the duration is the runtime; Tiresias' models have no bundled profile) |
| ``interval`` | – | not used (the gap to the next submit; ``submit_time`` already gives it) |

Cluster (one row → one node pool of ``num_switch × num_node_p_switch`` nodes):

| upstream column | pool field | conversion |
| --- | --- | --- |
| ``num_switch`` × ``num_node_p_switch`` | ``count`` | integers ≥ 1 |
| ``num_gpu_p_node`` | ``gpus_per_node`` | integer ≥ 0 |
| ``num_cpu_p_node`` | ``cpus`` | integer ≥ 1 |
| ``mem_p_node`` (GB) | ``memory`` | × 1e9 bytes (``common.GB``) |
| – | ``gpu_type`` | not in the file: given by the user (``--gpu-type``) |
"""
from __future__ import annotations

from pathlib import Path

from lepsim.workload.importers.common import GB, ImportResult, Rows, job_row, number

COLUMNS = ("job_id", "num_gpu", "submit_time", "iterations", "model_name", "duration", "interval")
REQUIRED = ("job_id", "num_gpu", "submit_time", "duration")
CLUSTER_COLUMNS = ("num_switch", "num_node_p_switch", "num_gpu_p_node", "num_cpu_p_node", "mem_p_node")


def read(path: Path, display: str, options) -> ImportResult:
    rows = Rows(path, display, columns=COLUMNS, required=REQUIRED)
    out: list[dict] = []
    for line, c in rows:
        mark = rows.start_row()
        g = number(rows, line, "num_gpu", c["num_gpu"], minimum=1, integer=True)
        t = number(rows, line, "submit_time", c["submit_time"], minimum=0, expected="a time in seconds")
        d = number(rows, line, "duration", c["duration"], minimum=0, strict=True, expected="a duration in seconds")
        if rows.row_ok(mark):
            out.append(job_row(line, t, g, duration=d, name=f"tiresias-{c['job_id']}" if c["job_id"] else None,
                               model=c.get("model_name"), tenant=options.tenant))
    return rows.result(out)


def read_cluster(path: Path, display: str, options) -> ImportResult:
    """Node pools (dicts in the scenario's ``cluster.pools[]`` shape) from a cluster file."""
    rows = Rows(path, display, columns=CLUSTER_COLUMNS)
    pools: list[dict] = []
    for line, c in rows:
        mark = rows.start_row()
        sw = number(rows, line, "num_switch", c["num_switch"], minimum=1, integer=True)
        per = number(rows, line, "num_node_p_switch", c["num_node_p_switch"], minimum=1, integer=True)
        g = number(rows, line, "num_gpu_p_node", c["num_gpu_p_node"], minimum=0, integer=True)
        cpu = number(rows, line, "num_cpu_p_node", c["num_cpu_p_node"], minimum=1, integer=True)
        mem = number(rows, line, "mem_p_node", c["mem_p_node"], minimum=0, strict=True, expected="a size in GB")
        if g and not options.gpu_type:
            rows.bad(line, "num_gpu_p_node", c["num_gpu_p_node"],
                     "a GPU type for these GPUs (the file names none: gpu_type, or --gpu-type)")
        if rows.row_ok(mark):
            pool = {"name": f"tiresias-{len(pools)}" if pools else "tiresias", "count": sw * per,
                    "gpus_per_node": g, "cpus": cpu, "memory": mem * GB}
            if g:
                pool["gpu_type"] = options.gpu_type
            pools.append(pool)
    return rows.result(pools)
