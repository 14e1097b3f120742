"""Collective-communication costs: alpha-beta link tiers fitted on NCCL tables, ring formulas.

Model (Hockney alpha-beta; ring all-reduce as in Thakur et al. 2005 / NCCL's "bus bandwidth"):

* point-to-point: ``t = alpha + S / B``;
* ring all-reduce of ``S`` bytes over ``n`` GPUs: ``2 (n - 1)`` steps, each moving ``S / n``
  bytes over every ring link at once, so ``t = 2 (n - 1) alpha + 2 (n - 1) / n * S / B``
  where ``B`` is the bandwidth of the ring's slowest link ("bus bandwidth").

Tiers (one :class:`AlphaBeta` each), fitted by least squares on relative error over the
Vidur NCCL tables (median times):

* ``nvswitch`` — all GPUs of one node on NVSwitch (A100 DGX, H100 DGX; 2, 4, 8 GPUs);
* ``nvlink_pair`` — two GPUs joined by an NVLink bridge (pairwise-NVLink nodes of PCIe
  cards, 2 GPUs);
* ``pcie`` — a 4-GPU ring on a pairwise-NVLink node: half its hops cross PCIe, the
  bottleneck, so this is the PCIe tier;

Which intra-node tier a GPU type uses follows its catalog ``scaleup_link``: nvswitch /
infinity-fabric -> ``nvswitch``; nvlink -> ``nvswitch`` when ``links.yaml`` says the NVLink
is a mesh (DGX-1 V100/P100), else ``nvlink_pair`` for 2 GPUs and ``pcie`` beyond; pcie /
none -> ``pcie``.
* ``nic`` — rings spanning nodes (A100 DGX, 2 nodes x 1/2/4/8 GPUs).  NCCL drives one NIC
  per GPU ("rails"), so a ring whose smallest node contributes ``g`` GPUs gets ``g`` rails:
  ``B = min(B_intra, g * B_rail)``; each step pays the inter-node latency ``alpha_nic``.

A GPU type without its own NCCL table borrows the measured tier of the most similar
GPU and scales the bandwidth by the ratio of the vendor link figures in the hardware
catalog (``scaleup_bandwidth`` for NVLink/NVSwitch/Infinity Fabric, ``host_link_bandwidth``
for PCIe, the node templates' NIC bandwidth per GPU for the inter-node tier); latency is kept.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import numpy as np
import pandas as pd

__all__ = [
    "AlphaBeta",
    "ring_allreduce_time",
    "ring_factor",
    "fit_ring_allreduce",
    "fit_p2p",
    "CollectiveModel",
    "MissingCollective",
    "fit_collective_model",
]


class MissingCollective(LookupError):
    """No tier (measured nor scalable) for a GPU type's link."""


@dataclass(frozen=True)
class AlphaBeta:
    """Latency (s) and bandwidth (bytes/s) of one link tier."""

    alpha_s: float
    bandwidth: float
    source: str = ""

    @property
    def beta(self) -> float:
        """Seconds per byte."""
        return 1.0 / self.bandwidth

    def p2p(self, size_bytes: float) -> float:
        return self.alpha_s + float(size_bytes) / self.bandwidth

    def scaled(self, factor: float, note: str) -> "AlphaBeta":
        return AlphaBeta(self.alpha_s, self.bandwidth * factor, note)


def ring_factor(n: int) -> float:
    """Bytes each ring link carries per byte of the reduced buffer: ``2 (n - 1) / n``."""
    return 0.0 if n <= 1 else 2.0 * (n - 1) / n


def ring_allreduce_time(n: int, size_bytes, alpha_s: float, bandwidth: float):
    """``2 (n-1) alpha + 2 (n-1)/n * S / B`` (0 for one GPU); vectorised over ``size_bytes``."""
    if n <= 1:
        return np.zeros_like(np.asarray(size_bytes, dtype=float)) if np.ndim(size_bytes) else 0.0
    return 2.0 * (n - 1) * alpha_s + ring_factor(n) * np.asarray(size_bytes, dtype=float) / bandwidth


