"""Built-in policies: FIFO, SJF (oracle) and Tiresias-style discretized 2D-LAS."""
from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator

from lepsim.policies.actions import Preempt, Start, Wakeup
from lepsim.policies.base import Policy, PolicyConfig
from lepsim.policies.registry import register
from lepsim.units import UnitError, parse_duration


def _start(job, placed) -> Start:
    if placed and placed[0] == "node":
        return Start(job.job_id, (), node=placed[1])
    return Start(job.job_id, placed)


class PlacementConfig(PolicyConfig):
    placement: Literal["first_fit", "best_fit"] = Field(
        "first_fit", description="first_fit: first node that fits; best_fit: the node left with fewest free GPUs"
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
    strategy = "best" if cfg.placement == "best_fit" else "first"
    for job in jobs:
        if job.gpus > 0 and (fm.free_gpus(job.gpu_type) if fm else view.free_gpus(job.gpu_type)) < job.gpus:
            placed = None
        else:
            if fm is None:
                fm = view.free_map()
            placed = fm.first_fit(job, cfg.consolidate, strategy)
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


class LASConfig(PlacementConfig):
    thresholds: tuple[float, ...] = Field(
        (3600.0,),
        description="attained-service limits (GPU-seconds, or durations like '1h' meaning GPU-hours) between "
        "queues; K-1 thresholds make K queues",
    )
    promote_knob: float | None = Field(
        None,
        gt=0,
        description="starvation guard: a job waiting longer than promote_knob x its last run time goes back to "
        "the highest queue (Tiresias' PROMOTE_KNOB); null = off",
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
class LAS(Policy):
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

    def decide(self, view):
        """Admit by (queue, holding GPUs first, submit time); preempt running jobs left out.

        Cost per decision: O(running + pending scanned until the GPUs are spoken for).  A
        running job's next threshold crossing is fixed while it runs; it is cached per
        (job, start) and the policy asks to be woken at the earliest one (the engine keeps
        one wake-up per distinct time).
        """
        cfg = self.config
        if view.pending_count() == 0:
            return []  # nobody waits: no reason to preempt; the next arrival invokes us again
        now = view.now
        nq = len(cfg.thresholds) + 1
        queue_of = self._queue_of
        wake = math.inf
        ckpt, restore = view.preemption_costs()
        running = view.running()  # job-id order = submit order
        # a running job's queue changes only when it crosses a threshold, at a time fixed
        # when it starts: cache (queue, valid until) per (job, start time)
        cache = self._run_cache
        cache_get = cache.get
        run_q: list[list] = [[] for _ in range(nq)]
        for job in running:
            c = cache_get(job.job_id)
            if c is None or now >= c[2] or c[0] != job.last_start_time:
                a = self._attained(job)
                q = queue_of(a)
                # a restoring job starts progressing when its restore ends
                begins = now if job.state == "running" else job.last_start_time + restore
                until = self._next_crossing(job, begins)
                c = cache[job.job_id] = (job.last_start_time, q, until)
            run_q[c[1]].append(job)
            until = c[2]
            if now < until < wake:
                wake = until
        if len(cache) > 4 * len(running) + 64:
            live = {j.job_id for j in running}
            self._run_cache = {k: v for k, v in cache.items() if k in live}
        pending = list(view.pending())  # submit order
        promote = cfg.promote_knob
        pend_q: list[list] = [[] for _ in range(nq)]
        for job in pending:
            q = queue_of(self._attained(job))
            if promote is not None and q > 0 and job.last_stop_time is not None:
                due = job.last_stop_time + promote * max(job.last_stop_time - job.last_start_time, 0.0)
                if now >= due - 1e-9:  # the same comparison as the wake-up below: no self-wake loop
                    q = 0  # starving: back to the highest queue, attained service counted anew
                    self._promoted[job.job_id] = job.attained_service
                else:
                    wake = min(wake, due)
            pend_q[q].append(job)

        room = {t: view.capacity(t) for t in view.gpu_types}
        idle = {t: view.free_gpus(t) for t in view.gpu_types}
        any_room = sum(room.values())
        keep: set[int] = set()
        want: list = []
        keep_add = keep.add
        for k in range(nq):
            for job in run_q[k]:
                # inside a queue, jobs holding GPUs go first: a job is preempted only for a job
                # of a strictly higher-priority queue, never to swap two jobs of the same queue
                g = job.gpus
                if g == 0:
                    keep_add(job.job_id)
                    continue
                t = job.allocated_gpu_type
                if room[t] >= g:
                    room[t] -= g
                    any_room -= g
                    keep_add(job.job_id)
            for job in pend_q[k]:
                g = job.gpus
                if g == 0:
                    want.append(job)
                    continue
                if any_room <= 0:
                    continue
                types = [job.gpu_type] if job.gpu_type else list(room)
                # book a type with GPUs idle right now before one whose GPUs others hold
                t = next((t for t in types if room.get(t, 0) >= g and idle.get(t, 0) >= g), None)
                if t is None:
                    t = next((t for t in types if room.get(t, 0) >= g), None)
                if t is not None:
                    room[t] -= g
                    any_room -= g
                    idle[t] = max(idle.get(t, 0) - g, 0)
                    want.append(job)
        actions: list = []
        fm = view.free_map()
        for job in running:
            if job.job_id not in keep:
                actions.append(Preempt(job.job_id))
                if ckpt == 0:  # its GPUs are free at once; otherwise after the checkpoint
                    fm.release(job, view.node_of)
        strategy = "best" if cfg.placement == "best_fit" else "first"
        for job in want:
            placed = fm.first_fit(job, cfg.consolidate, strategy)
            if placed is not None:
                actions.append(_start(job, placed))
                # a resumed job restores before it progresses
                wake = min(wake, self._next_crossing(job, now + (restore if job.preemptions else 0.0)))
        if math.isfinite(wake):
            actions.append(Wakeup(wake))
        return actions
