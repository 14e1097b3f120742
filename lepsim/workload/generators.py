"""Job generators: Poisson and burst (piecewise-constant rate) arrivals with sampled sizes."""
from __future__ import annotations

import math

import numpy as np

from lepsim.rng import Streams
from lepsim.workload.distributions import sample


def iter_windows(gen, end: float):
    """The windows (seconds, in order) in which a burst generator runs at ``rate * factor``:
    its windows, repeated every ``period`` if it has one, clipped to ``[gen.start, end)``.
    Lazy, so a periodic generator bounded only by ``count`` may have an infinite ``end``."""
    if gen.kind != "burst":
        return
    base = sorted((w.start, w.end) for w in gen.windows)
    period = gen.period
    k = 0
    while True:
        off = 0.0 if period is None else k * period
        if off >= end:
            return
        for ws, we in base:
            lo, hi = max(ws + off, gen.start), min(we + off, end)
            if hi > lo:
                yield float(lo), float(hi)
        if period is None:
            return
        k += 1


def burst_windows(gen, end: float) -> list[tuple[float, float]]:
    """:func:`iter_windows` as a list (``end`` must be finite for a periodic generator)."""
    if gen.kind == "burst" and gen.period is not None and not math.isfinite(end):
        raise ValueError("a periodic burst generator needs a finite end to list its windows")
    return list(iter_windows(gen, end))


def _segments(gen, end: float):
    """(start, stop, rate) pieces of the generator's arrival rate on [gen.start, end)."""
    if gen.kind == "poisson":
        yield gen.start, end, gen.rate
        return
    t = gen.start
    for ws, we in iter_windows(gen, end):
        if we <= t:
            continue  # overlapping windows: the rate is raised once, not twice
        ws = max(ws, t)
        if ws > t:
            yield t, ws, gen.rate
        yield ws, we, gen.rate * gen.factor
        t = we
    if t < end:
        yield t, end, gen.rate


def arrival_times(gen, rng: np.random.Generator, end: float) -> np.ndarray:
    """Arrival times on [gen.start, end) (at most ``gen.count``).

    Exact for a piecewise-constant rate: the exponential clock restarts at each piece
    boundary, which by memorylessness leaves the process unchanged.
    """
    limit = gen.count if gen.count is not None else None
    out: list[np.ndarray] = []
    n = 0
    for a, b, rate in _segments(gen, end):
        if rate <= 0:
            continue
        t = a
        while t < b and (limit is None or n < limit):
            want = 1024 if limit is None else min(1024, limit - n)
            if math.isfinite(b):
                want = max(want, min(1 << 20, int((b - t) * rate * 1.2) + 16))
                if limit is not None:
                    want = min(want, limit - n)
            times = t + np.cumsum(rng.exponential(1.0 / rate, size=want))
            keep = times[times < b]
            out.append(keep)
            n += len(keep)
            if len(keep) < len(times):
                break
            t = float(times[-1])
        if limit is not None and n >= limit:
            break
    times = np.concatenate(out) if out else np.empty(0)
    return times[:limit] if limit is not None else times


def generate(gen, index: int, streams: Streams, horizon: float | None, defaults) -> dict:
    """Column arrays of one generator's jobs (submit, gpus, duration/iterations, tenant, model)."""
    prefix = f"workload.generators[{index}]"
    end = gen.end if gen.end is not None else (horizon if horizon is not None else math.inf)
    if not math.isfinite(end) and gen.count is None:
        raise ValueError("unbounded generator")  # the loader reports this before we get here
    submit = arrival_times(gen, streams.get(prefix + ".arrivals"), end)
    n = len(submit)
    gpus = np.maximum(np.rint(sample(gen.gpus, streams.get(prefix + ".gpus"), n)), 0).astype(np.int64)
    cols = {"submit": submit, "gpus": gpus}
    if gen.duration is not None:
        cols["duration"] = sample(gen.duration, streams.get(prefix + ".duration"), n)
        cols["iterations"] = None
    else:
        cols["duration"] = None
        cols["iterations"] = np.maximum(np.rint(sample(gen.iterations, streams.get(prefix + ".iterations"), n)), 1)
    cols["tenant"] = _labels(gen.tenant, streams.get(prefix + ".tenant"), n)
    cols["model"] = _labels(gen.model, streams.get(prefix + ".model"), n)
    cpg = gen.cpus_per_gpu if gen.cpus_per_gpu is not None else defaults.cpus_per_gpu
    mpg = gen.memory_per_gpu if gen.memory_per_gpu is not None else defaults.memory_per_gpu
    cols["cpus"] = gpus * cpg
    cols["memory"] = gpus * mpg
    return cols


def _labels(spec, rng: np.random.Generator, n: int):
    if spec is None or isinstance(spec, str):
        return [spec] * n
    p = None
    if spec.weights is not None:
        w = np.asarray(spec.weights, dtype=float)
        p = w / w.sum()
    idx = rng.choice(len(spec.values), size=n, p=p)
    return [spec.values[i] for i in idx]
