r"""Alibaba GPU cluster trace 2023 (``cluster-trace-gpu-v2023``, the "openb" pods and nodes
of the ATC'23 paper "Beware of Fragmentation").

Pods (one job per pod):

| upstream column | lepsim field | conversion |
| --- | --- | --- |
| ``name`` | ``name`` | as is |
| ``creation_time`` (s) | ``submit`` | seconds as is, ≥ 0 |
| ``scheduled_time``, ``deletion_time`` (s) | ``duration`` | deletion_time − scheduled_time (the time the pod held its node), > 0 |
| ``num_gpu`` | ``gpus`` | integer ≥ 0 (0 = CPU-only pod) |
| ``gpu_milli`` (1000 = a whole GPU) | ``gpu_fraction`` | × 1e-3 (``common.MILLI``) = the share of each GPU; a pod asking a share < 1 of several GPUs is left out (see below) |
| ``cpu_milli`` | ``cpus`` | × 1e-3 cores (``common.MILLI``) |
| ``memory_mib`` | ``memory`` | × 2**20 bytes (``common.MIB``) |
| ``gpu_spec`` (empty = any; ``A\|B`` = either) | ``gpu_type`` | each name through ``GPU_MODELS`` (or the user's ``gpu_types``); alternatives must map to one catalog type |
| ``qos`` (LS, BE, Burstable, Guaranteed) | ``tenant`` | as is: the trace's only grouping of pods |
| ``pod_phase`` | – | not used |

Left out, and reported as one note each (never errors): pods never scheduled (no
``scheduled_time``: they have no runtime), and pods asking a share (``gpu_milli`` < 1000)
of more than one GPU, which lepsim's fractional GPUs (a share of one GPU) cannot express;
the bundled pod list has none.

Nodes (identical nodes become one pool, in order of first appearance):

| upstream column | pool field | conversion |
| --- | --- | --- |
| ``sn`` | – | counted into ``count`` |
| ``gpu`` | ``gpus_per_node`` | integer ≥ 0 |
| ``model`` | ``gpu_type`` | through ``GPU_MODELS`` (or the user's ``gpu_types``) |
| ``cpu_milli`` | ``cpus`` | × 1e-3 cores, must be a whole number |
| ``memory_mib`` | ``memory`` | × 2**20 bytes |
"""
from __future__ import annotations

from pathlib import Path

from lepsim.workload.importers.common import MIB, MILLI, ImportResult, Rows, job_row, number, summarize_lines

POD_COLUMNS = ("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos", "pod_phase",
               "creation_time", "deletion_time", "scheduled_time")
NODE_COLUMNS = ("sn", "cpu_milli", "memory_mib", "gpu", "model")

#: Alibaba GPU model names → lepsim catalog names.  The catalog has one V100 entry (its
#: 16 GB and 32 GB variants differ only in memory size).  ``A10``, ``G2`` and ``G3`` have
#: no catalog entry (G2/G3 are names the trace does not explain): give a mapping to use them.
GPU_MODELS = {"V100M16": "V100", "V100M32": "V100", "P100": "P100", "T4": "T4"}


def _gpu_map(options) -> dict[str, str]:
    m = {k.lower(): v for k, v in GPU_MODELS.items()}
    m.update({k.lower(): v for k, v in (options.gpu_types or {}).items()})
    return m


