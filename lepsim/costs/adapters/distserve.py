"""DistServe fitted latency models -> LLM prefill and decode rows (A100-80GB).

Upstream: ``LLMServe/DistServe`` @ 82831f16, ``simdistserve/estimators/profile_data/``
(Apache-2.0).  ``profiler-a100-80g.distserve.json`` holds, per model and tensor-parallel
degree, coefficients fitted by DistServe on its own A100-80GB measurements; its simulator
(``time_estimator.py``) evaluates them as::

    prefill_ms = a + b * sum(prompt_len) + c * sum(prompt_len ** 2)
    decode_ms  = a + b * sum(context_len) + c * batch_size      # (a, b, c) = decoding_smallbs
                                                                 # if batch_size < threshold,
                                                                 # else decoding_largebs

The raw measurements are not published, so lepsim stores the fitted model **evaluated on
a grid** (documented as such in docs/costs.md): prefill for one prompt of 1..2048 tokens
(OPT's context window); decode for batch sizes 1..256 (both sides of the threshold) and
per-request contexts 1..2048 tokens.  ``count`` is null (no repetitions behind a fit).

``max_num_tokens.csv`` (KV-cache capacity in tokens per (model, tp, pp)) is not a cost;
:func:`load_distserve_kv_capacity` returns it.

SI conversion, in :func:`_ms_to_s` only: milliseconds x 1e-3 -> seconds.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from lepsim.costs.adapters.common import REF_DISTSERVE, to_store
from lepsim.costs.adapters.names import DATA_DIR, canonical_model
from lepsim.costs.store import ProfileStore

DEFAULT_DIR = DATA_DIR / "distserve"
DEVICE = "A100-80GB"
PREFILL_TOKENS = np.unique(np.rint(np.geomspace(1, 2048, 23)).astype(int))
DECODE_CONTEXT = np.unique(np.rint(np.geomspace(1, 2048, 23)).astype(int))
DECODE_BATCH = (1, 2, 4, 8, 16, 32, 64, 128, 256)


def _ms_to_s(x):
    """SI conversion: DistServe's fitted models give milliseconds."""
    return np.asarray(x, dtype=float) * 1e-3


def prefill_ms(coef, prompt_lens) -> float:
    a, b, c = coef
    lens = np.asarray(prompt_lens, dtype=float)
    return float(a + b * lens.sum() + c * (lens ** 2).sum())


def decode_ms(params: dict, batch_size: int, context_per_request: float) -> float:
    key = "decoding_smallbs" if batch_size < params["decoding_large_small_bs_threshold"] else "decoding_largebs"
    a, b, c = params[key]
    return float(a + b * batch_size * context_per_request + c * batch_size)


def load_distserve(directory: str | Path | None = None) -> ProfileStore:
    root = Path(directory) if directory else DEFAULT_DIR
    f = root / "profiler-a100-80g.distserve.json"
    raw = json.loads(f.read_text())
    ref = REF_DISTSERVE + f.name + " (fitted coefficients, evaluated on a grid)"
    rows = []
    for upstream_model, per_tp in raw.items():
        model = canonical_model(upstream_model)
        for tp_s, params in per_tp.items():
            tp = int(tp_s)
            thr = int(params["decoding_large_small_bs_threshold"])
            for n in PREFILL_TOKENS:
                rows.append(dict(model=model, phase="prefill", batch_size=1, num_tokens=int(n), tensor_parallel=tp,
                                 num_gpus=tp, time_ms=prefill_ms(params["prefill"], [n])))
            batches = sorted(set(DECODE_BATCH) | {thr - 1, thr})
            for b in batches:
                for c in DECODE_CONTEXT:
                    rows.append(dict(model=model, phase="decode", batch_size=int(b), num_tokens=int(b),
                                     context_tokens=int(c), tensor_parallel=tp, num_gpus=tp,
                                     time_ms=decode_ms(params, int(b), float(c))))
    df = pd.DataFrame(rows)
    df["time_s"] = _ms_to_s(df.pop("time_ms"))
    df["device"] = DEVICE
    df["source"] = "distserve"
    df["source_ref"] = ref
    return to_store(df, where=str(f))


def load_distserve_kv_capacity(directory: str | Path | None = None) -> pd.DataFrame:
    """KV-cache capacity (tokens) per model (canonical name), tp, pp on A100-80GB."""
    root = Path(directory) if directory else DEFAULT_DIR
    df = pd.read_csv(root / "max_num_tokens.csv")
    df["model"] = df["model"].map(canonical_model)
    return df
