"""Sampling of the scenario's distribution specs (vectorized, from a named stream)."""
from __future__ import annotations

import numpy as np


def sample(spec, rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` draws of a distribution spec (see lepsim.scenario.spec) as float64."""
    kind = spec.dist
    if kind == "constant":
        return np.full(n, float(spec.value))
    if kind == "choice":
        values = np.asarray(spec.values, dtype=float)
        p = None
        if spec.weights is not None:
            w = np.asarray(spec.weights, dtype=float)
            p = w / w.sum()
        return values[rng.choice(len(values), size=n, p=p)]
    if kind == "uniform":
        return rng.uniform(spec.low, spec.high, size=n)
    if kind == "exponential":
        return rng.exponential(spec.mean, size=n)
    if kind == "erlang":
        return rng.gamma(shape=spec.k, scale=spec.mean / spec.k, size=n)
    if kind == "hyperexponential":
        means = np.asarray(spec.means, dtype=float)
        branch = rng.choice(len(means), size=n, p=np.asarray(spec.probs, dtype=float))
        return rng.exponential(1.0, size=n) * means[branch]
    if kind == "lognormal":
        x = spec.median * np.exp(spec.sigma * rng.standard_normal(n))
        if spec.min is not None or spec.max is not None:
            x = np.clip(x, spec.min if spec.min is not None else -np.inf, spec.max if spec.max is not None else np.inf)
        return x
    if kind == "bounded_pareto":
        # inverse CDF of the Pareto(alpha) truncated to [low, high]
        a, lo, hi = spec.alpha, spec.low, spec.high
        u = rng.uniform(0.0, 1.0, size=n)
        return lo / (1.0 - u * (1.0 - (lo / hi) ** a)) ** (1.0 / a)
    if kind == "loguniform":
        return np.exp(rng.uniform(np.log(spec.low), np.log(spec.high), size=n))
    raise ValueError(f"unknown distribution {kind!r}")  # pragma: no cover - the spec forbids it


def support_max(spec) -> float:
    """Largest value a distribution can produce (inf when unbounded)."""
    kind = spec.dist
    if kind == "constant":
        return float(spec.value)
    if kind == "choice":
        vals = [v for v, w in zip(spec.values, spec.weights or [1] * len(spec.values)) if w > 0]
        return float(max(vals))
    if kind in ("uniform", "bounded_pareto", "loguniform"):
        return float(spec.high)
    if kind == "lognormal" and spec.max is not None:
        return float(spec.max)
    return float("inf")


def support_min(spec) -> float:
    kind = spec.dist
    if kind == "constant":
        return float(spec.value)
    if kind == "choice":
        return float(min(v for v, w in zip(spec.values, spec.weights or [1] * len(spec.values)) if w > 0))
    if kind in ("uniform", "bounded_pareto", "loguniform"):
        return float(spec.low)
    if kind == "lognormal" and spec.min is not None:
        return float(spec.min)
    return 0.0
