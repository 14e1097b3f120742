"""The inference replica autoscaler (adaptive family).

It scales each autoscaled service (``replicas: {min, max}``) with ``ScaleService`` and
leaves every placement decision, replicas included, to a *base* policy, whose actions it
returns first: ``pollux`` by default for the adaptive ``inference-autoscaler`` (a new replica
shrinks elastic training jobs, which grow back when replicas retire; it preempts lower-priority
jobs only where shrinking cannot make room), ``priority`` for the dynamic
``reactive-autoscaler`` (a new replica preempts lower-priority training).
"""
from __future__ import annotations

import math
from collections import deque

from pydantic import Field, field_validator

from lepsim.policies.actions import ScaleService, Wakeup
from lepsim.policies.adaptive import _duration
from lepsim.policies.base import Policy, PolicyConfig
from lepsim.policies.registry import register


class AutoscalerConfig(PolicyConfig):
    base: str = Field("pollux", description="the policy that places jobs and replicas (and resizes or preempts, "
                      "if it does): pollux shrinks elastic training for replicas and grows it back")
    base_params: dict = Field(default_factory=dict, description="the base policy's parameters")
    interval: float = Field(10.0, gt=0, description="seconds between scaling decisions")
    window: float = Field(30.0, gt=0, description="seconds of history for arrival rates and latencies")
    target_concurrency: float = Field(24.0, gt=0, description="outstanding requests per replica to aim at")
    lookahead: float | None = Field(None, ge=0, description="forecast horizon (default: the cold start + interval)")
    scale_down_delay: float = Field(120.0, ge=0, description="scale down only to the largest need of this long")
    slo_boost: float = Field(1.5, ge=1, description="when a recent p99 misses its SLO: at least this x ready replicas")

    _positive = field_validator("interval", "window", mode="before")(
        classmethod(lambda cls, v: _duration(v, positive=True)))
    _nonnegative = field_validator("lookahead", "scale_down_delay", mode="before")(
        classmethod(lambda cls, v: None if v is None else _duration(v, positive=False)))


