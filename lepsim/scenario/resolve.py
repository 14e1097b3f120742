"""Turn validated specs into resolved data: concrete nodes, and the list of job requests.

Both functions return ``(value, problems)``: problems carry the field path (and for trace
rows the trace file and line) so that the loader can report every one of them at once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from lepsim.errors import Problem
from lepsim.hardware import Catalog
from lepsim.policies.placement import covers
from lepsim.rng import Streams
from lepsim.workload.distributions import support_max, support_min
from lepsim.workload.generators import generate
from lepsim.workload.jobs import JobRequest
from lepsim.workload.importers import read_jobs


@dataclass(frozen=True, slots=True)
class NodeInfo:
    index: int
    name: str
    pool: str
    gpu_type: str | None
    gpus: int
    cpus: int
    memory_bytes: float
    intra_node_link: str
    nic_bandwidth: float
    labels: tuple[tuple[str, str], ...]
    price_per_hour: float | None = None      # dollars per node-hour (None: not priced)
    autoscale_min: int | None = None          # autoscaling pool: nodes provisioned at start (None: a fixed pool)
    provisioning_delay: float = 0.0           # autoscaling pool: seconds from AddNodes to allocatable


# A problem found while resolving: (field path, message); the loader adds file and line.
PathProblem = tuple[str, str]


def _expand_pools(spec, catalog: Catalog, base_dir: Path | None, problems: list) -> list[tuple[str, object]]:
    """(field path, NodePool) of every pool, reading ``{trace, format}`` entries' files."""
    from pydantic import ValidationError

    from lepsim.scenario.spec import NodePool, PoolsFromTrace
    from lepsim.workload.importers import ImportOptions, read_format

    out: list[tuple[str, object]] = []
    for i, entry in enumerate(spec.pools):
        path = f"cluster.pools[{i}]"
        if not isinstance(entry, PoolsFromTrace):
            out.append((path, entry))
            continue
        gt = None
        if entry.gpu_type is not None:
            gt = catalog.gpu_name(entry.gpu_type)
            if gt is None:
                problems.append((path + ".gpu_type", f"found {entry.gpu_type!r}, expected a GPU type: "
                                                     f"{', '.join(catalog.known_gpu_names())}"))
                continue
        p = Path(entry.trace)
        if not p.is_absolute():
            p = (base_dir or Path.cwd()) / p
        if not p.is_file():
            problems.append((path + ".trace", f"found {entry.trace!r}, which is not a file (relative paths start at "
                                              f"the scenario's folder), expected a cluster file ({entry.format})"))
            continue
        res = read_format(entry.format, p, entry.trace, ImportOptions(gpu_types=dict(entry.gpu_types), gpu_type=gt))
        bad = res.errors + res.problems
        problems.extend((path + ".trace", str(b)) for b in bad)
        if bad:
            continue
        for d in res.rows:
            try:
                out.append((path, NodePool.model_validate(d)))
            except ValidationError as e:
                problems.append((path + ".trace", f"{entry.trace}: pool {d.get('name')!r}: "
                                                  f"{e.errors(include_url=False)[0]['msg']}"))
    return out


def resolve_cluster(spec, catalog: Catalog, base_dir: Path | None = None) -> tuple[list[NodeInfo], list[PathProblem]]:
    """Nodes of a cluster spec; ``base_dir``: where relative cluster-file paths start (default: cwd)."""
    nodes: list[NodeInfo] = []
    problems: list[PathProblem] = []
    names_seen: dict[str, int] = {}
    for path, pool in _expand_pools(spec, catalog, base_dir, problems):
        tpl = None
        if pool.template is not None:
            tpl = catalog.nodes.get(pool.template)
            if tpl is None:
                problems.append(
                    (path + ".template", f"found {pool.template!r}, expected a node template: {', '.join(sorted(catalog.nodes))}")
                )
                continue
        gpu_type = pool.gpu_type if pool.gpu_type is not None else (tpl.gpu_type if tpl else None)
        if gpu_type is not None:
            canon = catalog.gpu_name(gpu_type)
            if canon is None:
                problems.append(
                    (path + ".gpu_type", f"found {gpu_type!r}, expected a GPU type: {', '.join(catalog.known_gpu_names())}")
                )
                continue
            gpu_type = canon
        gpus = pool.gpus_per_node if pool.gpus_per_node is not None else tpl.gpus
        if gpu_type is None and gpus:
            problems.append((path + ".gpus_per_node", f"found {gpus} GPUs on a CPU-only node, expected 0 or a gpu_type"))
            continue
        if gpu_type is not None and gpus == 0:
            gpu_type = None
        cpus = pool.cpus if pool.cpus is not None else tpl.cpus
        mem = pool.memory if pool.memory is not None else tpl.memory_bytes
        link = pool.intra_node_link or (tpl.intra_node_link if tpl else ("pcie" if gpus else "none"))
        nic = tpl.nic_bandwidth if tpl else 0.0
        pname = pool.name or pool.template or (gpu_type or "cpu")
        if pname in names_seen:
            names_seen[pname] += 1
            pname = f"{pname}-{names_seen[pname]}"
        else:
            names_seen[pname] = 0
        for k in range(pool.count):
            nodes.append(
                NodeInfo(
                    index=len(nodes),
                    name=f"{pname}/{k}",
                    pool=pname,
                    gpu_type=gpu_type,
                    gpus=int(gpus),
                    cpus=int(cpus),
                    memory_bytes=float(mem),
                    intra_node_link=link,
                    nic_bandwidth=float(nic),
                    labels=tuple(sorted(pool.labels.items())),
                    price_per_hour=pool.price_per_hour,
                    autoscale_min=None if pool.autoscale is None else pool.autoscale.min,
                    provisioning_delay=0.0 if pool.autoscale is None else pool.autoscale.provisioning_delay,
                )
            )
    return nodes, problems


