"""Policies with parameters, written once and labelled the same everywhere.

A policy is named ``NAME`` or ``NAME[KEY=VALUE, ...]`` (values in YAML, e.g.
``las[thresholds=[1h, 10h]]``), or given as a mapping ``{name, params, label}``.  Its
label is the name alone when it has no parameters, else ``name[key=value,...]`` with the
parameters in the order given and values written compactly, so that parameterised
variants of one policy are told apart in tables, figures and sweep results.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import yaml


@dataclass(frozen=True)
class PolicySpec:
    """A policy name, its parameters (as the user wrote them) and its label."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)
    label: str = ""

    def __post_init__(self):
        if not self.label:
            object.__setattr__(self, "label", policy_label(self.name, self.params))


def format_value(v: Any) -> str:
    """Compact, stable text of a parameter value: ``[1h,10h]``, ``{a:1}``, ``0.5``, ``true``."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "null"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else str(v)
    if isinstance(v, (list, tuple)):
        return "[" + ",".join(format_value(x) for x in v) + "]"
    if isinstance(v, Mapping):
        return "{" + ",".join(f"{k}:{format_value(x)}" for k, x in v.items()) + "}"
    return str(v)


def policy_label(name: str, params: Mapping[str, Any] | None = None) -> str:
    """``name`` alone, or ``name[k=v,...]`` when there are parameters."""
    if not params:
        return name
    return f"{name}[" + ",".join(f"{k}={format_value(v)}" for k, v in params.items()) + "]"


def _split_top(text: str, sep: str = ",") -> list[str]:
    """Split at ``sep`` outside brackets, braces and quotes."""
    parts, depth, cur, quote = [], 0, [], None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        if ch == sep and depth == 0 and not quote:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def parse_policy(text: str) -> PolicySpec:
    """``'las[thresholds=[1h, 10h]]'`` → PolicySpec('las', {'thresholds': ['1h', '10h']}).

    Raises ValueError with a one-line message on bad syntax."""
    s = text.strip()
    if not s:
        raise ValueError("found an empty policy name, expected NAME or NAME[KEY=VALUE,...]")
    if "[" not in s:
        if "]" in s or "=" in s:
            raise ValueError(f"found {text!r}, expected NAME or NAME[KEY=VALUE,...]")
        return PolicySpec(s)
    name, rest = s.split("[", 1)
    name = name.strip()
    if not name or not rest.endswith("]"):
        raise ValueError(f"found {text!r}, expected NAME[KEY=VALUE,...] with a closing ]")
    body = rest[:-1]
    params: dict[str, Any] = {}
    for item in _split_top(body):
        if not item.strip():
            continue
        if "=" not in item:
            raise ValueError(f"found {item.strip()!r} in {text!r}, expected KEY=VALUE")
        k, v = item.split("=", 1)
        k = k.strip()
        try:
            params[k] = yaml.safe_load(v)
        except yaml.YAMLError as e:
            first = str(e).strip().splitlines()[0]
            raise ValueError(f"{text!r}: the value of {k!r} is not valid YAML ({first})") from None
    return PolicySpec(name, params)


def parse_policies(items: str | Iterable[Any]) -> list[PolicySpec]:
    """A comma-separated string, or a sequence of strings, PolicySpecs, ``(name, params)``
    pairs or ``{name, params, label}`` mappings.  Labels must be unique."""
    if isinstance(items, str):
        items = [p for p in _split_top(items) if p.strip()]
    out: list[PolicySpec] = []
    for it in items:
        if isinstance(it, PolicySpec):
            out.append(it)
        elif isinstance(it, str):
            out.append(parse_policy(it))
        elif isinstance(it, tuple) and len(it) == 2:
            out.append(PolicySpec(it[0], dict(it[1] or {})))
        elif isinstance(it, Mapping):
            out.append(PolicySpec(it["name"], dict(it.get("params") or {}), it.get("label") or ""))
        else:
            raise ValueError(f"found {it!r}, expected a policy name, NAME[KEY=VALUE,...] or a mapping")
    if not out:
        raise ValueError("found no policies, expected at least one")
    seen: set = set()
    for p in out:
        if p.label in seen:
            raise ValueError(f"found policy {p.label!r} twice, expected each policy (with its parameters) once")
        seen.add(p.label)
    return out
