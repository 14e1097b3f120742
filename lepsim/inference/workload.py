"""Request streams of inference services, generated once per (scenario, seed) as numpy arrays.

Each service gets a :class:`ServicePlan`: arrival times (sorted), prompt and output tokens
(or model-free service times), and the resolved replica parameters (GPU type, cold start,
KV-cache budget).  Randomness comes from named streams ``workload.services[i].<what>``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lepsim.rng import Streams
from lepsim.workload.distributions import sample, support_max, support_min
from lepsim.workload.generators import arrival_times

BUILTIN_TRACES = {
    "builtin:azure-conv": "conv_sample.csv",
    "builtin:azure-code": "code_sample.csv",
}
TRACE_DIR = Path(__file__).resolve().parent.parent / "data" / "traces" / "azure_llm_2023"
DEFAULT_COLD_START_S = 60.0       # without a storage model: placement to serving (documented in docs/scenario.md)
KV_MEMORY_FRACTION = 0.9          # share of GPU memory a replica may use for weights + KV cache (vLLM's default)


@dataclass(frozen=True, eq=False)
class ServicePlan:
    """One service's requests and resolved replica parameters (immutable by convention)."""

    index: int
    spec: object                  # the ServiceSpec
    gpu_type: str                 # canonical
    arrival: np.ndarray           # float64 seconds, sorted
    prompt: np.ndarray            # int64 tokens (0 for model-free services)
    output: np.ndarray            # int64 tokens (1 for model-free services)
    service_time: np.ndarray | None  # float64 seconds (model-free services), else None
    cold_start: float             # seconds from placement to serving (nominal, when read from storage)
    cold_start_from_storage: bool  # the weights are read from the storage service at each placement
    kv_budget: int | None         # tokens (continuous batching), None = not used
    weight_bytes: float | None

    @property
    def name(self) -> str:
        return self.spec.name


# ----------------------------------------------------------------------------- arrivals
def _piecewise_poisson(pieces, rng: np.random.Generator, limit: int | None) -> np.ndarray:
    """Poisson arrivals over (start, stop, rate) pieces in time order (exact by memorylessness)."""
    out = []
    n = 0
    for a, b, rate in pieces:
        if limit is not None and n >= limit:
            break
        if rate <= 0 or b <= a:
            continue
        k = rng.poisson(rate * (b - a))
        t = np.sort(rng.uniform(a, b, size=k))  # given the count, the points are uniform
        out.append(t)
        n += k
    times = np.concatenate(out) if out else np.empty(0)
    return times[:limit] if limit is not None else times


def _mmpp_pieces(spec, rng: np.random.Generator, end: float):
    t, state = spec.start, 0
    k = len(spec.rates)
    while t < end:
        hold = rng.exponential(spec.holding[state])
        yield t, min(t + hold, end), spec.rates[state]
        t += hold
        if k == 2:
            state = 1 - state
        else:
            nxt = int(rng.integers(0, k - 1))
            state = nxt if nxt < state else nxt + 1


def _diurnal(spec, rng: np.random.Generator, end: float) -> np.ndarray:
    """Thinning of a Poisson process at the peak rate (Lewis and Shedler)."""
    peak_rate = spec.rate * (1.0 + spec.amplitude)
    cand = _piecewise_poisson([(spec.start, end, peak_rate)], rng, None)
    lam = spec.rate * (1.0 + spec.amplitude * np.cos(2.0 * math.pi * (cand - spec.peak) / spec.period))
    keep = rng.uniform(0.0, peak_rate, size=len(cand)) < lam
    t = cand[keep]
    return t[:spec.count] if spec.count is not None else t


def trace_path(spec, base_dir: Path) -> Path:
    if spec.path in BUILTIN_TRACES:
        return TRACE_DIR / BUILTIN_TRACES[spec.path]
    p = Path(spec.path)
    return p if p.is_absolute() else base_dir / p


