"""The profile store: one pandas DataFrame of measured costs in the tidy schema.

Every row has exactly the columns of :data:`lepsim.costs.schema.COLUMNS`, with their
dtypes, in SI units (seconds, bytes, FLOP).  Adapters produce stores from upstream data;
``lepsim profile`` writes the same columns; :func:`ProfileStore.load` reads Parquet or CSV
files of them back and validates them.  The store does no modelling: it holds rows and
answers simple queries; :mod:`lepsim.costs.model` turns rows into costs.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np
import pandas as pd

from lepsim.costs import schema

__all__ = ["ProfileStore", "StoreError", "empty_frame", "coerce_frame"]


class StoreError(ValueError):
    """A profile table does not follow the schema (missing columns, bad values)."""


_STRING_COLS = [c for c, t in schema.DTYPES.items() if t == "string"]
_INT_COLS = [c for c, t in schema.DTYPES.items() if t == "Int64"]
_FLOAT_COLS = [c for c, t in schema.DTYPES.items() if t == "float64"]
# Columns a row cannot do without.
_REQUIRED_VALUES = ("device", "phase", "time_s", "source")
PHASES = frozenset(
    {
        "train_iteration", "forward", "backward", "optimizer", "inference", "prefill",
        "decode", "operator", "kernel", "collective", "sync",
    }
)


def empty_frame() -> pd.DataFrame:
    """A zero-row frame with the schema's columns and dtypes."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in schema.DTYPES.items()})


def coerce_frame(df: pd.DataFrame, *, where: str = "profile table", fill_missing: bool = False) -> pd.DataFrame:
    """Return ``df`` with exactly the schema's columns, in order, with the schema's dtypes.

    ``fill_missing`` adds absent optional columns as nulls (adapters use it); otherwise a
    missing column is an error.  Strings are stripped; missing strings become ``''`` for
    the key columns model/operator/placement/co_located_with (the schema's "n/a").
    """
    missing = [c for c in schema.COLUMN_NAMES if c not in df.columns]
    if missing and not fill_missing:
        raise StoreError(f"{where}: missing column(s) {', '.join(missing)}; expected {', '.join(schema.COLUMN_NAMES)}")
    extra = [c for c in df.columns if c not in schema.DTYPES]
    if extra:
        raise StoreError(f"{where}: unknown column(s) {', '.join(map(str, extra))}")
    out = {}
    n = len(df)
    for c, t in schema.DTYPES.items():
        col = df[c] if c in df.columns else pd.Series([None] * n, index=df.index)
        try:
            if t == "string":
                s = col.astype("string").str.strip()
                if c in ("model", "operator", "placement", "co_located_with", "input_shapes", "source_ref"):
                    s = s.fillna("")
                out[c] = s
            elif t == "Int64":
                num = pd.to_numeric(col, errors="raise")
                if num.notna().any():
                    frac = (num.dropna() % 1) != 0
                    if frac.any():
                        raise StoreError(f"{where}: column {c!r} must hold integers, got {num.dropna()[frac].iloc[0]!r}")
                out[c] = num.astype("Int64")
            else:
                out[c] = pd.to_numeric(col, errors="raise").astype("float64")
        except StoreError:
            raise
        except (ValueError, TypeError) as e:
            raise StoreError(f"{where}: column {c!r} cannot be read as {t}: {e}") from None
    res = pd.DataFrame(out, index=df.index).reset_index(drop=True)
    return res


def _validate_values(df: pd.DataFrame, where: str) -> None:
    for c in _REQUIRED_VALUES:
        bad = df[c].isna() | ((df[c] == "") if df[c].dtype == "string" else False)
        if bool(bad.any()):
            i = int(bad.to_numpy().nonzero()[0][0])
            raise StoreError(f"{where}: row {i}: column {c!r} is empty")
    t = df["time_s"].to_numpy(dtype="float64", na_value=np.nan)
    bad_t = ~np.isfinite(t) | (t < 0)
    if bool(bad_t.any()):
        i = int(bad_t.nonzero()[0][0])
        raise StoreError(f"{where}: row {i}: time_s must be a finite non-negative number of seconds, got {t[i]!r}")
    bad_phase = ~df["phase"].isin(PHASES)
    if bool(bad_phase.any()):
        i = int(bad_phase.to_numpy().nonzero()[0][0])
        raise StoreError(f"{where}: row {i}: unknown phase {df['phase'].iloc[i]!r}; expected one of {', '.join(sorted(PHASES))}")
    for c in ("batch_size", "num_tokens", "num_gpus", "tensor_parallel"):
        s = df[c].dropna()
        if len(s) and bool((s <= 0).any()):
            raise StoreError(f"{where}: column {c!r} must be positive")


