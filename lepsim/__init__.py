"""lepsim: a discrete-event simulator of a GPU cloud for deep-learning work.

>>> import lepsim
>>> scenario = lepsim.load_scenario("scenarios/burst.yaml")
>>> result = lepsim.simulate(scenario, policy="las")
>>> result.summary["jct_mean_s"], result.jobs.head()
"""
from importlib.metadata import PackageNotFoundError, version as _version

try:
    __version__ = _version("lepsim")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

from lepsim.api import Result, simulate  # noqa: E402
from lepsim.errors import PolicyError, ScenarioError  # noqa: E402
from lepsim.scenario.loader import load_scenario  # noqa: E402
from lepsim.scenario.spec import Scenario  # noqa: E402



def __getattr__(name):  # lepsim.compare is imported on first use (it pulls in scipy and matplotlib)
    if name == "compare":
        from lepsim.experiments.compare import compare

        return compare
    raise AttributeError(f"module 'lepsim' has no attribute {name!r}")


__all__ = ["Result", "Scenario", "ScenarioError", "PolicyError", "compare", "load_scenario", "simulate", "__version__"]
