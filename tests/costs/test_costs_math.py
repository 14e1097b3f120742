"""Interpolation, collectives and roofline arithmetic on synthetic data (exact answers)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from lepsim.costs.collectives import (
    AlphaBeta,
    CollectiveModel,
    fit_p2p,
    fit_ring_allreduce,
    ring_allreduce_time,
    ring_factor,
)
from lepsim.costs.model import LogInterp, OutOfRange
from lepsim.costs.roofline import (
    Efficiency,
    Roof,
    fit_efficiency,
    fit_intensities,
    fit_intensity,
    intensity_ratio,
    kernel_time,
    scale_kernel,
)


# ------------------------------------------------------------------ interpolation
def test_log_space_interpolation_between_two_points():
    f = LogInterp([10, 1000], [1.0, 100.0])
    assert f(100) == pytest.approx(10.0)          # geometric mean; linear space would give 50.5
    assert f(10) == pytest.approx(1.0) and f(1000) == pytest.approx(100.0)
    g = LogInterp([16, 64], [0.2, 0.5])
    # log-log line through both points: y = 0.2 * (x/16) ** (log(2.5)/log(4))
    assert g(32) == pytest.approx(0.2 * 2 ** (math.log(2.5) / math.log(4)))


def test_extrapolation_rules():
    f = LogInterp([10, 100], [1.0, 20.0])            # slope 1.3 in log-log
    assert f(5) == pytest.approx(0.5)                 # below: slope clamped to 1 (proportional)
    with pytest.raises(OutOfRange):
        f(101)                                        # above: not allowed by default
    g = LogInterp([10, 100], [1.0, 2.0], above=2.0)
    assert g(200) == pytest.approx(2 * 2 ** math.log10(2))   # along the last segment (slope log10 2)
    with pytest.raises(OutOfRange):
        g(201)
    flat = LogInterp([10, 100], [2.0, 1.0])           # decreasing: clamped to slope 0 below
    assert flat(1) == pytest.approx(2.0)
    one = LogInterp([64], [0.3])
    assert one(64) == pytest.approx(0.3)
    with pytest.raises(OutOfRange):
        one(32)


# ------------------------------------------------------------------ collectives
def test_ring_formula():
    assert ring_factor(1) == 0.0
    assert ring_factor(2) == pytest.approx(1.0)
    assert ring_factor(8) == pytest.approx(2 * 7 / 8)
    t = ring_allreduce_time(4, 1e9, alpha_s=1e-5, bandwidth=1e11)
    assert t == pytest.approx(2 * 3 * 1e-5 + 2 * 3 / 4 * 1e9 / 1e11)
    assert ring_allreduce_time(1, 1e9, 1e-5, 1e11) == 0.0


def test_alpha_beta_fit_recovers_synthetic_exactly():
    alpha, bw = 7e-6, 150e9
    sizes = np.geomspace(2048, 64 << 20, 40)
    n = np.repeat([2, 4, 8], len(sizes))
    s = np.tile(sizes, 3)
    t = ring_allreduce_time_vec(n, s, alpha, bw)
    ab = fit_ring_allreduce(n, s, t)
    assert ab.alpha_s == pytest.approx(alpha, rel=1e-9)
    assert ab.bandwidth == pytest.approx(bw, rel=1e-9)
    # per-rail fit
    rails = np.repeat([1, 2, 4], len(sizes))
    t2 = 2 * (n - 1) * alpha + 2 * (n - 1) / n * s / (rails * 5e9)
    ab2 = fit_ring_allreduce(n, s, t2, rails=rails)
    assert ab2.bandwidth == pytest.approx(5e9, rel=1e-9)
    p = fit_p2p(sizes, 3e-6 + sizes / 40e9)
    assert p.alpha_s == pytest.approx(3e-6, rel=1e-9) and p.bandwidth == pytest.approx(40e9, rel=1e-9)


def ring_allreduce_time_vec(n, s, alpha, bw):
    return np.array([ring_allreduce_time(int(a), b, alpha, bw) for a, b in zip(n, s)])


class _Spec:
    def __init__(self, link, scaleup=None, host=64e9):
        self.scaleup_link, self.scaleup_bandwidth, self.host_link_bandwidth = link, scaleup, host


class _Node:
    def __init__(self, gpu, gpus, nic):
        self.gpu_type, self.gpus, self.nic_bandwidth = gpu, gpus, nic


class _Cat:
    def __init__(self, gpus, nodes=()):
        self._g, self.nodes = gpus, {f"n{i}": n for i, n in enumerate(nodes)}

    def gpu(self, name):
        return self._g[name]


def test_collective_model_tiers_and_borrowing():
    cat = _Cat({"X": _Spec("nvswitch", 600e9), "Y": _Spec("nvswitch", 300e9), "Z": _Spec("pcie", None, 32e9),
                "W": _Spec("pcie", None, 64e9)},
               nodes=[_Node("X", 8, 200e9), _Node("Y", 8, 100e9)])
    tiers = {"X": {"nvswitch": AlphaBeta(2e-6, 100e9), "nic": AlphaBeta(8e-6, 5e9)},
             "W": {"pcie": AlphaBeta(9e-6, 20e9)}}
    cm = CollectiveModel(tiers, cat)
    S = 1e8
    assert cm.allreduce_time("X", (8,), S) == pytest.approx(2 * 7 * 2e-6 + 2 * 7 / 8 * S / 100e9)
    # Y borrows X's NVSwitch tier scaled by 300/600
    assert cm.intra_tier("Y").bandwidth == pytest.approx(50e9)
    # Z borrows W's PCIe tier scaled by 32/64
    assert cm.allreduce_time("Z", (4,), S) == pytest.approx(2 * 3 * 9e-6 + 2 * 3 / 4 * S / 10e9)
    # two nodes x 4: 4 rails of 5 GB/s, slower than NVSwitch
    assert cm.allreduce_time("X", (4, 4), S) == pytest.approx(2 * 7 * 8e-6 + 2 * 7 / 8 * S / 20e9)
    # 2 x 1: one rail
    assert cm.allreduce_time("X", (1, 1), S) == pytest.approx(2 * 8e-6 + S / 5e9)
    # Y's NIC: catalog NIC per GPU is half of X's
    assert cm.nic_tier("Y").bandwidth == pytest.approx(2.5e9)
    assert cm.allreduce_time("X", (1,), S) == 0.0


# ------------------------------------------------------------------ roofline
def test_roofline_scaling_on_a_synthetic_pair():
    a = Roof(flops=100e12, bandwidth=1e12)
    b = Roof(flops=300e12, bandwidth=2e12)            # 3x compute, 2x bandwidth
    e = Efficiency(1.0, 1.0, 0.0)
    # compute-bound GEMM (intensity 1000 FLOP/B, above both ridges of 100 and 150)
    assert scale_kernel(3.0, 1e15, 1e12, a, b, e) == pytest.approx(1.0)
    # memory-bound op (no FLOPs): scales by the bandwidth ratio
    assert scale_kernel(2.0, 0.0, 1e12, a, b, e) == pytest.approx(1.0)
    # whole-workload intensity blend: limits are the two ratios, and between them
    assert intensity_ratio(1e9, a, b) == pytest.approx(1 / 3, rel=1e-5)
    assert intensity_ratio(1e-9, a, b) == pytest.approx(1 / 2, rel=1e-5)
    mid = intensity_ratio(100.0, a, b)                # F/P = B/W on a: equal shares
    assert mid == pytest.approx((100 / 300e12 + 1 / 2e12) / (100 / 100e12 + 1 / 1e12))


def test_fit_efficiency_recovers_synthetic():
    roof = Roof(312e12, 2e12)
    truth = Efficiency(0.75, 0.8, 4e-6)
    flops = np.r_[np.geomspace(1e9, 1e14, 30), np.zeros(10)]
    nbytes = np.r_[np.geomspace(1e7, 1e9, 30), np.geomspace(1e5, 1e9, 10)]
    t = kernel_time(flops, nbytes, roof, truth)
    e = fit_efficiency(t, flops, nbytes, roof)
    assert e.compute == pytest.approx(0.75, rel=1e-4)
    assert e.memory == pytest.approx(0.8, rel=1e-4)
    assert e.overhead_s == pytest.approx(4e-6, rel=1e-3)


def test_fit_intensities_recovers_synthetic():
    roofs = {"g1": Roof(10e12, 0.5e12), "g2": Roof(20e12, 0.7e12), "g3": Roof(100e12, 2e12)}
    eta = {"g1": 1.0, "g2": 0.8, "g3": 1.25}
    inten = {"w1": 5.0, "w2": 80.0, "w3": 400.0}
    t = {(w, g): (i / roofs[g].flops + 1 / roofs[g].bandwidth) / eta[g] for w, i in inten.items() for g in roofs}
    obs = [(w, a, b, t[(w, a)], t[(w, b)], roofs[a], roofs[b]) for w in inten for a, b in (("g1", "g2"), ("g1", "g3"), ("g2", "g3"))]
    got_i, got_e = fit_intensities(obs, reference="g1")
    for w, i in inten.items():
        assert got_i[w] == pytest.approx(i, rel=1e-4)
    for g, v in eta.items():
        assert got_e[g] == pytest.approx(v, rel=1e-4)
    one = fit_intensity([(t[("w2", "g1")], t[("w2", "g3")] * eta["g3"] / eta["g1"], roofs["g1"], roofs["g3"])])
    assert one == pytest.approx(80.0, rel=1e-3)


def test_intensity_bounds_and_ratio_band():
    from lepsim.costs.roofline import intensity_bounds, ratio_band

    a = Roof(flops=100e12, bandwidth=1e12)            # ridge 100
    b = Roof(flops=300e12, bandwidth=2e12)            # ridge 150
    assert intensity_bounds([a, b]) == pytest.approx((10.0, 1500.0))
    assert ratio_band(a, b) == pytest.approx((1 / 3, 1 / 2))
    assert ratio_band(b, a) == pytest.approx((2.0, 3.0))
    # an unidentifiable workload (times scale exactly by the peak ratio) fits at the upper bound
    obs = [("w", "a", "b", 3.0, 1.0, a, b), ("v", "a", "b", 2.0, 1.0, a, b), ("v", "a", "b", 2.0, 1.0, a, b)]
    got, _ = fit_intensities(obs, reference="a")
    assert got["w"] == pytest.approx(1500.0, rel=1e-6)
    assert got["v"] == pytest.approx(10.0, rel=1e-6)
