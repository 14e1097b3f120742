"""The policy protocol.

A policy is constructed from its validated config and, on each invocation, reads a
read-only :class:`~lepsim.engine.view.ClusterView` and returns typed actions
(:mod:`lepsim.policies.actions`).  It never mutates cluster state: the engine checks each
action (no GPU over-allocated, gangs all-or-nothing, CPU/memory shares, placement
constraints) and applies it, charging its costs (checkpoint and restore time on
preemption and migration).

The engine invokes ``decide`` after arrivals and completions (coalesced per timestamp),
after a preempted job's checkpoint finishes, at the times the policy asked for with
:class:`~lepsim.policies.actions.Wakeup`, and every ``scheduler.round`` if one is set.

Two ways to write one:

* subclass :class:`Policy` and implement ``decide(view) -> actions`` yourself;
* subclass :class:`HookPolicy` and override only the hooks you need (admission, queue
  order, preemption/migration, allocation, placement, resize, scale, wake-up); its
  ``decide`` runs them in the documented order on a :class:`Plan`.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar, Sequence

from pydantic import BaseModel, ConfigDict

from lepsim.policies.actions import Action, Migrate, Preempt, Start, Wakeup

if TYPE_CHECKING:  # pragma: no cover
    from lepsim.policies.placement import FreeMap


class PolicyConfig(BaseModel):
    """Base of every policy's parameters (unknown keys rejected)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Policy:
    """Base class: set ``name``, ``family``, ``Config`` and implement :meth:`decide`.

    ``family`` is one of "static", "dynamic", "adaptive".  ``reference`` names the paper or
    system the policy follows.  The class docstring is shown by ``lepsim policies``.
    """

    name: ClassVar[str] = ""
    family: ClassVar[str] = "static"
    reference: ClassVar[str] = ""
    Config: ClassVar[type[PolicyConfig]] = PolicyConfig

    def __init__(self, config: PolicyConfig | None = None):
        self.config = config if config is not None else self.Config()

    def decide(self, view) -> Sequence[Action]:  # pragma: no cover - abstract
        raise NotImplementedError


def start_action(job, placed) -> Start:
    """The ``Start`` for what a :class:`FreeMap` placement returned (GPU ids or ``("node", i)``)."""
    if placed and placed[0] == "node":
        return Start(job.job_id, (), node=placed[1])
    return Start(job.job_id, tuple(placed))


class Plan:
    """One decision in the making: a scratch :class:`FreeMap` and the actions chosen so far.

    Hooks record their choices through its methods, which keep the scratch map in step
    (a started job's resources are taken, a preempted job's are given back when the
    checkpoint costs nothing), so that later hooks of the same decision see them.  The
    engine's state is never touched: the actions are applied after ``decide`` returns.
    """

    __slots__ = ("view", "_free", "actions", "wake", "started", "stopped", "_ckpt")

    def __init__(self, view):
        self.view = view
        self._free: FreeMap | None = None
        self.actions: list[Action] = []
        self.wake = math.inf               # earliest wake-up asked for
        self.started: set[int] = set()     # job ids started in this decision
        self.stopped: set[int] = set()     # job ids preempted or migrated in this decision
        self._ckpt: float | None = None

    @property
    def free(self) -> "FreeMap":
        """The scratch free map (built on first use)."""
        if self._free is None:
            self._free = self.view.free_map()
        return self._free

    def _checkpoint(self) -> float:
        if self._ckpt is None:
            self._ckpt = self.view.preemption_costs()[0]
        return self._ckpt

    def start(self, job, placed) -> Start:
        """Record a ``Start`` for ``placed`` (already taken on :attr:`free` by a placement)."""
        a = start_action(job, placed)
        self.actions.append(a)
        self.started.add(job.job_id)
        return a

    def preempt(self, job) -> Preempt:
        """Record a ``Preempt``; its resources return to :attr:`free` when checkpoints are free."""
        a = Preempt(job.job_id)
        self.actions.append(a)
        self.stopped.add(job.job_id)
        if self._checkpoint() == 0:
            self.free.release(job, self.view.node_of)
        return a

    def migrate(self, job, gpus: Sequence[int]) -> Migrate:
        """Record a ``Migrate`` to ``gpus`` (already taken on :attr:`free` by a placement).
        The old GPUs return to :attr:`free` only when checkpoints are free."""
        a = Migrate(job.job_id, tuple(gpus))
        self.actions.append(a)
        self.stopped.add(job.job_id)
        if self._checkpoint() == 0:
            self.free.release(job, self.view.node_of)
        return a

    def add(self, action: Action) -> None:
        """Record any other action (e.g. ``Resize``, ``AddNodes``, ``ScaleService``)."""
        if isinstance(action, Wakeup):
            self.wakeup(action.at)
        else:
            self.actions.append(action)

    def wakeup(self, at: float) -> None:
        """Ask to be invoked again at ``at``; the plan keeps the earliest time asked for."""
        if at < self.wake:
            self.wake = at

    def result(self) -> list[Action]:
        out = list(self.actions)
        if math.isfinite(self.wake):
            out.append(Wakeup(max(self.wake, self.view.now)))
        return out


