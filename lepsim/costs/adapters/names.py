"""Canonical workload model names, their aliases and architecture facts.

The data lives in ``lepsim/data/profiles/models.yaml`` (one table; adding a model is a
data change).  Gavel job types such as ``'ResNet-50 (batch size 64)'`` resolve to the
model ``resnet50`` with per-GPU batch 64.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

import yaml

DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "profiles"
MODELS_FILE = DATA_DIR / "models.yaml"

__all__ = ["ModelInfo", "LlmConfig", "model_table", "canonical_model", "resolve_job_type", "DATA_DIR"]


@dataclass(frozen=True)
class LlmConfig:
    """Transformer architecture from a model's public config (counts, not units)."""

    layers: int
    hidden: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int
    gated_mlp: bool

    @property
    def head_dim(self) -> float:
        return self.hidden / self.heads


@dataclass(frozen=True)
class ModelInfo:
    name: str
    kind: str                       # "train" | "llm"
    aliases: tuple[str, ...] = ()
    description: str = ""
    peak: str = "fp32"              # "fp32" | "tf32" | "fp16"
    params: int | None = None
    params_source: str = ""
    intensity_like: str | None = None
    config: LlmConfig | None = None
    config_source: str = ""
    extra: Mapping[str, object] = field(default_factory=dict)


def _key(name: str) -> str:
    return re.sub(r"[\s_]+", "-", str(name).strip().lower())


@lru_cache(maxsize=4)
def model_table(path: str | None = None) -> dict[str, ModelInfo]:
    """Canonical name -> :class:`ModelInfo` (cached; the packaged table by default)."""
    p = Path(path) if path else MODELS_FILE
    raw = yaml.load(p.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) or {}
    out: dict[str, ModelInfo] = {}
    for name, d in (raw.get("models") or {}).items():
        cfg = d.get("config")
        out[str(name)] = ModelInfo(
            name=str(name),
            kind=str(d.get("kind", "train")),
            aliases=tuple(str(a) for a in d.get("aliases", ()) or ()),
            description=str(d.get("description", "")),
            peak=str(d.get("peak", "fp32")),
            params=None if d.get("params") is None else int(d["params"]),
            params_source=str(d.get("params_source", "")),
            intensity_like=d.get("intensity_like"),
            config=None if cfg is None else LlmConfig(**{k: (bool(v) if k == "gated_mlp" else int(v)) for k, v in cfg.items()}),
            config_source=str(d.get("config_source", "")),
        )
    return out


@lru_cache(maxsize=4)
def _alias_map(path: str | None = None) -> dict[str, str]:
    m: dict[str, str] = {}
    for name, info in model_table(path).items():
        for a in (name, *info.aliases):
            m[_key(a)] = name
    return m


_BATCH_SUFFIX = re.compile(r"^(.*?)\s*\(\s*batch\s*size\s*(\d+)\s*\)\s*$", re.IGNORECASE)


def resolve_job_type(name: str) -> tuple[str, int | None]:
    """``'ResNet-50 (batch size 64)'`` -> ``('resnet50', 64)``; plain names -> (canonical, None).

    Unknown names are returned as given (a user profile may bring new models).
    """
    m = _BATCH_SUFFIX.match(str(name))
    batch = None
    base = str(name)
    if m:
        base, batch = m.group(1), int(m.group(2))
    return _alias_map().get(_key(base), base.strip()), batch


def canonical_model(name: str | None) -> str | None:
    """Canonical model name for ``name`` or an alias; unknown names are returned unchanged."""
    if name is None:
        return None
    return resolve_job_type(name)[0]
