"""Roofline arithmetic: operator FLOPs/bytes from shapes, efficiency fits, GPU-to-GPU scaling.

Two forms, both from the roofline model (Williams et al., CACM 2009):

* **one kernel** (an LLM operator): ``t = max(F / (e_c * P), B / (e_m * W)) + L`` where ``F``
  is its FLOPs, ``B`` the bytes it moves, ``P`` the peak FLOP/s of the unit it runs on,
  ``W`` the memory bandwidth, ``e_c``/``e_m`` the achieved fractions of those peaks and
  ``L`` a fixed per-kernel time (launch and tail).  :func:`fit_efficiency` calibrates
  ``(e_c, e_m, L)`` on measured kernels by least squares on relative error.
* **a whole workload** (a training iteration of hundreds of kernels, some compute-bound,
  some memory-bound): ``t ∝ F / P + B / W = B * (I / P + 1 / W)`` with one effective
  arithmetic intensity ``I = F / B`` (FLOP/byte).  Moving from GPU s to GPU t scales the
  time by ``(I / P_t + 1 / W_t) / (I / P_s + 1 / W_s)``: compute-bound work by the peak-FLOP
  ratio, memory-bound work by the bandwidth ratio, weighted by the intensity.
  :func:`fit_intensity` calibrates ``I`` on measured cross-GPU pairs.

Extrapolation always scales a *measured* time by the ratio of the two roofline times (so
the efficiency factors largely cancel and the measurement's own overheads are kept).

All quantities are SI: seconds, bytes, FLOP, FLOP/s, bytes/s.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:  # only for annotations: importing the adapters here would be circular
    from lepsim.costs.adapters.names import LlmConfig

__all__ = [
    "Roof",
    "Efficiency",
    "roof_for",
    "op_roof",
    "op_flops",
    "TENSOR_OPS",
    "kernel_time",
    "scale_kernel",
    "fit_efficiency",
    "intensity_ratio",
    "fit_intensity",
    "fit_intensities",
    "intensity_bounds",
    "ratio_band",
    "llm_token_ops",
    "attention_prefill",
    "attention_decode",
    "lm_head",
    "FP16_BYTES",
    "GEMM_OPS",
]

FP16_BYTES = 2
GEMM_OPS = ("attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj")
TENSOR_OPS = frozenset(GEMM_OPS) | {"gemm", "attention", "lm_head"}


@dataclass(frozen=True)
class Roof:
    """A device's peaks for one kind of work: FLOP/s and memory bytes/s."""

    flops: float
    bandwidth: float

    @property
    def ridge(self) -> float:
        """FLOP/byte above which work is compute-bound."""
        return self.flops / self.bandwidth


@dataclass(frozen=True)
class Efficiency:
    """Achieved fractions of peak (0..1] and a fixed per-kernel time (s)."""

    compute: float = 1.0
    memory: float = 1.0
    overhead_s: float = 0.0


def roof_for(spec, peak: str = "fp32") -> Roof:
    """The :class:`Roof` of a :class:`lepsim.hardware.catalog.GpuSpec` for ``peak``.

    ``peak``: ``fp16`` (dense FP16/BF16 tensor peak), ``tf32`` (TF32 tensor peak where the GPU
    has one, else FP32) or ``fp32``.
    """
    if peak == "fp16":
        flops = spec.fp16_flops or spec.fp32_flops
    elif peak == "tf32":
        flops = spec.tf32_flops or spec.fp32_flops
    else:
        flops = spec.fp32_flops
    return Roof(float(flops), float(spec.memory_bandwidth))


def op_roof(spec, op: str) -> Roof:
    """The roof of an LLM operator: the fp16 tensor-core peak for GEMMs (and attention, the
    LM head); the FP32 vector peak for the rest (see :func:`op_flops`: their FLOPs are not
    what bounds them)."""
    return roof_for(spec, "fp16" if op in TENSOR_OPS else "fp32")


def op_flops(op: str, flops):
    """FLOPs that count against the compute roof: all of a GEMM's; none of an elementwise
    operator's (norms, activations, rotary, adds, embedding gathers do about 1 FLOP per
    byte moved, far below the ridge point of every GPU in the catalog, so the roofline
    makes them memory-bound; letting a fit use their compute term would only add a free
    parameter with no physical meaning)."""
    return flops if op in TENSOR_OPS else np.zeros_like(np.asarray(flops, dtype=float))


