"""The profile-based cost model: measured timings -> seconds per iteration (pure functions).

:class:`ProfiledCostModel` answers, from the rows of a :class:`~lepsim.costs.store.ProfileStore`:

* training: :meth:`~ProfiledCostModel.iteration_time` (model, GPU type, placement, per-GPU
  batch) = compute + exposed communication + data-loading stall;
* inference: :meth:`~ProfiledCostModel.prefill_time` and :meth:`~ProfiledCostModel.decode_time`;
* provenance: :meth:`~ProfiledCostModel.explain` -> ``'measured'`` or ``'extrapolated from X'``.

Rules (docs/costs.md has the full write-up):

1. **Measured first.**  Rows of the same (model, GPU type) are used as they are; between
   measured batch sizes (or token counts) the time is interpolated linearly in log-log
   space.  Below the smallest measured point it is extrapolated along the first segment
   (slope clamped to [0, 1]); above the largest it is an error for training batches (the
   measurement stops where memory does), and allowed up to 4x for LLM token counts.
2. **Placements.**  A measured placement (same multiset of GPUs per node) is used directly.
   Otherwise an anchor is taken — a measured placement with the same GPU count and the same
   single-/multi-node class, else the largest measured placement below — and the
   difference of the modelled gradient all-reduce (``collectives``) between the two
   placements is added.  With no multi-GPU measurement the anchor is one GPU.
3. **Other GPUs.**  A GPU type without a profile of the model is scaled from the nearest
   profiled GPU (distance in log peak FLOP/s and log bandwidth) by the roofline
   (``roofline.intensity_ratio`` with the model's effective arithmetic intensity, fitted on
   the profiled GPUs), plus the all-reduce modelled on the target's links.
4. **Never invent a number.**  Without a profile, or without what the extrapolation
   needs (an intensity, a catalog entry, a gradient size for multi-GPU), the answer is
   :class:`~lepsim.costs.base.MissingProfile` naming the pair, and ``supports`` is False.

All lookups of :meth:`iteration_time` are cached per (model, GPU, placement, batch).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

from lepsim.costs.adapters.names import ModelInfo, model_table, resolve_job_type
from lepsim.costs.base import CostModel, JobLike, MissingProfile
from lepsim.costs.collectives import CollectiveModel, MissingCollective, fit_collective_model
from lepsim.costs.roofline import (
    GEMM_OPS,
    Efficiency,
    Roof,
    attention_decode,
    attention_prefill,
    fit_efficiency,
    fit_intensities,
    intensity_bounds,
    intensity_ratio,
    ratio_band,
    kernel_time,
    lm_head,
    llm_token_ops,
    op_flops,
    op_roof,
    roof_for,
)
from lepsim.costs.store import ProfileStore

__all__ = ["ProfiledCostModel", "LogInterp", "OutOfRange", "GRAD_BYTES_PER_PARAM"]

GRAD_BYTES_PER_PARAM = 4          # fp32 gradients
TRAIN_BELOW_FACTOR = math.inf     # extrapolate below the smallest measured batch (slope-clamped)
TRAIN_ABOVE_FACTOR = 1.0          # no extrapolation above the largest measured batch
TOKENS_ABOVE_FACTOR = 4.0         # LLM token counts: up to 4x the largest measured


class OutOfRange(ValueError):
    """A query lies outside what the measured points allow."""


class LogInterp:
    """Piecewise-linear interpolation of log(y) over log(x), with guarded extrapolation.

    ``below``/``above``: how far (a factor) outside the measured x range to extrapolate;
    extrapolation follows the end segment with its slope clamped to [``slope_min``,
    ``slope_max``] (the cost of fewer items never exceeds, and more items never undercuts,
    a proportional change when the defaults 0..1 hold).  One point: only that x.
    """

    __slots__ = ("lx", "ly", "x_min", "x_max", "below", "above", "smin", "smax")

    def __init__(self, xs, ys, below: float = math.inf, above: float = 1.0, slope_min: float = 0.0, slope_max: float = 1.0):
        xs = np.asarray(xs, dtype=float)
        ys = np.asarray(ys, dtype=float)
        order = np.argsort(xs)
        xs, ys = xs[order], ys[order]
        if len(xs) == 0 or np.any(xs <= 0) or np.any(ys <= 0):
            raise ValueError("LogInterp needs positive x and y")
        if len(np.unique(xs)) != len(xs):
            raise ValueError("LogInterp needs distinct x")
        self.lx, self.ly = np.log(xs), np.log(ys)
        self.x_min, self.x_max = float(xs[0]), float(xs[-1])
        self.below, self.above = below, above
        self.smin, self.smax = slope_min, slope_max

    def __call__(self, x: float) -> float:
        lx = math.log(x)
        lo, hi = self.lx[0], self.lx[-1]
        if lo - 1e-12 <= lx <= hi + 1e-12:
            if len(self.lx) == 1:
                return float(math.exp(self.ly[0]))
            return float(math.exp(np.interp(lx, self.lx, self.ly)))
        if len(self.lx) == 1:
            raise OutOfRange(f"only x={self.x_min:g} was measured")
        if lx < lo:
            if x < self.x_min / self.below:
                raise OutOfRange(f"{x:g} is below the measured range {self.x_min:g}..{self.x_max:g}")
            s = (self.ly[1] - self.ly[0]) / (self.lx[1] - self.lx[0])
            s = min(max(s, self.smin), self.smax)
            return float(math.exp(self.ly[0] + s * (lx - lo)))
        if x > self.x_max * self.above:
            raise OutOfRange(f"{x:g} is above the measured range {self.x_min:g}..{self.x_max:g}")
        s = (self.ly[-1] - self.ly[-2]) / (self.lx[-1] - self.lx[-2])
        s = min(max(s, self.smin), self.smax)
        return float(math.exp(self.ly[-1] + s * (lx - hi)))


# ----------------------------------------------------------------------------- helpers
def _parse_placement(s: str | None, num_gpus) -> tuple[int, ...]:
    s = "" if s is None or (isinstance(s, float) and math.isnan(s)) else str(s)
    if s:
        return tuple(sorted((int(c) for c in s if c.isdigit() and int(c) > 0), reverse=True))
    n = 1 if num_gpus is None or pd.isna(num_gpus) else int(num_gpus)
    return (n,)


_PL_CACHE: dict = {}


def _placement_key(s, num_gpus) -> tuple[int, ...]:
    k = (s, num_gpus)
    r = _PL_CACHE.get(k)
    if r is None:
        r = _parse_placement(None if s is pd.NA else s, None if num_gpus is pd.NA else num_gpus)
        _PL_CACHE[k] = r
    return r


def _norm_placement(placement) -> tuple[int, ...]:
    if isinstance(placement, (int, np.integer)):
        placement = (int(placement),)
    p = tuple(sorted((int(g) for g in placement if int(g) > 0), reverse=True))
    if not p:
        raise ValueError(f"placement {placement!r} has no GPUs")
    return p


def _contains(p: tuple[int, ...], q: tuple[int, ...]) -> bool:
    """Whether placement ``q`` fits inside ``p`` (both sorted descending): its nodes can be
    mapped to distinct nodes of ``p`` holding at least as many GPUs each."""
    return len(q) <= len(p) and all(a <= b for a, b in zip(q, p))


class _LazyGrad:
    """model -> gradient bytes, computed on first use (the fit walks many placements)."""

    def __init__(self, owner):
        self._owner = owner
        self._d: dict = {}

    def get(self, model, default=None):
        if model not in self._d:
            if model not in self._owner._train_devices:
                return default
            info = self._owner._info(model)
            if info is not None and info.params:
                self._d[model] = float(info.params) * GRAD_BYTES_PER_PARAM
            else:
                self._d[model] = self._owner._fit_grad_bytes(model)
        return self._d[model]

    def items(self):
        return [(m, self.get(m)) for m in self._owner._train_devices]


@dataclass
class _TrainTable:
    """Measured training iterations of one (model, device): placement -> batch interpolator."""

    times: dict           # placement -> LogInterp over batch, or float (batch-less)
    sync: dict            # placement -> LogInterp over batch of the measured sync part
    batches: dict         # placement -> sorted measured batches
    flops: float | None
    nbytes: float | None
    source: str

    def at(self, placement, batch):
        f = self.times[placement]
        if isinstance(f, float):
            return f
        if batch is None:
            raise OutOfRange("a batch size is needed")
        return f(batch)


# ----------------------------------------------------------------------------- the model
class ProfiledCostModel(CostModel):
    """Costs from a profile store (see the module docstring)."""

    name = "profiled"

    def __init__(self, store: ProfileStore, catalog=None, models: Mapping[str, ModelInfo] | None = None):
        if catalog is None:
            from lepsim.hardware import default_catalog

            catalog = default_catalog()
        self.store = store
        self.catalog = catalog
        self.models = dict(models) if models is not None else dict(model_table())
        self._iter_cache: dict = {}
        self._name_cache: dict = {}
        self._gpu_cache: dict = {}
        self._inf_cache: dict = {}

    # ------------------------------------------------------------------ names
    def _model(self, model: str | None) -> tuple[str, int | None]:
        if model is None:
            raise MissingProfile(model, "?", "the job names no model")
        r = self._name_cache.get(model)
        if r is None:
            r = resolve_job_type(model)
            self._name_cache[model] = r
        return r

    def _gpu(self, gpu_type: str) -> str:
        r = self._gpu_cache.get(gpu_type)
        if r is None:
            g = str(gpu_type)
            r = g if g.lower().startswith("cpu") else (self.catalog.gpu_name(g) or g)
            self._gpu_cache[gpu_type] = r
        return r

    def _spec(self, gpu: str):
        try:
            return self.catalog.gpu(gpu)
        except KeyError:
            return None

    def _info(self, model: str) -> ModelInfo | None:
        return self.models.get(model)

    def _peak(self, model: str) -> str:
        info = self._info(model)
        return info.peak if info is not None else "fp32"

    # ------------------------------------------------------------------ indexes (lazy)
    @cached_property
    def _frame(self) -> pd.DataFrame:
        """The store's rows with device and model names canonicalised (aliases in user
        profiles, e.g. 'A100' or 'ResNet-50', match the bundled names)."""
        df = self.store.frame
        dev_map = {d: self._gpu(d) for d in df["device"].dropna().unique()}
        mod_map = {m: (resolve_job_type(m)[0] if m else m) for m in df["model"].dropna().unique()}
        if any(k != v for k, v in dev_map.items()) or any(k != v for k, v in mod_map.items()):
            df = df.assign(device=df["device"].map(dev_map).astype("string"),
                           model=df["model"].map(mod_map).astype("string"))
        return df

    @cached_property
    def _train_tables(self) -> dict[tuple[str, str], _TrainTable]:
        df = self._frame
        rows = df[df["phase"].isin(["train_iteration", "forward", "backward", "optimizer", "sync"])
                  & (df["co_located_with"] == "") & (df["operator"] == "")]
        out: dict[tuple[str, str], _TrainTable] = {}
        if rows.empty:
            return out
        # placement key: digits sorted descending ('' -> one node of num_gpus)
        keys = pd.Series([_placement_key(p, n) for p, n in zip(rows["placement"].to_numpy(object), rows["num_gpus"].to_numpy(object))],
                         index=rows.index, dtype=object)
        rows = rows.assign(_pl=keys, _b=rows["batch_size"].astype("float64").fillna(-1.0))
        agg = rows.groupby(["model", "device", "phase", "_pl", "_b"], sort=True)["time_s"].mean()
        fl = rows[rows["phase"] == "train_iteration"].dropna(subset=["flops", "bytes_moved"])
        flsum = fl.groupby(["model", "device"])[["flops", "bytes_moved"]].sum()
        srcs = rows.groupby(["model", "device"])["source"].agg(lambda x: ",".join(sorted(set(x.dropna()))))
        per: dict = {}
        for (m, dev, ph, pl, b), t in agg.items():
            per.setdefault((str(m), str(dev)), {}).setdefault(ph, {}).setdefault(pl, []).append((b, t))
        for key, phases in per.items():
            it = phases.get("train_iteration")
            if it is None:
                if not ("forward" in phases and "backward" in phases):
                    continue
                it = {}
                for ph in ("forward", "backward", "optimizer"):
                    for pl, pts in phases.get(ph, {}).items():
                        d = it.setdefault(pl, {})
                        for b, t in pts:
                            d[b] = d.get(b, 0.0) + t
                it = {pl: sorted(d.items()) for pl, d in it.items()}
            times, syncs, batches = {}, {}, {}
            for pl, pts in it.items():
                xs = np.array([b for b, _ in pts], dtype=float)
                ys = np.array([t for _, t in pts], dtype=float)
                keep = (xs > 0) & (ys > 0)
                if not keep.any():
                    good = ys > 0
                    if good.any():
                        times[pl] = float(ys[good].mean())
                        batches[pl] = []
                    continue
                times[pl] = LogInterp(xs[keep], ys[keep], below=TRAIN_BELOW_FACTOR, above=TRAIN_ABOVE_FACTOR)
                batches[pl] = sorted(xs[keep].astype(int).tolist())
            for pl, pts in phases.get("sync", {}).items():
                xs = np.array([b for b, _ in pts], dtype=float)
                ys = np.array([t for _, t in pts], dtype=float)
                keep = (xs > 0) & (ys > 0)
                if keep.any():
                    syncs[pl] = LogInterp(xs[keep], ys[keep], below=math.inf, above=math.inf, slope_min=-1.0, slope_max=1.0)
            if not times:
                continue
            f = flsum.loc[key] if key in flsum.index else None
            out[key] = _TrainTable(times, syncs, batches,
                                   None if f is None else float(f["flops"]), None if f is None else float(f["bytes_moved"]),
                                   str(srcs.get(key, "")))
        return out

    @cached_property
    def _train_devices(self) -> dict[str, list[str]]:
        d: dict[str, list[str]] = {}
        for (m, dev) in self._train_tables:
            d.setdefault(m, []).append(dev)
        return d

    @cached_property
    def _default_batches(self) -> dict[str, int | None]:
        df = self._frame
        rows = df[(df["phase"] == "train_iteration") & (df["co_located_with"] == "")]
        out: dict[str, int | None] = {}
        for m, g in rows.groupby("model"):
            counts = g["batch_size"].dropna().astype(int).value_counts()
            if counts.empty:
                out[str(m)] = None
                continue
            top = sorted(counts[counts == counts.max()].index.tolist())
            out[str(m)] = int(top[(len(top) - 1) // 2])  # the lower median of the most common
        return out

    @cached_property
    def collectives(self) -> CollectiveModel:
        df = self._frame
        rows = df[(df["phase"] == "collective") & (df["source"] == "vidur")]
        return fit_collective_model(rows, self.catalog)

    # ------------------------------------------------------------------ training
    def default_batch(self, model: str) -> int | None:
        """The model's default per-GPU batch: its profiles' most common batch size
        (ties: the lower median of the tied sizes)."""
        m, b = self._model(model)
        return b if b is not None else self._default_batches.get(m)

    def param_count(self, model: str | None) -> int | None:
        """Parameter count from models.yaml (``params``), where the architecture is known exactly."""
        if model is None:
            return None
        try:
            m, _ = self._model(model)
        except MissingProfile:
            return None
        info = self._info(m)
        return int(info.params) if info is not None and info.params else None

    def grad_bytes(self, model: str) -> float | None:
        """Gradient all-reduce volume (bytes): params x 4, or the effective size fitted on
        measured multi-GPU overheads, or None."""
        m, _ = self._model(model)
        return self._grad_bytes.get(m)

    @cached_property
    def _grad_bytes(self) -> "_LazyGrad":
        return _LazyGrad(self)

    def _fit_grad_bytes(self, model: str) -> float | None:
        """Least-squares gradient size G >= 0 from measured exposed overheads:
        overhead(P, b) = ring_latency(P) + G * ring_per_byte(P), normalised by compute time."""
        num = den = 0.0
        for dev in self._train_devices.get(model, []):
            tab = self._train_tables[(model, dev)]
            one = tab.times.get((1,))
            if one is None:
                continue
            for pl in tab.times:
                if sum(pl) <= 1:
                    continue
                try:
                    a = self._ring_latency(dev, pl)
                    c = (self._allreduce(dev, pl, 1e9) - a) / 1e9
                except MissingCollective:
                    continue
                for b in tab.batches.get(pl, []) or [None]:
                    try:
                        comp = tab.at((1,), b)
                        s = tab.sync[pl](b) if pl in tab.sync else tab.at(pl, b) - comp
                    except OutOfRange:
                        continue
                    w = 1.0 / comp ** 2
                    num += w * c * (s - a)
                    den += w * c * c
        if den <= 0:
            return None
        return max(0.0, num / den)

    def _allreduce(self, gpu: str, placement, size: float) -> float:
        if sum(placement) <= 1:
            return 0.0
        return self.collectives.allreduce_time(gpu, placement, size)

    def _ring_latency(self, gpu: str, placement) -> float:
        n = sum(placement)
        ab = self.collectives.intra_tier(gpu, n) if len(placement) == 1 else self.collectives.nic_tier(gpu)
        return 2.0 * (n - 1) * ab.alpha_s

    def comm_time(self, model: str, gpu_type: str, placement) -> float:
        """Exposed gradient all-reduce per iteration (s): ring all-reduce of the gradient on
        ``placement``, assumed not overlapped with the backward pass (an upper bound)."""
        m, _ = self._model(model)
        gpu = self._gpu(gpu_type)
        p = _norm_placement(placement)
        if sum(p) <= 1:
            return 0.0
        g = self._grad_bytes.get(m)
        if g is None:
            raise MissingProfile(m, gpu, "no gradient size (no parameter count, no multi-GPU measurement) to model its all-reduce")
        try:
            return self._allreduce(gpu, p, g)
        except MissingCollective as e:
            raise MissingProfile(m, gpu, str(e)) from None

    def data_stall(self, model: str, gpu_type: str, placement, batch_size: int | None = None) -> float:
        """Seconds per iteration the GPUs wait for input data because storage cannot keep up.

        Interface for the storage model (a later issue): the storage layer will compare the
        bytes per iteration the job reads with the bandwidth it gets.  Returns 0 for now:
        the profiled times were measured with local, cached input pipelines.
        """
        return 0.0

    # -- which GPU to measure from
    @cached_property
    def _intensity_fit(self) -> tuple[dict, dict]:
        """({model: effective intensity}, {gpu: relative efficiency}) from all models profiled
        on two or more GPU types (:func:`roofline.fit_intensities`)."""
        return self._fit_intensities()

    def _fit_intensities(self, exclude_devices: Iterable[str] = (), models: Iterable[str] | None = None) -> tuple[dict, dict]:
        excl = set(exclude_devices)
        obs = []
        for m, devs in sorted(self._train_devices.items()):
            if models is not None and m not in models:
                continue
            devs = sorted(d for d in devs if d not in excl and self._spec(d) is not None
                          and (1,) in self._train_tables[(m, d)].times)
            peak = self._peak(m)
            for i, a in enumerate(devs):
                for b in devs[i + 1:]:
                    ta, tb = self._train_tables[(m, a)], self._train_tables[(m, b)]
                    ra, rb = roof_for(self._spec(a), peak), roof_for(self._spec(b), peak)
                    ba, bb = ta.batches[(1,)], tb.batches[(1,)]
                    common = sorted(set(ba) & set(bb)) if (ba and bb) else ([None] if not ba and not bb else [])
                    for bs in common:
                        obs.append((m, a, b, ta.at((1,), bs), tb.at((1,), bs), ra, rb))
        if not obs:
            return {}, {}
        return fit_intensities(obs, bounds=intensity_bounds([o[5] for o in obs] + [o[6] for o in obs]))

    @cached_property
    def intensity_bounds(self) -> tuple[float, float] | None:
        """(low, high) FLOP/byte the intensity fit is bounded to: the range the calibration
        GPUs can tell apart (:func:`roofline.intensity_bounds`); None without a fit."""
        roofs = []
        for m, devs in self._train_devices.items():
            good = [d for d in devs if self._spec(d) is not None and (1,) in self._train_tables[(m, d)].times]
            if len(good) >= 2:
                roofs += [roof_for(self._spec(d), self._peak(m)) for d in good]
        return intensity_bounds(roofs) if roofs else None

    def intensity_at_bound(self, model: str) -> str | None:
        """'upper' / 'lower' when the model's fitted intensity sits at a bound of the fit
        (the calibration GPUs cannot pin it down: the extrapolation then follows the
        compute-bound or memory-bound limit), else None."""
        m, _ = self._model(model)
        fitted = self._intensity_fit[0]
        b = self.intensity_bounds
        if m not in fitted:
            info = self._info(m)
            m = info.intensity_like if info is not None and info.intensity_like else m
        if m not in fitted or b is None:
            return None
        i = fitted[m]
        if i >= b[1] * (1 - 1e-3):
            return "upper"
        if i <= b[0] * (1 + 1e-3):
            return "lower"
        return None

    @cached_property
    def _intensities(self) -> dict[str, float | None]:
        fitted, _ = self._intensity_fit
        out: dict[str, float | None] = {}
        for m in self._train_devices:
            if m in fitted:
                out[m] = fitted[m]
                continue
            fb = [(t.flops, t.nbytes) for (mm, d), t in self._train_tables.items() if mm == m and t.flops and t.nbytes]
            out[m] = (sum(f for f, _ in fb) / sum(b for _, b in fb)) if fb else None
        for m in list(out):
            if out[m] is None:
                info = self._info(m)
                if info is not None and info.intensity_like and out.get(info.intensity_like):
                    out[m] = out[info.intensity_like]
        return out

    def gpu_efficiency(self, gpu_type: str) -> float | None:
        """Relative roofline efficiency of a GPU type fitted on the training profiles
        (1 for the reference GPU), or None if it has none."""
        return self._intensity_fit[1].get(self._gpu(gpu_type))

    def _nearest(self, candidates: Iterable[str], gpu: str, peak: str) -> str | None:
        tgt = self._spec(gpu)
        if tgt is None:
            return None
        rt = roof_for(tgt, peak)
        best = None
        for d in sorted(candidates):
            s = self._spec(d)
            if s is None:
                continue
            rs = roof_for(s, peak)
            dist = abs(math.log(rt.flops / rs.flops)) + abs(math.log(rt.bandwidth / rs.bandwidth))
            if best is None or dist < best[0]:
                best = (dist, d)
        return None if best is None else best[1]

    def _train_source(self, model: str, gpu: str) -> tuple[str, float]:
        """(profiled GPU to use, compute-time ratio); raises MissingProfile."""
        info = self._info(model)
        devs = self._train_devices.get(model)
        if not devs:
            if info is not None and info.kind == "llm":
                raise MissingProfile(model, gpu, "LLM models are inference-only in lepsim (per-operator profiles "
                                     "cover forward passes only); use prefill_time/decode_time")
            raise MissingProfile(model, gpu, "no training profile of this model on any GPU type")
        if gpu in devs:
            return gpu, 1.0
        if self._spec(gpu) is None:
            raise MissingProfile(model, gpu, f"not in the hardware catalog; measured only on {', '.join(sorted(devs))}")
        inten = self._intensities.get(model)
        if inten is None:
            raise MissingProfile(model, gpu, f"measured only on {', '.join(sorted(devs))} and its arithmetic intensity "
                                 "is unknown (needs profiles on two GPU types, or flops/bytes) to extrapolate")
        peak = self._peak(model)
        src = self._nearest([d for d in devs if (1,) in self._train_tables[(model, d)].times], gpu, peak)
        if src is None:
            raise MissingProfile(model, gpu, "no single-GPU profile to extrapolate from")
        rs, rt = roof_for(self._spec(src), peak), roof_for(self._spec(gpu), peak)
        ratio = intensity_ratio(inten, rs, rt)
        etas = self._intensity_fit[1]
        if src in etas and gpu in etas:
            ratio *= etas[src] / etas[gpu]   # both efficiencies calibrated: use them
        lo, hi = ratio_band(rs, rt)
        # a roofline workload is never sped up (or slowed down) by more than the larger of the
        # peak-FLOP and bandwidth ratios, nor by less than the smaller: eta stays inside them
        return src, min(max(ratio, lo), hi)

    def _measured_iteration(self, model: str, gpu: str, p: tuple[int, ...], batch, tab: _TrainTable | None = None) -> float:
        tab = tab if tab is not None else self._train_tables[(model, gpu)]
        if p in tab.times:
            return tab.at(p, batch)
        n, k = sum(p), len(p)
        multi = k > 1

        def score(q):
            same_class = (len(q) > 1) == multi
            return (0 if same_class else 1, abs(len(q) - k), -len(q))

        same_n = [q for q in tab.times if sum(q) == n]
        if same_n:
            best = min(score(q) for q in same_n)
            anchors = [q for q in same_n if score(q) == best]
        else:
            below = [q for q in tab.times if sum(q) < n]
            pool = below or list(tab.times)
            top_n = max(sum(q) for q in pool) if below else min(sum(q) for q in pool)
            pool = [q for q in pool if sum(q) == top_n]
            best = min(score(q) for q in pool)
            anchors = [q for q in pool if score(q) == best]
        vals = []
        for q in anchors:
            base = tab.at(q, batch)
            if len(q) == k and sum(q) == n:
                # same GPU and node counts: the measurement already holds the network the
                # ring crosses; only the split of GPUs over those nodes differs -> used as is
                vals.append(base)
                continue
            g = self._grad_bytes.get(model)
            if g is None:
                raise MissingProfile(model, gpu, f"placement {p} not measured (nearest {q}) and no gradient size to model the difference")
            try:
                delta = self._allreduce(gpu, p, g) - self._allreduce(gpu, q, g)
            except MissingCollective as e:
                raise MissingProfile(model, gpu, str(e)) from None
            vals.append(base + delta)
        t = float(np.mean(vals))
        # Never faster than a measured single-node placement of at most its largest node's
        # GPUs (in particular one GPU): each node of ``p`` hosts as many workers as that
        # measurement (same per-server contention: CPU, PCIe, input pipeline) and its ring
        # adds a slower inter-node hop.  Gavel V100, ResNet-50 at batch 16: (4, 4) from the
        # spread (1,)*8 (0.318 s) minus the modelled ring difference (0.218 s) would be
        # 0.100 s, below the measured packed (4,) 0.172 s.  Multi-node measurements are not
        # used as bounds: Pollux's violate such monotonicity in ~20 % of pairs (noise).
        for q in tab.times:
            if q != p and len(q) == 1 and _contains(p, q):
                try:
                    t = max(t, tab.at(q, batch))
                except OutOfRange:
                    pass
        return t

    def iteration_time(self, model, gpu_type, placement, batch_size=None) -> float:
        """Seconds per training iteration (every GPU processes ``batch_size`` samples)."""
        key = (model, gpu_type, placement if isinstance(placement, tuple) else tuple(placement) if not isinstance(placement, int) else (placement,), batch_size)
        hit = self._iter_cache.get(key)
        if hit is not None:
            return hit
        m, b_from_name = self._model(model)
        gpu = self._gpu(gpu_type)
        try:
            p = _norm_placement(key[2])
        except ValueError as e:
            raise MissingProfile(m, gpu, str(e)) from None
        b = batch_size if batch_size is not None else (b_from_name if b_from_name is not None else self._default_batches.get(m))
        src, ratio = self._train_source(m, gpu)
        try:
            if src == gpu:
                t = self._measured_iteration(m, gpu, p, b)
            else:
                t = ratio * self._train_tables[(m, src)].at((1,), b) + (self.comm_time(m, gpu, p) if sum(p) > 1 else 0.0)
        except OutOfRange as e:
            raise MissingProfile(m, gpu, f"batch size {b}: {e}") from None
        t += self.data_stall(m, gpu, p, b)
        self._iter_cache[key] = t
        return t

    def supports(self, model, gpu_type) -> bool:
        try:
            m, _ = self._model(model)
            self._train_source(m, self._gpu(gpu_type))
            return True
        except MissingProfile:
            return False

    def problems(self, job: JobLike, gpu_types) -> list[str]:
        """Why ``job`` cannot be costed on the cluster's GPU types (empty: it can).

        An iteration job must be costable with its own GPU count and batch size on at least
        one of the GPU types; the message gives the reason for each type."""
        if job.iterations is None:
            return []
        types = list(gpu_types)
        n = max(1, int(job.gpus or 1))
        reasons: list[str] = []
        for g in types:
            try:
                self.iteration_time(job.model, g, (n,), job.batch_size)
                return []
            except MissingProfile as e:
                msg = str(e)
                if msg not in reasons:
                    reasons.append(msg)
        if not types:
            return [f"model {job.model!r}: no GPU type to run on; give a duration instead"]
        return [f"model {job.model!r} with {n} GPU(s) and batch {job.batch_size if job.batch_size is not None else 'default'} "
                f"cannot be costed on {', '.join(types)}: " + "; ".join(reasons)
                + " (give a duration instead, or add a profile)"]

    def colocated_iteration_time(self, model: str, other: str, gpu_type: str, num_gpus: int = 1,
                                 batch_size: int | None = None, other_batch_size: int | None = None) -> float:
        """Measured seconds per iteration of ``model`` while ``other`` space-shares its GPUs
        (Gavel pairs; packed placement).  Measured pairs only, else MissingProfile."""
        m, b0 = self._model(model)
        o, ob0 = self._model(other)
        gpu = self._gpu(gpu_type)
        b = batch_size if batch_size is not None else (b0 if b0 is not None else self.default_batch(m))
        ob = other_batch_size if other_batch_size is not None else (ob0 if ob0 is not None else self.default_batch(o))
        tag = o + (f":{ob}" if ob is not None else "")
        df = self._frame
        rows = df[(df["model"] == m) & (df["device"] == gpu) & (df["co_located_with"] == tag)
                  & (df["num_gpus"] == num_gpus) & (df["placement"] == str(num_gpus))]
        if b is not None:
            rows = rows[rows["batch_size"] == b]
        if rows.empty:
            raise MissingProfile(m, gpu, f"no measured co-location with {tag} on {num_gpus} GPU(s)")
        return float(rows["time_s"].mean())

    # ------------------------------------------------------------------ inference
    @cached_property
    def _inf_tables(self) -> dict:
        """(model, device, tp, phase) -> interpolator(s) from prefill/decode rows."""
        df = self._frame
        rows = df[df["phase"].isin(["prefill", "decode"])]
        out = {}
        for (m, dev, tp, ph), g in rows.groupby(["model", "device", rows["tensor_parallel"].fillna(1), "phase"]):
            key = (str(m), str(dev), int(tp), str(ph))
            src = ",".join(sorted(set(g["source"])))
            g = g.assign(_w=g["count"].fillna(1).astype(float))
            g = g.assign(_wt=g["time_s"] * g["_w"])
            if ph == "prefill":
                sums = g.groupby("num_tokens")[["_wt", "_w"]].sum()
                agg = sums["_wt"] / sums["_w"]   # mean over all repetitions
                out[key] = ("1d", LogInterp(agg.index.to_numpy(float), agg.to_numpy(), above=2.0), src)
            else:
                ctx = g["context_tokens"]
                per_b = g.groupby("batch_size")["context_tokens"].nunique()
                if ctx.notna().all() and len(per_b) and per_b.min() >= 2 and g.groupby("batch_size").size().nunique() == 1:
                    grid = {}
                    for b, gb in g.groupby("batch_size"):
                        agg = gb.groupby("context_tokens")["time_s"].mean()
                        grid[int(b)] = LogInterp(agg.index.to_numpy(float), agg.to_numpy(), above=2.0)
                    out[key] = ("2d", grid, src)
                else:
                    sums = g.groupby("batch_size")[["_wt", "_w"]].sum()
                    agg = sums["_wt"] / sums["_w"]
                    out[key] = ("1d", LogInterp(agg.index.to_numpy(float), agg.to_numpy(), above=2.0), src)
        return out

    @cached_property
    def _op_tables(self) -> dict:
        """(model, device, tp) -> {operator: LogInterp over num_tokens} from Vidur-style rows."""
        df = self._frame
        rows = df[(df["phase"] == "operator") & df["num_tokens"].notna() & (df["model"] != "") & (df["time_s"] > 0)]
        if rows.empty:
            return {}
        tp = rows["tensor_parallel"].fillna(1).astype(int)
        agg = rows.assign(_tp=tp).groupby(["model", "device", "_tp", "operator", "num_tokens"], sort=True)["time_s"].mean()
        out: dict = {}
        idx = agg.index
        lv = [idx.get_level_values(i).to_numpy() for i in range(5)]
        vals = agg.to_numpy()
        keys = list(zip(lv[0], lv[1], lv[2], lv[3]))
        start = 0
        for i in range(1, len(keys) + 1):
            if i == len(keys) or keys[i] != keys[start]:
                m, dev, t, op = keys[start]
                out.setdefault((str(m), str(dev), int(t)), {})[str(op)] = LogInterp(
                    lv[4][start:i].astype(float), vals[start:i], above=TOKENS_ABOVE_FACTOR)
                start = i
        return out

    @cached_property
    def op_efficiency(self) -> dict[str, dict[str, Efficiency]]:
        """device -> operator (and 'gemm' for all GEMMs together) -> fitted Efficiency."""
        df = self._frame
        rows = df[(df["phase"] == "operator") & df["flops"].notna() & df["bytes_moved"].notna() & (df["source"] == "vidur")]
        out: dict[str, dict[str, Efficiency]] = {}
        for dev, g in rows.groupby("device"):
            spec = self._spec(str(dev))
            if spec is None:
                continue
            out[str(dev)] = calibrate_operator_efficiency(g, spec)
        return out

    @cached_property
    def default_op_efficiency(self) -> dict[str, Efficiency]:
        """Mean of the calibrated devices' efficiencies, per operator (used for GPUs
        without operator profiles)."""
        per = self.op_efficiency
        keys = set().union(*[set(v) for v in per.values()]) if per else set()
        out = {}
        for k in keys:
            es = [v[k] for v in per.values() if k in v]
            out[k] = Efficiency(float(np.mean([e.compute for e in es])), float(np.mean([e.memory for e in es])),
                                float(np.mean([e.overhead_s for e in es])))
        return out

    def _eff(self, dev: str, op: str) -> Efficiency:
        per = self.op_efficiency.get(dev) or self.default_op_efficiency
        e = per.get(op) or per.get("gemm")
        if e is None:
            raise MissingProfile(None, dev, "no calibrated operator efficiency (no operator profiles bundled)")
        return e

    def _llm_config(self, model: str, gpu: str):
        info = self._info(model)
        if info is None or info.config is None:
            raise MissingProfile(model, gpu, "no architecture config in models.yaml for this LLM")
        return info.config

    def weight_bytes(self, model: str) -> float | None:
        """fp16 weight bytes of an LLM from its config (embeddings, layers, LM head), or None."""
        info = self._info(self._model(model)[0])
        if info is None or info.config is None:
            return None
        c = info.config
        attn = c.hidden * (c.heads + 2 * c.kv_heads) * c.head_dim + c.hidden * c.hidden
        mlp = c.hidden * c.ffn * (3 if c.gated_mlp else 2)
        return 2.0 * (c.layers * (attn + mlp) + 2 * c.vocab * c.hidden)

    def kv_bytes_per_token(self, model: str) -> float | None:
        """fp16 KV-cache bytes one token occupies (keys and values of every layer), or None."""
        info = self._info(self._model(model)[0])
        if info is None or info.config is None:
            return None
        c = info.config
        return 2.0 * 2.0 * c.layers * c.kv_heads * c.head_dim

    def _check_fits(self, model: str, gpu: str, tp: int) -> None:
        spec = self._spec(gpu)
        w = self.weight_bytes(model)
        if spec is None or w is None:
            return
        if w / tp > spec.memory_bytes:
            raise MissingProfile(model, gpu, f"its fp16 weights need {w / tp / 1e9:.0f} GB per GPU at tensor "
                                 f"parallelism {tp}, more than the {spec.memory_bytes / 1e9:.0f} GB of memory")

    def _inference_source(self, model: str, gpu: str, tp: int, phase: str) -> tuple[str, str]:
        """('table'|'ops', device) to answer from; raises MissingProfile."""
        self._check_fits(model, gpu, tp)
        if (model, gpu, tp, phase) in self._inf_tables:
            return "table", gpu
        if (model, gpu, tp) in self._op_tables:
            return "ops", gpu
        cands = {d: "table" for (m, d, t, ph) in self._inf_tables if m == model and t == tp and ph == phase}
        for (m, d, t) in self._op_tables:
            if m == model and t == tp:
                cands.setdefault(d, "ops")
        # prefer whole-model measurements over operator compositions when both exist elsewhere
        if not cands:
            avail = sorted({f"{d} tp={t}" for (m, d, t, ph) in self._inf_tables if m == model}
                           | {f"{d} tp={t}" for (m, d, t) in self._op_tables if m == model})
            raise MissingProfile(model, gpu, f"no inference profile at tensor parallelism {tp}"
                                 + (f" (profiled: {', '.join(avail)})" if avail else ""))
        if self._spec(gpu) is None:
            raise MissingProfile(model, gpu, "not in the hardware catalog, cannot extrapolate")
        src = self._nearest(cands, gpu, "fp16")
        if src is None:
            raise MissingProfile(model, gpu, "no profiled GPU in the catalog to extrapolate from")
        return cands[src], src

    def _composed(self, model: str, dev: str, tp: int, num_tokens: float, batch: int, context: float | None,
                  target: str | None = None) -> float:
        """Forward pass composed from operator profiles on ``dev`` (optionally scaled to
        ``target``): emb + layers x (token ops + attention + 2 all-reduces) + LM head."""
        cfg = self._llm_config(model, dev)
        ops = self._op_tables[(model, dev, tp)]
        tgt = target or dev
        s_src, s_tgt = self._spec(dev), self._spec(tgt)
        if s_tgt is None or (target is not None and s_src is None):
            raise MissingProfile(model, tgt, "not in the hardware catalog (the roofline needs its figures)")
        shapes = llm_token_ops(cfg, num_tokens, tp)
        per_layer = 0.0
        emb = 0.0
        for op, f in ops.items():
            t = f(num_tokens)
            if target is not None:
                fl, by = shapes[op]
                fl = op_flops(op, fl)
                e = self._eff(dev, op)
                t = t * float(kernel_time(fl, by, op_roof(s_tgt, op), e) / kernel_time(fl, by, op_roof(s_src, op), e))
            if op == "emb":
                emb = t
            else:
                per_layer += t
        e_g = self._eff(dev, "gemm")
        r_tc = op_roof(s_tgt, "attention")
        if context is None:
            fl, by = attention_prefill(cfg, num_tokens, batch, tp)
        else:
            fl, by = attention_decode(cfg, batch, context, tp)
        per_layer += float(kernel_time(fl, by, r_tc, e_g))
        if tp > 1:
            try:
                per_layer += 2.0 * self.collectives.allreduce_time(tgt, (tp,), num_tokens * cfg.hidden * 2)
            except MissingCollective as e:
                raise MissingProfile(model, tgt, str(e)) from None
        fl, by = lm_head(cfg, batch, tp)
        head = float(kernel_time(fl, by, r_tc, e_g))
        return emb + cfg.layers * per_layer + head

    def _table_time(self, key, x_tokens: float, batch: int, context: float | None) -> float:
        kind, f, _ = self._inf_tables[key]
        if key[3] == "prefill":
            return f(x_tokens)
        if kind == "1d":
            return f(batch)
        grid = f
        bs = sorted(grid)
        vals = [grid[b](context) for b in bs]
        if len(bs) == 1:
            return vals[0]
        return LogInterp(bs, vals, above=2.0)(batch)

    def _whole_model_ratio(self, model: str, src: str, tgt: str, tp: int, num_tokens: float, batch: int,
                           context: float | None) -> float:
        """Roofline time ratio tgt/src of a whole forward pass from the model's shapes."""
        cfg = self._llm_config(model, tgt)
        ss, st = self._spec(src), self._spec(tgt)
        ts = tt = 0.0
        for op, (fl, by) in llm_token_ops(cfg, num_tokens, tp).items():
            fl = op_flops(op, fl)
            e = self._eff(src, op)
            mult = 1 if op == "emb" else cfg.layers
            ts += mult * float(kernel_time(fl, by, op_roof(ss, op), e))
            tt += mult * float(kernel_time(fl, by, op_roof(st, op), e))
        e = self._eff(src, "gemm")
        rs, rt = op_roof(ss, "attention"), op_roof(st, "attention")
        fl, by = attention_prefill(cfg, num_tokens, batch, tp) if context is None else attention_decode(cfg, batch, context, tp)
        ts += cfg.layers * float(kernel_time(fl, by, rs, e))
        tt += cfg.layers * float(kernel_time(fl, by, rt, e))
        fl, by = lm_head(cfg, batch, tp)
        ts += float(kernel_time(fl, by, rs, e))
        tt += float(kernel_time(fl, by, rt, e))
        return tt / ts

    def _inference(self, model: str, gpu_type: str, tp: int, phase: str, num_tokens: float, batch: int,
                   context: float | None) -> float:
        key = (model, gpu_type, tp, phase, num_tokens, batch, context)
        hit = self._inf_cache.get(key)
        if hit is not None:
            return hit
        m, _ = self._model(model)
        gpu = self._gpu(gpu_type)
        info = self._info(m)
        tp = int(tp)
        if tp < 1 or num_tokens <= 0 or batch < 1:
            raise MissingProfile(m, gpu, "tokens, batch and tensor parallelism must be positive")
        kind, src = self._inference_source(m, gpu, tp, phase)
        try:
            if kind == "table":
                t = self._table_time((m, src, tp, phase), num_tokens, batch, context)
                if src != gpu:
                    if info is None or info.config is None:
                        raise MissingProfile(m, gpu, f"measured only on {src}; no architecture config to extrapolate")
                    t *= self._whole_model_ratio(m, src, gpu, tp, num_tokens, batch, context)
            else:
                t = self._composed(m, src, tp, num_tokens, batch, context, target=None if src == gpu else gpu)
        except OutOfRange as e:
            raise MissingProfile(m, gpu, f"{phase}: {e}") from None
        self._inf_cache[key] = t
        return t

    def prefill_time(self, model: str, gpu_type: str, num_tokens: int, tp: int = 1, batch_size: int = 1) -> float:
        """Seconds for one prefill iteration of ``num_tokens`` prompt tokens in total, split
        evenly over ``batch_size`` prompts, with tensor parallelism ``tp`` (``tp`` GPUs)."""
        return self._inference(model, gpu_type, tp, "prefill", float(num_tokens), int(batch_size), None)

    def decode_time(self, model: str, gpu_type: str, batch_size: int, context_tokens: int, tp: int = 1) -> float:
        """Seconds for one decode iteration: one new token for each of ``batch_size``
        requests whose context (prompt + generated so far) averages ``context_tokens``."""
        return self._inference(model, gpu_type, tp, "decode", float(batch_size), int(batch_size), float(context_tokens))

    def supports_inference(self, model: str, gpu_type: str, tp: int = 1) -> bool:
        try:
            m, _ = self._model(model)
            self._inference_source(m, self._gpu(gpu_type), int(tp), "decode")
            return True
        except MissingProfile:
            return False

    # ------------------------------------------------------------------ provenance
    def explain(self, model: str, gpu_type: str, kind: str | None = None) -> str:
        """``'measured'`` or ``'extrapolated from <GPU>'``; MissingProfile when neither.

        ``kind``: 'train' or 'inference' (default: training if the model has training
        profiles, else inference at the smallest profiled tensor parallelism)."""
        m, _ = self._model(model)
        gpu = self._gpu(gpu_type)
        if kind is None:
            kind = "train" if m in self._train_devices else "inference"
        if kind == "train":
            src, _ = self._train_source(m, gpu)
            return "measured" if src == gpu else f"extrapolated from {src}"
        tps = sorted({t for (mm, _d, t, _p) in self._inf_tables if mm == m} | {t for (mm, _d, t) in self._op_tables if mm == m})
        if not tps:
            raise MissingProfile(m, gpu, "no inference profile of this model")
        errors = []
        for tp in tps:
            try:
                how, src = self._inference_source(m, gpu, tp, "decode")
                return "measured" if src == gpu else f"extrapolated from {src}"
            except MissingProfile as e:
                errors.append(str(e))
        raise MissingProfile(m, gpu, errors[-1])

    def explain_detail(self, model: str, gpu_type: str) -> str:
        """A longer provenance string: which source rows, which rule."""
        m, _ = self._model(model)
        gpu = self._gpu(gpu_type)
        head = self.explain(m, gpu)
        if m in self._train_devices:
            src, ratio = self._train_source(m, gpu)
            tab = self._train_tables[(m, src)]
            if src == gpu:
                return f"{head} ({tab.source}; {len(tab.times)} placements)"
            at = self.intensity_at_bound(m)
            note = f", at the {at} bound of the fit (not identifiable from the profiled GPUs)" if at else ""
            return (f"{head} ({tab.source}; {self._peak(m)} roofline x{ratio:.3g}, "
                    f"intensity {self._intensities[m]:.3g} FLOP/B{note})")
        srcs = sorted({v[2] for k, v in self._inf_tables.items() if k[0] == m and k[1] == gpu})
        if srcs:
            return f"{head} ({', '.join(srcs)})"
        if any(k[0] == m and k[1] == gpu for k in self._op_tables):
            return f"{head} (vidur operators; attention, LM head by roofline)"
        return head

    def profiled_devices(self) -> list[str]:
        """Every device with training or inference rows (catalog GPUs and e.g. 'cpu:<name>')."""
        devs = {d for (_m, d) in self._train_tables} | {k[1] for k in self._inf_tables} | {k[1] for k in self._op_tables}
        return sorted(devs)

    def matrix(self, gpus: Iterable[str] | None = None) -> pd.DataFrame:
        """models x GPU types: status ('measured' / 'extrapolated from X' / 'missing') and why."""
        gpus = list(gpus) if gpus is not None else self.catalog.known_gpu_names()
        models = sorted(set(self._train_devices) | {k[0] for k in self._inf_tables} | {k[0] for k in self._op_tables})
        rows = []
        for m in models:
            info = self._info(m)
            kind = "train" if m in self._train_devices else "inference"
            for g in gpus:
                try:
                    status = self.explain(m, g)
                    detail = ""
                except MissingProfile as e:
                    status, detail = "missing", str(e)
                rows.append(dict(model=m, kind=kind, gpu=g, status=status, detail=detail,
                                 description=info.description if info else ""))
        return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- calibration
def calibrate_operator_efficiency(rows: pd.DataFrame, spec) -> dict[str, Efficiency]:
    """Per-operator (and pooled 'gemm') roofline efficiencies on one device's operator rows
    (median times; flops/bytes from the rows; each operator on its own roof, see
    :func:`lepsim.costs.roofline.op_roof`)."""
    t = rows["time_median_s"].fillna(rows["time_s"])
    r = rows.assign(_t=t)
    out: dict[str, Efficiency] = {}
    for op, g in r.groupby("operator"):
        out[str(op)] = fit_efficiency(g["_t"], op_flops(str(op), g["flops"].to_numpy(float)), g["bytes_moved"], op_roof(spec, str(op)))
    gem = r[r["operator"].isin(GEMM_OPS)]
    if len(gem):
        out["gemm"] = fit_efficiency(gem["_t"], gem["flops"], gem["bytes_moved"], op_roof(spec, "gemm"))
    return out
