"""Compare policies on the identical workload across seeds.

Every policy runs on the same scenario with the same seeds: the workload (arrivals, sizes,
durations) is drawn from the seed alone, so each seed gives every policy the identical
jobs, and each run gets a fresh policy instance.  Across seeds, each summary metric gets
its mean and a Student-t confidence interval (:func:`lepsim.experiments.stats.mean_ci`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import pandas as pd

from lepsim.experiments.policyspec import PolicySpec, parse_policies, policy_label

#: Summary keys that are settings or identities, not outcomes: not aggregated.
NOT_METRICS = frozenset({"scenario", "policy", "seed", "window_start_s", "window_end_s"})


def resolve_seeds(scenario, seeds: int | Sequence[int] | None) -> list[int]:
    """``None`` → the scenario's seed; ``N`` → N seeds counting up from the scenario's seed;
    a sequence → those seeds."""
    base = scenario.simulation.seed
    if seeds is None:
        return [base]
    if isinstance(seeds, int) and not isinstance(seeds, bool):
        if seeds < 1:
            raise ValueError(f"found seeds={seeds}, expected at least 1")
        return [base + i for i in range(seeds)]
    out = [int(s) for s in seeds]
    if not out:
        raise ValueError("found no seeds, expected at least one")
    if len(set(out)) != len(out):
        raise ValueError(f"found repeated seeds {out}, expected distinct seeds")
    return out


def effective_policy(scenario, spec: PolicySpec) -> PolicySpec:
    """The policy as it will run: a policy named as the scenario's own starts from the
    scenario's parameters (given parameters are merged on top, as ``lepsim run --param``
    does); another policy starts from its defaults.  The label names the parameters that
    apply, unless the spec carries its own label."""
    sched = scenario.scheduler
    params = {**sched.params, **spec.params} if spec.name == sched.policy else dict(spec.params)
    explicit = spec.label != policy_label(spec.name, spec.params)
    return PolicySpec(spec.name, params, spec.label if explicit else "")


def metric_names(summaries: Iterable[dict]) -> list[str]:
    """Numeric summary keys in a stable order: the standard rows first, then every other key
    in the order first seen (new metrics from other modules, e.g. SLO attainment or cost,
    are picked up without being named here)."""
    from lepsim.report.plots import SUMMARY_METRICS

    seen: dict[str, None] = {}
    for s in summaries:
        for k, v in s.items():
            if k not in NOT_METRICS and (isinstance(v, (int, float)) or hasattr(v, "item")):
                seen.setdefault(k, None)
    keys = list(seen)
    first = [m for m in SUMMARY_METRICS if m in seen]
    return first + [k for k in keys if k not in first]


def stats_table(per_run: pd.DataFrame, metrics: Sequence[str] | None = None, *, level: float = 0.95,
                by: str = "policy") -> pd.DataFrame:
    """Mean and confidence interval of each metric per ``by`` group (in order of first
    appearance).  Columns: ``by``, metric, mean, ci_half_width, ci_low, ci_high, std, n."""
    from lepsim.experiments.stats import mean_ci

    if metrics is None:
        metrics = [c for c in per_run.columns if c not in NOT_METRICS and c not in (by, "policy_name")
                   and pd.api.types.is_numeric_dtype(per_run[c])]
    rows = []
    for key, g in per_run.groupby(by, sort=False):
        for m in metrics:
            vals = g[m].to_numpy(dtype=float) if m in g else []
            mean, half, std, n = mean_ci(vals, level)
            rows.append({by: key, "metric": m, "mean": mean, "ci_half_width": half,
                         "ci_low": mean - half, "ci_high": mean + half, "std": std, "n": n})
    return pd.DataFrame(rows, columns=[by, "metric", "mean", "ci_half_width", "ci_low", "ci_high", "std", "n"])


@dataclass
class Comparison:
    """The runs of a comparison: ``runs[label]`` holds one Result per seed (in seed order)."""

    scenario: Any
    policies: list[PolicySpec]
    seeds: list[int]
    runs: dict[str, list] = field(default_factory=dict)
    level: float = 0.95

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.policies]

    def per_run(self) -> pd.DataFrame:
        """One row per (policy, seed): ``policy`` (the label), ``policy_name``, ``seed`` and
        every summary metric."""
        rows = []
        for p in self.policies:
            for r in self.runs[p.label]:
                s = r.summary
                rows.append({"policy": p.label, "policy_name": p.name, "seed": r.seed,
                             **{k: v for k, v in s.items() if k not in ("policy", "seed", "scenario")}})
        df = pd.DataFrame(rows)
        keys = ["policy", "policy_name", "seed"] + metric_names(r.summary for rs in self.runs.values() for r in rs)
        return df[[k for k in keys if k in df.columns]]

    def metrics(self) -> list[str]:
        return metric_names(r.summary for rs in self.runs.values() for r in rs)

    def table(self) -> pd.DataFrame:
        """Mean and CI per (policy, metric): see :func:`stats_table`."""
        return stats_table(self.per_run(), self.metrics(), level=self.level)

    def wide(self, stat: str = "mean") -> pd.DataFrame:
        """One row per metric, one column per policy label, holding ``stat``."""
        t = self.table()
        w = t.pivot(index="metric", columns="policy", values=stat)
        return w.loc[[m for m in self.metrics() if m in w.index], self.labels]

    def first_seed(self) -> dict:
        """``{label: Result}`` of the first seed (for time-series figures)."""
        return {p.label: self.runs[p.label][0] for p in self.policies}

    def write(self, folder: str | Path, *, title: str | None = None) -> Path:
        """Write the report folder atomically: ``report.html`` (self-contained), ``runs.csv``
        (one row per policy and seed), ``stats.csv`` (means and CIs) and ``figures/*.png``."""
        from lepsim.report.html import write_comparison

        return write_comparison(self, Path(folder), title=title)


def run_comparison(
    scenario,
    policies,
    *,
    seeds: int | Sequence[int] | None = 5,
    level: float = 0.95,
    progress: Callable[[str, int], None] | None = None,
    workers: int = 1,
) -> Comparison:
    """Run every policy on the identical workload for each seed.

    ``scenario``: a Scenario or a path.  ``policies``: see
    :func:`lepsim.experiments.policyspec.parse_policies` (``"fifo,las[thresholds=[1h,10h]]"``,
    a list of such strings, ``(name, params)`` pairs or mappings).  ``seeds``: a count
    (counting up from the scenario's seed) or a list.  ``progress(label, seed)`` is called
    as each run finishes.  ``workers`` > 1 runs the simulations on a local process pool
    (the same results as in this process).  Raises :class:`lepsim.errors.ScenarioError` when a policy or its
    parameters are invalid (checked for all policies before anything runs)."""
    import lepsim
    from lepsim.errors import Problem, ScenarioError
    from lepsim.scenario.loader import check_scenario

    if not hasattr(scenario, "with_overrides"):
        scenario = lepsim.load_scenario(scenario)
    specs = [effective_policy(scenario, p) for p in parse_policies(policies)]
    labels = [p.label for p in specs]
    if len(set(labels)) != len(labels):
        raise ValueError(f"found policies {labels} with repeated labels, expected each policy once")
    seed_list = resolve_seeds(scenario, seeds)
    variants = {}
    problems = []
    for p in specs:
        v = scenario.with_overrides(policy=p.name, params=dict(p.params))
        problems += [Problem(q.file, None, q.path, f"{q.message} (policy {p.label})") for q in check_scenario(v)]
        variants[p.label] = v
    if problems:
        raise ScenarioError(list(dict.fromkeys(problems)))
    comp = Comparison(scenario, specs, seed_list, level=level)
    runs = [(p.label, seed) for seed in seed_list for p in specs]   # seed-major: a seed's workload is built once
    got: dict = {}

    def done(i: int, result) -> None:
        if result.scenario is None:   # from a worker: the scenario stayed behind (see _simulate_task)
            result.scenario = variants[runs[i][0]].with_overrides(seed=runs[i][1])
        got[runs[i]] = result
        if progress is not None:
            progress(*runs[i])

    from lepsim.experiments.pool import run_tasks

    if workers <= 1:   # in this process: the scenarios' built workloads are shared across policies
        run_tasks(lambda run: lepsim.simulate(variants[run[0]], seed=run[1]), runs, 1, done)
    else:
        source = list(scenario._source) if scenario._source else None
        tasks = [{"scenario_json": variants[label].model_dump_json(), "source": source, "seed": seed}
                 for label, seed in runs]
        run_tasks(_simulate_task, tasks, workers, done)
    for p in specs:
        comp.runs[p.label] = [got[(p.label, seed)] for seed in seed_list]
    return comp


def _simulate_task(task: dict):
    """One run of a comparison in a worker process: the scenario travels as JSON."""
    import lepsim
    from lepsim.scenario.spec import Scenario

    scenario = Scenario.model_validate_json(task["scenario_json"])
    scenario._source = tuple(task["source"]) if task["source"] else None
    result = lepsim.simulate(scenario, seed=task["seed"])
    result.scenario = None   # only the records travel back (the parent holds the scenario)
    return result


def compare(scenario, policies, *, seeds: int | Sequence[int] | None = 5, level: float = 0.95,
            out: str | Path | None = None, workers: int = 1) -> pd.DataFrame:
    """Compare policies on the identical workload; return the means and confidence
    intervals, one row per (policy, metric) (see :func:`stats_table`).  With ``out``, also
    write the report folder (see :meth:`Comparison.write`).

    >>> import lepsim
    >>> t = lepsim.compare("scenarios/burst.yaml", "fifo,sjf,las", seeds=3)
    >>> t[t.metric == "jct_mean_s"]
    """
    comp = run_comparison(scenario, policies, seeds=seeds, level=level, workers=workers)
    if out is not None:
        comp.write(out)
    return comp.table()
