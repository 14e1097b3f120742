"""The dynamic family: preemptive policies re-evaluated on events (and, for some, wake-ups).

Every policy here preempts through :class:`~lepsim.policies.actions.Preempt`, so the engine
charges ``scheduler.preemption`` (checkpoint, then restore on resumption).  Each documents
when it re-evaluates (its re-evaluation points) and what keeps it from thrashing.  None
quantizes completions to rounds: a freed GPU is reused at the completion's own time.

Tiresias' discretized 2D-LAS is ``las`` in :mod:`lepsim.policies.builtin`; the Gittins-index
variant below shares its queues.  All keep their ranked sets across decisions
(:mod:`lepsim.policies.priority`).
"""
from __future__ import annotations

import bisect
import heapq
import math
from itertools import accumulate
from typing import ClassVar

from pydantic import Field, field_validator

from lepsim.policies.actions import Preempt, Wakeup
from lepsim.policies.base import Policy, start_action
from lepsim.policies.builtin import LAS, LASConfig, PlacementConfig
from lepsim.policies.priority import JobSets, PendingKeys, RankedRunning, admit, book, candidates, place
from lepsim.policies.registry import register
from lepsim.units import UnitError, parse_duration

_RUNNING_STATE = "running"


def _strategy(cfg) -> str:
    return "best" if cfg.placement == "best_fit" else "first"


# ----------------------------------------------------------------------------- ranked base
class _Ranked(PendingKeys, Policy):
    """Base of preemptive policies that rank all active jobs by a static key.

    Subclasses give :meth:`run_rank` (a running job's rank tuple, fixed while it runs) and
    :meth:`pend_rank` (a pending job's rank, fixed while it waits).  Keys are ``(*rank, 0, id)`` for running and ``(*rank, 1, id)`` for pending
    jobs, so on equal rank the job holding GPUs goes first and is never preempted for it.
    """

    def __init__(self, config=None):
        super().__init__(config)
        self._sets = JobSets()
        self._ranked: RankedRunning | None = None
        self._pend: list[tuple] = []
        self._pkey: dict[int, tuple] = {}
        self._pinfo: dict[int, tuple] = {}
        self._zero = 0

    # ---- subclass API
    def run_rank(self, job, now: float, restore: float) -> tuple:  # pragma: no cover
        raise NotImplementedError

    def pend_rank(self, job, now: float, restore: float) -> tuple:  # pragma: no cover
        raise NotImplementedError

    def pending_keys(self, now: float):
        """The pending keys in walk order (a subclass may map them into running keys' space)."""
        return self._pend

    # ---- bookkeeping
    def _add_running(self, job, now, restore) -> None:
        key = (*self.run_rank(job, now, restore), 0, job.job_id)
        g = job.gpus
        self._ranked.add(key, g, self._sets.types[job.allocated_gpu_type] if g else -1)

    def _add_pending(self, job, now, restore) -> None:
        key = (*self.pend_rank(job, now, restore), 1, job.job_id)
        self._pkey[job.job_id] = key
        bisect.insort(self._pend, key)
        self._pinfo[job.job_id] = (job.gpus, candidates(job, self._sets.types))
        if job.gpus == 0:
            self._zero += 1

    def _sync(self, view, now, restore) -> JobSets:
        sets = self._sets
        sets.update(view)
        job = view.job
        if sets.resynced:
            self._ranked = RankedRunning(len(self._sets.types))
            self._pend, self._pkey, self._pinfo, self._zero = [], {}, {}, 0
            for jid in sorted(sets.running):
                self._add_running(job(jid), now, restore)
            for jid in sorted(sets.pending):
                self._add_pending(job(jid), now, restore)
            return sets
        for jid in sets.left_pending:
            self._drop_pending(jid)
        for jid in sets.entered_running:
            self._add_running(job(jid), now, restore)
        for jid in sets.left_running:
            self._ranked.remove(jid)
        for jid in sets.entered_pending:
            self._add_pending(job(jid), now, restore)
        return sets

    def decide(self, view):
        if view.pending_count() == 0:
            return []  # nobody waits: nothing to preempt for
        now = view.now
        ckpt, restore = view.preemption_costs()
        self._sync(view, now, restore)
        drop, want = admit(view, self._ranked, self.pending_keys(now), self._pinfo, self._sets.types,
                           zero_pending=self._zero)
        cfg = self.config
        actions: list = [Preempt(jid) for jid in sorted(drop)]
        for job, placed in place(view, want, drop, ckpt, cfg.consolidate, _strategy(cfg)):
            if placed is not None:
                actions.append(start_action(job, placed))
                self.starting(job, now, restore)
        return actions

    def starting(self, job, now: float, restore: float) -> None:
        """Called for each job this decision starts (before the engine applies the Start)."""


