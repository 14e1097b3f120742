"""Built-in policies: FIFO, SJF (oracle) and Tiresias-style discretized 2D-LAS."""
from __future__ import annotations

import bisect
import heapq
import math
from typing import Literal

from pydantic import Field, field_validator

from lepsim.policies.actions import Preempt, Start, Wakeup
from lepsim.policies.base import Policy, PolicyConfig
from lepsim.policies.priority import JobSets, PendingKeys, RankedRunning, admit, candidates, place
from lepsim.policies.registry import register
from lepsim.units import UnitError, parse_duration


def _start(job, placed) -> Start:
    if placed and placed[0] == "node":
        return Start(job.job_id, (), node=placed[1])
    return Start(job.job_id, placed)


class PlacementConfig(PolicyConfig):
    placement: Literal["first_fit", "best_fit", "pack", "spread", "topology", "frag"] = Field(
        "first_fit", description="placement strategy (docs/policies.md): first_fit: first node that fits; best_fit: "
        "the node left with fewest free GPUs; pack: best fit, spreading over the fullest nodes first; spread: the "
        "emptiest node; topology: fewest nodes, then racks; frag: least increase in GPU fragmentation"
    )
    consolidate: Literal["prefer", "require", "none"] = Field(
        "prefer", description="prefer one node, spread when none fits; require: wait for one node; none: spread"
    )


class QueueConfig(PlacementConfig):
    skip_blocked: bool = Field(
        False, description="let later jobs start when the head of the queue does not fit (no reservation)"
    )


def _place_in_order(view, jobs, cfg: QueueConfig) -> list[Start]:
    """Start jobs in the given order while they fit; stop at the first misfit unless
    ``skip_blocked``.  ``jobs`` may be a lazy iterator: strict order stops reading at the
    first job that does not fit, and the scratch free map is only built when needed."""
    fm = None
    out: list[Start] = []
    for job in jobs:
        if job.gpus > 0 and (fm.free_gpus(job.gpu_type) if fm else view.free_gpus(job.gpu_type)) < job.gpus:
            placed = None
        else:
            if fm is None:
                fm = view.free_map()
            placed = fm.place(job, cfg.placement, cfg.consolidate)
        if placed is None:
            if not cfg.skip_blocked:
                break
            continue
        out.append(_start(job, placed))
    return out


@register
class FIFO(Policy):
    """First in, first out; gang placement on free GPUs; never preempts.

    Jobs start in submit order.  By default the head of the queue blocks the jobs behind it
    (strict FIFO); ``skip_blocked: true`` lets later jobs that fit go first.

    ```yaml
    scheduler:
      policy: fifo
      params: {placement: first_fit, consolidate: prefer}
    ```
    """

    name = "fifo"
    family = "static"
    reference = "first-come first-served, as the baseline in Tiresias (NSDI'19) and Gavel (OSDI'20)"
    Config = QueueConfig

    def decide(self, view):
        if view.pending_count() == 0:
            return []
        return _place_in_order(view, view.pending(), self.config)


@register
class SJF(Policy):
    """Shortest job first with oracle runtimes; non-preemptive.

    Pending jobs are ordered by their isolated runtime (ties: submit order).  By default the
    shortest job blocks the others until it fits; ``skip_blocked: true`` lets others pass.

    ```yaml
    scheduler:
      policy: sjf
      params: {skip_blocked: true}
    ```
    """

    name = "sjf"
    family = "static"
    reference = "shortest-job-first with known durations (oracle), the Tiresias (NSDI'19) baseline"
    Config = QueueConfig

    def decide(self, view):
        if view.pending_count() == 0:
            return []
        jobs = sorted(view.pending(), key=lambda j: (j.isolated_runtime, j.job_id))
        return _place_in_order(view, jobs, self.config)


def promotion_due(job, knob: float) -> float:
    """When a waiting job is promoted (Tiresias' PROMOTE_KNOB): ``knob`` x its last run after
    its last stop.  A run cut at the instant it began counts as its total executed time, so
    that two jobs cannot promote and preempt each other forever at one instant."""
    run = job.last_stop_time - job.last_start_time
    if run <= 0.0:
        run = job.executed_time
    return job.last_stop_time + knob * run