def kernel_time(flops, nbytes, roof: Roof, eff: Efficiency):
    """``max(F/(e_c P), B/(e_m W)) + L`` (numpy-vectorised)."""
    f = np.asarray(flops, dtype=float)
    b = np.asarray(nbytes, dtype=float)
    return np.maximum(f / (eff.compute * roof.flops), b / (eff.memory * roof.bandwidth)) + eff.overhead_s


def scale_kernel(t_src, flops, nbytes, src: Roof, tgt: Roof, eff: Efficiency):
    """A measured kernel time on ``src`` scaled to ``tgt`` by the ratio of roofline times."""
    return np.asarray(t_src, dtype=float) * kernel_time(flops, nbytes, tgt, eff) / kernel_time(flops, nbytes, src, eff)


def fit_efficiency(times, flops, nbytes, roof: Roof) -> Efficiency:
    """Least-squares ``(e_c, e_m, L)`` of :func:`kernel_time` on measured kernels.

    Minimises the relative error ``model/measured - 1``; efficiencies are bounded to
    (0.01, 1] (a kernel cannot beat the peak), ``L`` to [0, 10 ms].  Deterministic.
    """
    from scipy.optimize import least_squares  # imported here: scipy.optimize is slow to import

    t = np.asarray(times, dtype=float)
    f = np.asarray(flops, dtype=float)
    b = np.asarray(nbytes, dtype=float)
    ok = np.isfinite(t) & (t > 0)
    t, f, b = t[ok], f[ok], b[ok]
    if len(t) == 0:
        raise ValueError("no measured kernels to calibrate on")
    # x = (1/e_c, 1/e_m, L); start from the medians of the bound implied by each point.
    has_f = f > 0
    x0c = float(np.clip(np.median(t[has_f] * roof.flops / f[has_f]) if has_f.any() else 1.5, 1.0, 50.0))
    x0m = float(np.clip(np.median(t * roof.bandwidth / np.maximum(b, 1.0)), 1.0, 50.0))
    x0 = np.array([x0c, x0m, float(np.clip(np.min(t) * 0.5, 0.0, 1e-2))])

    def resid(x):
        model = np.maximum(x[0] * f / roof.flops, x[1] * b / roof.bandwidth) + x[2]
        return model / t - 1.0

    r = least_squares(resid, x0, bounds=([1.0, 1.0, 0.0], [100.0, 100.0, 1e-2]), method="trf", x_scale=[1.0, 1.0, 1e-5])
    return Efficiency(compute=1.0 / r.x[0], memory=1.0 / r.x[1], overhead_s=float(r.x[2]))


def intensity_ratio(intensity: float, src: Roof, tgt: Roof) -> float:
    """Time on ``tgt`` / time on ``src`` of work with arithmetic intensity ``intensity`` (FLOP/byte)."""
    if math.isinf(intensity):
        return src.flops / tgt.flops
    return (intensity / tgt.flops + 1.0 / tgt.bandwidth) / (intensity / src.flops + 1.0 / src.bandwidth)


def ratio_band(src: Roof, tgt: Roof) -> tuple[float, float]:
    """(min, max) of the time ratio tgt/src any roofline workload can have: the peak-FLOP
    ratio and the bandwidth ratio (:func:`intensity_ratio` is a weighted mean of the two)."""
    a, b = src.flops / tgt.flops, src.bandwidth / tgt.bandwidth
    return min(a, b), max(a, b)


def fit_intensity(pairs: Sequence[tuple[float, float, Roof, Roof]], bounds: tuple[float, float] | None = None) -> float:
    """Effective intensity ``I`` (FLOP/byte) that best explains measured cross-GPU time ratios.

    ``pairs``: (time on GPU a, time on GPU b, roof of a, roof of b) for the same work.
    Minimises the squared log-ratio error over ``I`` within ``bounds`` (default:
    :func:`intensity_bounds` of the pairs' roofs; bounded scalar search; deterministic).
    """
    from scipy.optimize import minimize_scalar

    data = [(math.log(tb / ta), ra, rb) for ta, tb, ra, rb in pairs if ta > 0 and tb > 0]
    if not data:
        raise ValueError("no cross-GPU pairs to calibrate the intensity on")

    def loss(u: float) -> float:
        i = math.exp(u)
        return sum((lr - math.log(intensity_ratio(i, ra, rb))) ** 2 for lr, ra, rb in data)

    if bounds is None:
        bounds = intensity_bounds([ra for _, ra, _ in data] + [rb for _, _, rb in data])
    res = minimize_scalar(loss, bounds=(math.log(bounds[0]), math.log(bounds[1])), method="bounded", options={"xatol": 1e-6})
    return float(math.exp(res.x))


