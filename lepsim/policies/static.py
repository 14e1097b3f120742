"""Static policies (decided when a job arrives or ends, never revisited): EASY backfilling
and per-tenant GPU quotas.  FIFO and SJF are in :mod:`lepsim.policies.builtin`.

Both are :class:`~lepsim.policies.base.HookPolicy` subclasses: they override only the
allocation (and, for quotas, admission) hooks and place jobs with any
:mod:`lepsim.policies.placement` strategy.
"""
from __future__ import annotations

import math

from pydantic import Field, field_validator

from lepsim.policies.base import HookPolicy, Plan
from lepsim.policies.builtin import PlacementConfig, QueueConfig
from lepsim.policies.placement import OfType
from lepsim.policies.registry import register


def _need(job) -> float:
    """GPUs a job holds, counting a fractional job's share."""
    return job.gpus * getattr(job, "gpu_fraction", 1.0)


class EASYConfig(PlacementConfig):
    pass


@register
class EASY(HookPolicy):
    """EASY backfilling: FIFO with a reservation for the head of the queue.

    Jobs start in submit order while they fit.  The first job that does not fit (the
    head) gets a reservation: the *shadow time* at which enough GPUs of one type will be
    free for it, from the running jobs' oracle remaining times (``remaining_time``, plus
    what is left of a restore), earliest over the GPU types it may use; the GPUs of that
    type free at the shadow time beyond the head's need are the *extra* GPUs.  A later
    job is backfilled (started now) when it fits now and either ends by the shadow time
    (now + its oracle ``isolated_runtime`` ≤ shadow) or takes no more than the extra GPUs
    (which it then uses up), or when it runs on another GPU type than the reserved one.
    The reservation counts GPUs, not particular GPUs or nodes (as EASY counts processors);
    a fractional job counts as one GPU.  Never preempts.

    ```yaml
    scheduler:
      policy: easy
      params: {placement: best_fit}
    ```
    """

    name = "easy"
    family = "static"
    reference = ("EASY backfilling: Lifka, The ANL/IBM SP scheduling system (JSSPP'95); Mu'alem & Feitelson, "
                 "IEEE TPDS 2001")
    Config = EASYConfig

    def __init__(self, config=None):
        super().__init__(config)
        self._ends: dict[int, tuple[float | None, float]] = {}  # job id -> (last start, expected end)

    def _end(self, view, j, restore: float) -> float:
        """Expected end of a running or restoring job: fixed once it holds its GPUs (the
        policy never preempts, and a running job's rate does not change), so cached."""
        c = self._ends.get(j.job_id)
        if c is not None and c[0] == j.last_start_time:
            return c[1]
        left = j.remaining_time
        if j.state == "restoring":
            left += max(j.last_start_time + restore - view.now, 0.0)
        end = view.now + left
        self._ends[j.job_id] = (j.last_start_time, end)
        return end

    def reservation(self, view, plan: Plan, head) -> tuple[str | None, float, float]:
        """(GPU type, shadow time, extra GPUs) of the head's reservation; shadow is inf when it
        can never fit (more GPUs than the type has)."""
        restore = view.preemption_costs()[1]
        now = view.now
        types = [head.gpu_type] if head.gpu_type is not None else list(view.gpu_types)
        need = max(head.gpus, 1)
        running = view.running()
        if len(self._ends) > 2 * len(running) + 64:  # forget jobs that ended
            live = {j.job_id for j in running}
            self._ends = {k: v for k, v in self._ends.items() if k in live}
        ends: dict[str, list[tuple[float, int]]] = {t: [] for t in types}
        for j in running:
            t = j.allocated_gpu_type
            if t in ends:
                ends[t].append((self._end(view, j, restore), len(j.allocated_gpus)))
        best = (None, math.inf, 0.0)
        for t in types:
            free = plan.free.free_gpus(t)
            if free >= need:  # fits by count but not by placement (nodes, CPU, constraints): now
                cand = (t, now, free - need)
            else:
                cand = (t, math.inf, 0.0)
                for end, n in sorted(ends[t]):
                    free += n
                    if free >= need:
                        cand = (t, end, free - need)
                        break
            if cand[1] < best[1]:
                best = cand
        return best

    def allocate(self, view, plan: Plan, queue: list) -> None:
        free = plan.free
        head = None
        reserved = None  # (type, shadow, extra), computed when a job after the head could fit
        for job in queue:
            if job.gpus and job.gpu_fraction == 1.0 and free.free_gpus(job.gpu_type) < job.gpus:
                if head is None:
                    head = job  # cannot fit by count: it is the head
                continue  # (a later job that cannot fit by count is not backfilled)
            if head is None:
                placed = self.place(view, free, job)
                if placed is not None:
                    plan.start(job, placed)
                    continue
                head = job
                continue
            if reserved is None:
                reserved = self.reservation(view, plan, head)
            rtype, shadow, extra = reserved
            # backfill: on another type freely; on the reserved type only if it ends by the
            # shadow time or fits in the extra GPUs
            short = view.now + job.isolated_runtime <= shadow
            size = max(job.gpus, 1) if job.gpus else 0
            if short or size <= extra or rtype is None:
                placed = self.place(view, free, job)
                if placed is not None:
                    t = view.nodes[view.node_of(placed[0])].gpu_type if job.gpus else None
                    if t == rtype and not short:
                        reserved = (rtype, shadow, extra - size)
                    plan.start(job, placed)
                continue
            if job.gpus == 0:
                placed = self.place(view, free, job)  # a CPU-only job never delays the head's GPUs
            elif job.gpu_type is None:
                placed = None
                for t in view.gpu_types:
                    if t != rtype and free.free_gpus(t) >= job.gpus:
                        placed = self.place(view, free, OfType(job, t))
                        if placed is not None:
                            break
            else:
                placed = self.place(view, free, job) if job.gpu_type != rtype else None
            if placed is not None:
                plan.start(job, placed)


