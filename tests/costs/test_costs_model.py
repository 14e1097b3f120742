"""ProfiledCostModel: measured lookups, extrapolation, refusals, provenance, inference."""
from __future__ import annotations

import gzip
import json
from dataclasses import dataclass

import pandas as pd
import pytest

from lepsim.costs import MissingProfile, build_cost_model
from lepsim.costs.adapters.names import DATA_DIR
from lepsim.costs.store import coerce_frame


@pytest.fixture(scope="module")
def cm():
    return build_cost_model()


@dataclass
class Job:
    model: str | None
    iterations: float | None = 100.0
    duration: float | None = None
    batch_size: int | None = None
    gpus: int = 1


def _gavel(gpu, job, n):
    raw = json.load(gzip.open(DATA_DIR / "gavel" / "physical_cluster_throughputs.json.gz", "rt"))
    return raw[gpu][f"('{job}', {n})"]["null"]


def test_measured_gavel_points(cm):
    t = cm.iteration_time("resnet50", "V100", (4,), 64)
    assert t == pytest.approx(4 / _gavel("v100", "ResNet-50 (batch size 64)", 4))
    # spread over servers -> the unconsolidated measurement
    t2 = cm.iteration_time("resnet50", "V100", (1, 1, 1, 1), 64)
    assert t2 == pytest.approx(4 / _gavel("v100_unconsolidated", "ResNet-50 (batch size 64)", 4))
    # (2, 2) is not measured: nearest multi-node measurement of 4 GPUs plus the ring difference
    t3 = cm.iteration_time("resnet50", "V100", (2, 2), 64)
    assert t3 > cm.iteration_time("resnet50", "V100", (1,), 64)
    # Gavel job-type names carry the batch size; aliases and GPU aliases resolve
    assert cm.iteration_time("ResNet-50 (batch size 64)", "V100-SXM2", (4,)) == pytest.approx(t)


def test_interpolation_between_measured_batches_is_log_linear(cm):
    a, b = cm.iteration_time("resnet50", "V100", (1,), 32), cm.iteration_time("resnet50", "V100", (1,), 64)
    mid = cm.iteration_time("resnet50", "V100", (1,), 45)
    import math
    expect = math.exp(math.log(a) + (math.log(45) - math.log(32)) / (math.log(64) - math.log(32)) * (math.log(b) - math.log(a)))
    assert mid == pytest.approx(expect)
    with pytest.raises(MissingProfile, match="above the measured range"):
        cm.iteration_time("resnet50", "V100", (1,), 4096)


def test_pollux_measured_and_scalability(cm):
    import pandas as pd

    up = pd.read_csv(DATA_DIR / "pollux" / "cifar10" / "placements.csv")
    row = up[(up.placement == 22) & (up.local_bsz == 64)].iloc[0]
    assert cm.iteration_time("cifar10", "T4", (2, 2), 64) == pytest.approx(row.step_time)
    # 16 nodes x 4 GPUs comes from scalability.csv
    sc = pd.read_csv(DATA_DIR / "pollux" / "cifar10" / "scalability.csv")
    r = sc[(sc.num_nodes == 16) & (sc.num_replicas == 64) & (sc.local_bsz == 64)].iloc[0]
    assert cm.iteration_time("cifar10", "T4", (4,) * 16, 64) == pytest.approx(r.step_time)
    assert cm.default_batch("cifar10") in set(up.local_bsz)


def test_extrapolated_gpu_and_explain(cm):
    assert cm.explain("resnet50", "V100") == "measured"
    assert cm.explain("resnet50", "H100").startswith("extrapolated from ")
    t_v = cm.iteration_time("resnet50", "V100", (1,), 64)
    t_h = cm.iteration_time("resnet50", "H100", (1,), 64)
    assert 0 < t_h < t_v                       # a faster GPU by every vendor figure
    # multi-GPU on an extrapolated GPU adds the modelled all-reduce
    assert cm.iteration_time("resnet50", "H100", (8,), 64) > t_h
    assert cm.iteration_time("resnet50", "H100", (8, 8), 64) > cm.iteration_time("resnet50", "H100", (8,), 64)
    assert cm.explain("llama-2-7b", "A100") == "measured"
    assert cm.explain("llama-2-7b", "H100") == "extrapolated from A100-80GB"
    assert cm.explain("llama-2-70b", "H100") == "measured"          # Splitwise, TP >= 2


def test_missing_profile_for_unknown_pairs(cm):
    with pytest.raises(MissingProfile, match="'no-such-model'"):
        cm.iteration_time("no-such-model", "V100", (1,))
    assert not cm.supports("no-such-model", "V100")
    with pytest.raises(MissingProfile, match="bert.*H100"):
        cm.iteration_time("bert", "H100", (1,))                    # T4-only, no intensity
    assert not cm.supports("bert", "H100")
    assert cm.supports("bert", "T4")
    with pytest.raises(MissingProfile, match="not in the hardware catalog"):
        cm.iteration_time("resnet50", "Z9000", (1,))
    with pytest.raises(MissingProfile, match="inference-only"):
        cm.iteration_time("llama-2-7b", "A100-80GB", (1,))
    assert not cm.supports("llama-2-7b", "A100-80GB")
    with pytest.raises(MissingProfile):
        cm.explain("no-such-model", "V100")
    # single-GPU-only models have no gradient size for a multi-GPU job
    with pytest.raises(MissingProfile, match="gradient size"):
        cm.iteration_time("a3c", "V100", (4,))


