"""Azure LLM inference traces 2023 (AzurePublicDataset ``AzureLLMInferenceTrace_{code,conv}.csv``):
one request a row, for the inference services' request streams (not training jobs).

| upstream column | lepsim column | conversion |
| --- | --- | --- |
| ``TIMESTAMP`` (wall clock, 100 ns digits) | ``arrival_s`` | ``common.wallclock_seconds``, minus the earliest timestamp (the first request arrives at 0 s) |
| ``ContextTokens`` | ``prompt_tokens`` | integer ≥ 1 |
| ``GeneratedTokens`` | ``output_tokens`` | integer ≥ 0 |

:func:`read_requests` returns a tidy :class:`pandas.DataFrame` sorted by arrival (stable,
so rows arriving together keep file order), with a ``line`` column for messages.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lepsim.errors import ScenarioError
from lepsim.workload.importers.common import ImportResult, Rows, from_earliest, number, wallclock_cell

COLUMNS = ("timestamp", "contexttokens", "generatedtokens")


def read(path: Path, display: str, options) -> ImportResult:
    """Request records ``{line, arrival_s, prompt_tokens, output_tokens}`` (arrival from the first)."""
    rows = Rows(path, display, columns=COLUMNS)
    out: list[dict] = []
    for line, c in rows:
        mark = rows.start_row()
        t = wallclock_cell(rows, line, "TIMESTAMP", c["timestamp"], "2023-11-16 18:17:03.9799600")
        p = number(rows, line, "ContextTokens", c["contexttokens"], minimum=1, integer=True)
        o = number(rows, line, "GeneratedTokens", c["generatedtokens"], minimum=0, integer=True)
        if rows.row_ok(mark):
            out.append({"line": line, "arrival_s": t, "prompt_tokens": p, "output_tokens": o})
    from_earliest(out, "arrival_s")
    return rows.result(out)


def to_frame(records: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(records, columns=["line", "arrival_s", "prompt_tokens", "output_tokens"])
    df = df.astype({"line": np.int64, "arrival_s": np.float64, "prompt_tokens": np.int64, "output_tokens": np.int64})
    return df.sort_values("arrival_s", kind="stable").reset_index(drop=True)


def read_requests(path: str | Path, *, limit: int | None = None, skip_bad_rows: bool = False) -> pd.DataFrame:
    """The requests of an Azure LLM trace as a DataFrame (columns ``line``, ``arrival_s``,
    ``prompt_tokens``, ``output_tokens``).  ``limit``: the first so many (good) rows of the
    file, their arrivals counted from the earliest of them.  Bad rows raise
    :class:`ScenarioError` (every one, with its line) unless ``skip_bad_rows``."""
    from lepsim.workload.importers import ImportOptions

    path = Path(path)
    res = read(path, str(path), ImportOptions())
    if res.errors or (res.problems and not skip_bad_rows):
        raise ScenarioError(res.errors + ([] if skip_bad_rows else res.problems))
    rows = res.rows
    if limit is not None:
        rows = rows[:limit]
        from_earliest(rows, "arrival_s")
    return to_frame(rows)