class LASConfig(PlacementConfig):
    thresholds: tuple[float, ...] = Field(
        (3600.0,),
        description="attained-service limits (GPU-seconds, or durations like '1h' meaning GPU-hours) between "
        "queues; K-1 thresholds make K queues",
    )
    promote_knob: float | None = Field(
        None,
        gt=0,
        description="starvation guard: a job waiting longer than promote_knob x its last run time (its executed "
        "time when that run was cut at its start) goes back to the highest queue (Tiresias' PROMOTE_KNOB); null = off",
    )

    @field_validator("thresholds", mode="before")
    @classmethod
    def _parse(cls, v):
        if isinstance(v, (int, float, str)):
            v = [v]
        out = []
        for x in v:
            try:
                out.append(parse_duration(x))
            except UnitError as e:
                raise ValueError(str(e)) from None
        if any(b <= a for a, b in zip(out, out[1:])) or any(x <= 0 for x in out):
            raise ValueError(f"found {v!r}, expected positive, increasing thresholds")
        return tuple(out)


@register
class LAS(PendingKeys, Policy):
    """Discretized two-dimensional least-attained-service, preemptive (Tiresias 2D-LAS).

    A job's attained service is its GPUs × executed time.  Queue k holds jobs whose attained
    service lies between thresholds k-1 and k; lower queues go first, FIFO (submit order)
    inside a queue, where a job holding GPUs is not preempted for a waiting job of the same
    queue (preemption only crosses queues).  At every decision the policy admits jobs in priority order while the
    GPUs of their type suffice, preempts running jobs that fell out of that set and starts
    the admitted ones on free GPUs.  It asks to be woken when a running job will cross its
    next threshold, so demotion happens at the exact time, not at round boundaries.
    Preemption costs what ``scheduler.preemption`` says (checkpoint, restore).

    ```yaml
    scheduler:
      policy: las
      params: {thresholds: [1h, 10h], promote_knob: 8}
      preemption: {checkpoint: 20s, restore: 30s}
    ```
    """

    name = "las"
    family = "dynamic"
    reference = "Gu et al., Tiresias: A GPU Cluster Manager for Distributed Deep Learning, NSDI'19"
    Config = LASConfig

    def __init__(self, config=None):
        super().__init__(config)
        self._run_cache: dict[int, tuple] = {}
        # promoted jobs count their attained service from the promotion on (as if reset)
        self._promoted: dict[int, float] = {}
        self._sets = JobSets()
        self._ranked: RankedRunning | None = None  # running jobs by (queue, 0, id)
        self._pend: list[tuple] = []          # pending keys (queue, 1, id), sorted
        self._pkey: dict[int, tuple] = {}     # pending job id -> its key
        self._pinfo: dict[int, tuple] = {}    # pending job id -> (GPUs, candidate type indices)
        self._zero = 0                        # pending jobs asking no GPUs
        self._fresh: set[int] = set()         # started since the last full decision
        self._cross: list = []                # heap (crossing time, id, cache entry)
        self._promo: list = []                # heap (promotion due, id, pending key)

    def _attained(self, job) -> float:
        return job.attained_service - self._promoted.get(job.job_id, 0.0)

    def _queue_of(self, attained: float) -> int:
        for k, th in enumerate(self.config.thresholds):
            if attained < th - 1e-9:
                return k
        return len(self.config.thresholds)

    def _next_crossing(self, job, begins: float) -> float:
        """When a job progressing from ``begins`` on reaches its next threshold (inf: never);
        always later than ``begins``, so rounding at large times never loses a crossing."""
        a = self._attained(job)
        for th in self.config.thresholds:
            if a < th - 1e-9:
                return max(begins + (th - a) / max(job.gpus, 1), math.nextafter(begins, math.inf))
        return math.inf

    # ------------------------------------------------------------------ incremental state
    def _add_pending(self, job) -> None:
        jid = job.job_id
        q = self._queue_of(self._attained(job))
        key = self._pending_key(job, q)
        self._pkey[jid] = key
        bisect.insort(self._pend, key)
        self._pinfo[jid] = (job.gpus, candidates(job, self._sets.types))
        if job.gpus == 0:
            self._zero += 1
        knob = self.config.promote_knob
        if knob is not None and q > 0 and job.last_stop_time is not None:
            due = promotion_due(job, knob)
            heapq.heappush(self._promo, (due, jid, key))

    def _pending_key(self, job, q: int) -> tuple:
        """A pending job's sort key: (queue, 1, id); subclasses order a queue otherwise."""
        return (q, 1, job.job_id)

    def _sync(self, view) -> None:
        sets = self._sets
        sets.update(view)
        job = view.job
        if sets.resynced:
            self._ranked = RankedRunning(len(self._sets.types))
            self._pend, self._pkey, self._pinfo, self._zero = [], {}, {}, 0
            self._cross, self._promo = [], []
            self._fresh = set(sets.running)
            for jid in sorted(sets.pending):
                self._add_pending(job(jid))
            return
        ranked, fresh = self._ranked, self._fresh
        for jid in sets.left_pending:
            self._drop_pending(jid)
        fresh.update(sets.entered_running)
        for jid in sets.left_running:
            ranked.remove(jid)
            fresh.discard(jid)
        for jid in sets.entered_pending:
            self._add_pending(job(jid))

    def _entry(self, job, now: float, restore: float) -> tuple:
        """(start time, queue, next crossing) of a running job, computed at ``now``."""
        q = self._queue_of(self._attained(job))
        # a restoring job starts progressing when its restore ends; one holding GPUs without
        # progressing for longer (loading its dataset, writing a periodic checkpoint) from now
        # at the earliest, so that its next crossing is always in the future
        begins = now if job.state == "running" else max(now, job.last_start_time + restore)
        c = (job.last_start_time, q, self._next_crossing(job, begins))
        self._run_cache[job.job_id] = c
        if c[2] != math.inf:
            heapq.heappush(self._cross, (c[2], job.job_id, c))
        return c

    def _place_running(self, job, q: int) -> None:
        g = job.gpus
        ti = self._sets.types[job.allocated_gpu_type] if g else -1
        self._ranked.add((q, 0, job.job_id), g, ti)

    def decide(self, view):
        """Admit by (queue, holding GPUs first, submit time); preempt running jobs left out.

        The ranked sets are kept across decisions (see :mod:`lepsim.policies.priority`):
        a decision costs O(changes since the last one + pending jobs scanned +
        running jobs / block size), not O(running).  A running job's next threshold
        crossing is fixed while it runs; it is cached per (job, start) and kept in a heap,
        and the policy asks to be woken at the earliest one (the engine keeps one wake-up
        per distinct time).
        """
        cfg = self.config
        if view.pending_count() == 0:
            return []  # nobody waits: no reason to preempt; the next arrival invokes us again
        now = view.now
        ckpt, restore = view.preemption_costs()
        self._sync(view)
        job_of = view.job
        cache = self._run_cache
        ranked = self._ranked
        # running jobs started since the last decision: their cached entry, if still valid
        if self._fresh:
            for jid in self._fresh:
                job = job_of(jid)
                c = cache.get(jid)
                if c is None or now >= c[2] or c[0] != job.last_start_time:
                    c = self._entry(job, now, restore)
                elif c[2] != math.inf:
                    heapq.heappush(self._cross, (c[2], jid, c))
                self._place_running(job, c[1])
            self._fresh = set()
        # running jobs whose crossing has come: new queue, next crossing
        cross = self._cross
        while cross and cross[0][0] <= now:
            _, jid, c = heapq.heappop(cross)
            if jid in ranked and cache.get(jid) is c:
                job = job_of(jid)
                c2 = self._entry(job, now, restore)
                if c2[1] != c[1]:
                    ranked.remove(jid)
                    self._place_running(job, c2[1])
        if len(cache) > 4 * len(ranked) + 64:
            self._run_cache = cache = {k: v for k, v in cache.items() if k in ranked}
        while cross and not (cross[0][1] in ranked and cache.get(cross[0][1]) is cross[0][2]):
            heapq.heappop(cross)
        wake = cross[0][0] if cross else math.inf
        # starving pending jobs: back to the highest queue, attained service counted anew
        promo = self._promo
        while promo and now >= promo[0][0] - 1e-9:  # the same comparison as the wake-up: no self-wake loop
            _, jid, key = heapq.heappop(promo)
            if self._pkey.get(jid) is key:
                job = job_of(jid)
                self._drop_pending(jid)
                self._promoted[jid] = job.attained_service
                self._add_pending(job)
        while promo and self._pkey.get(promo[0][1]) is not promo[0][2]:
            heapq.heappop(promo)
        if promo:
            wake = min(wake, promo[0][0])

        drop, want = admit(view, ranked, self._pend, self._pinfo, self._sets.types, zero_pending=self._zero)
        # a job started at this very instant has made no progress: it is not preempted again now
        # (two jobs would otherwise swap GPUs at one instant forever when a count-based admission
        # books room that placement cannot use); it may be preempted from the next instant on
        drop = [jid for jid in drop if job_of(jid).last_start_time != now]
        actions: list = [Preempt(jid) for jid in sorted(drop)]
        strategy = cfg.placement  # a FreeMap strategy name (first_fit, best_fit, pack, ...)
        # with no checkpoint time the preempted jobs' GPUs are free at once (else after it)
        for job, placed in place(view, want, drop, ckpt, cfg.consolidate, strategy):
            if placed is not None:
                actions.append(_start(job, placed))
                # a resumed job restores before it progresses
                wake = min(wake, self._next_crossing(job, now + (restore if job.preemptions else 0.0)))
        if math.isfinite(wake):
            actions.append(Wakeup(wake))
        return actions
