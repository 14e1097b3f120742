"""``lepsim costs check``: prediction error on measured points held out from calibration.

Every case predicts measured points that its calibration did not see, and reports the
absolute percentage error ``|predicted / measured - 1| x 100``: median, 90th percentile,
number of points.  Cases with a target (the LLM operator tables: median <= 10 %,
p90 <= 25 %) pass or fail; the others are reported for information.

Cases (docs/costs.md explains each and its results):

* ``llm-ops``        Vidur per-operator times of GPU B predicted from GPU A (A100-80GB <-> A40) by
                     the per-operator roofline; efficiencies calibrated on A's operators only.
* ``llm-forward``    the same predictions summed into a model's forward token-operator time
                     (embedding + layers x operators), the quantity the simulator uses.
* ``llm-tokens``     Vidur operator times at every other token count, interpolated (log-log)
                     from the remaining token counts of the same operator.
* ``llm-h100``       Splitwise H100 prefill/decode times predicted from the A100 rows by the
                     whole-model roofline (efficiencies from the A100 operator profiles).
* ``llm-composed``   Splitwise A100 llama-2-70b times vs the forward pass lepsim composes from
                     the Vidur operator profiles (two independent sources; information).
* ``nccl-intra``     all-reduce times of each single-node group size (2/4/8 GPUs, A100 and H100
                     DGX) from the ring fit on the other group sizes of that system.
* ``nccl-multinode`` all-reduce times of each 2-node shape (A100 DGX, 1/2/4/8 GPUs per node)
                     from the tiers fitted on the other shapes.
* ``gavel-gpu``      Gavel single-GPU iteration times of one GPU type (K80, P100, V100) from the
                     nearest other type by the roofline, intensities and efficiencies fitted
                     without the held-out type.
* ``train-batch``    Pollux/Gavel iteration times at every other measured batch size,
                     interpolated (log-log) from the remaining batch sizes.
* ``pollux-placement`` each measured multi-node placement of Pollux cifar10/imagenet removed and
                     predicted from the nearest measured placement plus the modelled all-reduce
                     difference (gradient size from the parameter count: nothing fitted).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from lepsim.costs.collectives import fit_collective_model
from lepsim.costs.model import LogInterp, OutOfRange, ProfiledCostModel, _TrainTable, calibrate_operator_efficiency
from lepsim.costs.roofline import intensity_ratio, kernel_time, op_flops, op_roof, roof_for

__all__ = ["CaseResult", "run_checks", "CASES", "TARGET_MEDIAN", "TARGET_P90"]

TARGET_MEDIAN = 10.0
TARGET_P90 = 25.0


@dataclass
class CaseResult:
    name: str
    description: str
    predicted: np.ndarray
    measured: np.ndarray
    target: tuple[float, float] | None = None     # (median %, p90 %) or None = report only
    note: str = ""
    groups: dict = field(default_factory=dict)    # sub-group name -> (median, p90, n)

    @property
    def ape(self) -> np.ndarray:
        return np.abs(self.predicted / self.measured - 1.0) * 100.0

    @property
    def n(self) -> int:
        return int(len(self.measured))

    @property
    def median(self) -> float:
        return float(np.median(self.ape)) if self.n else float("nan")

    @property
    def p90(self) -> float:
        return float(np.percentile(self.ape, 90)) if self.n else float("nan")

    @property
    def passed(self) -> bool | None:
        if self.target is None or self.n == 0:
            return None
        return self.median <= self.target[0] and self.p90 <= self.target[1]

    def row(self) -> dict:
        return dict(case=self.name, median_ape=self.median, p90_ape=self.p90, n=self.n,
                    target=None if self.target is None else f"<={self.target[0]:g} / <={self.target[1]:g}",
                    passed=self.passed, description=self.description, note=self.note)


def _result(name, desc, pred, meas, target=None, note="", groups=None) -> CaseResult:
    pred = np.asarray(pred, dtype=float)
    meas = np.asarray(meas, dtype=float)
    ok = np.isfinite(pred) & np.isfinite(meas) & (meas > 0)
    return CaseResult(name, desc, pred[ok], meas[ok], target, note, groups or {})


def _size_class(sizes) -> list[str]:
    return ["size < 1 MiB" if s < (1 << 20) else "size >= 1 MiB" for s in sizes]


def _groups(keys, pred, meas) -> dict:
    df = pd.DataFrame(dict(k=keys, ape=np.abs(np.asarray(pred) / np.asarray(meas) - 1) * 100))
    return {str(k): (float(g.ape.median()), float(g.ape.quantile(0.9)), len(g)) for k, g in df.groupby("k")}


# ----------------------------------------------------------------------------- LLM operators
def _op_rows(cm: ProfiledCostModel) -> pd.DataFrame:
    df = cm._frame
    r = df[(df["phase"] == "operator") & (df["source"] == "vidur") & df["flops"].notna()].copy()
    r["t"] = r["time_median_s"].fillna(r["time_s"])
    return r.groupby(["device", "model", "operator", "num_tokens", "tensor_parallel"], as_index=False).agg(
        t=("t", "mean"), flops=("flops", "first"), nbytes=("bytes_moved", "first"))


def _predict_ops(cm: ProfiledCostModel, src: str, tgt: str) -> pd.DataFrame:
    rows = _op_rows(cm)
    S, T = rows[rows.device == src], rows[rows.device == tgt]
    s_src, s_tgt = cm.catalog.gpu(src), cm.catalog.gpu(tgt)
    raw = cm._frame
    eff = calibrate_operator_efficiency(raw[(raw["phase"] == "operator") & (raw["device"] == src) & raw["flops"].notna()], s_src)
    m = S.merge(T, on=["model", "operator", "num_tokens", "tensor_parallel"], suffixes=("_s", "_t"))
    pred = np.empty(len(m))
    for op, idx in m.groupby("operator").groups.items():
        g = m.loc[idx]
        e = eff[op]
        r_src, r_tgt = op_roof(s_src, op), op_roof(s_tgt, op)
        fl = op_flops(op, g.flops_s.to_numpy(float))
        pred[m.index.get_indexer(idx)] = g.t_s.to_numpy() * kernel_time(fl, g.nbytes_s, r_tgt, e) / kernel_time(fl, g.nbytes_s, r_src, e)
    m["pred"] = pred
    return m


def case_llm_ops(cm, src, tgt) -> CaseResult:
    m = _predict_ops(cm, src, tgt)
    from lepsim.costs.roofline import GEMM_OPS

    kind = np.where(m.operator.isin(GEMM_OPS), "all GEMM operators", "all elementwise operators")
    return _result(f"llm-ops {src}->{tgt}", f"Vidur per-operator times on {tgt} predicted from {src} (roofline)",
                   m.pred, m.t_t, (TARGET_MEDIAN, TARGET_P90),
                   groups={**_groups(kind, m.pred, m.t_t), **_groups(m.operator, m.pred, m.t_t)})


def case_llm_forward(cm, src, tgt) -> CaseResult:
    m = _predict_ops(cm, src, tgt)
    layers = {name: info.config.layers for name, info in cm.models.items() if info.config is not None}
    mult = np.where(m.operator == "emb", 1, m.model.map(layers).astype(float))
    m = m.assign(pw=m.pred * mult, mw=m.t_t * mult)
    g = m.groupby(["model", "num_tokens", "tensor_parallel"])[["pw", "mw"]].sum().reset_index()
    return _result(f"llm-forward {src}->{tgt}", f"forward token-operator time (emb + layers x ops) on {tgt} from {src}",
                   g.pw, g.mw, (TARGET_MEDIAN, TARGET_P90), groups=_groups(g.model, g.pw, g.mw))


def _holdout_every_other(x, y, key, pred, meas, keys) -> None:
    """Calibrate a log-log interpolation on every other point (sorted by x, the last one
    kept) and append the prediction at each held-out point (at least 3 points needed)."""
    if len(x) < 3:
        return
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    keep = np.arange(len(x)) % 2 == 0
    keep[-1] = True
    f = LogInterp(x[keep], y[keep])
    for xi, yi in zip(x[~keep], y[~keep]):
        pred.append(f(xi))
        meas.append(yi)
        keys.append(key)


def case_llm_tokens(cm) -> CaseResult:
    rows = _op_rows(cm)
    pred, meas, keys = [], [], []
    for (dev, model, op, tp), g in rows.groupby(["device", "model", "operator", "tensor_parallel"]):
        x, y = g.num_tokens.to_numpy(float), g.t.to_numpy(float)
        ok = y > 0
        _holdout_every_other(x[ok], y[ok], dev, pred, meas, keys)
    return _result("llm-tokens", "Vidur operator times at held-out token counts, log-log interpolation",
                   pred, meas, groups=_groups(keys, pred, meas))


def _splitwise(cm) -> pd.DataFrame:
    df = cm._frame
    return df[(df["source"] == "splitwise")].copy()


def case_llm_h100(cm) -> CaseResult:
    sw = _splitwise(cm)
    keys = ["model", "phase", "tensor_parallel", "batch_size", "num_tokens", "context_tokens"]
    a = sw[sw.device == "A100-80GB"].groupby(keys, dropna=False)["time_s"].mean().reset_index()
    h = sw[sw.device == "H100"].groupby(keys, dropna=False)["time_s"].mean().reset_index()
    m = a.merge(h, on=keys, suffixes=("_a", "_h"))
    pred = []
    for r in m.itertuples():
        ctx = None if r.phase == "prefill" else float(r.context_tokens)
        ratio = cm._whole_model_ratio(r.model, "A100-80GB", "H100", int(r.tensor_parallel), float(r.num_tokens),
                                      int(r.batch_size), ctx)
        pred.append(r.time_s_a * ratio)
    return _result("llm-h100", "Splitwise H100 prefill/decode from the A100 rows (whole-model roofline)",
                   pred, m.time_s_h, groups=_groups(m.phase, pred, m.time_s_h))


def case_llm_composed(cm) -> CaseResult:
    sw = _splitwise(cm)
    rows = sw[(sw.device == "A100-80GB") & (sw.model == "llama-2-70b")]
    rows = rows.groupby(["phase", "tensor_parallel", "batch_size", "num_tokens", "context_tokens"], dropna=False)["time_s"].mean().reset_index()
    pred, meas, keys = [], [], []
    for r in rows.itertuples():
        ctx = None if r.phase == "prefill" else float(r.context_tokens)
        try:
            p = cm._composed("llama-2-70b", "A100-80GB", int(r.tensor_parallel), float(r.num_tokens), int(r.batch_size), ctx)
        except Exception:  # noqa: BLE001 - a point outside the operator profiles is skipped
            continue
        pred.append(p)
        meas.append(r.time_s)
        keys.append(r.phase)
    return _result("llm-composed", "Splitwise A100 llama-2-70b vs forward pass composed from Vidur operators",
                   pred, meas, groups=_groups(keys, pred, meas),
                   note="two independent sources; composition lacks serving-framework CPU overheads")


# ----------------------------------------------------------------------------- NCCL
def _nccl_points(cm, system: str) -> pd.DataFrame:
    from lepsim.costs.adapters.vidur import nccl_system

    df = cm._frame
    r = df[(df["phase"] == "collective") & (df["operator"] == "all_reduce")]
    r = r[r["source_ref"].map(nccl_system) == system]
    r = r.assign(t=r["time_median_s"].fillna(r["time_s"]))
    return r.groupby(["device", "num_gpus", "placement", "size_bytes"], as_index=False)["t"].median()


def _nccl_rows(cm) -> pd.DataFrame:
    df = cm._frame
    return df[(df["phase"] == "collective") & (df["source"] == "vidur")]


def case_nccl_intra(cm) -> CaseResult:
    pred, meas, keys, sizes = [], [], [], []
    rows = _nccl_rows(cm)
    for system in ("a100_dgx", "h100_dgx"):
        pts = _nccl_points(cm, system)
        pts = pts[pts.placement.str.len() == 1]
        for n in sorted(pts.num_gpus.unique()):
            model = fit_collective_model(rows, cm.catalog, exclude=lambda s, nn, pl, n=n, system=system: s == system and len(pl) == 1 and nn == n)
            held = pts[pts.num_gpus == n]
            dev = str(held.device.iloc[0])
            for r in held.itertuples():
                pred.append(model.allreduce_time(dev, (int(r.num_gpus),), float(r.size_bytes)))
                meas.append(r.t)
                keys.append(f"{system} n={n}")
                sizes.append(r.size_bytes)
    return _result("nccl-intra", "single-node all-reduce of each group size from the ring fit on the others",
                   pred, meas, groups={**_groups(keys, pred, meas), **_groups(_size_class(sizes), pred, meas)})


def case_nccl_multinode(cm) -> CaseResult:
    pred, meas, keys, sizes = [], [], [], []
    rows = _nccl_rows(cm)
    pts = _nccl_points(cm, "a100_dgx")
    pts = pts[pts.placement.str.len() > 1]
    for pl in sorted(pts.placement.unique()):
        model = fit_collective_model(rows, cm.catalog, exclude=lambda s, nn, p, pl=pl: s == "a100_dgx" and p == pl)
        held = pts[pts.placement == pl]
        for r in held.itertuples():
            pred.append(model.allreduce_time("A100-80GB", tuple(int(c) for c in pl), float(r.size_bytes)))
            meas.append(r.t)
            keys.append(f"{len(pl)}x{pl[0]}")
            sizes.append(r.size_bytes)
    return _result("nccl-multinode", "2-node all-reduce of each shape from the NIC tier fitted on the other shapes",
                   pred, meas, groups={**_groups(keys, pred, meas), **_groups(_size_class(sizes), pred, meas)})


# ----------------------------------------------------------------------------- training
def case_gavel_gpu(cm) -> CaseResult:
    pred, meas, keys = [], [], []
    gavel_models = sorted({m for (m, d), t in cm._train_tables.items() if "gavel" in t.source})
    for held in ("K80", "P100", "V100"):
        inten, _eta = cm._fit_intensities(exclude_devices={held}, models=gavel_models)
        for m in gavel_models:
            if m not in inten or (m, held) not in cm._train_tables:
                continue
            others = [d for d in cm._train_devices[m] if d != held]
            peak = cm._peak(m)
            src = cm._nearest(others, held, peak)
            ts, th = cm._train_tables[(m, src)], cm._train_tables[(m, held)]
            if (1,) not in ts.times or (1,) not in th.times:
                continue
            ratio = intensity_ratio(inten[m], roof_for(cm.catalog.gpu(src), peak), roof_for(cm.catalog.gpu(held), peak))
            common = sorted(set(ts.batches[(1,)]) & set(th.batches[(1,)])) or [None]
            for b in common:
                try:
                    pred.append(ratio * ts.at((1,), b))
                    meas.append(th.at((1,), b))
                    keys.append(f"{held} from {src}")
                except OutOfRange:
                    continue
    return _result("gavel-gpu", "Gavel 1-GPU iteration times of a held-out GPU type from the nearest other (roofline)",
                   pred, meas, groups=_groups(keys, pred, meas))


def case_train_batch(cm) -> CaseResult:
    pred, meas, keys = [], [], []
    df = cm._frame
    rows = df[(df["phase"] == "train_iteration") & (df["co_located_with"] == "") & df["batch_size"].notna()]
    agg = rows.groupby(["source", "model", "device", "placement", "batch_size"])["time_s"].mean().reset_index()
    for (src, m, d, pl), g in agg.groupby(["source", "model", "device", "placement"]):
        _holdout_every_other(g.batch_size.to_numpy(float), g.time_s.to_numpy(float), src, pred, meas, keys)
    return _result("train-batch", "training iteration times at held-out batch sizes, log-log interpolation",
                   pred, meas, groups=_groups(keys, pred, meas))


def case_pollux_placement(cm) -> CaseResult:
    pred, meas, keys = [], [], []
    for m in ("cifar10", "imagenet"):
        if (m, "T4") not in cm._train_tables:
            continue
        tab = cm._train_tables[(m, "T4")]
        for pl in sorted(tab.times):
            if len(pl) < 2:
                continue
            reduced = _TrainTable({k: v for k, v in tab.times.items() if k != pl}, {}, {k: v for k, v in tab.batches.items() if k != pl},
                                  None, None, tab.source)
            for b in tab.batches.get(pl, []):
                try:
                    p = cm._measured_iteration(m, "T4", pl, b, tab=reduced)
                except (OutOfRange, LookupError):
                    continue
                pred.append(p)
                meas.append(tab.at(pl, b))
                keys.append(m)
    return _result("pollux-placement", "Pollux multi-node placements removed and predicted from the nearest placement + ring difference",
                   pred, meas, groups=_groups(keys, pred, meas))


CASES: dict[str, Callable[[ProfiledCostModel], CaseResult | list[CaseResult]]] = {
    "llm-ops": lambda cm: [case_llm_ops(cm, "A100-80GB", "A40"), case_llm_ops(cm, "A40", "A100-80GB")],
    "llm-forward": lambda cm: [case_llm_forward(cm, "A100-80GB", "A40"), case_llm_forward(cm, "A40", "A100-80GB")],
    "llm-tokens": case_llm_tokens,
    "llm-h100": case_llm_h100,
    "llm-composed": case_llm_composed,
    "nccl-intra": case_nccl_intra,
    "nccl-multinode": case_nccl_multinode,
    "gavel-gpu": case_gavel_gpu,
    "train-batch": case_train_batch,
    "pollux-placement": case_pollux_placement,
}


def run_checks(cm: ProfiledCostModel | None = None, only: list[str] | None = None) -> list[CaseResult]:
    """Run the accuracy cases (all, or those named in ``only``) on the bundled profiles."""
    if cm is None:
        from lepsim.costs import bundled_store

        cm = ProfiledCostModel(bundled_store())
    out: list[CaseResult] = []
    for name, fn in CASES.items():
        if only and name not in only:
            continue
        r = fn(cm)
        out.extend(r if isinstance(r, list) else [r])
    return out