def test_engine_interface(cm):
    job = Job("resnet50", batch_size=64, gpus=4)
    assert cm.work(job) == 100.0
    assert cm.rate(job, "V100", (4,)) == pytest.approx(1 / cm.iteration_time("resnet50", "V100", (4,), 64))
    assert cm.rate(Job("resnet50", iterations=None, duration=60.0), "V100", (4,)) == 1.0
    assert cm.problems(job, ["V100", "K80"]) == []
    p = cm.problems(Job("a3c", gpus=4), ["V100"])
    assert p and "gradient size" in p[0]
    p = cm.problems(Job("llama-2-7b"), ["A100-80GB"])
    assert p and "inference-only" in p[0]
    assert cm.data_stall("resnet50", "V100", (4,), 64) == 0.0
    # the cache returns the same float
    assert cm.iteration_time("resnet50", "V100", (4,), 64) is cm.iteration_time("resnet50", "V100", (4,), 64)


def test_inference(cm):
    # measured Splitwise table: llama-2-70b, A100, TP 8, one 512-token prompt
    import pandas as pd

    up = pd.read_csv(DATA_DIR / "splitwise" / "perf_model.csv")
    sel = up[(up.model == "llama2-70b") & (up.hardware == "a100-80gb") & (up.tensor_parallel == 8)
             & (up.prompt_size == 512) & (up.batch_size == 1)]
    assert cm.prefill_time("llama-2-70b", "A100-80GB", 512, tp=8) == pytest.approx(sel.prompt_time.mean() * 1e-3)
    # composed from Vidur operators: grows with tokens, batch, context; TP helps large prefills
    p1 = cm.prefill_time("llama-2-7b", "A40", 512)
    p2 = cm.prefill_time("llama-2-7b", "A40", 2048)
    assert 0 < p1 < p2
    assert cm.prefill_time("llama-2-7b", "A40", 2048, tp=4) < p2
    d1 = cm.decode_time("llama-2-7b", "A100-80GB", 8, 512)
    assert d1 < cm.decode_time("llama-2-7b", "A100-80GB", 8, 4096) < cm.decode_time("llama-2-7b", "A100-80GB", 64, 4096)
    # extrapolated GPU
    assert 0 < cm.decode_time("llama-2-7b", "H100", 8, 512) < d1
    # memory does not fit -> refused
    with pytest.raises(MissingProfile, match="GB per GPU"):
        cm.decode_time("llama-2-70b", "L4", 1, 512, tp=1)
    with pytest.raises(MissingProfile, match="tensor parallelism 3"):
        cm.decode_time("llama-2-7b", "A100-80GB", 1, 512, tp=3)
    assert cm.supports_inference("opt-13b", "A100-80GB")


def test_user_profile_file(tmp_path):
    rows = pd.DataFrame([
        dict(device="cpu:test-host", model="mnist-mlp", phase="train_iteration", batch_size=32, num_gpus=1,
             time_s=0.010, source="lepsim-profile"),
        dict(device="cpu:test-host", model="mnist-mlp", phase="train_iteration", batch_size=128, num_gpus=1,
             time_s=0.030, source="lepsim-profile"),
        dict(device="T4", model="mnist-mlp", phase="forward", batch_size=64, num_gpus=1, time_s=0.001,
             source="lepsim-profile"),
        dict(device="T4", model="mnist-mlp", phase="backward", batch_size=64, num_gpus=1, time_s=0.002,
             source="lepsim-profile"),
    ])
    p = tmp_path / "prof.csv"
    coerce_frame(rows, fill_missing=True).to_csv(p, index=False)
    cm2 = build_cost_model(profile_paths=[p])
    assert cm2.iteration_time("mnist-mlp", "cpu:test-host", (1,), 64) == pytest.approx(0.010 * 3 ** 0.5)   # log-log midpoint
    assert cm2.iteration_time("mnist-mlp", "cpu:test-host", (1,), 32) == pytest.approx(0.010)
    assert cm2.iteration_time("mnist-mlp", "T4", (1,), 64) == pytest.approx(0.003)   # forward + backward
    assert cm2.explain("mnist-mlp", "T4") == "measured"
    # bundled data still there
    assert cm2.explain("resnet50", "V100") == "measured"