INTENSITY_BOUND_FACTOR = 10.0


def intensity_bounds(roofs: Sequence[Roof], factor: float = INTENSITY_BOUND_FACTOR) -> tuple[float, float]:
    """The range of effective intensities that calibration GPUs ``roofs`` can tell apart.

    Ratios between GPUs depend on ``I`` only near their ridge points: far above every ridge
    all work is compute-bound and the ratios are the peak-FLOP ratios whatever ``I`` is; far
    below every ridge they are the bandwidth ratios.  A fit that runs off to 1e6 (or 1e-3)
    FLOP/byte is therefore *unidentifiable*, not a measurement.  The bounds are
    ``[min ridge / factor, max ridge * factor]``: at ``max ridge * factor`` at least
    ``factor / (factor + 1)`` (91 % for 10) of every calibration GPU's roofline time is the
    compute term, so more intensity changes no ratio among them by more than that margin.
    """
    ridges = [r.ridge for r in roofs]
    if not ridges:
        raise ValueError("no roofs")
    return min(ridges) / factor, max(ridges) * factor


def fit_intensities(observations, reference: str | None = None,
                    bounds: tuple[float, float] | None = None) -> tuple[dict, dict]:
    """Joint fit of per-workload intensities and per-GPU efficiency factors.

    Model: ``t[w, g] = B_w * (I_w / P_g + 1 / W_g) / eta_g`` — workload ``w`` moves ``B_w``
    bytes and does ``I_w * B_w`` FLOPs; GPU ``g`` reaches a fraction ``eta_g`` of its roofline.
    Only ratios between GPUs are observed, so ``eta`` is relative: ``eta[reference] = 1``
    (default: the GPU with the most observations).

    ``observations``: (workload, gpu_a, gpu_b, t_a, t_b, roof_a, roof_b).  Least squares on
    ``log(t_b / t_a)``; intensities bounded to ``bounds`` (default: :func:`intensity_bounds`
    of the observed GPUs' roofs).  Returns
    ``({workload: I}, {gpu: eta})``.  Deterministic.
    """
    from scipy.optimize import least_squares

    obs = [o for o in observations if o[3] > 0 and o[4] > 0]
    if not obs:
        raise ValueError("no cross-GPU observations")
    works = sorted({o[0] for o in obs})
    gpus = sorted({o[1] for o in obs} | {o[2] for o in obs})
    if reference is None:
        counts = {g: sum((o[1] == g) + (o[2] == g) for o in obs) for g in gpus}
        reference = max(gpus, key=lambda g: (counts[g], g))
    free = [g for g in gpus if g != reference]
    wi = {w: i for i, w in enumerate(works)}
    gi = {g: len(works) + i for i, g in enumerate(free)}
    y = np.array([math.log(o[4] / o[3]) for o in obs])
    pa = np.array([o[5].flops for o in obs]); ba = np.array([o[5].bandwidth for o in obs])
    pb = np.array([o[6].flops for o in obs]); bb = np.array([o[6].bandwidth for o in obs])
    iw = np.array([wi[o[0]] for o in obs])
    ia = np.array([gi.get(o[1], -1) for o in obs]); ib = np.array([gi.get(o[2], -1) for o in obs])

    def resid(x):
        inten = np.exp(x[iw])
        le = np.append(x, 0.0)  # index -1 -> the reference GPU, log eta = 0
        model = np.log((inten / pb + 1 / bb) / (inten / pa + 1 / ba)) + le[ia] - le[ib]
        return model - y

    if bounds is None:
        bounds = intensity_bounds([o[5] for o in obs] + [o[6] for o in obs])
    i_lo, i_hi = float(bounds[0]), float(bounds[1])
    lo = np.r_[np.full(len(works), math.log(i_lo)), np.full(len(free), -5.0)]
    hi = np.r_[np.full(len(works), math.log(i_hi)), np.full(len(free), 5.0)]
    x0 = np.r_[np.full(len(works), math.log(min(max(10.0, i_lo * 1.01), i_hi / 1.01))), np.zeros(len(free))]
    r = least_squares(resid, x0, bounds=(lo, hi), method="trf")
    intens = {w: float(math.exp(r.x[wi[w]])) for w in works}
    etas = {reference: 1.0, **{g: float(math.exp(r.x[gi[g]])) for g in free}}
    return intens, etas