def capacity_by_type(nodes: list[NodeInfo]) -> dict[str | None, int]:
    cap: dict[str | None, int] = {}
    for n in nodes:
        cap[n.gpu_type] = cap.get(n.gpu_type, 0) + n.gpus
    return cap


def fit_problem(gpus: int, cpus: float, mem: float, gpu_type: str | None, nodes: list[NodeInfo],
                node_selector: tuple = ()) -> str | None:
    """Why a job of this shape could never be placed on an empty cluster (None: it can)."""
    if node_selector:
        nodes = [n for n in nodes if set(node_selector) <= set(n.labels)]
        if not nodes:
            return "requires node labels " + ", ".join(f"{k}={v}" for k, v in node_selector) + ", which no node has"
    if gpus == 0:
        if any(covers(n.cpus, cpus) and covers(n.memory_bytes, mem) for n in nodes):
            return None
        return f"asks {cpus:g} CPUs and {mem / 2**30:.3g} GiB on one node; no node is that large"
    best = 0
    shortfall = None
    for t in sorted({n.gpu_type for n in nodes if n.gpu_type is not None}):
        if gpu_type is not None and t != gpu_type:
            continue
        pool = [n for n in nodes if n.gpu_type == t]
        total = sum(n.gpus for n in pool)
        best = max(best, total)
        if total < gpus:
            continue
        # CPU and memory are charged per node in proportion to the GPUs used there
        usable = sum(_usable_gpus(n, cpus / gpus, mem / gpus) for n in pool)
        if usable >= gpus:
            return None  # some type can hold it
        shortfall = shortfall or (f"asks {cpus / gpus:g} CPUs and {mem / gpus / 2**30:.3g} GiB per GPU; the {t} nodes "
                                  f"can hold only {usable} such GPUs")
    if shortfall:
        return shortfall
    where = f"of type {gpu_type}" if gpu_type else "of one type"
    return f"asks {gpus} GPUs, but the cluster has at most {best} GPUs {where}"


def _usable_gpus(n: NodeInfo, cpus_per_gpu: float, mem_per_gpu: float) -> int:
    """GPUs of node ``n`` a job can use when each GPU brings its CPU and memory share."""
    k = n.gpus
    while k > 0 and not (covers(n.cpus, cpus_per_gpu * k) and covers(n.memory_bytes, mem_per_gpu * k)):
        k -= 1
    return k


def _elastic(src, gpus: int) -> dict:
    """min_gpus/max_gpus of one job (a missing bound is its GPU count); {} when not elastic."""
    if src.min_gpus is None and src.max_gpus is None:
        return {}
    return dict(min_gpus=gpus if src.min_gpus is None else src.min_gpus,
                max_gpus=gpus if src.max_gpus is None else src.max_gpus)