# ----------------------------------------------------------------------------- priority classes
@register
class PriorityClasses(_Ranked):
    """Strict priority classes with preemption.

    Each job carries an integer ``priority`` (scenario field ``priority`` of inline jobs,
    generators and trace rows; default 0; inference replicas use a high class).  Jobs are
    ranked by class, highest first, then by submit order; a pending job of a higher class
    preempts running jobs of lower classes when the GPUs of its type are otherwise spoken
    for (the most recently submitted of the lowest class go first).  Inside one class a
    running job is never preempted (so no two jobs of a class swap back and forth).

    Re-evaluation points: arrivals, completions and checkpoint ends only (ranks never
    change with time, so no wake-ups).  Thrashing cannot happen: a job is preempted only by
    a job of a strictly higher class, and classes are fixed.

    ```yaml
    workload:
      jobs:
        - {name: batch, gpus: 8, duration: 6h}
        - {name: urgent, submit: 1h, gpus: 4, duration: 30min, priority: 10}
    scheduler:
      policy: priority
      preemption: {checkpoint: 30s, restore: 60s}
    ```
    """

    name = "priority"
    family = "dynamic"
    reference = "preemptive priority classes, as Kubernetes PriorityClass preemption and Borg's production/batch bands"
    Config = PlacementConfig

    def run_rank(self, job, now, restore):
        return (-job.priority,)

    def pend_rank(self, job, now, restore):
        return (-job.priority,)


# ----------------------------------------------------------------------------- SRTF
class SRTFConfig(PlacementConfig):
    pass


@register
class SRTF(_Ranked):
    """Shortest remaining time first with oracle runtimes, preemptive (SRPT for gangs).

    Every active job is ranked by the time at which it would finish if it ran from now on
    at its isolated rate (oracle: its rate alone, packed, on its best GPU type): a waiting
    job by now + its remaining work at that rate, plus ``restore`` if it was preempted
    before (it must restore first); a running job by that same figure computed when it was
    started (fixed while it runs), minus checkpoint + restore: preempting it would cost it
    those, so a waiting job displaces it only if it finishes that much earlier.  Admission walks
    that order with each GPU type's capacity as the budget; running jobs left out are
    preempted, admitted jobs started.

    Re-evaluation points: arrivals, completions and checkpoint ends; no wake-ups (ranks
    never change while a job runs or waits).  No thrashing: one measure ranks running and
    waiting jobs, a running job progresses at most at its isolated rate, so a job that
    was preempted never ranks before the job that displaced it; counting the restore in a
    preempted job's rank, and giving ties to the running job, keep near-equal jobs from
    swapping.

    ```yaml
    scheduler:
      policy: srtf
      preemption: {checkpoint: 20s, restore: 30s}
    ```
    """

    name = "srtf"
    family = "dynamic"
    reference = "shortest-remaining-processing-time (Schrage 1968), the oracle baseline in Tiresias (NSDI'19)"
    Config = SRTFConfig

    def __init__(self, config=None):
        super().__init__(config)
        self._planned: dict[int, float] = {}  # job id -> projected end fixed at its start
        self._cost = 0.0                      # checkpoint + restore of one preemption

    def starting(self, job, now, restore):
        self._planned[job.job_id] = now + self.pend_rank(job, now, restore)[0]

    def run_rank(self, job, now, restore):
        end = self._planned.pop(job.job_id, None)
        if end is None:  # running before this policy saw it start (first call, resync)
            end = now + job.remaining_time
        # displacing it costs it a checkpoint and a restore: a waiting job must finish that
        # much earlier to displace it
        return (end - self._cost,)

    def pending_keys(self, now):
        # pending ranks are durations; the walk compares end times
        return ((now + k[0], 1, k[2]) for k in self._pend)

    def decide(self, view):
        self._cost = sum(view.preemption_costs())
        return super().decide(view)

    def pend_rank(self, job, now, restore):
        # a waiting job's remaining_time is at its isolated rate
        return (job.remaining_time + (restore if job.preemptions else 0.0),)


