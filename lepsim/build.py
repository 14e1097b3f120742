"""From a validated spec to the parts of a simulation: nodes, jobs, policy, cost model.

Used by the loader (to report problems) and by :func:`lepsim.simulate` (to run).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from lepsim.errors import Problem
from lepsim.hardware import default_catalog
from lepsim.policies import registry
from lepsim.scenario.resolve import build_jobs, resolve_cluster


@dataclass
class Parts:
    nodes: list
    jobs: list
    policy: object
    cost_model: object
    warnings: list  # Problems that did not stop the run (skipped trace rows)
    topology: object = None  # lepsim.engine.topology.Topology (None: unconstrained, built by the engine)
    services: list = ()  # ServicePlans of workload.services (lepsim.inference.workload)


def make_cost_model(scenario, catalog, base_dir):
    """The cost model a scenario uses: the bundled profiles plus the scenario's own."""
    from lepsim.costs import build_cost_model

    paths = [str(p if Path(p).is_absolute() else base_dir / p) for p in scenario.costs.profiles]
    return build_cost_model(catalog, profile_paths=tuple(paths))


def _workload_key(scenario, seed, catalog, base_dir) -> tuple:
    """What the nodes and jobs of a scenario depend on (traces by their modification time)."""
    stamps = []
    paths = [t.path for t in scenario.workload.traces]
    paths += [s.arrivals.path for s in scenario.workload.services if s.arrivals.kind == "trace"]
    paths += [e.trace for e in scenario.cluster.pools if getattr(e, "trace", None) is not None]
    for t in paths:
        p = Path(t) if Path(t).is_absolute() else base_dir / t
        stamps.append(p.stat().st_mtime_ns if p.is_file() else None)
    return (
        scenario.simulation.seed if seed is None else seed,
        scenario.simulation.horizon,
        id(catalog),
        str(base_dir),
        scenario.model_dump_json(include={"cluster", "workload", "costs", "storage", "failures"}),
        tuple(stamps),
    )


def _build_workload(scenario, catalog, base_dir, seed, cost, add, problems):
    """Nodes, jobs, warnings and topology; appends problems (cluster, network, workload, costs of jobs)."""
    from lepsim.engine.topology import build_topology

    nodes, cluster_problems = resolve_cluster(scenario.cluster, catalog, base_dir)
    for path, msg in cluster_problems:
        add(path, msg)
    if cluster_problems:
        return nodes, [], [], None, []
    topology, net_problems = build_topology(scenario.cluster.network, nodes, catalog)
    for path, msg in net_problems:
        add(path, msg)
    jobs, job_problems, warnings = build_jobs(scenario, catalog, nodes, base_dir, seed=seed)
    for p in job_problems:
        if isinstance(p, Problem):
            problems.append(p)
        else:
            add(*p)
    reported: set = set()

    def report(job, field: str, msg: str) -> None:
        """At the trace row a job came from, or at its scenario field (once per source)."""
        if (job.source, msg) in reported:
            return
        reported.add((job.source, msg))
        if ":" in job.source and not job.source.startswith("workload."):
            f, line = job.source.rsplit(":", 1)
            problems.append(Problem(f, int(line), field, msg))
        else:
            add(f"{job.source}.{field}", msg)

    _check_failures(scenario, nodes, topology, add)
    jobs = _sized_on_reference_gpu(scenario, catalog, jobs, cost, report)
    gpu_types = sorted({n.gpu_type for n in nodes if n.gpu_type is not None})
    for j in jobs:
        if j.iterations is None:
            continue
        if j.gpus == 0:
            report(j, "iterations", "found a CPU-only job with iterations, expected a duration (profiles cost GPU "
                                    "iterations)")
            continue
        for msg in cost.problems(j, [j.gpu_type] if j.gpu_type else gpu_types):
            report(j, "model", msg)
    from lepsim.inference.workload import build_plans

    plans = build_plans(scenario, catalog, nodes, cost, base_dir, seed, add)
    if not jobs and not scenario.workload.services and not problems:
        add("workload", "found no jobs (every source was empty within the horizon), expected at least one job")
    return nodes, jobs, warnings, topology, plans