def test_user_profile_aliases_are_canonicalised(tmp_path):
    rows = pd.DataFrame([dict(device="A100", model="ResNet-50", phase="train_iteration", batch_size=64, num_gpus=1,
                              time_s=0.05, source="lepsim-profile")])
    p = tmp_path / "alias.parquet"
    coerce_frame(rows, fill_missing=True).to_parquet(p, index=False)
    cm2 = build_cost_model(profile_paths=[p])
    assert cm2.explain("resnet50", "A100-80GB") == "measured"
    assert cm2.iteration_time("resnet50", "A100-80GB", (1,), 64) == pytest.approx(0.05)


def test_colocation_measured_pairs(cm):
    raw = json.load(gzip.open(DATA_DIR / "gavel" / "physical_cluster_throughputs.json.gz", "rt"))
    pair = raw["v100"]["('ResNet-18 (batch size 16)', 1)"]["('ResNet-50 (batch size 64)', 1)"]
    t = cm.colocated_iteration_time("resnet18", "resnet50", "V100", 1, 16, 64)
    assert t == pytest.approx(1 / pair[0])
    with pytest.raises(MissingProfile):
        cm.colocated_iteration_time("resnet18", "bert", "V100", 1, 16, 8)


# ------------------------------------------------------------------ physical bounds of extrapolation
def test_extrapolated_ratio_within_peak_and_bandwidth_ratios(cm):
    """Every extrapolated (trainable model, GPU) pair: the time ratio target/source lies
    between the peak-FLOP and bandwidth ratios of the two GPUs at the model's precision."""
    from lepsim.costs.roofline import roof_for

    checked = 0
    for m in sorted(cm._train_devices):
        for g in cm.catalog.known_gpu_names():
            if not cm.supports(m, g) or cm.explain(m, g) == "measured":
                continue
            src, _ = cm._train_source(m, g)
            rs, rt = roof_for(cm.catalog.gpu(src), cm._peak(m)), roof_for(cm.catalog.gpu(g), cm._peak(m))
            a, b = rs.flops / rt.flops, rs.bandwidth / rt.bandwidth
            b_src = cm.default_batch(m)
            ratio = cm.iteration_time(m, g, (1,), b_src) / cm.iteration_time(m, src, (1,), b_src)
            assert min(a, b) * (1 - 1e-9) <= ratio <= max(a, b) * (1 + 1e-9), (m, src, g, ratio, a, b)
            checked += 1
    assert checked >= 50


def test_gavel_is_scaled_by_fp32_peaks(cm):
    # Gavel measured FP32 on a V100 (no TF32): to an H100 it gains at most the FP32 ratio
    # 67 / 15.7 = 4.27 (the bandwidth ratio 3350 / 900 = 3.72 is smaller), never TF32's 31.5
    for m in ("a3c", "resnet50", "transformer"):
        r = cm.iteration_time(m, "V100", (1,)) / cm.iteration_time(m, "H100", (1,))
        assert 3350 / 900 <= r <= 67.0 / 15.7 + 1e-9, (m, r)
        r = cm.iteration_time(m, "V100", (1,)) / cm.iteration_time(m, "A100-80GB", (1,))
        assert 15.7 / 19.5 * (1 - 1e-9) <= r <= 2039 / 900, (m, r)
    # a3c's fit runs to the upper bound (compute-bound): exactly the FP32 ratio
    assert cm.intensity_at_bound("a3c") == "upper"
    # bounds: [min ridge / 10, max ridge x 10] of the calibration GPUs K80, P100, V100 (FP32)
    lo, hi = cm.intensity_bounds
    assert lo == pytest.approx(10.6e12 / 732e9 / 10, rel=1e-9)      # P100's ridge, 14.5 FLOP/B
    assert hi == pytest.approx(4.4e12 / 240e9 * 10, rel=1e-9)       # K80's ridge, 18.3 FLOP/B
    assert cm._intensities["a3c"] == pytest.approx(hi, rel=1e-6)
    assert cm.intensity_at_bound("resnet50") is None


def test_modelled_placement_never_faster_than_its_largest_node_packed(cm):
    # Gavel V100 ResNet-50 batch 16: (4, 4) is not measured; the spread 8-GPU measurement
    # minus the modelled ring difference would give 0.100 s, but each of its servers hosts
    # 4 workers like the measured packed (4,) placement (0.172 s), which bounds it below
    t4 = 4 / _gavel("v100", "ResNet-50 (batch size 16)", 4)
    assert cm.iteration_time("resnet50", "V100", (4, 4), 16) == pytest.approx(t4)
    # measured points are returned as measured, even where upstream has spread faster than
    # packed (8 GPUs, batch 64: packed 8 / 17.30 = 0.462 s, spread 8 / 19.76 = 0.405 s)
    assert cm.iteration_time("resnet50", "V100", (8,), 64) == pytest.approx(8 / _gavel("v100", "ResNet-50 (batch size 64)", 8))
    assert cm.iteration_time("resnet50", "V100", (1,) * 8, 64) == pytest.approx(
        8 / _gavel("v100_unconsolidated", "ResNet-50 (batch size 64)", 8))