# ----------------------------------------------------------------------------- Gittins
class GittinsConfig(LASConfig):
    prior_mean: float = Field(
        3600.0, gt=0,
        description="mean (GPU-seconds, or a duration meaning GPU-time) of the exponential prior on job size "
        "(GPUs x running time) used before and alongside the observed sizes",
    )
    prior_weight: float = Field(
        10.0, ge=0, description="weight of the prior, in completed jobs (0: observed sizes only, once there are any)"
    )
    refit_growth: float = Field(
        0.02, ge=0,
        description="refit the size distribution when the number of completed jobs grew by this fraction "
        "(and by at least one job) since the last fit",
    )

    @field_validator("prior_mean", mode="before")
    @classmethod
    def _mean(cls, v):
        try:
            return parse_duration(v)
        except UnitError as e:
            raise ValueError(str(e)) from None


class SizeDistribution:
    """Job sizes S (GPU-seconds): an exponential prior of mean ``m`` and weight ``w`` mixed
    with the empirical distribution of the ``n`` observed sizes, F = (w F_exp + n F_emp) / (w + n)."""

    def __init__(self, prior_mean: float, prior_weight: float):
        self.m, self.w = prior_mean, prior_weight
        self.sizes: list[float] = []
        self.cum: list[float] = [0.0]

    def fit(self, sizes) -> None:
        self.sizes = sorted(float(x) for x in sizes)
        self.cum = list(accumulate(self.sizes, initial=0.0))

    def index(self, a: float, b: float) -> float:
        """Gittins index of a job with attained service ``a`` over the quantum up to ``b``
        (inf: no further threshold): P(S <= b | S > a) / E[min(S, b) - a | S > a]."""
        s, cum = self.sizes, self.cum
        n = len(s)
        i = bisect.bisect_right(s, a)  # observed sizes <= a
        ea = math.exp(-a / self.m) if self.w > 0 else 0.0
        if math.isinf(b):
            num = self.w * ea + (n - i)
            den = self.w * self.m * ea + (cum[n] - cum[i]) - (n - i) * a
        else:
            j = bisect.bisect_right(s, b)
            eb = math.exp(-b / self.m) if self.w > 0 else 0.0
            num = self.w * (ea - eb) + (j - i)
            den = self.w * self.m * (ea - eb) + (cum[j] - cum[i]) - (j - i) * a + (n - j) * (b - a)
        if den <= 0.0 or num <= 0.0:
            return 0.0  # no mass beyond a (or none in the quantum): nothing to gain soon
        return num / den


@register
class Gittins(LAS):
    """Tiresias' discretized 2D-Gittins index: LAS queues, Gittins order inside a queue.

    Queues, demotion at the exact threshold crossing, holding-first inside a queue and the
    optional promotion are those of ``las`` (same parameters).  Inside a queue, waiting jobs
    are ordered by their Gittins index instead of submit time: for a job with attained
    service a (GPU-seconds) in a queue whose upper threshold is b,

        G(a) = P(S <= b | S > a) / E[min(S, b) - a | S > a]

    (b = infinity in the last queue), the chance that it finishes within its quantum per
    unit of expected service; higher goes first, ties by submit order.

    The job-size distribution S never peeks at the jobs' declared runtimes: it is the
    attained service of the jobs that have *completed* so far (their true sizes, observed
    at completion), mixed with an exponential prior of mean ``prior_mean`` and weight
    ``prior_weight`` completed-job equivalents (so the index is defined before any job
    completes, and the prior fades as observations accumulate).  The fit is redone when
    the count of completed jobs grew by ``refit_growth`` since the last fit, and then
    every waiting job's index is recomputed.

    Re-evaluation points: those of ``las`` (arrivals, completions, checkpoint ends, a
    wake-up at each running job's next threshold crossing and at promotion times).  As in
    ``las``, a running job is preempted only for a job of a strictly higher queue.

    ```yaml
    scheduler:
      policy: gittins
      params: {thresholds: [1h, 10h], prior_mean: 2h, prior_weight: 10}
      preemption: {checkpoint: 20s, restore: 30s}
    ```
    """

    name = "gittins"
    family = "dynamic"
    reference = "Gu et al., Tiresias: A GPU Cluster Manager for Distributed Deep Learning, NSDI'19 (2D-Gittins index)"
    Config = GittinsConfig

    def __init__(self, config=None):
        super().__init__(config)
        self._dist = SizeDistribution(self.config.prior_mean, self.config.prior_weight)
        self._observed: list[float] = []
        self._fitted = 0

    def _upper(self, q: int) -> float:
        th = self.config.thresholds
        return th[q] if q < len(th) else math.inf

    def _gkey(self, job, q: int) -> tuple:
        g = self._dist.index(self._attained(job), self._upper(q))
        return (q, 1, -g, job.job_id)

    def _pending_key(self, job, q: int) -> tuple:
        return self._gkey(job, q)

    def _rekey_promotions(self, changed: dict) -> None:
        if not changed or not self._promo:
            return
        out = []
        for due, jid, key in self._promo:
            c = changed.get(jid)
            out.append((due, jid, c[1] if c is not None and c[0] is key else key))
        heapq.heapify(out)
        self._promo = out

    def _sync(self, view) -> None:
        super()._sync(view)
        job = view.job
        for jid in self._sets.completed:
            self._observed.append(job(jid).attained_service)
        n = len(self._observed)
        if n > self._fitted and n - self._fitted >= self.config.refit_growth * self._fitted:
            self._dist.fit(self._observed)
            self._fitted = n
            changed = {}
            for jid, old in list(self._pkey.items()):
                changed[jid] = (old, self._gkey(job(jid), old[0]))
                self._pkey[jid] = changed[jid][1]
            self._pend = sorted(self._pkey.values())
            self._rekey_promotions(changed)


