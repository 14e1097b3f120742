"""The Python API: load a scenario, simulate it, get DataFrames and a summary."""
from __future__ import annotations

import time
import tracemalloc
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pandas as pd

from lepsim.build import build_parts
from lepsim.engine.simulation import Simulation
from lepsim.errors import ScenarioError
from lepsim.metrics.records import events_frame, intervals_frame, jobs_frame, links_frame, storage_frame, timeline_frame
from lepsim.metrics.services import requests_frame, service_summary, service_windows_frame
from lepsim.metrics.summary import cost_and_energy, summarize
from lepsim.scenario.loader import load_scenario
from lepsim.scenario.spec import Scenario


@dataclass
class Result:
    """The outcome of one simulation.  DataFrames carry units in column names."""

    scenario: Scenario
    policy: str
    seed: int
    jobs: pd.DataFrame
    intervals: pd.DataFrame
    timeline: pd.DataFrame
    events: pd.DataFrame
    summary: dict
    capacity: dict
    end_time: float
    window: tuple[float, float] = (0.0, 0.0)    # the measurement window [warm-up, end or horizon - cool-down]
    stats: dict = field(default_factory=dict)   # wall time, events/s: not written with the results
    warnings: list = field(default_factory=list)  # problems that did not stop the run (skipped trace rows)
    links: pd.DataFrame | None = None  # network link load over time (docs/metrics.md#links); empty without a network
    requests: pd.DataFrame | None = None        # one row per inference request (None without services)
    service_windows: pd.DataFrame | None = None  # per service and metrics window (None without services)
    storage: pd.DataFrame | None = None  # the storage service over time (empty without a storage section)

    @property
    def label(self) -> str:
        """The policy with its parameters, e.g. ``las[thresholds=[1h,10h]]`` (the name alone
        without parameters): tells parameterised variants of one policy apart."""
        from lepsim.experiments.policyspec import policy_label

        return policy_label(self.policy, self.scenario.scheduler.params)

    def measured_completed(self) -> pd.DataFrame:
        """The jobs the JCT, queueing and slowdown metrics use: measured and completed."""
        j = self.jobs
        return j[j["measured"] & (j["status"] == "completed")]

    def save(self, folder: str | Path, *, formats=("parquet", "csv")) -> Path:
        """Write the run folder (atomically); see :func:`lepsim.report.run_folder.write_run`."""
        from lepsim.report.run_folder import write_run

        return write_run(self, Path(folder), formats=formats)


def _window(scenario: Scenario, end_time: float) -> tuple[float, float]:
    sim = scenario.simulation
    lo = sim.warmup
    hi = (sim.horizon - sim.cooldown) if sim.horizon is not None else end_time
    return lo, max(hi, lo)


def _gpu_power(catalog, gpu_types) -> dict:
    """GPU type -> TDP in watts, from the hardware catalog."""
    from lepsim.hardware import default_catalog

    cat = catalog or default_catalog()
    return {t: cat.gpus[t].tdp_watts for t in gpu_types if t in cat.gpus}


def simulate(
    scenario: Scenario | str | Path,
    *,
    policy: str | None = None,
    params: dict | None = None,
    seed: int | None = None,
    progress: Callable[[float], None] | None = None,
    catalog=None,
    measure_memory: bool = False,
) -> Result:
    """Run one simulation.

    ``scenario`` is a :class:`Scenario` or a path.  ``policy``/``params`` override the
    scenario's scheduler, ``seed`` its seed (the workload is drawn from the seed, so every
    policy sees the identical jobs).  ``progress(t)`` is called with the simulated time.
    Raises :class:`lepsim.errors.ScenarioError` when the scenario cannot run.
    """
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario, catalog=catalog)
    if policy is not None or params is not None or seed is not None:
        scenario = scenario.with_overrides(policy=policy, params=params, seed=seed)
    parts, problems = build_parts(scenario, catalog=catalog)
    if problems:
        raise ScenarioError(problems)
    if measure_memory:
        tracemalloc.start()
    t0 = time.perf_counter()
    sim = Simulation(scenario, parts.nodes, parts.jobs, parts.policy, parts.cost_model, progress=progress,
                     topology=parts.topology, services=parts.services)
    raw = sim.run()
    t1 = time.perf_counter()
    window = _window(scenario, raw.end_time)
    jobs = jobs_frame(raw, window)
    intervals = intervals_frame(raw)
    timeline = timeline_frame(raw)
    events = events_frame(raw)
    links = links_frame(raw)
    storage = storage_frame(raw)
    summary = summarize(jobs, intervals, timeline, capacity=raw.capacity, window=window, storage=storage, events=events,
                        links=links)
    summary.update(cost_and_energy(intervals, raw.billing, _gpu_power(catalog, raw.gpu_types)))
    requests = service_windows = None
    if raw.services is not None:
        requests = requests_frame(raw, window)
        service_windows = service_windows_frame(raw, requests, intervals)
        gpu_price = {n.index: n.price_per_hour / n.gpus for n in parts.nodes if n.price_per_hour is not None and n.gpus}
        summary.update(service_summary(raw, requests, intervals, window, gpu_price))
    summary = {"scenario": scenario.name or "", "policy": scenario.scheduler.policy,
               "seed": scenario.simulation.seed, **summary}
    t2 = time.perf_counter()
    stats = dict(raw.stats)
    stats.update(
        wall_simulate_s=t1 - t0,
        wall_metrics_s=t2 - t1,
    )
    if measure_memory:
        stats["peak_memory_bytes"] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return Result(
        scenario=scenario,
        policy=scenario.scheduler.policy,
        seed=scenario.simulation.seed,
        jobs=jobs,
        intervals=intervals,
        timeline=timeline,
        events=events,
        summary=summary,
        capacity=raw.capacity,
        end_time=raw.end_time,
        window=window,
        stats=stats,
        warnings=list(parts.warnings),
        links=links,
        requests=requests,
        service_windows=service_windows,
        storage=storage,
    )