def _check_failures(scenario, nodes, topology, add) -> None:
    """Faults name existing nodes; storage outages need a storage section; link outages a
    network section and one of its cables."""
    fl = getattr(scenario, "failures", None)
    if fl is None:
        return
    names = {n.name for n in nodes}
    for i, f in enumerate(fl.faults):
        if f.node not in names:
            shown = ", ".join(sorted(names)[:6]) + (", ..." if len(names) > 6 else "")
            add(f"failures.faults[{i}].node", f"found {f.node!r}, expected a node name ('<pool>/<k>'): {shown}")
    if fl.storage_outages and getattr(scenario, "storage", None) is None:
        add("failures.storage_outages", "found storage outages without a storage section, expected a top-level "
                                        "storage: {bandwidth: ...}")
    if not fl.link_outages:
        return
    if scenario.cluster.network is None:
        add("failures.link_outages", "found link outages without cluster.network, expected a network section "
                                     "(cluster.network: {...}) whose cables they take down")
        return
    for i, o in enumerate(fl.link_outages):
        a, b = o.link
        if not topology.has_cable(a, b):
            add(f"failures.link_outages[{i}].link", f"found [{a}, {b}], expected a cable of the network: "
                                                    f"{topology.describe_cables()}")


def _sized_on_reference_gpu(scenario, catalog, jobs, cost, report):
    """Jobs of generators with ``reference_gpu``: duration D on that GPU type (the job's GPUs
    on one node) becomes round(D / iteration_time) iterations, at least 1."""
    refs = {}
    for i, g in enumerate(scenario.workload.generators):
        if g.reference_gpu is not None:
            refs[f"workload.generators[{i}]"] = catalog.gpu_name(g.reference_gpu) or g.reference_gpu
    if not refs:
        return jobs
    from dataclasses import replace

    from lepsim.costs.base import MissingProfile

    out = []
    for j in jobs:
        ref = refs.get(j.source)
        if ref is None or j.duration is None:
            out.append(j)
            continue
        if catalog.gpu_name(ref) is None:
            report(j, "reference_gpu", f"found {ref!r}, expected a GPU type: {', '.join(catalog.known_gpu_names())}")
            out.append(j)
            continue
        try:
            t = cost.iteration_time(j.model, ref, (max(j.gpus, 1),), j.batch_size)
        except MissingProfile as e:
            report(j, "reference_gpu", f"cannot size model {j.model!r} on {ref}: {e}")
            out.append(j)
            continue
        out.append(replace(j, duration=None, iterations=float(max(1, round(j.duration / t)))))
    return out


def build_parts(scenario, *, catalog=None, src=None, seed: int | None = None, policy=None):
    """(Parts or None, list of problems).  The nodes and jobs are built once per workload
    content and seed (cached on the scenario); the policy is always a fresh instance.  ``src`` (the loader's source) gives line numbers."""
    from lepsim.scenario.loader import _Source, pydantic_problems, scenario_base

    catalog = catalog or default_catalog()
    base_dir, display = scenario_base(scenario)
    if src is None:
        src = _Source(display, scenario.model_dump(mode="python"), {})
    problems: list[Problem] = []

    def add(path, msg):
        problems.append(src.problem(path, msg))

    # policy and its parameters
    pol = policy
    if pol is None:
        try:
            cls = registry.get(scenario.scheduler.policy)
        except KeyError:
            why = registry.broken().get(scenario.scheduler.policy)
            names = ", ".join(registry.available())
            add("scheduler.policy", why or f"found {scenario.scheduler.policy!r}, expected a policy: {names}")
            cls = None
        if cls is not None:
            try:
                pol = cls(cls.Config.model_validate(scenario.scheduler.params))
            except ValidationError as e:
                problems.extend(pydantic_problems(src, e, prefix=("scheduler", "params"), model=cls.Config,
                                                  data=scenario.scheduler.params))

    # cost model (profiles named by the scenario must load)
    try:
        cost = make_cost_model(scenario, catalog, base_dir)
    except (OSError, ValueError) as e:
        add("costs.profiles", f"cannot load profiles: {e}")
        from lepsim.costs import CostModel

        cost = CostModel()

    key = _workload_key(scenario, seed, catalog, base_dir)
    built = scenario._built.get(key)
    if built is None:
        n_before = len(problems)
        nodes, jobs, warnings, topology, plans = _build_workload(scenario, catalog, base_dir, seed, cost, add, problems)
        if len(problems) == n_before:
            scenario._built[key] = (nodes, jobs, warnings, topology, plans)  # shared by copies: the key is the content
    else:
        nodes, jobs, warnings, topology, plans = built
    if problems:
        return None, problems
    return Parts(nodes, jobs, pol, cost, warnings, topology, plans), []
