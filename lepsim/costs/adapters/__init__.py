"""Adapters: upstream measured data -> rows of the tidy profile schema (SI units).

One module per source.  Each converts units to SI in one place (its ``_to_si`` helpers or
the single line marked "SI conversion") and says so in its docstring.  Every adapter
returns a :class:`lepsim.costs.store.ProfileStore`.
"""
from lepsim.costs.adapters.distserve import load_distserve, load_distserve_kv_capacity
from lepsim.costs.adapters.gavel import load_gavel
from lepsim.costs.adapters.names import canonical_model, model_table, resolve_job_type
from lepsim.costs.adapters.pollux import load_pollux, load_pollux_gradient_stats
from lepsim.costs.adapters.splitwise import load_splitwise
from lepsim.costs.adapters.vidur import load_vidur_compute, load_vidur_network

__all__ = [
    "canonical_model",
    "model_table",
    "resolve_job_type",
    "load_gavel",
    "load_pollux",
    "load_pollux_gradient_stats",
    "load_vidur_compute",
    "load_vidur_network",
    "load_splitwise",
    "load_distserve",
    "load_distserve_kv_capacity",
]