def nnls2(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Exact non-negative least squares for two unknowns (``min |A x - b|``, ``x >= 0``):
    the unconstrained solution if feasible, else the best one-variable solution (KKT)."""
    x, *_ = np.linalg.lstsq(A, b, rcond=None)
    if np.all(x >= 0):
        return x
    best, best_r = np.zeros(2), float(b @ b)
    for j in (0, 1):
        a = A[:, j]
        den = float(a @ a)
        if den <= 0:
            continue
        cand = np.zeros(2)
        cand[j] = max(0.0, float(a @ b) / den)
        r = A @ cand - b
        if float(r @ r) < best_r:
            best, best_r = cand, float(r @ r)
    return best


def _nnls_relative(A: np.ndarray, t: np.ndarray) -> np.ndarray:
    w = 1.0 / t
    return nnls2(A * w[:, None], t * w)


def fit_ring_allreduce(num_gpus, size_bytes, times, rails=None, source: str = "") -> AlphaBeta:
    """Least-squares (alpha, B) of the ring formula on measured all-reduce times.

    ``rails`` (optional, per point): the bandwidth term is divided by it (``B = rails * B_rail``,
    the inter-node tier).  Minimises relative error; alpha, 1/B >= 0.
    """
    n = np.asarray(num_gpus, dtype=float)
    s = np.asarray(size_bytes, dtype=float)
    t = np.asarray(times, dtype=float)
    r = np.ones_like(n) if rails is None else np.asarray(rails, dtype=float)
    A = np.c_[2.0 * (n - 1.0), 2.0 * (n - 1.0) / n * s / r]
    alpha, beta = _nnls_relative(A, t)
    if beta <= 0:
        raise ValueError("all-reduce fit found no bandwidth term (times do not grow with size)")
    return AlphaBeta(float(alpha), float(1.0 / beta), source)


def fit_p2p(size_bytes, times, source: str = "") -> AlphaBeta:
    """Least-squares (alpha, B) of ``t = alpha + S / B`` (relative error)."""
    s = np.asarray(size_bytes, dtype=float)
    t = np.asarray(times, dtype=float)
    alpha, beta = _nnls_relative(np.c_[np.ones_like(s), s], t)
    if beta <= 0:
        raise ValueError("point-to-point fit found no bandwidth term")
    return AlphaBeta(float(alpha), float(1.0 / beta), source)


# ----------------------------------------------------------------------------- the model
def _placement(placement) -> tuple[int, ...]:
    p = tuple(int(g) for g in placement if int(g) > 0)
    if not p:
        raise ValueError(f"placement {placement!r} has no GPUs")
    return p


@dataclass
class CollectiveModel:
    """Fitted tiers per measured GPU type, and the rules to borrow them for other GPUs.

    ``tiers[gpu][tier]``: an :class:`AlphaBeta` for tier in nvswitch / nvlink_pair / pcie / nic
    (ring all-reduce fits; ``nic`` bandwidth is per rail) and ``p2p_intra`` / ``p2p_inter``
    (send/recv fits).
    """

    tiers: Mapping[str, Mapping[str, AlphaBeta]]
    catalog: object = None
    nvlink_topology: Mapping[str, str] = field(default_factory=dict)
    _cache: dict = field(default_factory=dict, repr=False)

    # -- which tier a GPU type uses, measured or borrowed
    def _spec(self, gpu: str):
        if self.catalog is None:
            return None
        try:
            return self.catalog.gpu(gpu)
        except KeyError:
            return None

    def _nic_per_gpu(self, gpu: str) -> float | None:
        if self.catalog is None:
            return None
        vals = [n.nic_bandwidth / n.gpus for n in self.catalog.nodes.values()
                if n.gpu_type == gpu and n.gpus > 0 and n.nic_bandwidth > 0]
        return float(np.mean(vals)) if vals else None

    def topology(self, gpu: str) -> str:
        """'mesh' (NVSwitch / full NVLink / Infinity Fabric), 'pairs' (NVLink bridges) or 'pcie'."""
        spec = self._spec(gpu)
        link = (spec.scaleup_link if spec is not None else "").lower()
        if link in ("nvswitch", "infinity-fabric", "xgmi"):
            return "mesh"
        if link == "nvlink":
            return self.nvlink_topology.get(gpu, "pairs")
        return "pcie"

    def _borrow(self, gpu: str, want: str, attr: str) -> AlphaBeta:
        own = self.tiers.get(gpu, {})
        if want in own:
            return own[want]
        spec = self._spec(gpu)
        mine = getattr(spec, attr, None) if spec is not None else None
        refs = []
        for g, ts in sorted(self.tiers.items()):
            rs = self._spec(g)
            theirs = getattr(rs, attr, None) if rs is not None else None
            if want in ts and theirs:
                refs.append((abs(math.log(mine / theirs)) if mine else 0.0, g, theirs))
        if not refs or not mine:
            raise MissingCollective(
                f"no {want} link tier for GPU type {gpu!r}: no NCCL table for it and no vendor "
                f"{attr} in the catalog to scale a measured tier by")
        _, ref_gpu, theirs = min(refs)
        return self.tiers[ref_gpu][want].scaled(mine / theirs, f"{want} of {ref_gpu} x {attr} ratio {mine / theirs:.3g}")

    def intra_tier(self, gpu: str, gpus_in_node: int = 8) -> AlphaBeta:
        """The tier of a ring over ``gpus_in_node`` GPUs inside one node of ``gpu`` GPUs."""
        topo = self.topology(gpu)
        if topo == "mesh":
            want, attr = "nvswitch", "scaleup_bandwidth"
        elif topo == "pairs" and gpus_in_node <= 2:
            want, attr = "nvlink_pair", "scaleup_bandwidth"
        else:
            want, attr = "pcie", "host_link_bandwidth"
        key = ("intra", gpu, want)
        ab = self._cache.get(key)
        if ab is None:
            ab = self._borrow(gpu, want, attr)
            self._cache[key] = ab
        return ab

    def nic_tier(self, gpu: str) -> AlphaBeta:
        """Per-rail inter-node tier for ``gpu`` nodes."""
        key = ("nic", gpu)
        if key in self._cache:
            return self._cache[key]
        if "nic" in self.tiers.get(gpu, {}):
            ab = self.tiers[gpu]["nic"]
        else:
            refs = [g for g, ts in self.tiers.items() if "nic" in ts]
            if not refs:
                raise MissingCollective("no inter-node NCCL table to fit a NIC tier on")
            ref = refs[0]
            base = self.tiers[ref]["nic"]
            mine, theirs = self._nic_per_gpu(gpu), self._nic_per_gpu(ref)
            if mine and theirs:
                ab = base.scaled(mine / theirs, f"nic of {ref} x catalog NIC-per-GPU ratio {mine / theirs:.3g}")
            else:
                ab = AlphaBeta(base.alpha_s, base.bandwidth, f"nic of {ref} (no catalog NIC figure to scale by)")
        self._cache[key] = ab
        return ab

    # -- costs
    def allreduce_time(self, gpu: str, placement, size_bytes: float) -> float:
        """Ring all-reduce of ``size_bytes`` over ``placement`` (GPUs per node) of ``gpu`` GPUs."""
        p = _placement(placement)
        n = sum(p)
        if n <= 1 or size_bytes <= 0:
            return 0.0
        if len(p) == 1:
            ab = self.intra_tier(gpu, n)
            return float(ring_allreduce_time(n, size_bytes, ab.alpha_s, ab.bandwidth))
        nic = self.nic_tier(gpu)
        g_min = min(p)
        bw = g_min * nic.bandwidth
        if max(p) > 1:
            bw = min(bw, self.intra_tier(gpu, max(p)).bandwidth)
        return float(ring_allreduce_time(n, size_bytes, nic.alpha_s, bw))

    def describe(self) -> pd.DataFrame:
        rows = []
        for g, ts in self.tiers.items():
            for tier, ab in ts.items():
                rows.append(dict(gpu=g, tier=tier, alpha_us=ab.alpha_s * 1e6, bandwidth_GBps=ab.bandwidth / 1e9, source=ab.source))
        return pd.DataFrame(rows)


def _system_rows(df: pd.DataFrame) -> Iterable[tuple[str, str, str, pd.DataFrame]]:
    from lepsim.costs.adapters.vidur import nccl_system

    sys = df["source_ref"].map(nccl_system)
    for (system, device, op), g in df.groupby([sys, df["device"], df["operator"]]):
        yield str(system), str(device), str(op), g


def _median_by_key(g: pd.DataFrame) -> pd.DataFrame:
    t = g["time_median_s"].fillna(g["time_s"])
    out = g.assign(t=t).groupby(["num_gpus", "placement", "size_bytes"], as_index=False)["t"].median()
    out["nodes"] = out["placement"].str.len()
    out["g_min"] = out["placement"].map(lambda s: min(int(c) for c in s))
    return out[out["t"] > 0]


def fit_collective_model(collective_rows: pd.DataFrame, catalog=None, exclude=None) -> CollectiveModel:
    """Fit every tier the NCCL rows support.

    ``exclude(system, num_gpus, placement) -> bool`` drops points (the accuracy check uses it
    to hold configurations out of the fit).
    """
    tiers: dict[str, dict[str, AlphaBeta]] = {}
    for system, device, op, g in _system_rows(collective_rows):
        pts = _median_by_key(g)
        if exclude is not None:
            keep = ~pts.apply(lambda r: bool(exclude(system, int(r.num_gpus), str(r.placement))), axis=1)
            pts = pts[keep]
        if pts.empty:
            continue
        ref = f"fit on {system}/{op}"
        t = tiers.setdefault(device, {})
        intra = pts[pts["nodes"] == 1]
        inter = pts[pts["nodes"] > 1]
        if op == "all_reduce":
            if system.endswith("_dgx"):
                if len(intra):
                    t["nvswitch"] = fit_ring_allreduce(intra.num_gpus, intra.size_bytes, intra.t, source=ref + " (1 node)")
                if len(inter):
                    t["nic"] = fit_ring_allreduce(inter.num_gpus, inter.size_bytes, inter.t, rails=inter.g_min, source=ref + " (2 nodes, per rail)")
            elif system.endswith("_pairwise_nvlink"):
                pair = intra[intra.num_gpus == 2]
                quad = intra[intra.num_gpus > 2]
                if len(pair):
                    t["nvlink_pair"] = fit_ring_allreduce(pair.num_gpus, pair.size_bytes, pair.t, source=ref + " (2 GPUs)")
                if len(quad):
                    t["pcie"] = fit_ring_allreduce(quad.num_gpus, quad.size_bytes, quad.t, source=ref + " (ring across pairs)")
        elif op == "send_recv":
            name = system.split("_", 1)[1] if "_" in system else system
            if len(intra):
                t.setdefault(f"p2p_intra_{name}", fit_p2p(intra.size_bytes, intra.t, source=ref + " (1 node)"))
            if len(inter):
                t.setdefault(f"p2p_inter_{name}", fit_p2p(inter.size_bytes, inter.t, source=ref + " (2 nodes)"))
    return CollectiveModel(tiers=tiers, catalog=catalog, nvlink_topology=load_nvlink_topology())


def load_nvlink_topology(path=None) -> dict[str, str]:
    """GPU type -> 'mesh' | 'pairs' from ``lepsim/data/profiles/links.yaml``."""
    import yaml

    from lepsim.costs.adapters.names import DATA_DIR

    p = path or (DATA_DIR / "links.yaml")
    with open(p) as f:
        raw = yaml.load(f.read(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    return {str(k): str(v) for k, v in (raw.get("nvlink_topology") or {}).items()}
