"""Placement helpers any policy can use on a scratch copy of the cluster's free resources.

A :class:`FreeMap` is a policy-local, mutable copy of what is free (GPUs, GPU shares, CPUs,
memory per node) and of who is where (tenants, for isolation); placing a job on it removes
the resources so that the next placement in the same decision sees them taken.  It never
touches the engine's state.

Every placement honours the job's placement constraints, which the engine checks again:

* GPU type: the job's ``gpu_type`` (None = any type, but one type per job);
* node labels: every ``key=value`` of the job's ``node_selector`` is among the node's labels;
* tenant isolation: a job of an isolated tenant never shares a node with another tenant's
  job, and no other tenant's job joins a node where an isolated tenant's job runs.

Strategies (:data:`STRATEGIES`), for :meth:`FreeMap.place`:

``first_fit``  the first node (in node order) that fits; spread over nodes in node order.
``best_fit``   the node left with the fewest free GPUs; spread in node order.
``pack``       like ``best_fit``, and spread fills the fullest nodes first.
``spread``     the node left with the most free GPUs; spread fills the emptiest nodes first.
``topology``   fewest nodes, then fewest racks (the racks of a leaf-spine
               ``cluster.network``; else the node label ``rack``; else the node's pool).
``frag``       fragmentation-aware: the choice that least increases the cluster's GPU
               fragmentation against the workload's mix of job shapes (Weng et al., ATC'23).

A job with ``gpu_fraction < 1`` takes a share of one GPU; several such jobs share a GPU up
to a total of 1.  ``first_fit`` takes the first GPU (node order, then id) with enough free
share; ``best_fit`` and ``pack`` the one left with the least free share; ``spread`` a whole
free GPU on the node with most free GPUs when there is one; ``frag`` the least increase in
fragmentation; ``topology`` behaves as ``best_fit``.
"""
from __future__ import annotations

from typing import Literal, Sequence

Consolidate = Literal["prefer", "require", "none"]
Strategy = Literal["first_fit", "best_fit", "pack", "spread", "topology", "frag"]
STRATEGIES: tuple[str, ...] = ("first_fit", "best_fit", "pack", "spread", "topology", "frag")

_REL = 1e-9  # relative tolerance of resource comparisons (sums of GiB-sized floats round)
SHARE_EPS = 1e-9  # a GPU share below this counts as zero


def covers(free: float, need: float) -> bool:
    """True when ``free`` covers ``need`` up to rounding; the one predicate that both
    policies' planning and the engine's checks use for CPUs, memory and GPU shares."""
    return free >= need - _REL * max(abs(need), 1.0)


# (probability, GPUs, fraction of one GPU, required GPU type or None) per job shape
Mix = tuple[tuple[float, int, float, "str | None"], ...]


def node_fragmentation(free_shares: Sequence[float], whole_free: int, gpu_type: str | None, gpn: int,
                       mix: Mix) -> float:
    """Expected GPU capacity of one node that a job drawn from ``mix`` could not use.

    After Weng et al., "Beware of Fragmentation" (ATC'23): for each job shape m,
    F(m) = all the node's free GPU share when m cannot run there at all (other GPU type,
    or fewer whole free GPUs than a one-node job of m needs); otherwise the free share of
    the GPUs that cannot serve m on their own (free share < m's fraction; for whole-GPU
    shapes, every partly used GPU).  The node's fragmentation is Σ_m p_m F(m), in GPUs.
    ``free_shares`` lists the free share (0..1) of each GPU with any free share.
    """
    if not free_shares:
        return 0.0
    total = sum(free_shares)
    if total == whole_free:  # no partly used GPU (the common case without fractional jobs)
        return whole_free * sum(p for p, k, frac, req_type in mix
                                if (req_type is not None and req_type != gpu_type) or (frac == 1.0 and whole_free < k <= gpn))
    partial = total - whole_free
    out = 0.0
    for p, k, frac, req_type in mix:
        if req_type is not None and req_type != gpu_type:
            out += p * total
        elif frac < 1.0:
            out += p * sum(s for s in free_shares if not covers(s, frac))
        elif k <= gpn and whole_free < k:
            out += p * total
        else:
            out += p * partial
    return out


class OfType:
    """A job seen as requiring one GPU type (to place it on that type with a FreeMap);
    every other attribute (size, tenant, labels, constraints) is the job's."""

    __slots__ = ("_job", "gpu_type")

    def __init__(self, job, gpu_type):
        self._job = job
        self.gpu_type = gpu_type

    def __getattr__(self, name):
        return getattr(self._job, name)