class HookPolicy(Policy):
    """A policy assembled from optional hooks; ``decide`` runs them in this order:

    1. ``admit(view, job) -> bool`` for each pending job (admission control; a job not
       admitted stays queued, untouched, this time);
    2. ``order(view, jobs) -> list`` the admitted jobs (queue order; default: submit order);
    3. ``preempt(view, plan, queue)`` running jobs, or migrate them (preemption/migration);
    4. ``allocate(view, plan, queue)`` resources to queued jobs (default: in queue order,
       each placed by ``place``; stops at the first job that does not fit when
       ``blocking`` is true, else passes over it);
    5. ``place(view, free, job) -> placement | None`` one job on the scratch map (placement;
       default: :meth:`FreeMap.place` with the ``placement``/``consolidate`` parameters
       when the config has them);
    6. ``resize(view, plan)`` running jobs (elastic jobs);
    7. ``scale(view, plan)`` capacity (nodes, service replicas);
    8. ``wakeup(view, plan) -> float | None`` the next time to be invoked.

    Hooks 3, 4, 6 and 7 record actions on the :class:`Plan` (``plan.start``,
    ``plan.preempt``, ``plan.migrate``, ``plan.add``, ``plan.wakeup``); the actions are
    returned in the order recorded, then one ``Wakeup`` at the earliest time asked for.
    When no job is pending and the policy overrides none of ``preempt``, ``resize``,
    ``scale`` and ``wakeup``, ``decide`` returns nothing at once (nothing can change).
    ``skip_blocked`` in the config (or the class attribute ``blocking``) decides whether
    the default ``allocate`` stops at the first job that does not fit.
    """

    blocking: ClassVar[bool] = False

    # ---- hooks (override what you need)
    def admit(self, view, job) -> bool:
        return True

    def order(self, view, jobs: list) -> list:
        return jobs

    def preempt(self, view, plan: Plan, queue: list) -> None:
        return None

    def allocate(self, view, plan: Plan, queue: list) -> None:
        blocking = self._blocking()
        for job in queue:
            placed = self.place(view, plan.free, job)
            if placed is None:
                if blocking:
                    break
                continue
            plan.start(job, placed)

    def place(self, view, free: "FreeMap", job):
        cfg = self.config
        return free.place(job, getattr(cfg, "placement", "first_fit"), getattr(cfg, "consolidate", "prefer"))

    def resize(self, view, plan: Plan) -> None:
        return None

    def scale(self, view, plan: Plan) -> None:
        return None

    def wakeup(self, view, plan: Plan) -> float | None:
        return None

    # ---- the composition
    def _blocking(self) -> bool:
        skip = getattr(self.config, "skip_blocked", None)
        return (not skip) if skip is not None else self.blocking

    def _acts_when_idle(self) -> bool:
        cls = type(self)
        return any(getattr(cls, h) is not getattr(HookPolicy, h) for h in ("preempt", "resize", "scale", "wakeup"))

    def decide(self, view) -> list[Action]:
        if view.pending_count() == 0 and not self._acts_when_idle():
            return []
        plan = Plan(view)
        if type(self).admit is HookPolicy.admit:
            queue = list(view.pending())
        else:
            queue = [j for j in view.pending() if self.admit(view, j)]
        queue = self.order(view, queue)
        self.preempt(view, plan, queue)
        self.allocate(view, plan, queue)
        self.resize(view, plan)
        self.scale(view, plan)
        at = self.wakeup(view, plan)
        if at is not None and math.isfinite(at):
            plan.wakeup(at)
        return plan.result()


def hooks_of(cls: type[Policy]) -> tuple[str, ...]:
    """The hooks a :class:`HookPolicy` subclass overrides (for ``lepsim policies``)."""
    if not (isinstance(cls, type) and issubclass(cls, HookPolicy)):
        return ()
    names = ("admit", "order", "preempt", "allocate", "place", "resize", "scale", "wakeup")
    return tuple(h for h in names if getattr(cls, h) is not getattr(HookPolicy, h))

