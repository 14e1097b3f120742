"""Small helpers shared by the adapters."""
from __future__ import annotations

import pandas as pd

from lepsim.costs.store import ProfileStore, coerce_frame

# Upstream provenance (repository @ commit : path prefix); the NOTICE repeats these.
REF_GAVEL = "stanford-futuredata/gavel@c4fa4009:scheduler/"
REF_POLLUX = "petuum/adaptdl@de25dcc(osdi21-artifact):simulator/traces/"
REF_VIDUR = "microsoft/vidur@7d475133:data/profiling/"
REF_SPLITWISE = "Mutinifni/splitwise-sim@8f99e7dc:data/perf_model.csv"
REF_DISTSERVE = "LLMServe/DistServe@82831f16:simdistserve/estimators/profile_data/"

MS = 1e-3  # milliseconds -> seconds


def to_store(rows: pd.DataFrame | dict, where: str) -> ProfileStore:
    """Rows (any subset of the schema's columns) -> validated store; absent columns are null."""
    df = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    return ProfileStore(coerce_frame(df, where=where, fill_missing=True), where=where)


def placement_string(gpus_per_node) -> str:
    """(2, 2) -> '22'; digits as Pollux writes them (each node must hold 1..9 GPUs)."""
    parts = [int(g) for g in gpus_per_node if int(g) > 0]
    if any(g > 9 for g in parts):
        raise ValueError(f"placement {tuple(gpus_per_node)}: more than 9 GPUs on a node cannot be written as digits")
    return "".join(str(g) for g in parts)
