"""Placement helpers any policy can use on a scratch copy of the cluster's free resources.

A :class:`FreeMap` is a policy-local, mutable copy of what is free (GPUs, CPUs, memory per
node); placing a job on it removes the resources so that the next placement in the same
decision sees them taken.  It never touches the engine's state.
"""
from __future__ import annotations

from typing import Literal

Consolidate = Literal["prefer", "require", "none"]

_REL = 1e-9  # relative tolerance of resource comparisons (sums of GiB-sized floats round)


def covers(free: float, need: float) -> bool:
    """True when ``free`` covers ``need`` up to rounding; the one predicate that both
    policies' planning and the engine's checks use for CPUs and memory."""
    return free >= need - _REL * max(abs(need), 1.0)


class FreeMap:
    __slots__ = ("free", "cpus", "mem", "node_type", "nodes_by_type", "gpn", "free_total")

    def __init__(self, free, cpus, mem, node_type, nodes_by_type, gpn):
        self.free: list[list[int]] = free            # per node: free global GPU ids, ascending
        self.cpus: list[float] = cpus                # per node: free CPU cores
        self.mem: list[float] = mem                  # per node: free memory (bytes)
        self.node_type = node_type                   # per node: GPU type or None
        self.nodes_by_type: dict = nodes_by_type     # GPU type -> node indices (ascending)
        self.gpn: list[int] = gpn                    # per node: GPUs installed
        self.free_total: dict = {t: sum(len(free[i]) for i in ns) for t, ns in nodes_by_type.items()}

    # ------------------------------------------------------------------ queries
    def free_gpus(self, gpu_type: str | None = None) -> int:
        if gpu_type is None:
            return sum(self.free_total.values())
        return self.free_total.get(gpu_type, 0)

    def _fits(self, node: int, k: int, cpg: float, mpg: float) -> bool:
        return len(self.free[node]) >= k and covers(self.cpus[node], cpg * k) and covers(self.mem[node], mpg * k)

    def _take_max(self, node: int, cpg: float, mpg: float) -> int:
        k = len(self.free[node])
        while k > 0 and not (covers(self.cpus[node], cpg * k) and covers(self.mem[node], mpg * k)):
            k -= 1
        return k

    # ------------------------------------------------------------------ placement
    def first_fit(self, job, consolidate: Consolidate = "prefer", strategy: Literal["first", "best"] = "first"):
        """Choose GPUs for ``job`` (a JobView) and take them; None when it does not fit now.

        * one node: the first node (in node order) of an allowed GPU type with enough free
          GPUs, CPU and memory (``strategy="best"``: the one with the fewest free GPUs left).
        * otherwise, unless ``consolidate="require"``: GPUs gathered over nodes of one GPU
          type, filling nodes in order (``"none"`` skips the one-node attempt).
        Returns a tuple of global GPU ids (or ``("node", i)`` for a CPU-only job).
        """
        n = job.gpus
        cpg = job.cpus / n if n else job.cpus
        mpg = job.memory_bytes / n if n else job.memory_bytes
        if n == 0:
            order = sorted(range(len(self.free)), key=lambda i: self.node_type[i] is not None)
            for i in order:
                if covers(self.cpus[i], cpg) and covers(self.mem[i], mpg):
                    self.cpus[i] -= cpg
                    self.mem[i] -= mpg
                    return ("node", i)
            return None
        types = [job.gpu_type] if job.gpu_type is not None else [t for t in self.nodes_by_type if t is not None]
        if consolidate != "none":
            for t in types:
                if self.free_total.get(t, 0) < n:
                    continue
                best, best_left = None, None
                for i in self.nodes_by_type[t]:
                    if self.gpn[i] >= n and self._fits(i, n, cpg, mpg):
                        left = len(self.free[i]) - n
                        if strategy == "first":
                            best = i
                            break
                        if best_left is None or left < best_left:
                            best, best_left = i, left
                if best is not None:
                    return self._take(t, [(best, n)], cpg, mpg)
            if consolidate == "require" and any(
                self.gpn[i] >= n for t in types for i in self.nodes_by_type.get(t, ())
            ):
                return None  # it fits in one node of its type: wait for one
        for t in types:
            if self.free_total.get(t, 0) < n:
                continue
            plan, need = [], n
            for i in self.nodes_by_type[t]:
                k = min(need, self._take_max(i, cpg, mpg))
                if k > 0:
                    plan.append((i, k))
                    need -= k
                    if need == 0:
                        return self._take(t, plan, cpg, mpg)
        return None

    def _take(self, gpu_type, plan, cpg, mpg) -> tuple[int, ...]:
        out: list[int] = []
        for i, k in plan:
            out.extend(self.free[i][:k])
            del self.free[i][:k]
            self.cpus[i] -= cpg * k
            self.mem[i] -= mpg * k
        self.free_total[gpu_type] -= len(out)
        return tuple(out)

    def release(self, job, node_of) -> None:
        """Give back a running job's GPUs (used by preemptive policies planning a decision)."""
        n = job.gpus
        cpg = job.cpus / n if n else job.cpus
        mpg = job.memory_bytes / n if n else job.memory_bytes
        if n == 0:
            for i, _ in job.allocated_nodes:
                self.cpus[i] += cpg
                self.mem[i] += mpg
            return
        per_node: dict[int, list[int]] = {}
        for g in job.allocated_gpus:
            per_node.setdefault(node_of(g), []).append(g)
        for i, gs in per_node.items():
            self.free[i] = sorted(self.free[i] + gs)
            self.cpus[i] += cpg * len(gs)
            self.mem[i] += mpg * len(gs)
            self.free_total[self.node_type[i]] += len(gs)
