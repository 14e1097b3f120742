"""Cost models: what a job costs on an allocation (see :mod:`lepsim.costs.base`)."""
from lepsim.costs.base import CostModel, MissingProfile

__all__ = ["CostModel", "MissingProfile"]
