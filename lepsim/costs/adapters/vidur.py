"""Vidur profiles -> LLM operator rows and NCCL collective rows.

Upstream: ``microsoft/vidur`` @ 7d475133, ``data/profiling/`` (MIT), gzipped as upstream.

**Compute** (``compute/<gpu>/<org>/<model>/mlp.csv.gz``): CUDA times in **milliseconds**
(``time_stats.<op>.{min,max,mean,median,std}``) of one transformer layer's token-level
operators, keyed by ``num_tokens`` and ``num_tensor_parallel_workers`` (each GEMM profiled
on one GPU at its tensor-parallel shard shape; no communication).  ``a100`` is the
A100-80GB, ``a40`` the A40.  One row per (operator, upstream row): phase ``operator``,
``num_gpus`` 1, ``tensor_parallel`` = the shard degree, ``flops``/``bytes_moved`` computed
from the shapes in the same row (:func:`lepsim.costs.roofline.llm_token_ops`, fp16).

**Network** (``network/<system>/{all_reduce,send_recv}.csv.gz``): NCCL collective times in
**milliseconds** vs ``size`` (bytes), ``num_workers``, ``devices_per_node``.  One row per
upstream row: phase ``collective``, operator ``all_reduce``/``send_recv``, ``size_bytes``,
``num_gpus`` = num_workers, ``placement`` = GPUs per node as digits (``'88'`` = 2 nodes x 8).
The interconnect system (``a100_dgx``, ``h100_pairwise_nvlink``, ...) is the upstream folder
named in ``source_ref``; :func:`nccl_system` reads it back.  Devices: ``a100_dgx`` ->
A100-80GB (SXM4 on NVSwitch); ``a100_pairwise_nvlink`` -> A100-80GB-PCIE (4 PCIe cards,
NVLink-bridged in pairs); ``h100_*`` -> H100 (the catalog has no PCIe H100; the system name
keeps the distinction); ``a40_pairwise_nvlink`` -> A40.  Upstream's
``h100_pairwise_nvlink/send_recv`` is byte-identical to the A100 one and is not bundled.

SI conversion, in :func:`_ms_to_s` only: milliseconds x 1e-3 -> seconds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lepsim.costs.adapters.common import REF_VIDUR, placement_string, to_store
from lepsim.costs.adapters.names import DATA_DIR, LlmConfig, canonical_model
from lepsim.costs.roofline import llm_token_ops
from lepsim.costs.store import ProfileStore

DEFAULT_DIR = DATA_DIR / "vidur"
COMPUTE_DEVICES = {"a100": "A100-80GB", "a40": "A40"}
NETWORK_DEVICES = {
    "a100_dgx": "A100-80GB",
    "a100_pairwise_nvlink": "A100-80GB-PCIE",
    "h100_dgx": "H100",
    "h100_pairwise_nvlink": "H100",
    "a40_pairwise_nvlink": "A40",
}
OPERATORS = (
    "emb", "input_layernorm", "attn_pre_proj", "attn_rope", "attn_post_proj",
    "post_attention_layernorm", "mlp_up_proj", "mlp_act", "mlp_down_proj", "add",
)


def _ms_to_s(x):
    """SI conversion: Vidur times are milliseconds."""
    return np.asarray(x, dtype=float) * 1e-3


def load_vidur_compute(directory: str | Path | None = None) -> ProfileStore:
    root = Path(directory) if directory else DEFAULT_DIR
    parts = []
    for f in sorted((root / "compute").glob("*/*/*/mlp.csv.gz")):
        gpu = f.parts[-4]
        upstream_model = f"{f.parts[-3]}/{f.parts[-2]}"
        model = canonical_model(upstream_model)
        device = COMPUTE_DEVICES[gpu]
        df = pd.read_csv(f)
        ref = REF_VIDUR + "/".join(f.parts[-5:]).removesuffix(".gz")
        tokens = df["num_tokens"].to_numpy(int)
        tp = df["num_tensor_parallel_workers"].to_numpy(int)
        # shapes as profiled (vocab may be padded upstream; not used by the token ops)
        shapes = df[["n_head", "n_kv_head", "n_embd", "n_expanded_embd", "vocab_size", "use_gated_mlp"]]
        flops_bytes = {}
        for key, idx in shapes.groupby(list(shapes.columns)).groups.items():
            h, kv, d, ff, vocab, gated = key
            cfg = LlmConfig(layers=1, hidden=int(d), heads=int(h), kv_heads=int(kv), ffn=int(ff), vocab=int(vocab), gated_mlp=bool(gated))
            for i in idx:
                flops_bytes[i] = llm_token_ops(cfg, tokens[i], int(tp[i]))
        for op in OPERATORS:
            col = f"time_stats.{op}"
            if f"{col}.mean" not in df.columns:
                continue
            fb = np.array([flops_bytes[i][op] for i in range(len(df))])
            parts.append(pd.DataFrame({
                "device": device, "model": model, "phase": "operator", "operator": op,
                "num_tokens": tokens, "num_gpus": 1, "tensor_parallel": tp,
                "time_s": _ms_to_s(df[f"{col}.mean"]),
                "time_median_s": _ms_to_s(df[f"{col}.median"]),
                "time_std_s": _ms_to_s(df[f"{col}.std"]),
                "time_min_s": _ms_to_s(df[f"{col}.min"]),
                "time_max_s": _ms_to_s(df[f"{col}.max"]),
                "flops": fb[:, 0], "bytes_moved": fb[:, 1],
                "source": "vidur", "source_ref": ref,
            }))
    return to_store(pd.concat(parts, ignore_index=True), where=str(root / "compute"))


def load_vidur_network(directory: str | Path | None = None) -> ProfileStore:
    root = Path(directory) if directory else DEFAULT_DIR
    parts = []
    for f in sorted((root / "network").glob("*/*.csv.gz")):
        system = f.parts[-2]
        device = NETWORK_DEVICES[system]
        df = pd.read_csv(f)
        op = str(df["collective"].iloc[0])
        col = f"time_stats.{op}"
        n = df["num_workers"].to_numpy(int)
        g = df["devices_per_node"].to_numpy(int)
        place = [placement_string([gg] * (nn // gg) + ([nn % gg] if nn % gg else [])) for nn, gg in zip(n, np.minimum(g, n))]
        parts.append(pd.DataFrame({
            "device": device, "model": "", "phase": "collective", "operator": op,
            "size_bytes": df["size"].to_numpy(float), "num_gpus": n, "placement": place,
            "time_s": _ms_to_s(df[f"{col}.mean"]),
            "time_median_s": _ms_to_s(df[f"{col}.median"]),
            "time_std_s": _ms_to_s(df[f"{col}.std"]),
            "time_min_s": _ms_to_s(df[f"{col}.min"]),
            "time_max_s": _ms_to_s(df[f"{col}.max"]),
            "source": "vidur",
            "source_ref": REF_VIDUR + "/".join(f.parts[-3:]).removesuffix(".gz"),
        }))
    return to_store(pd.concat(parts, ignore_index=True), where=str(root / "network"))


def nccl_system(source_ref: str) -> str:
    """``'.../network/a100_dgx/all_reduce.csv'`` -> ``'a100_dgx'``."""
    parts = str(source_ref).split("/")
    return parts[-2] if len(parts) >= 2 else ""
