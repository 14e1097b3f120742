"""Sweeps: a grid over scenario parameters × policies × seeds, one Parquet table.

A sweep file names a scenario, a grid of dotted scenario paths with their values, the
policies and the seeds.  Every cell (grid point × policy × seed) is one simulation; its
summary is recorded in ``cells/<cell_id>.json`` as soon as it finishes (atomically), so an
interrupted sweep resumes where it stopped and reruns only missing cells.  The table
``results.parquet`` (one row per finished cell, in cell order) is assembled from those
records, the same way whether the cells ran in this process, on a local process pool or as
Ray tasks: the same sweep gives the same table, bit for bit.  See docs/experiments.md.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Callable, Union

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from lepsim.errors import Problem, ScenarioError
from lepsim.experiments.compare import effective_policy
from lepsim.experiments.policyspec import PolicySpec, format_value, parse_policy
from lepsim.experiments.pool import default_workers, run_tasks

SWEEP_FORMAT = 1


# ----------------------------------------------------------------------------- the sweep file
class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PolicyEntry(_Spec):
    name: str = Field(min_length=1, description="policy name (lepsim policies lists them)")
    params: dict[str, Any] = Field(default_factory=dict, description="the policy's parameters")
    label: str | None = Field(None, description="label in the table (default name[key=value,...])")


class SweepSpec(_Spec):
    """A sweep file."""

    name: str | None = Field(None, description="name of the sweep (default: the file name without .yaml)")
    scenario: str = Field(description="scenario file, relative to the sweep file")
    set: dict[str, Any] = Field(default_factory=dict,
                                description="dotted scenario paths set in every cell (e.g. a shorter horizon)")
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(
        default_factory=dict, description="dotted scenario path → list of values; every combination is a grid point")
    policies: list[Union[str, PolicyEntry]] = Field(min_length=1, description="NAME, NAME[KEY=VALUE,...] or "
                                                                              "{name, params, label}")
    seeds: Union[int, list[int]] = Field(1, description="a count (counting up from the scenario's seed) or a list "
                                                        "of distinct seeds")

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, v):
        def is_int(x):
            return isinstance(x, int) and not isinstance(x, bool)

        if is_int(v):
            if v < 1:
                raise ValueError(f"found {v}, expected a count of at least 1 or a list of seeds")
            return v
        if isinstance(v, list) and v and all(is_int(x) and x >= 0 for x in v):
            if len(set(v)) != len(v):
                raise ValueError(f"found repeated seeds {v}, expected distinct seeds")
            return v
        raise ValueError(f"found {v!r}, expected a count of at least 1 or a non-empty list of seeds (integers >= 0)")


@dataclass(frozen=True)
class Cell:
    """One simulation of a sweep."""

    index: int
    point: tuple                # ((path, value as written), ...) in grid order
    policy: PolicySpec
    seed: int
    cell_id: str                # hash of everything the simulation depends on
    scenario_json: str          # the scenario as run (overrides and policy applied), JSON
    resolved: tuple             # ((path, value the scenario holds at that path), ...)


@dataclass
class Sweep:
    """A validated sweep: its cells in order, ready to run."""

    name: str
    file: str
    spec: SweepSpec
    source: tuple               # the scenario's (base folder, display name)
    cells: list[Cell] = field(default_factory=list)

    @property
    def grid_paths(self) -> list[str]:
        return list(self.spec.grid)


# ----------------------------------------------------------------------------- loading
def _get(data, path: tuple):
    for p in path:
        data = data[p]
    return data


def load_sweep(path: str | Path | dict, *, base_dir: str | Path | None = None) -> Sweep:
    """Read and validate a sweep file: the schema, the scenario it names, every policy and
    every grid value (each cell's scenario is built and checked).  Raises
    :class:`ScenarioError` listing every problem as ``FILE:LINE: field.path: message``.

    ``path`` may also be a mapping with the file's content (a sweep built in Python); its
    ``scenario`` is then relative to ``base_dir`` (default: the working folder)."""
    from lepsim.scenario.loader import (
        _read,
        _Source,
        check_scenario,
        load_scenario,
        parse_path,
        pydantic_problems,
    )

    if isinstance(path, dict):
        display = "<sweep>"
        p = Path(base_dir or ".") / "sweep.yaml"
        src = _Source(display, path, {})
    else:
        p = Path(path)
        display = str(path)
        src = _read(p, display, kind="sweep", keys="scenario, grid, policies and seeds")
    data = src.data
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(pydantic_problems(src, e, model=SweepSpec)) from None

    problems: list[Problem] = []
    scen_path = Path(spec.scenario)
    if not scen_path.is_absolute():
        scen_path = p.resolve().parent / scen_path
    if not scen_path.is_file():
        raise ScenarioError([src.problem(("scenario",), f"found {spec.scenario!r}, no such file; expected a scenario "
                                                        "file (relative to the sweep file)")])
    base = load_scenario(scen_path)   # its own problems are reported at its own lines

    policies: list[PolicySpec] = []
    for i, item in enumerate(spec.policies):
        try:
            ps = parse_policy(item) if isinstance(item, str) else PolicySpec(item.name, dict(item.params),
                                                                              item.label or "")
        except ValueError as e:
            problems.append(src.problem(("policies", i), str(e)))
            continue
        ps = effective_policy(base, ps)
        if any(q.label == ps.label for q in policies):
            problems.append(src.problem(("policies", i), f"found policy {ps.label!r} twice, expected each policy "
                                                         "(with its parameters) once"))
        policies.append(ps)

    def override_problems(where: tuple, values: dict) -> list[Problem]:
        try:
            base.with_overrides(values=values)
        except ScenarioError as e:
            return [src.problem(where, q.message) for q in e.problems]
        return []

    set_problems = [q for k, v in spec.set.items() for q in override_problems(("set", k), {k: v})]
    problems += set_problems
    common = base.with_overrides(values=dict(spec.set)) if spec.set and not set_problems else base
    for i, ps in enumerate(policies):   # a policy's own problems, once each, at its line
        for q in check_scenario(common.with_overrides(policy=ps.name, params=dict(ps.params))):
            if q.path.startswith("scheduler"):
                problems.append(src.problem(("policies", i), f"{q.path}: {q.message}"))
    for k, vals in spec.grid.items():
        said: set = set()   # a bad path is said once, not once per value
        for i, v in enumerate(vals):
            for q in override_problems(("grid", k, i), {**({} if set_problems else spec.set), k: v}):
                if q.message not in said:
                    said.add(q.message)
                    problems.append(q)
    if problems:
        raise ScenarioError(problems)

    seeds = ([base.simulation.seed + i for i in range(spec.seeds)] if isinstance(spec.seeds, int)
             else list(spec.seeds))
    sweep = Sweep(spec.name or (p.stem.removesuffix(".sweep") if display != "<sweep>" else "sweep"), display, spec,
                  base._source)
    paths = list(spec.grid)
    points = list(itertools.product(*(spec.grid[k] for k in paths))) or [()]
    seen_problems: set = set()
    for values in points:
        point = tuple(zip(paths, values))
        where = ", ".join(f"{k}={format_value(v)}" for k, v in point)
        variant = base.with_overrides(values={**spec.set, **dict(point)}) if (spec.set or point) else base
        dumped = variant.model_dump(mode="python")
        resolved = tuple((k, _get(dumped, tuple(int(x) if isinstance(x, str) and x.isdigit() else x
                                                for x in parse_path(k)))) for k in paths)
        for q in check_scenario(variant):     # what a combination breaks: said once, for its first grid point
            if str(q) not in seen_problems and not q.path.startswith("scheduler"):
                seen_problems.add(str(q))
                problems.append(Problem(display, src.line(("grid",)), "", f"{q} (first at the grid point {where})"))
        for ps in policies:
            scen = variant.with_overrides(policy=ps.name, params=dict(ps.params))
            sj = scen.model_dump_json()
            for seed in seeds:
                cid = hashlib.sha256(json.dumps({"scenario": sj, "seed": seed, "format": SWEEP_FORMAT},
                                                sort_keys=True).encode()).hexdigest()[:20]
                sweep.cells.append(Cell(len(sweep.cells), point, ps, seed, cid, sj, resolved))
    if problems:
        raise ScenarioError(problems)
    return sweep


# ----------------------------------------------------------------------------- one cell
def run_cell(task: dict) -> dict:
    """Simulate one cell; return its summary (JSON-safe).  Runs in any process: the task
    carries the scenario as JSON and the folder its relative paths resolve against."""
    import lepsim
    from lepsim.report.run_folder import _clean
    from lepsim.scenario.spec import Scenario

    scenario = Scenario.model_validate_json(task["scenario_json"])
    scenario._source = tuple(task["source"]) if task["source"] else None
    result = lepsim.simulate(scenario, seed=task["seed"])
    summary = {k: v for k, v in result.summary.items() if k not in ("scenario", "policy", "seed")}
    return _clean(summary)


def _task(sweep: Sweep, cell: Cell) -> dict:
    return {"scenario_json": cell.scenario_json, "source": list(sweep.source) if sweep.source else None,
            "seed": cell.seed, "cell_id": cell.cell_id}


# ----------------------------------------------------------------------------- records
def cell_path(folder: Path, cell: Cell) -> Path:
    return Path(folder) / "cells" / f"{cell.cell_id}.json"


def read_done(folder: Path, sweep: Sweep) -> dict[int, dict]:
    """{cell index: summary} of the cells already recorded in ``folder``."""
    out = {}
    for c in sweep.cells:
        f = cell_path(folder, c)
        if f.is_file():
            try:
                rec = json.loads(f.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue   # unreadable: run it again
            if rec.get("cell_id") == c.cell_id:
                out[c.index] = rec["summary"]
    return out


def record_cell(folder: Path, cell: Cell, summary: dict) -> None:
    from lepsim.report.run_folder import atomic_write_text, dumps

    atomic_write_text(cell_path(folder, cell), dumps({"cell_id": cell.cell_id, "summary": summary}))


def results_table(sweep: Sweep, done: dict[int, dict]) -> pd.DataFrame:
    """One row per finished cell, in cell order: ``cell``, ``cell_id``, each grid path
    (the value the scenario held, SI units) and ``<path>:given`` (as written in the sweep
    file), ``policy`` (label), ``policy_name``, ``seed``, then every summary metric."""
    from lepsim.experiments.compare import metric_names
    from lepsim.report.run_folder import _clean

    rows = []
    cells = [c for c in sweep.cells if c.index in done]
    for c in cells:
        row: dict = {"cell": c.index, "cell_id": c.cell_id}
        for (k, given), (_, value) in zip(c.point, c.resolved):
            # a number or text as the scenario holds it; a mapping or list (a distribution) as JSON
            row[k] = json.dumps(_clean(value), sort_keys=True) if isinstance(value, (dict, list, tuple)) else value
            row[f"{k}:given"] = format_value(given)
        row.update(policy=c.policy.label, policy_name=c.policy.name, seed=c.seed)
        row.update(done[c.index])
        rows.append(row)
    keys = ["cell", "cell_id"] + [x for k in sweep.grid_paths for x in (k, f"{k}:given")] + \
        ["policy", "policy_name", "seed"]
    metrics = metric_names(done[c.index] for c in cells)
    df = pd.DataFrame(rows, columns=keys + [m for m in metrics if m not in keys])
    for m in metrics:
        if m not in keys:
            df[m] = pd.to_numeric(df[m]) if len(df) else df[m].astype(float)
    return df


def write_table(folder: Path, sweep: Sweep, done: dict[int, dict]) -> Path:
    from lepsim.report.run_folder import atomic_file, atomic_write_text, dumps

    folder = Path(folder)
    out = folder / "results.parquet"
    with atomic_file(out) as tmp:
        results_table(sweep, done).to_parquet(tmp, index=False)
    atomic_write_text(folder / "sweep.json", dumps({
        "lepsim_sweep_format": SWEEP_FORMAT, "name": sweep.name, "sweep_file": sweep.file,
        "spec": sweep.spec.model_dump(mode="json"), "cells": len(sweep.cells), "finished": len(done),
    }))
    return out


# ----------------------------------------------------------------------------- running
@dataclass
class SweepOutcome:
    table: pd.DataFrame
    path: Path
    ran: int                     # cells simulated by this call
    reused: int                  # cells found already recorded
    failed: dict = field(default_factory=dict)   # cell index → one-line reason


def run_sweep(sweep: Sweep | str | Path, folder: str | Path, *, workers: int | None = None, ray: str | None = None,
              progress: Callable[[int, int], None] | None = None) -> SweepOutcome:
    """Run the sweep's missing cells and write ``folder/results.parquet``.

    ``workers``: local processes (default: the CPUs this process may use; 1 runs the cells
    in this process).  ``ray``: a Ray address or ``"auto"``: run the cells as Ray tasks
    instead (an already initialised Ray connection in this process is used as is).
    ``progress(finished, total)`` is called as cells finish.  Every finished cell is
    recorded at once, so an interruption loses only the cells that were running."""
    if not isinstance(sweep, Sweep):
        sweep = load_sweep(sweep)
    folder = Path(folder)
    done = read_done(folder, sweep)
    reused = len(done)
    todo = [c for c in sweep.cells if c.index not in done]
    failed: dict = {}
    total = len(sweep.cells)
    if progress is not None:
        progress(len(done), total)

    def finished(cell: Cell, summary: dict | None, error: str | None) -> None:
        if error is not None:
            failed[cell.index] = error
        else:
            record_cell(folder, cell, summary)
            done[cell.index] = summary
        if progress is not None:
            progress(len(done) + len(failed), total)

    ray_started = _ray_connect(ray) if ray is not None and todo else None   # before anything is written
    try:
        if todo:
            (folder / "cells").mkdir(parents=True, exist_ok=True)
        if not todo:
            pass
        elif ray is not None:
            _run_ray(sweep, todo, finished, shutdown=ray_started)
        else:
            run_tasks(_guarded_cell, [_task(sweep, c) for c in todo], workers or default_workers(),
                      lambda i, res: finished(todo[i], *res))
    finally:
        path = write_table(folder, sweep, done)
    return SweepOutcome(results_table(sweep, done), path, len(done) - reused, reused, failed)


def _guarded_cell(task) -> tuple[dict | None, str | None]:
    return _guarded(run_cell, task)


def _guarded(fn, task) -> tuple[dict | None, str | None]:
    """(summary, None) or (None, one-line reason) for errors a cell can raise."""
    from lepsim.errors import PolicyError

    try:
        return fn(task), None
    except ScenarioError as e:
        return None, "; ".join(str(p) for p in e.problems)
    except (PolicyError, LookupError, ValueError) as e:
        return None, f"{type(e).__name__}: {e}"


def _ray_connect(address: str) -> bool:
    """Connect to Ray (unless this process already is); True when this call connected."""
    import ray

    if ray.is_initialized():
        return False
    ray.init(address=address, log_to_driver=False)
    return True


def _run_ray(sweep: Sweep, todo: list[Cell], finished, *, shutdown: bool) -> None:
    import ray

    try:
        remote = ray.remote(num_cpus=1)(_guarded_cell)
        pending = {remote.remote(_task(sweep, c)): c for c in todo}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                finished(pending.pop(ref), *ray.get(ref))
    finally:
        if shutdown:
            ray.shutdown()
