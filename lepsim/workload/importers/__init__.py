"""Trace importers: one module per upstream format, each documenting its field mapping
(docs/traces.md collects the tables).  Units become SI in one place, :mod:`.common`.

Three kinds of formats:

* job formats (:data:`JOB_FORMATS`) give job rows, the same dicts the CSV reader returns,
  usable in a scenario's ``workload.traces[]`` (``format:``) and by ``lepsim trace convert``,
  which writes them as lepsim's canonical trace CSV (:mod:`.canonical`);
* cluster formats (:data:`CLUSTER_FORMATS`) give node pools (``cluster.pools[]`` entries);
* request formats (:data:`REQUEST_FORMATS`) give inference request arrivals.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lepsim.workload.importers import alibaba, azure_llm, gavel, philly, pollux, tiresias
from lepsim.workload.importers.common import ImportResult

__all__ = ["ImportOptions", "ImportResult", "JOB_FORMATS", "CLUSTER_FORMATS", "REQUEST_FORMATS", "FORMATS",
           "read_jobs", "read_format"]


@dataclass(frozen=True)
class ImportOptions:
    """What a user can tell an importer beyond the file itself."""

    tenant: str | None = None                                 # tenant where the format has none
    gpu_types: dict[str, str] = field(default_factory=dict)   # upstream GPU model -> catalog name
    gpu_type: str | None = None                               # GPU type of cluster files that name none


Reader = Callable[[Path, str, ImportOptions], ImportResult]

JOB_FORMATS: dict[str, Reader | None] = {
    "csv": None,  # lepsim's own CSV (lepsim.workload.traces.read_trace)
    "philly": philly.read,
    "gavel": gavel.read,
    "tiresias": tiresias.read,
    "pollux": pollux.read,
    "alibaba-pods": alibaba.read,
}
CLUSTER_FORMATS: dict[str, Reader] = {
    "tiresias-cluster": tiresias.read_cluster,
    "alibaba-nodes": alibaba.read_nodes,
}
REQUEST_FORMATS: dict[str, Reader] = {
    "azure-llm": azure_llm.read,
}
FORMATS = (*JOB_FORMATS, *CLUSTER_FORMATS, *REQUEST_FORMATS)


def read_format(fmt: str, path: Path, display: str, options: ImportOptions) -> ImportResult:
    """Rows of a cluster or request format, or of a job format other than ``csv``."""
    fn = JOB_FORMATS.get(fmt) or CLUSTER_FORMATS.get(fmt) or REQUEST_FORMATS.get(fmt)
    if fn is None:
        raise KeyError(fmt)
    return fn(Path(path), display, options)


def read_jobs(src, path: Path, display: str) -> ImportResult:
    """Job rows of a scenario's trace source (``workload.traces[]``), in SI units, with its
    ``time_scale``, ``duration_scale``, ``tenant`` and ``limit`` applied."""
    from lepsim.workload.traces import read_trace

    if src.format == "csv":
        rows, problems = read_trace(Path(path), src, display)
        return ImportResult(rows, problems)
    res = read_format(src.format, path, display, ImportOptions(tenant=src.tenant, gpu_types=dict(src.gpu_types)))
    for r in res.rows:
        r["submit"] *= src.time_scale
        if r["duration"] is not None:
            r["duration"] *= src.duration_scale
        if not r["tenant"]:
            r["tenant"] = src.tenant or "default"
    if src.limit is not None:
        res.rows = res.rows[: src.limit]
    return res