# ----------------------------------------------------------------------------- tenant shares
class FairShareConfig(PlacementConfig):
    weights: dict[str, float] = Field(
        {}, description="tenant -> weight (> 0); tenants not listed weigh 1"
    )

    @field_validator("weights")
    @classmethod
    def _positive(cls, v):
        bad = {t: w for t, w in v.items() if not (w > 0 and math.isfinite(w))}
        if bad:
            raise ValueError(f"found weights {bad}, expected finite numbers > 0")
        return v


def progressive_filling(demands: dict, weights: dict, caps: list[float]) -> dict:
    """Weighted max-min fair allocation of divisible resources (DRF's progressive filling).

    ``demands``: tenant -> demand vector (one entry per resource); ``caps``: capacities.
    Every unsatisfied tenant grows along its own demand vector so that its dominant share
    (largest share of any resource) divided by its weight is the same for all; a tenant
    stops when its demand is met or a resource it uses is exhausted.  With one resource
    this is weighted max-min fair sharing (water-filling).  Returns tenant -> allocation.
    """
    R = len(caps)
    dom = {}
    for t, d in demands.items():
        dom[t] = max((d[r] / caps[r] for r in range(R) if caps[r] > 0), default=0.0)
    frac = {t: 0.0 for t in demands}
    active = {t for t in demands if dom[t] > 0}
    used = [0.0] * R
    level = 0.0
    while active:
        # growth per unit of level: tenant t's fraction grows by w_t / dom_t
        rate = [sum(weights.get(t, 1.0) / dom[t] * demands[t][r] for t in active) for r in range(R)]
        step = min(((1.0 - frac[t]) * dom[t] / weights.get(t, 1.0)) for t in active)
        saturated = []
        for r in range(R):
            if rate[r] > 0:
                s = (caps[r] - used[r]) / rate[r]
                if s < step - 1e-15:
                    step, saturated = s, [r]
                elif abs(s - step) <= 1e-15:
                    saturated.append(r)
        step = max(step, 0.0)
        level += step
        for r in range(R):
            used[r] += rate[r] * step
        done = set()
        for t in active:
            frac[t] = min(1.0, frac[t] + step * weights.get(t, 1.0) / dom[t])
            if frac[t] >= 1.0 - 1e-12 or any(demands[t][r] > 0 and caps[r] - used[r] <= 1e-9 * caps[r] for r in range(R)):
                done.add(t)
        if not done:  # numerical guard: the smallest step always finishes someone
            done = {min(active, key=lambda t: (1.0 - frac[t]) * dom[t] / weights.get(t, 1.0))}
        active -= done
    return {t: [frac[t] * d for d in demands[t]] for t, d in demands.items()}