class QuotaConfig(QueueConfig):
    quotas: dict[str, float | str] = Field(
        default_factory=dict,
        description="GPUs each tenant may hold at once: a number of GPUs, or a share of the cluster such as '25%'",
    )
    default: float | str = Field(
        "50%", description="quota of tenants not in quotas: GPUs, or a share of the cluster such as '50%'",
    )

    @field_validator("quotas")
    @classmethod
    def _check_quotas(cls, v):
        for x in v.values():
            _quota(x, 1)
        return v

    @field_validator("default")
    @classmethod
    def _check_default(cls, v):
        _quota(v, 1)
        return v


def _quota(v, capacity: float) -> float:
    """A quota in GPUs: a number of GPUs, or a percentage of ``capacity`` ('25%')."""
    if isinstance(v, str):
        text = v.strip()
        try:
            share = float(text[:-1]) / 100.0 if text.endswith("%") else math.nan
        except ValueError:
            share = math.nan
        if not 0 <= share <= 1:
            raise ValueError(f"found {v!r}, expected a number of GPUs >= 0 or a percentage from 0% to 100% such as '25%'")
        return share * capacity
    if v < 0:
        raise ValueError(f"found {v!r}, expected a number of GPUs >= 0 or a percentage such as '25%'")
    return float(v)


@register
class Quota(HookPolicy):
    """Static per-tenant GPU quotas: a tenant never holds more GPUs than its quota.

    Jobs go in submit order.  A job starts only if its tenant's GPUs held (by running
    and restoring jobs; a fractional job counts its share) plus the job's
    stay within the tenant's quota; a job over its tenant's quota is passed over (other
    tenants go on), and a job that would fit its quota but not the free GPUs blocks the
    queue unless ``skip_blocked``.  A quota is a number of GPUs or a share of the whole
    cluster (``'25%'``); tenants not listed get ``default`` (50% of the cluster unless
    set).  Quotas may add up to more than the cluster (over-subscription: the quota is a
    cap, not a reservation).  Never preempts.  A job larger than its tenant's quota
    never starts.

    ```yaml
    scheduler:
      policy: quota
      params: {quotas: {research: 48, production: '50%'}, default: 8, skip_blocked: true}
    ```
    """

    name = "quota"
    family = "static"
    reference = "per-tenant GPU quotas, as virtual-cluster capacities in Philly (Jeon et al., ATC'19) and Kubernetes ResourceQuota"
    Config = QuotaConfig

    def quota(self, view, tenant: str) -> float:
        """The tenant's quota in GPUs."""
        return _quota(self.config.quotas.get(tenant, self.config.default), view.capacity())

    def held(self, view) -> dict[str, float]:
        """GPUs held now per tenant (running and restoring jobs; the policy never preempts,
        so no job of its own is checkpointing)."""
        out: dict[str, float] = {}
        for j in view.running():
            out[j.tenant] = out.get(j.tenant, 0.0) + _need(j)
        return out

    def allocate(self, view, plan: Plan, queue: list) -> None:
        held = self.held(view)
        blocking = self._blocking()
        free = plan.free
        for job in queue:
            q = self.quota(view, job.tenant)
            h = held.get(job.tenant, 0.0)
            if h + _need(job) > q + 1e-9:
                continue  # over its tenant's quota: passed over, whatever skip_blocked says
            if job.gpus and job.gpu_fraction == 1.0 and free.free_gpus(job.gpu_type) < job.gpus:
                placed = None  # cannot fit by count
            else:
                placed = self.place(view, free, job)
            if placed is None:
                if blocking:
                    break
                continue
            held[job.tenant] = h + _need(job)
            plan.start(job, placed)
