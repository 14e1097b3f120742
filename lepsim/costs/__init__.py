"""Cost models: what a job costs on an allocation (see :mod:`lepsim.costs.base`).

:func:`build_cost_model` gives the profile-based model (:class:`ProfiledCostModel`) over
the bundled measurements (Gavel, Pollux, Vidur, Splitwise, DistServe; see docs/costs.md)
plus any user profile files with the schema's columns.
"""
from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Iterable

from lepsim.costs.base import CostModel, MissingProfile

__all__ = [
    "CostModel",
    "MissingProfile",
    "ProfiledCostModel",
    "ProfileStore",
    "StoreError",
    "build_cost_model",
    "bundled_store",
]

_lock = threading.Lock()
_bundled = None
_models: dict = {}


def __getattr__(name):  # lazy: importing lepsim.costs stays cheap for the engine
    if name == "ProfiledCostModel":
        from lepsim.costs.model import ProfiledCostModel

        return ProfiledCostModel
    if name in ("ProfileStore", "StoreError"):
        from lepsim.costs import store

        return getattr(store, name)
    raise AttributeError(name)


def bundled_store():
    """The packaged profile table (``lepsim/data/profiles/store.parquet``), loaded once."""
    global _bundled
    with _lock:
        if _bundled is None:
            from lepsim.costs.build_store import STORE_FILE
            from lepsim.costs.store import ProfileStore

            _bundled = ProfileStore.load(STORE_FILE, validate=False)
        return _bundled


def build_cost_model(catalog=None, profile_paths: Iterable[str | Path] = ()):
    """A :class:`ProfiledCostModel` over the bundled profiles plus ``profile_paths``
    (Parquet/CSV files with the columns of :mod:`lepsim.costs.schema`, e.g. written by
    ``lepsim profile``).  Cached per (catalog, paths): the model is immutable and its
    lookups are cached, so simulations may share it.  Raises
    :class:`~lepsim.costs.store.StoreError` (a ValueError) for a bad file.
    """
    from lepsim.costs.model import ProfiledCostModel
    from lepsim.costs.store import ProfileStore

    paths = tuple(str(Path(p)) for p in profile_paths)
    stamps = tuple((p, Path(p).stat().st_mtime_ns) if Path(p).exists() else (p, None) for p in paths)
    key = (id(catalog) if catalog is not None else None, stamps)
    with _lock:
        hit = _models.get(key)
    if hit is not None and hit[0] is catalog:
        return hit[1]
    stores = [bundled_store()] + [ProfileStore.load(p) for p in paths]
    model = ProfiledCostModel(ProfileStore.concat(stores) if paths else stores[0], catalog=catalog)
    with _lock:
        _models[key] = (catalog, model)
    return model


def _load_seconds() -> float:
    """Wall time of a cold :func:`build_cost_model` (benchmarks use it)."""
    global _bundled
    with _lock:
        _bundled = None
        _models.clear()
    t = time.perf_counter()
    build_cost_model()
    return time.perf_counter() - t