class _TenantShares(Policy):
    """Fair shares across tenants with preemption; the shares come from :func:`progressive_filling`
    over ``resources`` (a subset of gpus, cpus, memory).

    Kept across decisions: per tenant its running and pending job ids (ascending), their
    usage and demand vectors, its running GPUs per GPU type, and (rebuilt when its running
    set changes) cumulative sums over its running jobs in submit order, so that keeping
    the longest prefix of its running jobs inside its share is a binary search.
    """

    resources: ClassVar[tuple[str, ...]] = ("gpus",)

    def __init__(self, config=None):
        super().__init__(config)
        self._sets = JobSets()
        self._run: dict[str, list[int]] = {}    # tenant -> running ids, ascending
        self._pend: dict[str, list[int]] = {}   # tenant -> pending ids, ascending
        self._use: dict[str, list[float]] = {}  # tenant -> running usage per resource
        self._dem: dict[str, list[float]] = {}  # tenant -> pending demand per resource
        self._rt: dict[str, list[int]] = {}     # tenant -> running GPUs per GPU type
        self._pre: dict[str, list] = {}         # tenant -> cumulative (usage..., GPUs per type...) of running
        self._info: dict[int, tuple] = {}       # job id -> (usage vector, GPUs, type index or candidates)
        self._pzero: dict[str, int] = {}        # tenant -> pending jobs asking no GPUs
        self._caps: list[float] | None = None
        self._memo = None                       # (demands, shares) of the last call

    def _vec(self, job) -> tuple[float, ...]:
        return tuple(float(job.gpus) if r == "gpus" else job.cpus if r == "cpus" else job.memory_bytes
                     for r in self.resources)

    def _reset(self, view) -> None:
        self._run, self._pend, self._use, self._dem, self._rt, self._pre = {}, {}, {}, {}, {}, {}
        self._info, self._pzero = {}, {}
        job = view.job
        for jid in sorted(self._sets.running):
            self._enter(job(jid), True)
        for jid in sorted(self._sets.pending):
            self._enter(job(jid), False)

    def _enter(self, job, running: bool) -> None:
        t, jid, g = job.tenant, job.job_id, job.gpus
        v = self._vec(job)
        R, nt = len(self.resources), len(self._sets.types)
        if running:
            ti = self._sets.types[job.allocated_gpu_type] if g else -1
            self._info[jid] = (v, g, ti)
            bisect.insort(self._run.setdefault(t, []), jid)
            acc = self._use.setdefault(t, [0.0] * R)
            rt = self._rt.setdefault(t, [0] * nt)
            if ti >= 0:
                rt[ti] += g
            self._pre[t] = None
        else:
            self._info[jid] = (v, g, candidates(job, self._sets.types))
            bisect.insort(self._pend.setdefault(t, []), jid)
            acc = self._dem.setdefault(t, [0.0] * R)
            if g == 0:
                self._pzero[t] = self._pzero.get(t, 0) + 1
        for r in range(R):
            acc[r] += v[r]

    def _leave(self, job, running: bool) -> None:
        t, jid = job.tenant, job.job_id
        lst = (self._run if running else self._pend).get(t)
        info = self._info.get(jid)
        if not lst or info is None:
            return
        i = bisect.bisect_left(lst, jid)
        if i >= len(lst) or lst[i] != jid:
            return
        del lst[i]
        v, g, ti = info
        acc = (self._use if running else self._dem)[t]
        for r in range(len(v)):
            acc[r] -= v[r]
        if running:
            if ti >= 0:
                self._rt[t][ti] -= g
            self._pre[t] = None
        elif g == 0:
            self._pzero[t] -= 1

    def _sync(self, view) -> None:
        sets = self._sets
        types = sets.types
        sets.update(view)
        if sets.types is not types:
            nodes = view.nodes
            self._caps = [float(view.capacity()) if r == "gpus" else
                          float(sum(n.info.cpus for n in nodes)) if r == "cpus" else
                          float(sum(n.info.memory_bytes for n in nodes)) for r in self.resources]
        if sets.resynced:
            return self._reset(view)
        job = view.job
        for jid in sets.left_pending:
            self._leave(job(jid), False)
        for jid in sets.entered_running:
            self._enter(job(jid), True)
        for jid in sets.left_running:
            self._leave(job(jid), True)
        for jid in sets.entered_pending:
            self._enter(job(jid), False)

    def _prefix(self, t: str) -> list:
        """Cumulative (usage per resource..., GPUs per type...) over tenant ``t``'s running jobs."""
        pre = self._pre.get(t)
        if pre is None:
            R, nt = len(self.resources), len(self._sets.types)
            acc = [0.0] * (R + nt)
            pre = [tuple(acc)]
            for jid in self._run.get(t, ()):
                v, g, ti = self._info[jid]
                for r in range(R):
                    acc[r] += v[r]
                if ti >= 0:
                    acc[R + ti] += g
                pre.append(tuple(acc))
            self._pre[t] = pre
        return pre

    def decide(self, view):
        if view.pending_count() == 0:
            return []
        self._sync(view)
        cfg = self.config
        types = list(self._sets.types)
        nt = len(types)
        weights = cfg.weights
        R = len(self.resources)
        caps = self._caps
        info = self._info
        tenants = sorted(t for t in set(self._run) | set(self._pend) if self._run.get(t) or self._pend.get(t))
        zero = [0.0] * R
        demand = {t: [a + b for a, b in zip(self._use.get(t, zero), self._dem.get(t, zero))] for t in tenants}
        memo = (tuple((t, tuple(d)) for t, d in demand.items()), tuple(caps))
        if self._memo is not None and self._memo[0] == memo:
            share = self._memo[1]
        else:
            share = progressive_filling(demand, weights, caps)
            self._memo = (memo, share)
        # a share is compared with a small tolerance (it is a sum of float fractions)
        lim = {t: [x * (1 + 1e-9) + 1e-9 for x in share[t]] for t in tenants}
        room = [view.capacity(t) for t in types]
        idle = [view.free_gpus(t) for t in types]
        used = {t: [0.0] * R for t in tenants}
        # what the cluster has left of each resource after the jobs kept or admitted so far
        rroom = list(caps)
        over_run: list[int] = []

        # pass 1a: each tenant keeps the longest prefix (submit order) of its running jobs
        # inside its share, then any later running job that still fits; they hold GPUs, so they fit
        for t in tenants:
            ids = self._run.get(t)
            if not ids:
                continue
            L = lim[t]
            u = used[t]
            tot = self._use[t]
            if all(tot[r] <= L[r] for r in range(R)):  # all inside the share: no prefix needed
                for r in range(R):
                    u[r] = tot[r]
                    rroom[r] -= tot[r]
                for ti, x in enumerate(self._rt[t]):
                    room[ti] -= x
                continue
            pre = self._prefix(t)
            lo, hi = 0, len(ids)
            while lo < hi:  # largest k with pre[k] inside the share (prefix sums only grow)
                mid = (lo + hi + 1) // 2
                if all(pre[mid][r] <= L[r] for r in range(R)):
                    lo = mid
                else:
                    hi = mid - 1
            for r in range(R):
                u[r] = pre[lo][r]
                rroom[r] -= pre[lo][r]
            for ti in range(nt):
                room[ti] -= pre[lo][R + ti]
            for jid in ids[lo:]:
                v, g, ti = info[jid]
                if all(u[r] + v[r] <= L[r] for r in range(R)):
                    for r in range(R):
                        u[r] += v[r]
                        rroom[r] -= v[r]
                    if ti >= 0:
                        room[ti] -= g
                else:
                    over_run.append(jid)

        def take(g, cand) -> bool:
            return g == 0 or book(room, idle, g, cand)

        # pass 1b: pending jobs inside their tenant's share (submit order)
        want: list[int] = []
        rest: dict[str, list[int]] = {}
        for t in tenants:
            ids = self._pend.get(t)
            if not ids:
                continue
            L, u = lim[t], used[t]
            if L[0] - u[0] < 1 and not self._pzero.get(t):
                rest[t] = ids  # no GPU job fits in what is left of its share
                continue
            left = []
            head = L[0] - u[0]  # GPUs left in its share (resource 0 is GPUs)
            for jid in ids:
                v, g, cand = info[jid]
                if g > head or not (R == 1 or all(u[r] + v[r] <= L[r] for r in range(1, R))) \
                        or not take(g, cand):
                    left.append(jid)
                    continue
                for r in range(R):
                    u[r] += v[r]
                    rroom[r] -= v[r]
                head = L[0] - u[0]
                want.append(jid)
            if left:
                rest[t] = left
        # pass 2 (work conservation): the GPUs left go to the running jobs beyond their
        # share (oldest first), then to waiting jobs, the tenant lowest in share / weight first
        def fits_cluster(v) -> bool:
            return all(v[r] <= rroom[r] + 1e-9 * caps[r] for r in range(R))

        drop = []
        for jid in sorted(over_run):
            v, g, ti = info[jid]
            if (ti < 0 or room[ti] >= g) and fits_cluster(v):
                if ti >= 0:
                    room[ti] -= g
                t = view.job(jid).tenant
                for r in range(R):
                    used[t][r] += v[r]
                    rroom[r] -= v[r]
            else:
                drop.append(jid)

        def level(t):
            return max((used[t][r] / caps[r] for r in range(R) if caps[r] > 0), default=0.0) / weights.get(t, 1.0)

        heap = [(level(t), t, 0) for t in rest]
        heapq.heapify(heap)
        zero_left = sum(self._pzero.get(t, 0) for t in rest)
        rmax = max(room, default=0)  # no GPU job larger than this can be taken
        while heap and (zero_left > 0 or rmax > 0):
            _, t, k = heapq.heappop(heap)
            lst = rest[t]
            while k < len(lst):
                jid = lst[k]
                k += 1
                v, g, cand = info[jid]
                if g == 0:
                    zero_left -= 1
                elif g > rmax:
                    continue
                if fits_cluster(v) and take(g, cand):
                    want.append(jid)
                    for r in range(R):
                        used[t][r] += v[r]
                        rroom[r] -= v[r]
                    rmax = max(room, default=0)
                    break
            if k < len(lst):
                heapq.heappush(heap, (level(t), t, k))
        actions: list = [Preempt(jid) for jid in sorted(drop)]
        ckpt = view.preemption_costs()[0]
        for job, placed in place(view, want, drop, ckpt, cfg.consolidate, _strategy(cfg)):
            if placed is not None:
                actions.append(start_action(job, placed))
        return actions


