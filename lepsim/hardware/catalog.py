"""GPU and node catalog (see ``catalog.yaml`` beside this file for the data and its sources)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import yaml

from lepsim.units import UnitError, parse_bandwidth, parse_bytes

_CATALOG_FILE = Path(__file__).with_name("catalog.yaml")


class CatalogError(ValueError):
    """The catalog file is malformed."""


@dataclass(frozen=True)
class GpuSpec:
    """Vendor datasheet figures of one GPU type (dense peaks; SI units)."""

    name: str                      # canonical name, e.g. "A100-80GB"
    memory_bytes: float
    memory_bandwidth: float        # bytes/s
    fp32_flops: float              # FLOP/s, non-tensor FP32
    fp16_flops: float              # FLOP/s, dense FP16/BF16 (tensor cores where present)
    tf32_flops: float | None = None
    fp64_flops: float | None = None
    int8_ops: float | None = None
    tdp_watts: float = 0.0
    scaleup_link: str = "pcie"     # "nvlink", "nvswitch", "pcie", "infinity-fabric", "none"
    scaleup_bandwidth: float | None = None  # bytes/s, aggregate per GPU as vendors quote it
    host_link_bandwidth: float = 0.0        # bytes/s (PCIe)
    sm_count: int | None = None
    aliases: tuple[str, ...] = ()
    source: str = ""


@dataclass(frozen=True)
class NodeTemplate:
    """A node shape that scenario node pools refer to by name."""

    name: str
    gpu_type: str | None           # canonical GPU name; None for CPU-only nodes
    gpus: int
    cpus: int
    memory_bytes: float
    intra_node_link: str           # "nvswitch", "nvlink", "pcie", "none"
    nic_bandwidth: float           # bytes/s, total per node
    description: str = ""


@dataclass(frozen=True)
class Catalog:
    gpus: Mapping[str, GpuSpec]
    nodes: Mapping[str, NodeTemplate]
    _alias: Mapping[str, str] = field(default_factory=dict, repr=False)

    def gpu_name(self, name: str) -> str | None:
        """Canonical name for ``name`` or one of its aliases (case-insensitive); None if unknown."""
        return self._alias.get(_key(name))

    def gpu(self, name: str) -> GpuSpec:
        canon = self.gpu_name(name)
        if canon is None:
            raise KeyError(name)
        return self.gpus[canon]

    def known_gpu_names(self) -> list[str]:
        return sorted(self.gpus)


def _key(name: str) -> str:
    return str(name).strip().lower().replace("_", "-").replace(" ", "-")


def _parse_gpu(name: str, d: dict) -> GpuSpec:
    def opt(key, parser):
        return None if d.get(key) is None else parser(d[key])

    flops = lambda v: float(v) * 1e12 if isinstance(v, (int, float)) else float(v)  # noqa: E731
    return GpuSpec(
        name=name,
        memory_bytes=parse_bytes(d["memory"]),
        memory_bandwidth=parse_bandwidth(d["memory_bandwidth"]),
        fp32_flops=flops(d["fp32_tflops"]),
        fp16_flops=flops(d["fp16_tflops"]),
        tf32_flops=opt("tf32_tflops", flops),
        fp64_flops=opt("fp64_tflops", flops),
        int8_ops=opt("int8_tops", flops),
        tdp_watts=float(d.get("tdp_watts", 0.0)),
        scaleup_link=str(d.get("scaleup_link", "pcie")),
        scaleup_bandwidth=opt("scaleup_bandwidth", parse_bandwidth),
        host_link_bandwidth=parse_bandwidth(d.get("host_link_bandwidth", 0)),
        sm_count=opt("sm_count", int),
        aliases=tuple(str(a) for a in d.get("aliases", ())),
        source=str(d.get("source", "")),
    )


def load_catalog(path: str | Path | None = None) -> Catalog:
    """Load a catalog YAML file (default: the packaged one).

    Raises :class:`CatalogError` (its message starts with the file path) when the file
    cannot be read or parsed, an entry is malformed, a required figure is not positive,
    two GPUs claim the same name or alias, or a node template names an unknown GPU.
    """
    p = Path(path) if path is not None else _CATALOG_FILE
    try:
        raw = yaml.safe_load(p.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise CatalogError(f"{p}: cannot read catalog: {e}") from None
    if not isinstance(raw, dict):
        raise CatalogError(f"{p}: expected a mapping with 'gpus' and 'nodes', found {type(raw).__name__}")
    gpus: dict[str, GpuSpec] = {}
    alias: dict[str, str] = {}
    nodes: dict[str, NodeTemplate] = {}
    where = "catalog"
    try:
        for name, d in (raw.get("gpus") or {}).items():
            where = f"gpus.{name}"
            g = _parse_gpu(str(name), d)
            for fld in ("memory_bytes", "memory_bandwidth", "fp32_flops", "fp16_flops"):
                if not getattr(g, fld) > 0:
                    raise CatalogError(f"{p}: {where}: {fld} must be positive, found {getattr(g, fld)!r}")
            gpus[g.name] = g
            for a in (g.name, *g.aliases):
                k = _key(a)
                if alias.get(k, g.name) != g.name:
                    raise CatalogError(f"{p}: {where}: name or alias {a!r} already names GPU {alias[k]!r}")
                alias[k] = g.name
        for name, d in (raw.get("nodes") or {}).items():
            where = f"nodes.{name}"
            gt = d.get("gpu_type")
            canon = None
            if gt is not None:
                canon = alias.get(_key(gt))
                if canon is None:
                    raise CatalogError(f"{p}: nodes.{name}.gpu_type: unknown GPU type {gt!r}")
            t = NodeTemplate(
                name=str(name),
                gpu_type=canon,
                gpus=int(d.get("gpus", 0)),
                cpus=int(d["cpus"]),
                memory_bytes=parse_bytes(d["memory"]),
                intra_node_link=str(d.get("intra_node_link", "pcie" if canon else "none")),
                nic_bandwidth=parse_bandwidth(d.get("nic_bandwidth", 0)),
                description=str(d.get("description", "")),
            )
            if (canon is None and t.gpus != 0) or (canon is not None and t.gpus < 1):
                raise CatalogError(f"{p}: {where}: gpus={t.gpus} does not fit gpu_type {canon!r}")
            nodes[t.name] = t
    except CatalogError:
        raise
    except (KeyError, TypeError, UnitError, ValueError, AttributeError) as e:
        # ValueError covers UnitError and bad numbers such as fp32_tflops: "fast".
        raise CatalogError(f"{p}: {where}: malformed catalog entry: {type(e).__name__}: {e}") from None
    return Catalog(gpus=gpus, nodes=nodes, _alias=alias)


@lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The packaged catalog (cached; it is immutable)."""
    return load_catalog()
