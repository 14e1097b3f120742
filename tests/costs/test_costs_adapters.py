"""Adapters: each converts upstream units to SI; checked on hand-picked upstream rows."""
from __future__ import annotations

import gzip
import json

import pytest

from lepsim.costs.adapters import (
    canonical_model,
    load_distserve,
    load_gavel,
    load_pollux,
    load_pollux_gradient_stats,
    load_splitwise,
    load_vidur_compute,
    load_vidur_network,
    resolve_job_type,
)
from lepsim.costs.adapters.names import DATA_DIR


def test_names():
    assert resolve_job_type("ResNet-50 (batch size 64)") == ("resnet50", 64)
    assert resolve_job_type("LM (batch size 80)") == ("lm", 80)
    assert canonical_model("meta-llama/Llama-2-70b-hf") == "llama-2-70b"
    assert canonical_model("llama2-70b") == "llama-2-70b"
    assert canonical_model("facebook/opt-13b") == "opt-13b"
    assert canonical_model("something-new") == "something-new"


def test_gavel_worker_summed_throughput_to_seconds_per_iteration():
    raw = json.load(gzip.open(DATA_DIR / "gavel" / "physical_cluster_throughputs.json.gz", "rt"))
    tput = raw["v100"]["('ResNet-50 (batch size 64)', 4)"]["null"]
    assert tput == pytest.approx(9.452, abs=1e-3)          # the upstream figure (steps/s over 4 workers)
    df = load_gavel().frame
    row = df[(df.device == "V100") & (df.model == "resnet50") & (df.batch_size == 64) & (df.num_gpus == 4)
             & (df.placement == "4") & (df.co_located_with == "")]
    assert len(row) == 1
    assert row.time_s.iloc[0] == pytest.approx(4 / tput)     # seconds per synchronous iteration
    spread = df[(df.device == "V100") & (df.model == "resnet50") & (df.batch_size == 64) & (df.placement == "1111")]
    assert len(spread[spread.co_located_with == ""]) == 1
    # one-GPU "unconsolidated" copies are not loaded (the packed entry is the measurement)
    one = df[(df.device == "V100") & (df.model == "resnet50") & (df.batch_size == 64) & (df.num_gpus == 1) & (df.co_located_with == "")]
    assert len(one) == 1 and one.time_s.iloc[0] == pytest.approx(1 / raw["v100"]["('ResNet-50 (batch size 64)', 1)"]["null"])
    # co-location rows
    pair = df[(df.device == "V100") & (df.model == "resnet18") & (df.batch_size == 16) & (df.co_located_with == "resnet18:32")]
    assert len(pair) >= 1
    # failed runs (throughput 0) are absent: ResNet-50 bs128 on 2 K80s
    assert raw["k80"]["('ResNet-50 (batch size 128)', 2)"]["null"] == 0.0
    assert df[(df.device == "K80") & (df.model == "resnet50") & (df.batch_size == 128) & (df.num_gpus == 2)
              & (df.co_located_with == "")].empty


def test_pollux_seconds_and_sync_rows():
    df = load_pollux().frame
    b = df[(df.model == "bert") & (df.placement == "1") & (df.batch_size == 4)]
    # upstream row: 1,4,0.45532354712486267,0.013738612174987792
    assert b[b.phase == "train_iteration"].time_s.iloc[0] == pytest.approx(0.45532354712486267)
    assert b[b.phase == "sync"].time_s.iloc[0] == pytest.approx(0.013738612174987792)
    assert set(df.device) == {"T4"}
    # scalability rows: 7 replicas on 6 nodes -> most even split
    sc = df[(df.source_ref.str.endswith("scalability.csv")) & (df.num_gpus == 7)]
    assert set(sc.placement) == {"211111"}
    g = load_pollux_gradient_stats("bert")
    assert {"batch_size", "grad_sqr", "grad_var"} <= set(g.columns)


