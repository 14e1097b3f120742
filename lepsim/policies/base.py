"""The policy protocol.

A policy is constructed from its validated config and, on each invocation, reads a
read-only :class:`~lepsim.engine.view.ClusterView` and returns typed actions
(:mod:`lepsim.policies.actions`).  It never mutates cluster state: the engine checks each
action (no GPU over-allocated, gangs all-or-nothing, CPU/memory shares) and applies it,
charging its costs (checkpoint and restore time on preemption).

The engine invokes ``decide`` after arrivals and completions (coalesced per timestamp),
after a preempted job's checkpoint finishes, at the times the policy asked for with
:class:`~lepsim.policies.actions.Wakeup`, and every ``scheduler.round`` if one is set.
"""
from __future__ import annotations

from typing import ClassVar, Sequence

from pydantic import BaseModel, ConfigDict

from lepsim.policies.actions import Action


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
