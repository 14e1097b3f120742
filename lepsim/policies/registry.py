"""One registry of policies by short name; third-party policies via entry points.

A third-party package declares, in its pyproject.toml::

    [project.entry-points."lepsim.policies"]
    my-policy = "my_package.module:MyPolicy"

and ``scheduler: {policy: my-policy}`` then works in any scenario.
"""
from __future__ import annotations

from importlib.metadata import entry_points

from lepsim.policies.base import Policy

ENTRY_POINT_GROUP = "lepsim.policies"
_REGISTRY: dict[str, type[Policy]] = {}
_entry_points_loaded = False
_BROKEN: dict[str, str] = {}  # entry-point policies that failed to load: name -> why


def register(cls: type[Policy]) -> type[Policy]:
    """Class decorator: make a policy available by its ``name``."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    other = _REGISTRY.get(cls.name)
    if other is not None and other is not cls:
        raise ValueError(f"policy name {cls.name!r} is taken by {other.__module__}.{other.__qualname__}")
    _REGISTRY[cls.name] = cls
    return cls


def _load_entry_points() -> None:
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, Policy)):
                raise TypeError(f"{ep.value} is not a lepsim Policy subclass")
            if not getattr(cls, "name", None):
                cls.name = ep.name
            register(cls)
        except Exception as e:  # a broken third-party package must not break the others
            _BROKEN[ep.name] = f"entry point {ep.name!r} ({ep.value}) failed to load: {type(e).__name__}: {e}"


def _builtins() -> None:
    from lepsim.policies import adaptive, autoscale, builtin, dynamic, elastic, static  # noqa: F401  (register on import)


def available() -> dict[str, type[Policy]]:
    """All policies by name (built-in and from entry points), sorted by family then name."""
    _builtins()
    _load_entry_points()
    order = {"static": 0, "dynamic": 1, "adaptive": 2}
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (order.get(kv[1].family, 9), kv[0])))


def get(name: str) -> type[Policy]:
    pols = available()
    try:
        return pols[name]
    except KeyError:
        if name in _BROKEN:
            raise KeyError(_BROKEN[name]) from None
        raise KeyError(f"unknown policy {name!r}; expected one of: {', '.join(pols)}") from None


def broken() -> dict[str, str]:
    """Entry-point policies that failed to load, with the reason."""
    available()
    return dict(_BROKEN)


def make(name: str, params: dict | None = None) -> Policy:
    """Instantiate a policy from its name and (unvalidated) parameters."""
    cls = get(name)
    return cls(cls.Config.model_validate(params or {}))