def build_jobs(scenario, catalog: Catalog, nodes: list[NodeInfo], base_dir: Path, seed: int | None = None):
    """All job requests of a scenario, in submit order, with ids; plus problems.

    Problems are ``(path, message)`` for scenario fields, or :class:`Problem` for trace rows;
    warnings are the trace rows skipped with ``skip_bad_rows``.
    """
    wl = scenario.workload
    sim = scenario.simulation
    streams = Streams(sim.seed if seed is None else seed)
    problems: list = []
    warnings: list[Problem] = []  # skipped trace rows
    raw: list[tuple] = []  # (submit, source_rank, seq, fields)
    cpg_default, mpg_default = wl.defaults.cpus_per_gpu, wl.defaults.memory_per_gpu
    storage = getattr(scenario, "storage", None)

    def canon_type(t, path):
        if t is None:
            return None
        c = catalog.gpu_name(t)
        if c is None:
            problems.append((path, f"found {t!r}, expected a GPU type: {', '.join(catalog.known_gpu_names())}"))
        return c

    for i, j in enumerate(wl.jobs):
        path = f"workload.jobs[{i}]"
        gt = canon_type(j.gpu_type, path + ".gpu_type")
        cpus = j.cpus if j.cpus is not None else j.gpus * cpg_default
        mem = j.memory if j.memory is not None else j.gpus * mpg_default
        raw.append((j.submit, 0, i, dict(name=j.name or f"job-{i}", gpus=j.gpus, cpus=cpus, memory_bytes=mem,
                                         tenant=j.tenant, model=j.model, gpu_type=gt, duration=j.duration,
                                         iterations=j.iterations, batch_size=j.batch_size, source=path,
                                         node_selector=tuple(sorted(j.node_selector.items())),
                                         gpu_fraction=j.gpu_fraction if j.gpus == 1 else 1.0,
                                         priority=j.priority, **_elastic(j, j.gpus),
                                         **_data_fields(j, storage, path, problems))))

    for i, g in enumerate(wl.generators):
        path = f"workload.generators[{i}]"
        gt = canon_type(g.gpu_type, path + ".gpu_type")
        if g.end is None and g.count is None and sim.horizon is None:
            problems.append((path, "found neither end nor count and no simulation.horizon, expected a bound on arrivals"))
            continue
        gmax = support_max(g.gpus)
        if not math.isfinite(gmax):
            problems.append((path + ".gpus", f"found an unbounded {g.gpus.dist} distribution, expected a bounded one "
                             "(constant, choice, uniform, bounded_pareto, loguniform, or lognormal with max)"))
            continue
        if support_min(g.gpus) < 0:
            problems.append((path + ".gpus", "can generate negative GPU counts, expected values >= 0"))
            continue
        size = g.duration if g.duration is not None else g.iterations
        # (exponential-family and log-normal draws are > 0 even where support_min says 0)
        if support_min(size) <= 0 and size.dist in ("constant", "choice", "uniform"):
            what = "duration" if g.duration is not None else "iterations"
            problems.append((f"{path}.{what}", f"can generate {what} <= 0, expected values > 0"))
            continue
        if g.gpu_fraction < 1 and not (support_min(g.gpus) == 1 and gmax == 1):
            problems.append((path + ".gpu_fraction", f"found {g.gpu_fraction:g} with GPU counts other than 1, "
                             "expected gpus: 1 (a share of one GPU)"))
            continue
        if g.min_gpus is not None or g.max_gpus is not None:
            gmin = support_min(g.gpus)
            lo = g.min_gpus if g.min_gpus is not None else None
            hi = g.max_gpus if g.max_gpus is not None else None
            if g.gpu_fraction < 1 or gmin < 1 or (lo is not None and lo > gmin) or (hi is not None and hi < gmax):
                problems.append((path + (".min_gpus" if g.min_gpus is not None else ".max_gpus"),
                                 f"found min_gpus {lo}, max_gpus {hi} with GPU counts {gmin:g}..{gmax:g}, expected "
                                 "1 <= min_gpus <= every generated gpus <= max_gpus (whole GPUs)"))
                continue
        cpg = g.cpus_per_gpu if g.cpus_per_gpu is not None else cpg_default
        mpg = g.memory_per_gpu if g.memory_per_gpu is not None else mpg_default
        selector = tuple(sorted(g.node_selector.items()))
        why = fit_problem(int(round(gmax)), round(gmax) * cpg, round(gmax) * mpg, gt, nodes, selector)
        if why:
            problems.append((path + (".node_selector" if why.startswith("requires node labels") else ".gpus"),
                             f"can generate a job that {why}"))
            continue
        cols = generate(g, i, streams, sim.horizon, wl.defaults)
        name = g.name or f"gen{i}"
        data = _data_fields(g, storage, path, problems)
        for k in range(len(cols["submit"])):
            raw.append((float(cols["submit"][k]), 1 + i, k, dict(
                name=f"{name}-{k}", gpus=int(cols["gpus"][k]), cpus=float(cols["cpus"][k]),
                memory_bytes=float(cols["memory"][k]), tenant=cols["tenant"][k], model=cols["model"][k], gpu_type=gt,
                duration=None if cols["duration"] is None else float(cols["duration"][k]),
                iterations=None if cols["iterations"] is None else float(cols["iterations"][k]),
                batch_size=g.batch_size, source=path, node_selector=selector, gpu_fraction=g.gpu_fraction,
                priority=g.priority, **_elastic(g, int(cols["gpus"][k])), **data)))

    rank0 = 1 + len(wl.generators)
    fits: dict[tuple, str | None] = {}
    for i, src in enumerate(wl.traces):
        p = Path(src.path)
        if not p.is_absolute():
            p = base_dir / p
        if not p.is_file():
            problems.append((f"workload.traces[{i}].path",
                             f"found {src.path!r}, which is not a file (relative paths start at the scenario's folder), "
                             f"expected a {'CSV' if src.format == 'csv' else src.format} trace"))
            continue
        imported = read_jobs(src, p, src.path)
        rows, bad = imported.rows, imported.problems
        problems.extend(imported.errors)  # the file is not of its format: skipping rows cannot help
        warnings.extend(imported.notes)  # rows the importer leaves out on purpose
        if bad and not src.skip_bad_rows:
            problems.extend(bad)  # and still check the good rows below, to report everything
        else:
            warnings.extend(Problem(b.file, b.line, b.path, b.message + " (row skipped)") for b in bad)
        cpg = src.cpus_per_gpu if src.cpus_per_gpu is not None else cpg_default
        mpg = src.memory_per_gpu if src.memory_per_gpu is not None else mpg_default
        data = _data_fields(src, storage, f"workload.traces[{i}]", problems)
        for k, r in enumerate(rows):
            gt = None
            if r["gpu_type"]:
                gt = catalog.gpu_name(r["gpu_type"])
                if gt is None:
                    problems.append(Problem(src.path, r["line"], "gpu_type", f"found {r['gpu_type']!r}, expected a GPU type"))
                    continue
            cpus = r["cpus"] if r["cpus"] is not None else r["gpus"] * cpg
            mem = r["memory"] if r["memory"] is not None else r["gpus"] * mpg
            shape = (r["gpus"], cpus, mem, gt, r["node_selector"])
            why = fits.get(shape, False)
            if why is False:  # many trace rows share a shape: check each shape once
                why = fits[shape] = fit_problem(r["gpus"], cpus, mem, gt, nodes, r["node_selector"])
            if why:
                problems.append(Problem(src.path, r["line"], "gpus", f"job {why}"))
                continue
            raw.append((r["submit"], rank0 + i, k, dict(
                name=r["name"] or f"trace{i}-{k}", gpus=r["gpus"], cpus=cpus, memory_bytes=mem, tenant=r["tenant"],
                model=r["model"], gpu_type=gt, duration=r["duration"], iterations=r["iterations"],
                batch_size=r["batch_size"], source=f"{src.path}:{r['line']}", node_selector=r["node_selector"],
                gpu_fraction=r["gpu_fraction"], priority=r.get("priority", 0), **data)))

    # inline jobs: check they fit
    for i, j in enumerate(wl.jobs):
        f = raw[i][3]
        if f["gpu_type"] is None and j.gpu_type is not None:
            continue
        why = fit_problem(f["gpus"], f["cpus"], f["memory_bytes"], f["gpu_type"], nodes, f["node_selector"])
        if why:
            problems.append((f"workload.jobs[{i}].node_selector" if why.startswith("requires node labels")
                             else f"workload.jobs[{i}].gpus", f"job {why}"))

    raw.sort(key=lambda r: (r[0], r[1], r[2]))
    isolated = {name for name, t in wl.tenants.items() if t.isolated}
    jobs = [JobRequest(job_id=n, submit_time=r[0], isolated=r[3]["tenant"] in isolated, **r[3])
            for n, r in enumerate(raw)]
    return jobs, problems, warnings


def _data_fields(src, storage, path: str, problems: list) -> dict:
    """A job source's dataset and checkpoint fields as JobRequest keywords; a dataset needs
    a storage section to be read from (a problem otherwise)."""
    for f in ("dataset_size", "dataset_samples"):
        if getattr(src, f) is not None and storage is None:
            problems.append((f"{path}.{f}", "found a dataset without a storage section, expected a top-level "
                                            "storage: {bandwidth: ...} to read it from"))
            break
    return dict(dataset_bytes=src.dataset_size, dataset_samples=src.dataset_samples,
                checkpoint_bytes=src.checkpoint_size, checkpoint_interval=src.checkpoint_interval)
