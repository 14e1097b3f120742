"""The run folder: tables, summary and manifest, written atomically.

Everything is written into a temporary folder beside the target, which is then renamed
into place: a crash or an error never leaves a half-written run folder.  Outputs carry no
timestamps or wall times, so the same scenario and seed give byte-identical files.
"""
from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

DEPENDENCIES = ("simpy", "numpy", "pandas", "pyarrow", "pydantic", "networkx", "matplotlib", "PyYAML", "rich", "scipy")


def _clean(obj):
    """JSON-safe: NaN/inf → null, numpy scalars → Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def dumps(obj) -> str:
    return json.dumps(_clean(obj), indent=2, sort_keys=False, allow_nan=False) + "\n"


def versions() -> dict:
    out = {"lepsim": _v("lepsim"), "python": platform.python_version()}
    for d in DEPENDENCIES:
        out[d] = _v(d)
    return out


def _v(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def _has_storage(result) -> bool:
    """Whether the run had a ``storage`` section (then its ``storage`` table is written)."""
    return getattr(result.scenario, "storage", None) is not None and getattr(result, "storage", None) is not None


def manifest(result, formats=("parquet", "csv")) -> dict:
    sc = result.scenario
    src = sc._source
    return {
        "lepsim_run_format": 1,
        "scenario_file": src[1] if src else None,
        "scenario_name": sc.name,
        "policy": result.policy,
        "seed": result.seed,
        "versions": versions(),
        "files": {
            **{name: {"content": what, "formats": [f"{name}.{f}" for f in formats]} for name, what in (
                ("jobs", "one row per job"),
                ("intervals", "one row per allocation phase: run, restore, checkpoint"),
                ("timeline", "allocated GPUs, running and pending jobs after every change"),
                ("events", "arrive/start/preempt/complete events"),
                ("links", "network link load and utilization after every change (empty without cluster.network)"),
            ) + ((
                ("storage", "the storage service's read/write rates, bandwidth and checkpoint bytes after every change"),
            ) if _has_storage(result) else ()) + ((
                ("requests", "one row per inference request"),
                ("service_windows", "per inference service and metrics window"),
            ) if getattr(result, "requests", None) is not None else ())},
            "summary": {"content": "summary metrics; formulas in docs/metrics.md", "formats": ["summary.json"]},
        },
        "scenario": sc.model_dump(mode="json"),
    }


FORMATS = ("parquet", "csv")


def write_run(result, folder: Path, *, formats=FORMATS) -> Path:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"found formats {list(formats)}, expected one or more of {', '.join(FORMATS)}")
    folder = Path(folder)
    with atomic_folder(folder) as tmp:
        tables = {"jobs": result.jobs, "intervals": result.intervals, "timeline": result.timeline, "events": result.events,
                  "links": result.links}
        if _has_storage(result):
            tables["storage"] = result.storage
        if getattr(result, "requests", None) is not None:
            tables.update(requests=result.requests, service_windows=result.service_windows)
        for name, df in tables.items():
            if "parquet" in formats:
                df.to_parquet(tmp / f"{name}.parquet", index=False)
            if "csv" in formats:
                df.to_csv(tmp / f"{name}.csv", index=False, lineterminator="\n")
        (tmp / "summary.json").write_text(dumps(result.summary))
        (tmp / "manifest.json").write_text(dumps(manifest(result, formats)))
    return folder


@contextmanager
def atomic_folder(folder: Path):
    """Yield a temporary folder beside ``folder``; on success it replaces ``folder`` (renamed
    into place), on an error it is removed and ``folder`` is left as it was."""
    folder = Path(folder)
    parent = folder.parent if str(folder.parent) else Path(".")
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=parent))
    try:
        yield tmp
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old-", dir=parent))
            os.rmdir(old)
            os.replace(folder, old)
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write a file atomically (temp file in the same folder, then rename)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write a file atomically (temp file in the same folder, then rename)."""
    with atomic_file(path) as tmp:
        tmp.write_bytes(data)


@contextmanager
def atomic_file(path: Path):
    """Yield a temporary path beside ``path`` to write; on success it is renamed to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