# ----------------------------------------------------------------------------- LLM shapes
def _gemm(m: float, k: float, n: float, elt: int = FP16_BYTES) -> tuple[float, float]:
    """FLOPs and bytes of an (m x k) @ (k x n) GEMM: read both operands, write the result."""
    return 2.0 * m * k * n, float(elt) * (m * k + k * n + m * n)


def llm_token_ops(cfg: "LlmConfig", num_tokens: float, tp: int = 1) -> dict[str, tuple[float, float]]:
    """FLOPs and bytes of one transformer layer's token-level operators on one GPU.

    The operator names are Vidur's (``emb`` is the model's embedding lookup, once per
    forward pass, not per layer).  Shapes: ``num_tokens`` rows, hidden ``d``, tensor
    parallel degree ``tp`` sharding heads and the MLP width (Megatron style).  fp16.
    Elementwise FLOPs are counted but matter only through bytes.
    """
    n, t, d = float(num_tokens), float(tp), float(cfg.hidden)
    dh = cfg.head_dim
    qkv_out = (cfg.heads + 2 * cfg.kv_heads) * dh / t
    up_out = cfg.ffn * (2 if cfg.gated_mlp else 1) / t
    ffn_shard = cfg.ffn / t
    e = FP16_BYTES
    ops = {
        "emb": (0.0, e * 2 * n * d),
        "input_layernorm": (4 * n * d, e * (2 * n * d + d)),
        "attn_pre_proj": _gemm(n, d, qkv_out),
        "attn_rope": (3 * n * (cfg.heads + cfg.kv_heads) * dh / t, e * 2 * n * (cfg.heads + cfg.kv_heads) * dh / t),
        "attn_post_proj": _gemm(n, d / t, d),
        "post_attention_layernorm": (4 * n * d, e * (2 * n * d + d)),
        "mlp_up_proj": _gemm(n, d, up_out),
        "mlp_act": ((5 if cfg.gated_mlp else 8) * n * ffn_shard, e * n * ffn_shard * (3 if cfg.gated_mlp else 2)),
        "mlp_down_proj": _gemm(n, ffn_shard, d),
        "add": (n * d, e * 3 * n * d),
    }
    return ops


def attention_prefill(cfg: "LlmConfig", num_tokens: float, batch_size: int = 1, tp: int = 1) -> tuple[float, float]:
    """FLOPs/bytes of one layer's causal self-attention over ``batch_size`` prompts of
    ``num_tokens / batch_size`` tokens each (FlashAttention-style: masked half skipped,
    Q/K/V read once, output written once)."""
    b = max(1, int(batch_size))
    length = float(num_tokens) / b
    dh = cfg.head_dim
    h, kv = cfg.heads / tp, cfg.kv_heads / tp
    flops = 2.0 * b * length * length * dh * h  # 4 L^2 dh per head, halved by the causal mask
    nbytes = FP16_BYTES * float(num_tokens) * dh * (2 * h + 2 * kv)
    return flops, nbytes


def attention_decode(cfg: "LlmConfig", batch_size: int, context_tokens: float, tp: int = 1) -> tuple[float, float]:
    """FLOPs/bytes of one layer's attention for one new token per request over a KV cache
    of ``context_tokens`` per request (reads the whole K and V cache: memory-bound)."""
    b, c = float(batch_size), float(context_tokens)
    dh = cfg.head_dim
    h, kv = cfg.heads / tp, cfg.kv_heads / tp
    flops = 4.0 * b * c * dh * h
    nbytes = FP16_BYTES * (2.0 * b * c * kv * dh + 2.0 * b * h * dh)
    return flops, nbytes


def lm_head(cfg: "LlmConfig", num_sequences: float, tp: int = 1) -> tuple[float, float]:
    """FLOPs/bytes of the vocabulary projection for the last token of each sequence
    (vocabulary sharded over ``tp``)."""
    return _gemm(float(num_sequences), float(cfg.hidden), float(cfg.vocab) / tp)