_SHARES_DOC = """

    Re-evaluation points: arrivals, completions and checkpoint ends (shares change only
    when demands do), no wake-ups and no rounds.  Thrashing is bounded: a running job is
    preempted only when a tenant below its share has a waiting job that fits in that share,
    and only jobs beyond their own tenant's share are candidates; a preempted job's tenant
    keeps its share, so it is never the one preempting back.  Gang jobs are whole: a
    tenant's share that no job of it fits into stays open to others in pass 2.
"""


@register
class FairShare(_TenantShares):
    # (a docstring built from parts is no docstring: assign it)
    __doc__ = """Weighted fair share of GPUs across tenants, with preemption.

    Each tenant's share of the cluster's GPUs is its weighted max-min fair share of its
    demand (GPUs of its running and waiting jobs; water-filling with ``weights``).  At each
    decision: (1) each tenant keeps its running jobs, in submit order, while they fit in
    its share, then its waiting jobs, in submit order, are admitted while they fit in it;
    (2) the GPUs left go to the running jobs beyond their share (oldest first) and then to
    waiting jobs, always to the tenant whose GPUs / weight is lowest.  Running jobs left out
    are preempted (checkpoint and restore charged).
    """ + _SHARES_DOC + """
    ```yaml
    scheduler:
      policy: fair-share
      params: {weights: {research: 2, production: 1}}
      preemption: {checkpoint: 30s, restore: 60s}
    ```
    """

    name = "fair-share"
    family = "dynamic"
    reference = "weighted max-min fair sharing (Demers et al. SIGCOMM'89), as in YARN's Fair Scheduler with preemption"
    Config = FairShareConfig
    resources = ("gpus",)


