"""Test-only: the LAS implementation as it was before it became incremental.

The incremental LAS (lepsim/policies/builtin.py) must take exactly the same decisions;
tests/unit/test_las_incremental.py runs both and compares every output record.  It keeps
LAS's unchanged helpers (queue of an attained service, next crossing time).
"""
from __future__ import annotations

import math

from lepsim.policies.actions import Preempt, Wakeup
from lepsim.policies.base import Policy
from lepsim.policies.builtin import LAS, LASConfig, _start, promotion_due


class LASReference(LAS):
    """The LAS of the release before the incremental rewrite, decision by decision (O(running) scans)."""

    name = "las-reference"
    family = "dynamic"
    reference = "Gu et al., Tiresias: A GPU Cluster Manager for Distributed Deep Learning, NSDI'19"
    Config = LASConfig

    def __init__(self, config=None):
        Policy.__init__(self, config)  # none of the incremental state
        self._run_cache: dict[int, tuple] = {}
        # promoted jobs count their attained service from the promotion on (as if reset)
        self._promoted: dict[int, float] = {}

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
                due = promotion_due(job, promote)
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
            if job.job_id not in keep and job.last_start_time != now:  # as LAS: not preempted at its start
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