def read_azure_trace(path: Path, limit: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seconds since the first request, prompt tokens, output tokens) of an Azure LLM trace,
    sorted by arrival; read by the trace importer (:mod:`lepsim.workload.importers.azure_llm`).

    Raises ValueError naming the first bad row (``FILE:LINE: column: found …, expected …``)."""
    from lepsim.errors import ScenarioError
    from lepsim.workload.importers.azure_llm import read_requests

    try:
        df = read_requests(path, limit=limit)
    except ScenarioError as e:
        more = len(e.problems) - 1
        raise ValueError(f"{e.problems[0]}" + (f" (and {more} more bad row{'s' if more > 1 else ''})" if more else "")) from None
    return (df["arrival_s"].to_numpy(dtype=float), df["prompt_tokens"].to_numpy(dtype=np.int64),
            df["output_tokens"].to_numpy(dtype=np.int64))


def _trace_arrivals(spec, base_dir: Path, end: float):
    t, p, o = read_azure_trace(trace_path(spec, base_dir), spec.limit)
    t = spec.start + t * spec.time_scale
    if spec.loop and len(t):
        span = (t[-1] - spec.start) + (t[1] - t[0] if len(t) > 1 else 1.0) * 1.0
        reps = max(1, int(math.ceil((end - spec.start) / span))) if math.isfinite(end) else 1
        t = np.concatenate([t + k * span for k in range(reps)])
        p, o = np.tile(p, reps), np.tile(o, reps)
    keep = t < end
    return t[keep], p[keep], np.maximum(o[keep], 1)


def arrivals(spec, rng: np.random.Generator, end: float) -> np.ndarray:
    """Arrival times (sorted) of a non-trace arrival spec on [start, min(end, spec.end))."""
    if spec.end is not None:
        end = min(end, spec.end)
    if spec.kind in ("poisson", "burst"):
        return arrival_times(spec, rng, end)
    if spec.kind == "mmpp":
        return _piecewise_poisson(_mmpp_pieces(spec, rng, end), rng, spec.count)
    if spec.kind == "diurnal":
        return _diurnal(spec, rng, end)
    raise ValueError(f"unknown arrival kind {spec.kind!r}")  # pragma: no cover - the spec forbids it


# ----------------------------------------------------------------------------- plans
def build_plans(scenario, catalog, nodes, cost, base_dir: Path, seed: int | None, add) -> list[ServicePlan]:
    """A plan per service; problems go to ``add(path, message)`` (nothing is built then)."""
    services = scenario.workload.services
    if not services:
        return []
    sim = scenario.simulation
    streams = Streams(sim.seed if seed is None else seed)
    horizon = sim.horizon if sim.horizon is not None else math.inf
    plans = []
    for i, s in enumerate(services):
        path = f"workload.services[{i}]"
        n_problems = [0]

        def bad(field: str, msg: str) -> None:
            n_problems[0] += 1
            add(f"{path}.{field}" if field else path, msg)

        gpu = catalog.gpu_name(s.gpu_type)
        if gpu is None:
            bad("gpu_type", f"found {s.gpu_type!r}, expected a GPU type: {', '.join(catalog.known_gpu_names())}")
            continue
        gpn = max((n.gpus for n in nodes if n.gpu_type == gpu), default=0)
        if gpn == 0:
            bad("gpu_type", f"found {gpu}, expected a GPU type the cluster has: "
                            f"{', '.join(sorted({n.gpu_type for n in nodes if n.gpu_type})) or 'none'}")
            continue
        if s.tensor_parallel > gpn:
            bad("tensor_parallel", f"found {s.tensor_parallel}, expected at most {gpn} (a replica stays on one node of "
                                   f"{gpn} {gpu} GPUs)")
        rng_name = f"{path}."
        if s.arrivals.kind == "trace":
            try:
                t, prompt, output = _trace_arrivals(s.arrivals, base_dir, horizon)
            except (OSError, ValueError) as e:
                bad("arrivals.path", f"cannot read trace {s.arrivals.path!r}: {e}")
                continue
        else:
            end = horizon if s.arrivals.end is None else min(horizon, s.arrivals.end)
            if not math.isfinite(end) and s.arrivals.count is None:
                bad("arrivals", "found an unbounded request stream, expected an end, a count or a horizon")
                continue
            t = arrivals(s.arrivals, streams.get(rng_name + "arrivals"), horizon)
            n = len(t)
            if s.service_time is not None:
                prompt = np.zeros(n, dtype=np.int64)
                output = np.ones(n, dtype=np.int64)
            else:
                prompt = np.maximum(np.rint(sample(s.prompt_tokens, streams.get(rng_name + "prompt_tokens"), n)),
                                    1).astype(np.int64)
                output = np.maximum(np.rint(sample(s.output_tokens, streams.get(rng_name + "output_tokens"), n)),
                                    1).astype(np.int64)
        st = None
        if s.service_time is not None:
            if support_min(s.service_time) < 0:
                bad("service_time", "found a distribution with negative values, expected durations >= 0")
                continue
            st = np.maximum(sample(s.service_time, streams.get(rng_name + "service_time"), len(t)), 0.0)
        weights = None
        kv = None
        if s.model is not None:
            weights, kv = _check_model(s, gpu, cost, catalog, prompt, output, bad)
        if n_problems[0]:
            continue
        storage = getattr(scenario, "storage", None)
        from_storage = s.cold_start is None and storage is not None and bool(weights)
        if s.cold_start is not None:
            cold = float(s.cold_start)
        elif from_storage:
            cold = weights / storage.bandwidth  # uncontended; the engine shares the bandwidth
        else:
            cold = DEFAULT_COLD_START_S
        plans.append(ServicePlan(i, s, gpu, np.ascontiguousarray(t, dtype=float), prompt, output, st, cold,
                                 from_storage, kv, weights))
    return plans


def _check_model(s, gpu: str, cost, catalog, prompt, output, bad):
    """(weight bytes, KV budget) of a model-based service; reports what the cost model cannot time."""
    from lepsim.costs.base import MissingProfile

    tp = s.tensor_parallel
    sup = getattr(cost, "supports_inference", None)
    if sup is None or not sup(s.model, gpu, tp):
        why = ""
        try:
            cost.decode_time(s.model, gpu, 1, 16, tp=tp)
        except (MissingProfile, AttributeError, LookupError) as e:
            why = f" ({e})"
        bad("model", f"found {s.model!r} on {gpu} at tensor parallelism {tp}, expected a model with inference "
                     f"profiles there{why}")
        return None, None
    b = s.batching
    max_prompt = int(prompt.max()) if len(prompt) else 1
    max_ctx = int((prompt + output).max()) if len(prompt) else 2
    checks = [("prompt_tokens" if s.arrivals.kind != "trace" else "arrivals",
               lambda: cost.prefill_time(s.model, gpu, max(max_prompt, 1), tp=tp),
               f"a longest prompt of {max_prompt} tokens")]
    if b.kind == "continuous":
        checks.append(("batching.max_prefill_tokens", lambda: cost.prefill_time(s.model, gpu, b.max_prefill_tokens, tp=tp),
                       f"a prefill of {b.max_prefill_tokens} tokens"))
    checks.append(("batching.max_batch", lambda: cost.decode_time(s.model, gpu, b.max_batch, max(max_ctx, 1), tp=tp),
                   f"a decode of {b.max_batch} requests at a context of {max_ctx} tokens"))
    for field, fn, what in checks:
        try:
            fn()
        except (MissingProfile, LookupError, ValueError) as e:
            bad(field, f"the cost model cannot time {what}: {e}; expected a smaller value")
            return None, None
    weights = cost.weight_bytes(s.model) if hasattr(cost, "weight_bytes") else None
    kv = None
    if b.kind == "continuous":
        kv = b.kv_cache_tokens
        if kv is None:
            per_tok = cost.kv_bytes_per_token(s.model) if hasattr(cost, "kv_bytes_per_token") else None
            mem = catalog.gpus[gpu].memory_bytes if gpu in catalog.gpus else None
            if per_tok is None or weights is None or mem is None:
                bad("batching.kv_cache_tokens", "found no KV-cache budget and no model shape to derive it, expected "
                                                "kv_cache_tokens")
                return None, None
            kv = int((KV_MEMORY_FRACTION * mem * tp - weights) // per_tok)
            if kv < 1:
                bad("model", f"its weights leave no KV-cache memory on {tp} {gpu} GPU(s), expected a larger "
                             "tensor_parallel")
                return None, None
        biggest = int((prompt + output).max()) if len(prompt) else 0
        if biggest > kv:
            bad("batching.kv_cache_tokens", f"found a budget of {kv} tokens, expected at least {biggest} (the largest "
                                            "request's prompt + output tokens)")
            return None, None
    return weights, kv