@register
class DRF(_TenantShares):
    # (a docstring built from parts is no docstring: assign it)
    __doc__ = """Dominant resource fairness across tenants (GPUs, CPUs, memory), with preemption.

    A tenant's demand is the sum of its running and waiting jobs' GPUs, CPU cores and host
    memory; its dominant share is the largest fraction of the cluster's total of any of the
    three.  Shares come from DRF's progressive filling (every tenant grows along its demand
    vector with equal dominant share / weight until its demand is met or a resource it uses
    runs out).  Admission and preemption then follow the same two passes as ``fair-share``,
    with "fits in its share" checked on all three resources and pass 2 favouring the
    tenant with the lowest dominant share / weight.
    """ + _SHARES_DOC + """
    ```yaml
    scheduler:
      policy: drf
      params: {weights: {a: 1, b: 1}}
      preemption: {checkpoint: 30s, restore: 60s}
    ```
    """

    name = "drf"
    family = "dynamic"
    reference = "Ghodsi et al., Dominant Resource Fairness: Fair Allocation of Multiple Resource Types, NSDI'11"
    Config = FairShareConfig
    resources = ("gpus", "cpus", "memory")


# ----------------------------------------------------------------------------- Themis
class ThemisConfig(PlacementConfig):
    lease: float = Field(
        600.0, gt=0, description="lease length (seconds or a duration): preemptions happen only at lease ends"
    )

    @field_validator("lease", mode="before")
    @classmethod
    def _lease(cls, v):
        try:
            return parse_duration(v)
        except UnitError as e:
            raise ValueError(str(e)) from None