class ProfileStore:
    """A validated table of measured costs (see :mod:`lepsim.costs.schema`)."""

    def __init__(self, frame: pd.DataFrame | None = None, *, validate: bool = True, where: str = "profile table"):
        if frame is None:
            frame = empty_frame()
        elif validate:
            frame = coerce_frame(frame, where=where)
            _validate_values(frame, where)
        self._df = frame

    # ------------------------------------------------------------------ construction
    @classmethod
    def concat(cls, stores: Iterable["ProfileStore"]) -> "ProfileStore":
        frames = [s.frame for s in stores if len(s.frame)]
        if not frames:
            return cls()
        return cls(pd.concat(frames, ignore_index=True), validate=False)

    @classmethod
    def load(cls, path: str | Path, *, validate: bool = True) -> "ProfileStore":
        """Read a Parquet (``.parquet``/``.pq``) or CSV (``.csv``, ``.csv.gz``) file of schema rows.

        ``validate=False`` skips the value checks (for the packaged table, which the test
        suite validates); the columns and dtypes are still coerced to the schema."""
        p = Path(path)
        name = p.name.lower()
        try:
            if name.endswith((".parquet", ".pq")):
                # single-threaded: for tables this small, starting pyarrow's thread pool
                # costs more (hundreds of ms) than the read itself
                df = pd.read_parquet(p, use_threads=False)
            elif name.endswith((".csv", ".csv.gz")):
                df = pd.read_csv(p, dtype={c: "string" for c in _STRING_COLS}, keep_default_na=True)
            else:
                raise StoreError(f"{p}: unknown profile file type (expected .parquet or .csv)")
        except StoreError:
            raise
        except FileNotFoundError:
            raise StoreError(f"{p}: no such profile file") from None
        except Exception as e:  # pyarrow/pandas parse errors have many types
            raise StoreError(f"{p}: cannot read profile file: {e}") from None
        if not validate:
            if tuple(df.columns) == schema.COLUMN_NAMES and all(str(df[c].dtype) == t for c, t in schema.DTYPES.items()):
                return cls(df, validate=False)
            return cls(coerce_frame(df, where=str(p)), validate=False)
        return cls(df, where=str(p))

    def save(self, path: str | Path) -> Path:
        """Write the table as Parquet (by suffix ``.parquet``) or CSV (``.csv``/``.csv.gz``)."""
        p = Path(path)
        name = p.name.lower()
        if name.endswith((".parquet", ".pq")):
            self._df.to_parquet(p, index=False, compression="zstd")
        elif name.endswith((".csv", ".csv.gz")):
            self._df.to_csv(p, index=False)
        else:
            raise StoreError(f"{p}: unknown profile file type (expected .parquet or .csv)")
        return p

    # ------------------------------------------------------------------ access
    @property
    def frame(self) -> pd.DataFrame:
        """The rows (do not mutate; use :meth:`query` or copy)."""
        return self._df

    def __len__(self) -> int:
        return len(self._df)

    def query(self, **equals) -> pd.DataFrame:
        """Rows whose columns equal the given values (``None`` matches null); a copy."""
        df = self._df
        mask = pd.Series(True, index=df.index)
        for col, val in equals.items():
            if col not in schema.DTYPES:
                raise KeyError(f"unknown column {col!r}")
            if val is None:
                mask &= df[col].isna()
            elif isinstance(val, (list, tuple, set, frozenset)):
                mask &= df[col].isin(list(val)).fillna(False).astype(bool)
            else:
                mask &= (df[col] == val).fillna(False).astype(bool)
        return df[mask].copy()

    def devices(self) -> list[str]:
        return sorted(self._df["device"].dropna().unique().tolist())

    def models(self) -> list[str]:
        return sorted(m for m in self._df["model"].dropna().unique().tolist() if m)

    def sources(self) -> dict[str, int]:
        return self._df["source"].value_counts().to_dict()