class FreeMap:
    __slots__ = ("free", "cpus", "mem", "node_type", "nodes_by_type", "gpn", "free_total", "labels", "rack",
                 "tenants", "iso", "used", "mix", "_own", "_any_iso")

    def __init__(self, free, cpus, mem, node_type, nodes_by_type, gpn, *, labels=None, racks=None, tenants=None,
                 iso=None, used=None, mix: Mix = ()):
        self.free: list[list[int]] = free            # per node: wholly free global GPU ids, ascending
        self.cpus: list[float] = cpus                # per node: free CPU cores
        self.mem: list[float] = mem                  # per node: free memory (bytes)
        self.node_type = node_type                   # per node: GPU type or None
        self.nodes_by_type: dict = nodes_by_type     # GPU type -> node indices (ascending)
        self.gpn: list[int] = gpn                    # per node: GPUs installed
        self.free_total: dict = {t: sum(len(free[i]) for i in ns) for t, ns in nodes_by_type.items()}
        n = len(free)
        self.labels: list[dict] = labels if labels is not None else [{} for _ in range(n)]  # per node
        self.rack: list[str] = racks if racks is not None else [lb.get("rack", "") for lb in self.labels]  # per node
        self.tenants: list[dict] = tenants if tenants is not None else [{} for _ in range(n)]  # tenant -> jobs
        self.iso: list[dict] = iso if iso is not None else [{} for _ in range(n)]  # isolated tenant -> jobs
        self.used: list[dict] = used if used is not None else [{} for _ in range(n)]  # partly used GPU -> share
        self.mix: Mix = mix
        # the per-node dicts may be the engine's own: copied on first write (``_mine``)
        self._own: set[int] = set()
        self._any_iso = any(self.iso)

    def _mine(self, node: int) -> None:
        if node not in self._own:
            self._own.add(node)
            self.tenants[node] = dict(self.tenants[node])
            self.iso[node] = dict(self.iso[node])
            self.used[node] = dict(self.used[node])

    def copy(self) -> "FreeMap":
        """An independent copy (to try placements on without changing this map)."""
        c = FreeMap.__new__(FreeMap)
        for k in self.__slots__:
            setattr(c, k, getattr(self, k))
        c.free = [list(x) for x in self.free]
        c.cpus, c.mem, c.free_total = list(self.cpus), list(self.mem), dict(self.free_total)
        # the per-node dicts are copied on first write (``_mine``): the lists holding them are the copy's own
        c.tenants, c.iso, c.used, c._own = list(self.tenants), list(self.iso), list(self.used), set()
        return c

    # ------------------------------------------------------------------ queries
    def free_gpus(self, gpu_type: str | None = None) -> int:
        """Wholly free GPUs (of one type, or all)."""
        if gpu_type is None:
            return sum(self.free_total.values())
        return self.free_total.get(gpu_type, 0)

    def free_share(self, node: int, gpu: int) -> float:
        """Free share (0..1) of one GPU on ``node``."""
        if gpu in self.used[node]:
            return 1.0 - self.used[node][gpu]
        return 1.0 if gpu in self.free[node] else 0.0

    def allowed(self, node: int, job) -> bool:
        """The job's node labels and tenant isolation allow ``node`` (resources aside)."""
        sel = getattr(job, "node_selector", ())
        if sel:
            lb = self.labels[node]
            if any(lb.get(k) != v for k, v in sel):
                return False
        ten = self.tenants[node]
        if ten:
            t = job.tenant
            if any(c > 0 and o != t for o, c in ten.items()):
                if getattr(job, "isolated", False) or any(c > 0 and o != t for o, c in self.iso[node].items()):
                    return False
        return True

    def _constrained(self, job) -> bool:
        return bool(getattr(job, "node_selector", ())) or getattr(job, "isolated", False) or self._any_iso

    def _fits(self, node: int, k: int, cpg: float, mpg: float) -> bool:
        return len(self.free[node]) >= k and covers(self.cpus[node], cpg * k) and covers(self.mem[node], mpg * k)

    def _take_max(self, node: int, cpg: float, mpg: float) -> int:
        k = len(self.free[node])
        while k > 0 and not (covers(self.cpus[node], cpg * k) and covers(self.mem[node], mpg * k)):
            k -= 1
        return k

    def fragmentation(self, node: int) -> float:
        """:func:`node_fragmentation` of one node on this map, against :attr:`mix`."""
        shares = [1.0] * len(self.free[node]) + [1.0 - u for u in self.used[node].values() if u < 1.0 - SHARE_EPS]
        return node_fragmentation(shares, len(self.free[node]), self.node_type[node], self.gpn[node], self.mix)

    # ------------------------------------------------------------------ placement
    def place(self, job, strategy: Strategy = "first_fit", consolidate: Consolidate = "prefer"):
        """Choose resources for ``job`` (a JobView) with a strategy and take them.

        Returns a tuple of global GPU ids, ``("node", i)`` for a job asking no GPUs, or
        None when it does not fit now.  ``consolidate`` as in :meth:`first_fit`.
        """
        if getattr(job, "gpu_fraction", 1.0) < 1.0 and job.gpus == 1:
            return self._place_share(job, strategy)
        if strategy in ("first_fit", "best_fit"):
            return self.first_fit(job, consolidate, "best" if strategy == "best_fit" else "first")
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown placement strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
        if job.gpus == 0:
            return self.first_fit(job, consolidate)
        return self._place_ranked(job, strategy, consolidate)

    def first_fit(self, job, consolidate: Consolidate = "prefer", strategy: str = "first"):
        """Choose GPUs for ``job`` (a JobView) and take them; None when it does not fit now.

        * one node: the first node (in node order) of an allowed GPU type with enough free
          GPUs, CPU and memory (``strategy="best"``: the one with the fewest free GPUs left).
        * otherwise, unless ``consolidate="require"``: GPUs gathered over nodes of one GPU
          type, filling nodes in order (``"none"`` skips the one-node attempt).
        Nodes that the job's constraints exclude are skipped.  ``strategy`` may also be a
        name of :data:`STRATEGIES` (then the same as :meth:`place`).
        Returns a tuple of global GPU ids (or ``("node", i)`` for a CPU-only job).
        """
        if strategy not in ("first", "best", "first_fit", "best_fit"):
            return self.place(job, strategy, consolidate)
        if strategy in ("first_fit", "best_fit"):
            strategy = strategy[:-4]
        if getattr(job, "gpu_fraction", 1.0) < 1.0 and job.gpus == 1:
            return self._place_share(job, "best_fit" if strategy == "best" else "first_fit")
        n = job.gpus
        cpg = job.cpus / n if n else job.cpus
        mpg = job.memory_bytes / n if n else job.memory_bytes
        ok = (lambda i: self.allowed(i, job)) if self._constrained(job) else None
        if n == 0:
            order = sorted(range(len(self.free)), key=lambda i: self.node_type[i] is not None)
            for i in order:
                if covers(self.cpus[i], cpg) and covers(self.mem[i], mpg) and (ok is None or ok(i)):
                    self.cpus[i] -= cpg
                    self.mem[i] -= mpg
                    self._add_tenant(i, job, 1)
                    return ("node", i)
            return None
        types = [job.gpu_type] if job.gpu_type is not None else [t for t in self.nodes_by_type if t is not None]
        if consolidate != "none":
            for t in types:
                if self.free_total.get(t, 0) < n:
                    continue
                best, best_left = None, None
                for i in self.nodes_by_type[t]:
                    if self.gpn[i] >= n and self._fits(i, n, cpg, mpg) and (ok is None or ok(i)):
                        left = len(self.free[i]) - n
                        if strategy == "first":
                            best = i
                            break
                        if best_left is None or left < best_left:
                            best, best_left = i, left
                if best is not None:
                    return self._take(t, [(best, n)], cpg, mpg, job)
            if consolidate == "require" and any(
                self.gpn[i] >= n and (ok is None or ok(i)) for t in types for i in self.nodes_by_type.get(t, ())
            ):
                return None  # it fits in one node of its type: wait for one
        for t in types:
            if self.free_total.get(t, 0) < n:
                continue
            plan, need = [], n
            for i in self.nodes_by_type[t]:
                if ok is not None and not ok(i):
                    continue
                k = min(need, self._take_max(i, cpg, mpg))
                if k > 0:
                    plan.append((i, k))
                    need -= k
                    if need == 0:
                        return self._take(t, plan, cpg, mpg, job)
        return None

    def _place_ranked(self, job, strategy: str, consolidate: Consolidate):
        """pack / spread / topology / frag for whole-GPU jobs."""
        n = job.gpus
        cpg, mpg = job.cpus / n, job.memory_bytes / n
        constrained = self._constrained(job)
        types = [job.gpu_type] if job.gpu_type is not None else [t for t in self.nodes_by_type if t is not None]
        one_node_possible = False
        for t in types:
            if self.free_total.get(t, 0) < n:
                continue
            nodes = [i for i in self.nodes_by_type[t] if not constrained or self.allowed(i, job)]
            one_node_possible |= any(self.gpn[i] >= n for i in nodes)
            if consolidate != "none":
                cands = [i for i in nodes if self.gpn[i] >= n and self._fits(i, n, cpg, mpg)]
                if cands:
                    if strategy == "spread":
                        best = max(cands, key=lambda i: (len(self.free[i]), -i))
                    elif strategy == "frag":
                        best = min(cands, key=lambda i: (self._frag_delta_whole(i, n), len(self.free[i]), i))
                    else:  # pack, topology: best fit
                        best = min(cands, key=lambda i: (len(self.free[i]), i))
                    return self._take(t, [(best, n)], cpg, mpg, job)
        if consolidate == "require" and one_node_possible:
            return None
        for t in types:
            if self.free_total.get(t, 0) < n:
                continue
            nodes = [i for i in self.nodes_by_type[t] if not constrained or self.allowed(i, job)]
            room = {i: self._take_max(i, cpg, mpg) for i in nodes}
            room = {i: k for i, k in room.items() if k > 0}
            if sum(room.values()) < n:
                continue
            if strategy == "topology":
                plan = self._topology_plan(room, n)
            else:
                if strategy == "spread":
                    order = sorted(room, key=lambda i: (-len(self.free[i]), i))
                else:  # pack, frag: the fullest nodes first
                    order = sorted(room, key=lambda i: (len(self.free[i]), i))
                plan, need = [], n
                for i in order:
                    k = min(need, room[i])
                    plan.append((i, k))
                    need -= k
                    if need == 0:
                        break
            return self._take(t, plan, cpg, mpg, job)
        return None

    def _topology_plan(self, room: dict[int, int], n: int) -> list[tuple[int, int]]:
        """Fewest nodes, then fewest racks (greedy): nodes by most room first; the fewest
        nodes k that suffice; then the racks in order of their k largest nodes' room, taking
        whole racks' best nodes first so that the k nodes span as few racks as possible."""
        by_room = sorted(room, key=lambda i: (-room[i], i))
        k, acc = 0, 0
        while acc < n:
            acc += room[by_room[k]]
            k += 1
        racks: dict[str, list[int]] = {}
        for i in by_room:
            racks.setdefault(self.rack[i], []).append(i)
        # the racks ranked by what their best k nodes hold
        ranked = sorted(racks, key=lambda r: (-sum(room[i] for i in racks[r][:k]), min(racks[r])))
        for r in ranked:  # one rack can hold it in k nodes?
            nodes = racks[r][:k]
            if sum(room[i] for i in nodes) >= n:
                return self._fill(nodes, room, n)
        # several racks: take whole racks' nodes in rank order, keeping to k nodes where possible
        chosen: list[int] = []
        for r in ranked:
            for i in racks[r]:
                chosen.append(i)
                if sum(room[j] for j in chosen) >= n:
                    break
            if sum(room[j] for j in chosen) >= n:
                break
        if len(chosen) > k:  # fewest nodes first: fall back to the k roomiest nodes, grouped by rack
            chosen = sorted(by_room[:k], key=lambda i: (ranked.index(self.rack[i]), -room[i], i))
        return self._fill(chosen, room, n)

    @staticmethod
    def _fill(nodes, room, n):
        plan, need = [], n
        for i in sorted(nodes, key=lambda i: (-room[i], i)):
            k = min(need, room[i])
            plan.append((i, k))
            need -= k
            if need == 0:
                break
        return plan

    def _frag_delta_whole(self, node: int, k: int) -> float:
        before = self.fragmentation(node)
        saved = self.free[node]
        self.free[node] = saved[k:]
        after = self.fragmentation(node)
        self.free[node] = saved
        return after - before

    # ------------------------------------------------------------------ GPU shares
    def _place_share(self, job, strategy: str):
        """Place a job that takes ``gpu_fraction`` of one GPU; returns ``(gpu,)`` or None."""
        f = job.gpu_fraction
        constrained = self._constrained(job)
        types = [job.gpu_type] if job.gpu_type is not None else [t for t in self.nodes_by_type if t is not None]
        best_key, best = None, None
        for t in types:
            for i in self.nodes_by_type.get(t, ()):
                if not (covers(self.cpus[i], job.cpus) and covers(self.mem[i], job.memory_bytes)):
                    continue
                if constrained and not self.allowed(i, job):
                    continue
                cands = [(g, 1.0 - u) for g, u in self.used[i].items() if covers(1.0 - u, f)]
                if self.free[i]:
                    cands.append((self.free[i][0], 1.0))
                for g, share in cands:
                    if strategy == "first_fit":
                        key = (0, g)
                    elif strategy == "spread":
                        key = (-share, -len(self.free[i]), g)
                    elif strategy == "frag":
                        key = (self._frag_delta_share(i, g, f), share - f, g)
                    else:  # best_fit, pack, topology
                        key = (share - f, g)
                    if best_key is None or key < best_key:
                        best_key, best = key, (t, i, g)
                if strategy == "first_fit" and best is not None:
                    break
            if strategy == "first_fit" and best is not None:
                break
        if best is None:
            return None
        t, i, g = best
        self._take_share(t, i, g, f)
        self.cpus[i] -= job.cpus
        self.mem[i] -= job.memory_bytes
        self._add_tenant(i, job, 1)
        return (g,)

    def _take_share(self, t, i: int, g: int, f: float) -> None:
        self._mine(i)
        u = self.used[i]
        if g in u:
            u[g] += f
        else:
            self.free[i].remove(g)
            self.free_total[t] -= 1
            u[g] = f

    def _frag_delta_share(self, node: int, g: int, f: float) -> float:
        self._mine(node)
        before = self.fragmentation(node)
        saved_free, saved_used = self.free[node], dict(self.used[node])
        if g in self.used[node]:
            self.used[node][g] += f
        else:
            self.free[node] = [x for x in saved_free if x != g]
            self.used[node][g] = f
        after = self.fragmentation(node)
        self.free[node], self.used[node] = saved_free, saved_used
        return after - before

    # ------------------------------------------------------------------ bookkeeping
    def _add_tenant(self, node: int, job, d: int) -> None:
        t = job.tenant
        self._mine(node)
        if getattr(job, "isolated", False):
            self._any_iso = True
        for m in ((self.tenants[node], self.iso[node]) if getattr(job, "isolated", False) else (self.tenants[node],)):
            c = m.get(t, 0) + d
            if c > 0:
                m[t] = c
            else:
                m.pop(t, None)

    def _take(self, gpu_type, plan, cpg, mpg, job=None) -> tuple[int, ...]:
        out: list[int] = []
        for i, k in plan:
            out.extend(self.free[i][:k])
            del self.free[i][:k]
            self.cpus[i] -= cpg * k
            self.mem[i] -= mpg * k
            if job is not None:
                self._add_tenant(i, job, 1)
        self.free_total[gpu_type] -= len(out)
        return tuple(out)

    def release(self, job, node_of, gpus=None, keep=()) -> None:
        """Give back a running job's GPUs (used by preemptive policies planning a decision),
        or only ``gpus`` of a whole-GPU job's GPUs while it keeps ``keep`` (a shrink: the
        job's tenant stays on a node where it keeps GPUs)."""
        n = job.gpus
        cpg = job.cpus / n if n else job.cpus
        mpg = job.memory_bytes / n if n else job.memory_bytes
        if n == 0:
            for i, _ in job.allocated_nodes:
                self.cpus[i] += cpg
                self.mem[i] += mpg
                self._add_tenant(i, job, -1)
            return
        f = getattr(job, "gpu_fraction", 1.0)
        if f < 1.0:
            (g,) = job.allocated_gpus
            i = node_of(g)
            self._mine(i)
            u = self.used[i]
            u[g] = u.get(g, 0.0) - f
            if u[g] <= SHARE_EPS:
                del u[g]
                self.free[i] = sorted(self.free[i] + [g])
                self.free_total[self.node_type[i]] += 1
            self.cpus[i] += job.cpus
            self.mem[i] += job.memory_bytes
            self._add_tenant(i, job, -1)
            return
        per_node: dict[int, list[int]] = {}
        for g in (job.allocated_gpus if gpus is None else gpus):
            per_node.setdefault(node_of(g), []).append(g)
        stays = {node_of(g) for g in keep}
        for i, gs in per_node.items():
            self.free[i] = sorted(self.free[i] + gs)
            self.cpus[i] += cpg * len(gs)
            self.mem[i] += mpg * len(gs)
            self.free_total[self.node_type[i]] += len(gs)
            if i not in stays:
                self._add_tenant(i, job, -1)
