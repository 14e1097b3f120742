"""Goodput-driven elasticity after Pollux (Qiao et al., OSDI'21).

* ``pollux``: elastic jobs (``min_gpus``/``max_gpus``) start on their fewest GPUs and
  grow, at rounds, by the largest marginal gain in goodput per GPU, where goodput =
  throughput (cost model) x statistical efficiency (gradient noise scale from the packaged
  Pollux gradient statistics).  See :class:`Pollux` for what is simplified.
"""
from __future__ import annotations

import functools
import heapq
import math

from pydantic import Field, field_validator

from lepsim.policies.actions import Resize, Wakeup
from lepsim.policies.adaptive import _duration
from lepsim.policies.base import Policy, start_action
from lepsim.policies.builtin import PlacementConfig
from lepsim.policies.registry import register


@functools.lru_cache(maxsize=None)
def noise_scale(model: str | None, batch: float) -> float | None:
    """Gradient noise scale phi (samples) of ``model`` near global batch ``batch``, from the
    Pollux gradient statistics; None when the model has none.

    AdaptDL keeps ``grad_var`` normalised to the model's smallest validated batch M_v (its
    ``init_batch_size``), so phi = M_v x grad_var / grad_sqr.  The statistics of the two
    validated batches around ``batch`` are interpolated linearly (clamped to the range), as
    AdaptDL's simulator does; lepsim then takes the median of phi over the recorded epochs
    (one phi per job: no tracking over training progress)."""
    if model is None:
        return None
    from lepsim.costs.adapters import load_pollux_gradient_stats
    try:
        df = load_pollux_gradient_stats(model)
    except (FileNotFoundError, OSError):
        return None
    sizes = sorted(df["batch_size"].unique())
    m_v = float(sizes[0])
    lo = max([b for b in sizes if b <= batch], default=sizes[0])
    hi = min([b for b in sizes if b >= batch], default=sizes[-1])
    a, b = df[df["batch_size"] == lo], df[df["batch_size"] == hi]
    n = min(len(a), len(b))
    w = 0.0 if hi == lo else (min(max(batch, lo), hi) - lo) / (hi - lo)
    sqr = (1 - w) * a["grad_sqr"].to_numpy()[:n] + w * b["grad_sqr"].to_numpy()[:n]
    var = (1 - w) * a["grad_var"].to_numpy()[:n] + w * b["grad_var"].to_numpy()[:n]
    phis = sorted(m_v * v / s for v, s in zip(var, sqr) if s > 0)
    return phis[len(phis) // 2] if phis else None


def efficiency(phi: float | None, m0: float, m: float) -> float:
    """Pollux's statistical efficiency of global batch ``m`` relative to ``m0``:
    E(m) = (phi + m0) / (phi + m); 1.0 without a noise scale."""
    if phi is None:
        return 1.0
    return (phi + m0) / (phi + m)


def greedy(speedups: dict, current: dict, free: int) -> dict:
    """Give ``free`` GPUs one at a time to the job whose speedup grows most by one more GPU.

    ``speedups[j][n]`` is job j's speedup on n GPUs (index n; entries up to its maximum),
    ``current[j]`` its GPUs now; ties go to the lower job id.  Stops when no job gains.
    A heap of each job's next gain: O(free log jobs)."""
    target = dict(current)
    heap = []
    for j, n in target.items():
        s = speedups[j]
        if n + 1 < len(s) and s[n + 1] - s[n] > 0:
            heap.append((s[n] - s[n + 1], j))
    heapq.heapify(heap)
    for _ in range(free):
        if not heap:
            break
        _neg, j = heapq.heappop(heap)
        n = target[j] = target[j] + 1
        s = speedups[j]
        if n + 1 < len(s) and s[n + 1] - s[n] > 0:
            heapq.heappush(heap, (s[n] - s[n + 1], j))
    return target


class _Sized:
    """A job seen on ``gpus`` GPUs of ``gpu_type`` (CPU and memory in proportion), to place
    it with a FreeMap; every other attribute is the job's."""

    __slots__ = ("_job", "gpus", "gpu_type", "cpus", "memory_bytes")

    def __init__(self, job, gpus: int, gpu_type):
        self._job = job
        self.gpus = gpus
        self.gpu_type = gpu_type
        self.cpus = job.cpus / job.gpus * gpus
        self.memory_bytes = job.memory_bytes / job.gpus * gpus

    def __getattr__(self, name):
        return getattr(self._job, name)


class PolluxConfig(PlacementConfig):
    round: float | None = Field(
        None, description="seconds between reallocations (or a duration); null = scheduler.round, else 60 s")

    @field_validator("round", mode="before")
    @classmethod
    def _parse_round(cls, v):
        return None if v is None else _duration(v, positive=True)


@register
class Pollux(Policy):
    """Goodput-driven elastic allocation after Pollux (OSDI'21), simplified.

    An elastic job (``min_gpus``/``max_gpus``) with a cost profile has, on n GPUs of its
    type at its per-GPU batch b, goodput(n) = n b / iteration_time(n GPUs packed, b) x
    E(n b), with Pollux's statistical efficiency E(M) = (phi + M0) / (phi + M) relative to
    its submitted global batch M0, phi the gradient noise scale from the packaged Pollux
    gradient statistics (:func:`noise_scale`; efficiency 1 for models without them, e.g.
    every non-Pollux model).  Jobs start in submit order on their ``min_gpus`` (rigid jobs
    on their ``gpus``; skipping jobs that do not fit); when a pending job does not fit, running
    elastic jobs of its type shrink (least loss of speedup first, never below
    ``min_gpus``) to make room.  At each round (``round``) the free GPUs of each type go
    one at a time to the running elastic job whose speedup goodput(n)/goodput(min_gpus)
    grows most by one more GPU; a job is resized only when the gain pays for the move:
    goodput(new) x (round - checkpoint - restore) > goodput(now) x round (hysteresis).

    Simplifications against Pollux: no genetic algorithm over the whole cluster (greedy
    increments; running jobs never give GPUs to each other except to admit pending jobs);
    the per-GPU batch is kept (no batch-size or learning-rate re-tuning; a ``Resize``
    could change it); one noise scale per job (median over the recorded epochs, not
    tracked over progress); the engine counts progress by samples processed and does not
    charge efficiency, so efficiency shapes decisions only; no fairness exponent p.

    ```yaml
    workload:
      jobs:
        - {gpus: 1, min_gpus: 1, max_gpus: 4, model: cifar10, batch_size: 128, iterations: 20000}
    scheduler:
      policy: pollux
      params: {round: 60s}
      preemption: {checkpoint: 10s, restore: 20s}
    ```
    """

    name = "pollux"
    family = "adaptive"
    reference = ("Qiao et al., Pollux: Co-adaptive Cluster Scheduling for Goodput-Optimized Deep Learning, "
                 "OSDI'21 (statistical efficiency from the gradient noise scale; AdaptDL)")
    Config = PolluxConfig

    def __init__(self, config=None):
        super().__init__(config)
        self._next_round = -math.inf
        self._speedups: dict[tuple, list[float]] = {}
        self._m0: dict[int, float] = {}   # job -> submitted global batch (GPUs x per-GPU batch)
        self._gpn: dict = {}              # GPU type -> GPUs per node

    # --- goodput
    def _round_s(self, view) -> float:
        r = self.config.round
        return r if r is not None else (view.round_length or 60.0)

    def _goodputs(self, view, job, gpu_type) -> list[float]:
        """goodput(n) for n = 0..max_gpus (samples/s x efficiency; 0 where not costed)."""
        req = job.request
        b = view.batch_size(job)
        m0 = self._m0.setdefault(job.job_id, job.gpus * b)
        # the same for every job of one model, type, batch, submitted batch and maximum
        key = (req.model, gpu_type, b, m0, req.max_gpus, req.iterations is None)
        g = self._speedups.get(key)
        if g is None:
            gpn = self._gpn.get(gpu_type)
            if gpn is None:
                gpn = self._gpn[gpu_type] = view.gpus_per_node(gpu_type)
            phi = noise_scale(req.model, m0) if req.iterations is not None else None
            g = [0.0]
            for n in range(1, req.max_gpus + 1):
                if req.iterations is None:
                    g.append(1.0)
                    continue
                full, rest = divmod(n, gpn) if gpn else (0, 0)
                packed = (gpn,) * full + ((rest,) if rest else ())
                tput = view.throughput(job, gpu_type, packed) if gpn else 0.0
                g.append(n * b * tput * efficiency(phi, m0, n * b))
            self._speedups[key] = g
        return g

    def _speedup(self, view, job, gpu_type) -> list[float]:
        g = self._goodputs(view, job, gpu_type)
        base = g[job.request.min_gpus]
        return [x / base if base > 0 else 0.0 for x in g]

    # --- decisions
    def decide(self, view):
        now = view.now
        round_due = now >= self._next_round - 1e-9
        if not round_due and not view.pending_count():
            return []   # nothing to admit, no round due (its Wakeup is pending)
        fm = view.free_map()
        cfg = self.config
        actions: list = []
        busy: set[int] = set()
        elastic_running = [j for j in view.running() if j.request.min_gpus is not None and j.state == "running"]
        # 1. admission in submit order: elastic jobs on min_gpus, shrinking others if needed
        spare: dict = {}   # GPU type -> GPUs running elastic jobs hold above their min_gpus
        for j in elastic_running:
            spare[j.allocated_gpu_type] = spare.get(j.allocated_gpu_type, 0) + j.gpus - j.request.min_gpus
        for job in view.pending():
            req = job.request
            if req.min_gpus is not None and job.job_id not in self._m0:  # as submitted
                self._m0[job.job_id] = job.gpus * view.batch_size(job)
            n = req.min_gpus if req.min_gpus is not None else job.gpus
            t = job.gpu_type or max(view.gpu_types, key=fm.free_gpus, default=None)
            if job.gpus > 0:
                free = fm.free_gpus(t)
                if free + spare.get(t, 0) < n:   # a quick count reject (cheap with a long queue)
                    continue
                if free < n:
                    spare[t] -= self._shrink(view, fm, t, n - free, elastic_running, busy, actions)
            placed = fm.place(_Sized(job, n, t) if job.gpus > 0 else job, cfg.placement, cfg.consolidate)
            if placed is not None:
                actions.append(start_action(job, placed))
        # 2. at rounds: grow running elastic jobs by marginal speedup, with hysteresis
        R = self._round_s(view)
        if round_due:
            self._next_round = now + R
            by_type: dict = {}
            for j in elastic_running:
                if j.job_id not in busy and j.request.iterations is not None:
                    by_type.setdefault(j.allocated_gpu_type, []).append(j)
            for t, jobs in by_type.items():
                sp = {j.job_id: self._speedup(view, j, t) for j in jobs}
                cur = {j.job_id: j.gpus for j in jobs}
                target = greedy(sp, cur, fm.free_gpus(t))
                for j in jobs:
                    n0, n1 = cur[j.job_id], target[j.job_id]
                    if n1 <= n0:
                        continue
                    g = self._goodputs(view, j, t)
                    ckpt, restore = view.preemption_costs(j)   # with storage: this job's estimate
                    if not (g[n1] * (R - ckpt - restore) > g[n0] * R):
                        continue
                    extra = fm.place(_Sized(j, n1 - n0, t), cfg.placement, cfg.consolidate)
                    if extra is not None:
                        actions.append(Resize(j.job_id, tuple(sorted(j.allocated_gpus + tuple(extra)))))
            actions.append(Wakeup(self._next_round))
        return actions

    def _shrink(self, view, fm, t, need: int, running, busy: set, actions: list) -> int:
        """Free ``need`` GPUs of type ``t`` by shrinking running elastic jobs (least loss
        of speedup per GPU first); nothing when they cannot free enough.  Returns the
        GPUs freed."""
        jobs = [j for j in running if j.allocated_gpu_type == t and j.job_id not in busy
                and j.gpus > j.request.min_gpus]
        if sum(j.gpus - j.request.min_gpus for j in jobs) < need:
            return 0
        target = {j.job_id: j.gpus for j in jobs}
        sp = {j.job_id: self._speedup(view, j, t) for j in jobs}
        for _ in range(need):
            jid = min((k for k in target if target[k] > view.job(k).request.min_gpus),
                      key=lambda k: (sp[k][target[k]] - sp[k][target[k] - 1], k))
            target[jid] -= 1
        for j in jobs:
            n1 = target[j.job_id]
            if n1 == j.gpus:
                continue
            keep = _keep(view, j.allocated_gpus, n1)
            _give_back(fm, view, j, [g for g in j.allocated_gpus if g not in keep])
            busy.add(j.job_id)
            actions.append(Resize(j.job_id, keep))
        return need


def _keep(view, gpus, n: int) -> tuple[int, ...]:
    """The ``n`` of ``gpus`` to keep: those on the nodes holding most of them."""
    per: dict[int, list[int]] = {}
    for g in gpus:
        per.setdefault(view.node_of(g), []).append(g)
    order = sorted(per, key=lambda i: (-len(per[i]), i))
    out = [g for i in order for g in per[i]]
    return tuple(sorted(out[:n]))


def _give_back(fm, view, job, gpus) -> None:
    """Return some of a running job's whole GPUs to a scratch FreeMap (a shrink is
    applied at once by the engine, so later Starts of the same decision may use them)."""
    cpg, mpg = job.cpus / job.gpus, job.memory_bytes / job.gpus
    for g in gpus:
        i = view.node_of(g)
        fm.free[i] = sorted(fm.free[i] + [g])
        fm.cpus[i] += cpg
        fm.mem[i] += mpg
        fm.free_total[fm.node_type[i]] += 1
