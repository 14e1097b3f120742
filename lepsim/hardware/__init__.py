"""Hardware catalog: GPU types and node templates, loaded from a data file.

Adding a GPU is a data change: edit ``catalog.yaml`` (or pass your own file to
:func:`load_catalog`).  All figures are SI: bytes, bytes/s, FLOP/s, watts.
"""
from lepsim.hardware.catalog import (
    Catalog,
    CatalogError,
    GpuSpec,
    NodeTemplate,
    default_catalog,
    load_catalog,
)

__all__ = ["Catalog", "CatalogError", "GpuSpec", "NodeTemplate", "default_catalog", "load_catalog"]