@register
class Themis(Policy):
    """Finish-time fairness after Themis, with a greedy allocator instead of the auction.

    For each active job, rho = T_shared / T_independent: T_shared is its projected finish
    time counted from submission, (now - submit) + remaining time (its current rate if
    running; isolated rate, plus ``restore`` if preempted before, if waiting);
    T_independent is its runtime on a 1/N share of the cluster, N = the number of active
    jobs: isolated runtime x max(1, GPUs x N / cluster GPUs).  Jobs with the largest rho
    (treated worst) go first.

    Themis runs a partial-allocation auction among the apps with the worst rho for the
    GPUs whose leases expire.  Here that auction is **replaced by a greedy**: at each lease
    end (every ``lease`` seconds) all active jobs are sorted by rho, worst first, and
    admitted in that order while each GPU type's capacity lasts; running jobs left out are
    preempted.  Each job is its own app (no app-level grouping of jobs).

    Re-evaluation points: lease ends (a wake-up every ``lease`` seconds while jobs wait)
    with preemption; arrivals, completions and checkpoint ends without preemption (idle
    GPUs are given to waiting jobs in rho order).  Leases bound thrashing: a job keeps its
    GPUs at least until the next lease end.

    ```yaml
    scheduler:
      policy: themis
      params: {lease: 10min}
      preemption: {checkpoint: 30s, restore: 60s}
    ```
    """

    name = "themis"
    family = "dynamic"
    reference = "Mahajan et al., Themis: Fair and Efficient GPU Cluster Scheduling, NSDI'20 (greedy instead of the auction)"
    Config = ThemisConfig

    def __init__(self, config=None):
        super().__init__(config)
        self._sets = JobSets()
        self._last_lease = -1

    def _rho(self, job, now, n, cap, restore) -> float:
        rem = job.remaining_time
        if job.state not in (_RUNNING_STATE, "restoring") and job.preemptions:
            rem += restore
        t_id = job.isolated_runtime * max(1.0, job.gpus * n / cap) if cap else math.inf
        if not (t_id > 0 and math.isfinite(t_id)):
            return 0.0
        return ((now - job.submit_time) + rem) / t_id

    def decide(self, view):
        if view.pending_count() == 0:
            return []
        sets = self._sets
        sets.update(view)
        now = view.now
        ckpt, restore = view.preemption_costs()
        lease = self.config.lease
        k = math.floor(now / lease + 1e-12)
        at_lease = k > self._last_lease and abs(now - k * lease) <= 1e-9 * max(1.0, now)
        job_of = view.job
        n = len(sets.running) + len(sets.pending)
        cap = view.capacity()
        pend = [job_of(j) for j in sets.pending]
        pkeys = sorted((-self._rho(j, now, n, cap, restore), 1, j.job_id) for j in pend)
        pinfo = {j.job_id: (j.gpus, candidates(j, self._sets.types)) for j in pend}
        ranked = RankedRunning(len(self._sets.types))
        if at_lease:
            self._last_lease = k
            for jid in sets.running:
                j = job_of(jid)
                ranked.add((-self._rho(j, now, n, cap, restore), 0, jid), j.gpus,
                           self._sets.types[j.allocated_gpu_type] if j.gpus else -1)
        drop, want = admit(view, ranked, pkeys, pinfo, self._sets.types,
                           zero_pending=sum(1 for j in pend if j.gpus == 0), preempt=at_lease)
        cfg = self.config
        actions: list = [Preempt(jid) for jid in sorted(drop)]
        for job, placed in place(view, want, drop, ckpt, cfg.consolidate, _strategy(cfg)):
            if placed is not None:
                actions.append(start_action(job, placed))
        actions.append(Wakeup((k + 1) * lease))
        return actions
