"""Hypothesis strategies: small clusters, workloads that can always be placed, policy settings.

Every generated job can be placed on the empty cluster under every policy setting drawn
here (including ``consolidate: require``), so with no horizon every job must complete.
The feasibility rule is written out below, independently of the engine's own checks.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from hypothesis import strategies as st

GiB = 2**30
GPU_TYPES = ("V100", "K80", "A100-40GB")


@dataclass(frozen=True)
class Node:
    index: int
    gpu_type: str | None
    gpus: int
    cpus: float
    memory: float
    first_gpu: int


def layout(pools: list[dict]) -> list[Node]:
    """Nodes in pool order with their global GPU ids (as the engine numbers them)."""
    nodes, gpu = [], 0
    for p in pools:
        g = p.get("gpus_per_node", 0)
        t = p.get("gpu_type") if g else None
        for _ in range(p["count"]):
            nodes.append(Node(len(nodes), t, g, float(p["cpus"]), float(p["memory"]), gpu))
            gpu += g
    return nodes


@st.composite
def clusters(draw, *, max_pools: int = 3) -> list[dict]:
    pools = []
    for i in range(draw(st.integers(1, max_pools))):
        cpus = draw(st.sampled_from([4, 8, 16, 64]))
        memory = draw(st.sampled_from([16, 64, 256])) * GiB
        count = draw(st.integers(1, 4))
        if i > 0 and draw(st.integers(0, 3)) == 0:  # sometimes a CPU-only pool
            pools.append({"count": count, "gpus_per_node": 0, "cpus": cpus, "memory": memory})
        else:
            pools.append({"count": count, "gpu_type": draw(st.sampled_from(GPU_TYPES)),
                          "gpus_per_node": draw(st.integers(1, 8)), "cpus": cpus, "memory": memory})
    return pools


def _fits(nodes: list[Node], gpus: int, cpus: float, mem: float, gpu_type: str | None) -> bool:
    """Can this job always be placed once the cluster is empty, whatever the policy settings?

    * CPU-only job: some node has the CPUs and memory.
    * GPU job: of the allowed GPU types, every type with enough GPUs in total can hold it
      with each GPU's CPU/memory share (every one, not just one: the scenario loader checks
      one type only, see the report); and if some allowed node has at least ``gpus`` GPUs,
      one such node must hold the whole job (``consolidate: require`` waits for it).
    """
    if gpus == 0:
        return any(n.cpus >= cpus and n.memory >= mem for n in nodes)
    cpg, mpg = cpus / gpus, mem / gpus
    allowed = [n for n in nodes if n.gpu_type is not None and (gpu_type is None or n.gpu_type == gpu_type)]
    types = {n.gpu_type for n in allowed}
    ok_types = 0
    for t in types:
        pool = [n for n in allowed if n.gpu_type == t]
        if sum(n.gpus for n in pool) < gpus:
            continue
        usable = 0
        for n in pool:
            k = n.gpus
            if cpg > 0:
                k = min(k, math.floor(n.cpus / cpg + 1e-9))
            if mpg > 0:
                k = min(k, math.floor(n.memory / mpg + 1e-9))
            usable += k
        if usable < gpus:
            return False
        ok_types += 1
    if ok_types == 0:
        return False
    big = [n for n in allowed if n.gpus >= gpus]
    if big and not any(n.cpus + 1e-9 >= cpus and n.memory + 1e-6 >= mem for n in big):
        return False
    return True


@st.composite
def jobs_for(draw, pools: list[dict], *, min_jobs: int = 1, max_jobs: int = 30) -> list[dict]:
    nodes = layout(pools)
    types = sorted({n.gpu_type for n in nodes if n.gpu_type is not None})
    total = {t: sum(n.gpus for n in nodes if n.gpu_type == t) for t in types}
    out = []
    for i in range(draw(st.integers(min_jobs, max_jobs))):
        submit = draw(st.one_of(st.integers(0, 20).map(float), st.floats(0, 30, allow_nan=False)))
        duration = draw(st.one_of(st.integers(1, 10).map(float), st.floats(0.001, 20, allow_nan=False)))
        gpus = draw(st.integers(0, 8))
        gpu_type = draw(st.one_of(st.none(), st.sampled_from(types))) if gpus else None
        cap = total[gpu_type] if gpu_type else max(total.values())
        gpus = min(gpus, cap)
        cpus = draw(st.sampled_from([0, 0, 1, 2, 4, 8, 16]))
        mem = draw(st.sampled_from([0, 0, 1, 8, 32, 100])) * GiB
        if gpus == 0 and cpus == 0:
            cpus = 1
        if not _fits(nodes, gpus, cpus, mem, gpu_type):
            cpus, mem = (1, 0) if gpus == 0 else (0, 0)
        assert _fits(nodes, gpus, cpus, mem, gpu_type)
        job = {"name": f"j{i}", "submit": submit, "gpus": gpus, "duration": duration, "cpus": cpus, "memory": mem,
               "tenant": draw(st.sampled_from(["alice", "bob", "carol"]))}
        if gpu_type is not None:
            job["gpu_type"] = gpu_type
        out.append(job)
    return out


placement_params = st.fixed_dictionaries({
    "placement": st.sampled_from(["first_fit", "best_fit"]),
    "consolidate": st.sampled_from(["prefer", "require", "none"]),
})


@st.composite
def policies(draw) -> tuple[str, dict, dict]:
    """(policy name, params, preemption costs)."""
    name = draw(st.sampled_from(["fifo", "sjf", "las"]))
    params = dict(draw(placement_params))
    if name in ("fifo", "sjf"):
        params["skip_blocked"] = draw(st.booleans())
    else:
        params["thresholds"] = sorted(draw(st.sets(st.sampled_from([0.5, 1, 2, 3, 5, 10, 30]), min_size=1, max_size=3)))
        params["promote_knob"] = draw(st.sampled_from([None, 1, 2, 4]))
    preemption = {"checkpoint": draw(st.sampled_from([0, 0.5, 1, 3])), "restore": draw(st.sampled_from([0, 0.5, 2]))}
    return name, params, preemption
