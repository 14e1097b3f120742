"""Splitwise-sim performance model -> LLM prefill and decode rows.

Upstream: ``Mutinifni/splitwise-sim`` @ 8f99e7dc, ``data/perf_model.csv`` (MIT).  Columns:
model, hardware, prompt_size, batch_size, token_size, prompt_time (ms: time to the first
token of the whole batch), token_time (ms per decode iteration, averaged over the
generation), e2e_time (ms), tensor_parallel; 5 repetitions per point.

Rows (statistics over the repetitions: mean -> ``time_s``, median/std/min/max, count):

* phase ``prefill``: ``batch_size`` prompts of ``prompt_size`` tokens; ``num_tokens`` =
  batch_size x prompt_size; time = prompt_time.
* phase ``decode``: ``batch_size`` requests; ``num_tokens`` = batch_size (one new token
  each); ``context_tokens`` = prompt_size + (token_size - 1) / 2 rounded, the mean context
  over the generation whose per-iteration mean ``token_time`` is; time = token_time.

Mapping: ``a100-80gb`` -> A100-80GB, ``h100-80gb`` -> H100.  ``h100-80gb-pcap`` (a power-capped
H100) is not a catalog GPU and is skipped.  Rows with batch_size 64 are inconsistent
upstream (see the data README) and are skipped unless ``include_suspect=True``.

SI conversion, in :func:`_ms_to_s` only: milliseconds x 1e-3 -> seconds.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lepsim.costs.adapters.common import REF_SPLITWISE, to_store
from lepsim.costs.adapters.names import DATA_DIR, canonical_model
from lepsim.costs.store import ProfileStore

DEFAULT_FILE = DATA_DIR / "splitwise" / "perf_model.csv"
DEVICES = {"a100-80gb": "A100-80GB", "h100-80gb": "H100"}
SUSPECT_BATCH = 64


def _ms_to_s(x):
    """SI conversion: Splitwise times are milliseconds."""
    return np.asarray(x, dtype=float) * 1e-3


def load_splitwise(path: str | Path | None = None, include_suspect: bool = False) -> ProfileStore:
    p = Path(path) if path else DEFAULT_FILE
    df = pd.read_csv(p)
    df = df[df["hardware"].isin(list(DEVICES))]
    if not include_suspect:
        df = df[df["batch_size"] != SUSPECT_BATCH]
    keys = ["model", "hardware", "tensor_parallel", "prompt_size", "batch_size", "token_size"]
    parts = []
    for col, phase in (("prompt_time", "prefill"), ("token_time", "decode")):
        g = df.groupby(keys)[col].agg(["mean", "median", "std", "min", "max", "count"]).reset_index()
        b = g["batch_size"].to_numpy(int)
        out = pd.DataFrame({
            "device": g["hardware"].map(DEVICES).to_numpy(),
            "model": g["model"].map(canonical_model).to_numpy(),
            "phase": phase,
            "batch_size": b,
            "num_gpus": g["tensor_parallel"].to_numpy(int),
            "tensor_parallel": g["tensor_parallel"].to_numpy(int),
            "time_s": _ms_to_s(g["mean"]),
            "time_median_s": _ms_to_s(g["median"]),
            "time_std_s": _ms_to_s(g["std"]),
            "time_min_s": _ms_to_s(g["min"]),
            "time_max_s": _ms_to_s(g["max"]),
            "count": g["count"].to_numpy(int),
            "source": "splitwise",
            "source_ref": REF_SPLITWISE,
        })
        if phase == "prefill":
            out["num_tokens"] = b * g["prompt_size"].to_numpy(int)
            # one prefill per (prompt, batch): the token_size sweep repeats the same prefill
        else:
            out["num_tokens"] = b
            out["context_tokens"] = np.rint(g["prompt_size"].to_numpy(float) + (g["token_size"].to_numpy(float) - 1) / 2).astype(int)
        parts.append(out)
    return to_store(pd.concat(parts, ignore_index=True), where=str(p))