@register
class InferenceAutoscaler(Policy):
    """Scales inference replicas ahead of the queue to keep the p99 latency SLO.

    Every ``interval`` (and whenever the base policy is invoked), for each autoscaled
    service, from what the view shows (nothing about future requests):

    * arrival rates over the last two ``window``s, λ₁ (older) and λ₂ (recent); the forecast
      λ̂ = max(λ₂, λ₂ + (λ₂ − λ₁)/window × lookahead) extrapolates the trend over the time
      a new replica needs (its cold start plus one interval) — it scales *ahead* of the queue;
    * the concurrency to serve, by Little's law, C = max(λ̂ × W, outstanding), W the mean
      end-to-end latency of the requests completed in the last window (the last value
      seen when none completed);
    * needed = ⌈C / target_concurrency⌉; when a recent p99 (TTFT or end-to-end) misses the
      service's p99 target, needed ≥ ⌈slo_boost × ready replicas⌉;
    * scale up at once to needed; scale down only to the largest need of the last
      ``scale_down_delay`` seconds (the stable window of Knative's autoscaler), and not
      before it has watched the service that long; always within ``[min, max]``.

    The base policy places replicas like jobs.  With the default ``pollux`` the training
    side is elastic too: a new replica (priority 100) takes GPUs that elastic training jobs
    (``min_gpus``/``max_gpus``) give back by shrinking on one node, and preempts
    lower-priority jobs only where shrinking cannot make room; when replicas retire, the
    training jobs grow back into the freed GPUs at pollux's next round (see ``pollux``).
    With ``priority`` a new replica preempts lower-priority training jobs (which resume
    from their checkpoint); with ``fifo`` it waits for GPUs when the cluster is full.

    ```yaml
    scheduler:
      policy: inference-autoscaler
      params: {base: pollux, base_params: {round: 60s}, interval: 10s, window: 30s, target_concurrency: 24}
    ```
    """

    name = "inference-autoscaler"
    family = "adaptive"
    reference = "Knative Pod Autoscaler (concurrency target, stable window) with a linear-trend forecast over the cold start"
    Config = AutoscalerConfig

    def __init__(self, config=None):
        super().__init__(config)
        from lepsim.policies import registry

        cls = registry.get(self.config.base)
        self.base = cls(cls.Config.model_validate(self.config.base_params))
        self._next = 0.0
        self._history: dict[str, deque] = {}
        self._since: dict[str, float] = {}
        self._latency: dict[str, float] = {}

    def needed(self, view, svc) -> int:
        """Replicas the service needs now (before the scale-down delay and the bounds)."""
        cfg = self.config
        now = view.now
        w = cfg.window
        n2 = svc.arrivals_in(w)
        n1 = svc.arrivals_in(2 * w) - n2
        lam2 = n2 / min(w, now) if now > 0 else 0.0
        lam1 = n1 / min(w, now - w) if now > w else lam2
        look = cfg.lookahead if cfg.lookahead is not None else svc.cold_start + cfg.interval
        lam = max(lam2, lam2 + (lam2 - lam1) / w * look)
        e2e = svc.recent_latencies(w, "e2e")
        if e2e:
            self._latency[svc.name] = sum(e2e) / len(e2e)
        conc = max(lam * self._latency.get(svc.name, 0.0), svc.outstanding)
        need = math.ceil(conc / cfg.target_concurrency - 1e-9)
        slo = svc.spec.slo
        for what in ("ttft", "e2e"):
            t = getattr(slo, what)
            if t is None or t.p99 is None:
                continue
            lat = sorted(svc.recent_latencies(w, what))
            if lat and lat[min(len(lat) - 1, int(math.ceil(0.99 * len(lat))) - 1)] > t.p99:
                need = max(need, math.ceil(cfg.slo_boost * svc.ready_replicas))
        return need

    def decide(self, view):
        out = list(self.base.decide(view))
        services = view.services()
        if not services:
            return out
        now = view.now
        cfg = self.config
        for svc in services:
            lo, hi = svc.bounds
            if lo == hi:
                continue
            need = min(max(self.needed(view, svc), lo), hi)
            hist = self._history.setdefault(svc.name, deque())
            since = self._since.setdefault(svc.name, now)
            hist.append((now, need))
            while hist and hist[0][0] < now - cfg.scale_down_delay:
                hist.popleft()
            cur = svc.target_replicas
            if need > cur:
                out.append(ScaleService(svc.name, need))
            else:
                keep = max(n for _, n in hist)
                if keep < cur and now >= since + cfg.scale_down_delay:
                    out.append(ScaleService(svc.name, keep))
        if now >= self._next:
            self._next = now + cfg.interval
        out.append(Wakeup(self._next))
        return out


class ReactiveConfig(AutoscalerConfig):
    base: str = Field("priority", description="the policy that places jobs and replicas (and preempts, if it does)")
    lookahead: float | None = Field(0.0, ge=0, description="forecast horizon (0: none, react to what is seen)")
    slo_boost: float = Field(1.0, ge=1, description="when a recent p99 misses its SLO: at least this x ready replicas")


@register
class ReactiveAutoscaler(InferenceAutoscaler):
    """Scales inference replicas on the load it observes; replicas preempt training.

    The dynamic counterpart of ``inference-autoscaler`` (same decision rule, other
    defaults): no forecast (``lookahead: 0``) and no SLO boost (``slo_boost: 1``); like it,
    it places through the ``priority`` policy, so a new replica preempts lower-priority
    training jobs, which checkpoint and later resume from their checkpoint.

    ```yaml
    scheduler:
      policy: reactive-autoscaler
      params: {interval: 10s, window: 30s, target_concurrency: 24}
      preemption: {checkpoint: 30s, restore: 60s}
    ```
    """

    name = "reactive-autoscaler"
    family = "dynamic"
    reference = "Knative Pod Autoscaler (concurrency target, stable window) without panic mode, over priority preemption"
    Config = ReactiveConfig