def test_vidur_compute_ms_to_s_and_shapes():
    df = load_vidur_compute().frame
    r = df[(df.device == "A100-80GB") & (df.model == "llama-2-7b") & (df.operator == "emb")
           & (df.num_tokens == 4096) & (df.tensor_parallel == 1)]
    # first upstream row: time_stats.emb.mean 0.230381 ms (the 4096-token point is profiled twice)
    assert 0.230381e-3 in [pytest.approx(v, rel=1e-6) for v in r.time_s]
    up = df[(df.device == "A100-80GB") & (df.model == "llama-2-7b") & (df.operator == "mlp_up_proj")
            & (df.num_tokens == 4096) & (df.tensor_parallel == 1)]
    # gated MLP: 4096 tokens x 4096 hidden x (2 x 11008) outputs, 2 FLOPs per multiply-add
    assert up.flops.iloc[0] == pytest.approx(2 * 4096 * 4096 * 2 * 11008)
    assert set(df.device) == {"A100-80GB", "A40"}


def test_vidur_network():
    df = load_vidur_network().frame
    r = df[(df.operator == "all_reduce") & (df.device == "A100-80GB") & (df.placement == "11") & (df.size_bytes == 2048)]
    # first upstream row of a100_dgx/all_reduce: mean 0.050333 ms, 2 workers, 1 per node
    assert 0.050333e-3 in [pytest.approx(v, rel=1e-5) for v in r.time_s]
    assert set(df[df.source_ref.str.contains("a100_dgx")].placement) >= {"2", "4", "8", "11", "22", "44", "88"}


def test_splitwise_statistics_over_repetitions():
    import pandas as pd

    up = pd.read_csv(DATA_DIR / "splitwise" / "perf_model.csv")
    sel = up[(up.model == "llama2-70b") & (up.hardware == "a100-80gb") & (up.tensor_parallel == 2)
             & (up.prompt_size == 512) & (up.batch_size == 1) & (up.token_size == 128)]
    assert len(sel) == 15   # the centre of the sweep: 3 series x 5 repetitions
    df = load_splitwise().frame
    r = df[(df.model == "llama-2-70b") & (df.device == "A100-80GB") & (df.tensor_parallel == 2) & (df.phase == "prefill")
           & (df.batch_size == 1) & (df.num_tokens == 512)]
    assert sel.prompt_time.mean() * 1e-3 in [pytest.approx(v) for v in r.time_s]
    d = df[(df.model == "llama-2-70b") & (df.device == "A100-80GB") & (df.tensor_parallel == 2) & (df.phase == "decode")
           & (df.batch_size == 1) & (df.context_tokens == 512 + 64)]          # 512 + (128 - 1) / 2, rounded
    assert d.time_s.iloc[0] == pytest.approx(sel.token_time.mean() * 1e-3)
    assert d["count"].iloc[0] == 15
    assert 64 not in set(df.batch_size)        # suspect rows skipped
    assert set(df.device) == {"A100-80GB", "H100"}


def test_distserve_fit_evaluated():
    raw = json.loads((DATA_DIR / "distserve" / "profiler-a100-80g.distserve.json").read_text())
    a, b, c = raw["facebook/opt-13b"]["1"]["prefill"]
    df = load_distserve().frame
    r = df[(df.model == "opt-13b") & (df.tensor_parallel == 1) & (df.phase == "prefill") & (df.num_tokens == 1)]
    assert r.time_s.iloc[0] == pytest.approx((a + b + c) * 1e-3)
    p = raw["facebook/opt-13b"]["1"]
    a, b, c = p["decoding_smallbs"]
    r = df[(df.model == "opt-13b") & (df.tensor_parallel == 1) & (df.phase == "decode") & (df.batch_size == 8)
           & (df.context_tokens == 1024)]
    assert r.time_s.iloc[0] == pytest.approx((a + b * 8 * 1024 + c * 8) * 1e-3)