def read(path: Path, display: str, options) -> ImportResult:
    rows = Rows(path, display, columns=POD_COLUMNS,
                required=("name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "creation_time",
                          "deletion_time", "scheduled_time"))
    gmap = _gpu_map(options)
    out: list[dict] = []
    unscheduled: list[int] = []
    shares: list[int] = []
    for line, c in rows:
        mark = rows.start_row()
        cpu = number(rows, line, "cpu_milli", c["cpu_milli"], minimum=0)
        mem = number(rows, line, "memory_mib", c["memory_mib"], minimum=0)
        g = number(rows, line, "num_gpu", c["num_gpu"], minimum=0, integer=True)
        milli = number(rows, line, "gpu_milli", c["gpu_milli"], minimum=0) if c["gpu_milli"] else 0.0
        if milli is not None and milli > 1000:
            rows.bad(line, "gpu_milli", c["gpu_milli"], "at most 1000 (one whole GPU)")
        t0 = number(rows, line, "creation_time", c["creation_time"], minimum=0, expected="a time in seconds")
        t1 = number(rows, line, "deletion_time", c["deletion_time"], minimum=0, expected="a time in seconds")
        ts = None
        if c["scheduled_time"]:
            ts = number(rows, line, "scheduled_time", c["scheduled_time"], minimum=0, expected="a time in seconds")
        gt = None
        spec = c.get("gpu_spec", "")
        if spec:
            names = {gmap.get(s.strip().lower()) for s in spec.split("|") if s.strip()}
            if None in names:
                rows.bad(line, "gpu_spec", spec, f"GPU models lepsim knows: {', '.join(sorted(GPU_MODELS))} "
                                                 "(or a mapping: gpu_types in a scenario, --gpu-map for convert)")
            elif len(names) > 1:
                rows.bad(line, "gpu_spec", spec, "alternatives that are one catalog GPU type")
            else:
                gt = names.pop()
        if not rows.row_ok(mark):
            continue
        if ts is None:
            unscheduled.append(line)
            continue
        if t1 <= ts:
            rows.bad(line, "deletion_time", c["deletion_time"], f"a time after scheduled_time ({c['scheduled_time']})")
            continue
        frac = 1.0
        if g and milli < 1000:
            if g != 1:
                shares.append(line)
                continue
            frac = milli * MILLI
        out.append(job_row(line, t0, g, duration=t1 - ts, name=c["name"], tenant=c.get("qos") or options.tenant,
                           gpu_type=gt if g else None, cpus=cpu * MILLI, memory=mem * MIB, gpu_fraction=frac))
    notes = []
    if unscheduled:
        notes.append(summarize_lines(display, unscheduled, "never scheduled (no scheduled_time, so no runtime): left out"))
    if shares:
        notes.append(summarize_lines(display, shares, "asking a share (gpu_milli < 1000) of more than one GPU, "
                                                      "which the engine cannot place: left out"))
    return rows.result(out, notes)


def read_nodes(path: Path, display: str, options) -> ImportResult:
    """Node pools (dicts in the scenario's ``cluster.pools[]`` shape): identical nodes grouped."""
    rows = Rows(path, display, columns=NODE_COLUMNS)
    gmap = _gpu_map(options)
    groups: dict[tuple, dict] = {}
    unknown: dict[str, list[int]] = {}
    for line, c in rows:
        mark = rows.start_row()
        cpu = number(rows, line, "cpu_milli", c["cpu_milli"], minimum=1000, integer=True)
        if cpu is not None and cpu % 1000:
            rows.bad(line, "cpu_milli", c["cpu_milli"], "whole cores (a multiple of 1000)")
        mem = number(rows, line, "memory_mib", c["memory_mib"], minimum=0, strict=True)
        g = number(rows, line, "gpu", c["gpu"], minimum=0, integer=True)
        gt = None
        if g:
            gt = gmap.get(c["model"].lower())
            if gt is None:
                unknown.setdefault(c["model"], []).append(line)
                continue
        if not rows.row_ok(mark):
            continue
        key = (c["model"] if g else "", g, cpu, mem)
        pool = groups.get(key)
        if pool is None:
            name = f"openb-{c['model'] if g else 'cpu'}-{g}g" if g else "openb-cpu"
            taken = sum(1 for p in groups.values() if p["name"] == name or p["name"].startswith(name + "-"))
            pool = groups[key] = {"name": name + (f"-{taken}" if taken else ""), "count": 0, "gpus_per_node": g,
                                  "cpus": cpu // 1000, "memory": mem * MIB}
            if g:
                pool["gpu_type"] = gt
        pool["count"] += 1
    problems = list(rows.problems)
    for model, lines in unknown.items():
        problems.append(summarize_lines(display, lines, f"naming GPU model {model!r}, which has no catalog mapping: "
                                                        f"expected one of {', '.join(sorted(GPU_MODELS))}, or a "
                                                        f"mapping ({model or 'MODEL'}: TYPE in gpu_types, or --gpu-map {model or 'MODEL'}=TYPE)"))
    return ImportResult(list(groups.values()), problems, [], rows.errors)
