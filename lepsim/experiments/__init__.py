"""Experiments: compare policies across seeds, sweep parameter grids (local pool or Ray)."""
from lepsim.experiments.compare import Comparison, compare, run_comparison, stats_table
from lepsim.experiments.policyspec import PolicySpec, parse_policies, parse_policy, policy_label
from lepsim.experiments.stats import mean_ci

__all__ = ["Comparison", "PolicySpec", "compare", "mean_ci", "parse_policies", "parse_policy", "policy_label",
           "run_comparison", "stats_table"]
