"""The command line: ``lepsim run|validate|schema|policies|baseline|...``.

This is the only module that prints.  User errors (bad scenario, missing file, bad flag)
are one line each on stderr with exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import re
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse's default prints usage too)
        sys.stderr.write(f"lepsim: {message}\n")
        raise SystemExit(EXIT_USAGE)


def _err(msg: str) -> int:
    sys.stderr.write(msg.rstrip("\n") + "\n")
    return EXIT_USAGE


def _report_scenario_error(e) -> int:
    for p in e.problems:
        sys.stderr.write(f"{p}\n")
    n = len(e.problems)
    sys.stderr.write(f"lepsim: {n} problem{'s' if n != 1 else ''} found; nothing was run or written\n")
    return EXIT_USAGE


def _parse_params(items: list[str]) -> dict:
    out: dict = {}
    import yaml

    for it in items or []:
        if "=" not in it:
            raise ValueError(f"--param {it!r}: expected KEY=VALUE")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v)
        except yaml.YAMLError as e:
            first = str(e).strip().splitlines()[0]
            raise ValueError(f"--param {it!r}: the value is not valid YAML ({first})") from None
    return out


# ----------------------------------------------------------------------------- formatting
def fmt_value(key: str, v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    key = re.sub(r"\[.*\]$", "", key) if not key.startswith("utilization") else key
    if key.endswith("_s"):
        from lepsim.units import format_duration

        return format_duration(float(v))
    if key.startswith("utilization") or key.endswith(("_utilization", "_share", "attainment")):
        return f"{100 * float(v):.1f}%"
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"  # GPU-hours in the thousands: no exponent
    return str(v)


SUMMARY_ROWS = (
    ("jobs_completed", "completed jobs"),
    ("jobs_unfinished", "unfinished jobs"),
    ("jct_mean_s", "mean JCT"),
    ("jct_p50_s", "p50 JCT"),
    ("jct_p95_s", "p95 JCT"),
    ("jct_p99_s", "p99 JCT"),
    ("queueing_delay_mean_s", "mean queueing delay"),
    ("queueing_delay_p95_s", "p95 queueing delay"),
    ("slowdown_mean", "mean slowdown"),
    ("utilization", "GPU allocation utilization"),
    ("queue_length_mean", "mean queue length"),
    ("preemptions_total", "preemptions"),
    ("makespan_s", "makespan"),
)


# what the GPUs delivered in the window: computing vs held (docs/metrics.md)
GPU_TIME_ROWS = (
    ("effective_utilization", "effective GPU utilization (computing)"),
    ("training_gpu_h", "training GPU-h"),
    ("overhead_gpu_h", "  of which overhead (not computing)"),  # checkpoint, restore, resize, load, data stall
)
# shown when a run has a storage section (storage_utilization is a number)
STORAGE_ROWS = (
    ("checkpoint_overhead_share", "checkpoint overhead share"),
    ("data_stall_gpu_h", "data stall GPU-h"),
    ("storage_utilization", "storage utilization"),
)
# shown when a run has a constraining network (busiest_link_utilization is a number)
NETWORK_ROWS = (
    ("comm_share", "communication share of running time"),
    ("busiest_link_utilization", "busiest network link utilization"),
)
FAILURE_ROWS = (
    ("node_failures", "node failures"),
    ("jobs_failed", "failed jobs"),
    ("lost_gpu_h", "GPU-h lost to failures"),
)


# per inference service (keys KEY[SERVICE]), shown when a run has services
SERVICE_ROWS = (
    ("slo_attainment", "SLO attainment"),
    ("goodput_rps", "goodput (req/s in SLO)"),
    ("ttft_p99_s", "p99 time to first token"),
    ("tpot_p99_s", "p99 time per output token"),
    ("e2e_p99_s", "p99 end-to-end latency"),
    ("requests_timeout", "requests timed out"),
    ("requests_rejected", "requests rejected"),
    ("replicas_mean", "mean serving replicas"),
    ("replica_gpu_h", "replica GPU-h"),
    ("usd_per_1k_slo_requests", "$ per 1k requests in SLO"),
)


def service_rows(keys) -> list[tuple[str, str]]:
    """(key, label) rows of every service seen in ``keys`` (``slo_attainment[NAME]``)."""
    names = []
    for k in keys:
        m = re.fullmatch(r"slo_attainment\[(.*)\]", k)
        if m and m.group(1) not in names:
            names.append(m.group(1))
    return [(f"{key}[{n}]", f"{n}: {label}") for n in names for key, label in SERVICE_ROWS]


def summary_table(summaries: list[dict], title: str = "") -> Table:
    t = Table(title=title or None, show_header=True, header_style="bold")
    t.add_column("metric")
    for s in summaries:
        t.add_column(str(s.get("policy", "")), justify="right")
    keys = list(SUMMARY_ROWS)
    extra = sorted({k for s in summaries for k in s if k.startswith("utilization[")})
    keys += [(k, f"  utilization {k[len('utilization['):-1]}") for k in extra]
    keys += list(GPU_TIME_ROWS)
    if any(isinstance(s.get("storage_utilization"), float) and not math.isnan(s["storage_utilization"])
           for s in summaries):
        keys += list(STORAGE_ROWS)
    if any(isinstance(s.get("busiest_link_utilization"), float) and not math.isnan(s["busiest_link_utilization"])
           for s in summaries):
        keys += list(NETWORK_ROWS)
    if any(s.get("node_failures") or s.get("jobs_failed") for s in summaries):
        keys += list(FAILURE_ROWS)
    keys += service_rows(k for s in summaries for k in s)
    for key, label in keys:
        t.add_row(label, *(fmt_value(key, s.get(key)) for s in summaries))
    return t


# ----------------------------------------------------------------------------- commands
def _scenario_from_args(path, args, params: dict):
    """The scenario file with --policy, --param and --seed applied."""
    import lepsim

    scenario = lepsim.load_scenario(path)
    if args.policy or params or args.seed is not None:
        same = args.policy is None or args.policy == scenario.scheduler.policy
        # --param adds to the scenario's parameters for its own policy; another policy
        # starts from its defaults
        merged = {**scenario.scheduler.params, **params} if same else params
        # an invalid override (e.g. an unknown --policy) is reported by simulate()
        scenario = scenario.with_overrides(
            policy=None if same else args.policy, params=merged if (params or not same) else None, seed=args.seed
        )
    return scenario


def _guarded(fn):
    """(fn(), None), or (None, exit code) after reporting a user-facing error in one line each."""
    from lepsim.errors import PolicyError, ScenarioError

    try:
        return fn(), None
    except ScenarioError as e:
        return None, _report_scenario_error(e)
    except PolicyError as e:
        return None, _err(f"lepsim: policy error: {e}")
    except LookupError as e:  # a cost the validation did not foresee: say so in one line
        return None, _err(f"lepsim: cost model: {e}")
    except ValueError as e:
        return None, _err(f"lepsim: {e}")


def cmd_run(args) -> int:
    import lepsim
    from lepsim.errors import PolicyError, ScenarioError

    try:
        params = _parse_params(args.param)
    except ValueError as e:
        return _err(f"lepsim: {e}")
    console = Console(stderr=False)
    try:
        scenario = _scenario_from_args(args.scenario, args, params)
    except ScenarioError as e:
        return _report_scenario_error(e)

    name = scenario.name or Path(args.scenario).stem
    out = Path(args.out) if args.out else Path("runs") / f"{name}-{scenario.simulation.seed}"
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    try:
        if show:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            horizon = scenario.simulation.horizon
            with Progress(
                TextColumn("[bold]simulating[/] {task.description}"), BarColumn(),
                TextColumn("{task.fields[simtime]}"), TimeElapsedColumn(), console=Console(stderr=True),
                transient=True,
            ) as prog:
                from lepsim.units import format_duration

                total = horizon if horizon else None
                task = prog.add_task(name, total=total, simtime="t=0s")

                def progress(t: float) -> None:
                    prog.update(task, completed=t if total else None, simtime=f"t={format_duration(t)}")

                result = lepsim.simulate(scenario, progress=progress)
        else:
            result = lepsim.simulate(scenario)
    except ScenarioError as e:
        return _report_scenario_error(e)
    except PolicyError as e:
        return _err(f"lepsim: policy error: {e}")
    except LookupError as e:  # a cost the validation did not foresee: say so in one line
        return _err(f"lepsim: cost model: {e}")
    for w in result.warnings:
        sys.stderr.write(f"warning: {w}\n")
    result.save(out)
    st = result.stats
    console.print(summary_table([result.summary], title=f"{name} · {result.policy} · seed {result.seed}"))
    jobs = result.jobs
    what = f"{int((jobs['kind'] == 'training').sum()) if 'kind' in jobs else len(jobs)} jobs"
    if result.requests is not None:
        what += f" and {len(result.requests)} requests"
    console.print(
        f"simulated {what} to t={fmt_value('x_s', result.end_time)} in "
        f"{st['wall_simulate_s']:.2f}s wall · run folder: {out}"
    )
    return 0


def cmd_validate(args) -> int:
    import lepsim
    from lepsim.errors import ScenarioError

    rc = 0
    for f in args.scenarios:
        try:
            sc = lepsim.load_scenario(f)
        except ScenarioError as e:
            rc = _report_scenario_error(e)
            continue
        print(f"{f}: ok ({sc.scheduler.policy}, {len(sc.cluster.pools)} node pool(s))")
    return rc


def cmd_schema(args) -> int:
    from lepsim.scenario.spec import Scenario

    text = json.dumps(Scenario.model_json_schema(), indent=2) + "\n"
    if args.out:
        from lepsim.report.run_folder import atomic_write_text

        atomic_write_text(Path(args.out), text)
    else:
        sys.stdout.write(text)
    return 0


FAMILIES = {
    "static": "decided when a job arrives or a job ends; never revisited",
    "dynamic": "re-evaluated on events and rounds; preempts and migrates at real cost",
    "adaptive": "changes allocations or capacity from observed state",
}


def _param_rows(cls) -> list[tuple[str, str, str]]:
    """(name, default, description) of a policy's parameters."""
    out = []
    for k, f in cls.Config.model_fields.items():
        out.append((k, repr(f.get_default(call_default_factory=True)), f.description or ""))
    return out


def cmd_policies(args) -> int:
    from lepsim.policies import registry
    from lepsim.policies.base import hooks_of

    console = Console()
    pols = registry.available()
    if args.name:
        try:
            cls = registry.get(args.name)
        except KeyError as e:
            return _err(f"lepsim: {e.args[0]}")
        console.print(f"[bold]{cls.name}[/] ({cls.family}) — {cls.reference}")
        hooks = hooks_of(cls)
        if hooks:
            console.print(f"hooks: {', '.join(hooks)}")
        console.print(inspect.cleandoc(cls.__doc__ or ""), markup=False)
        t = Table(show_header=True, header_style="bold", title="parameters")
        for c in ("parameter", "default", "meaning"):
            t.add_column(c)
        for row in _param_rows(cls):
            t.add_row(*row)
        console.print(t)
        console.print_json(json.dumps(cls.Config.model_json_schema()))
        return 0
    by_family: dict[str, list] = {}
    for name, cls in pols.items():
        by_family.setdefault(cls.family, []).append((name, cls))
    for fam, members in by_family.items():
        t = Table(show_header=True, header_style="bold", title=f"{fam}: {FAMILIES.get(fam, '')}".rstrip(": "),
                  title_justify="left")
        for c in ("name", "parameters (default)", "follows"):
            t.add_column(c)
        for name, cls in members:
            ps = ", ".join(f"{k}={d}" for k, d, _ in _param_rows(cls))
            t.add_row(name, ps, cls.reference)
        console.print(t)
    for name, why in registry.broken().items():
        console.print(f"[red]not loaded[/]: {why}")
    return 0


def cmd_baseline(args) -> int:
    from lepsim.errors import ScenarioError
    from lepsim.testing import BaselineMismatch, check_baseline, update_baseline

    from lepsim.experiments.policyspec import parse_policies

    try:
        policies = [p.label for p in parse_policies(args.policies)]
    except ValueError as e:
        return _err(f"lepsim: --policies: {e}")
    try:
        if args.action == "update":
            for pol in policies:
                p = update_baseline(args.scenario, pol, directory=args.dir, seed=args.seed)
                print(f"wrote {p}")
            return 0
        failed = 0
        for pol in policies:
            try:
                check_baseline(args.scenario, pol, directory=args.dir, seed=args.seed)
                print(f"{args.scenario} {pol}: matches baseline")
            except BaselineMismatch as e:
                failed += 1
                sys.stderr.write(f"{e}\n")
        return 1 if failed else 0
    except ScenarioError as e:
        return _report_scenario_error(e)
    except FileNotFoundError as e:
        return _err(f"lepsim: {e}")


def _progress_bar(what: str):
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn(f"[bold]{what}[/] {{task.description}}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), console=Console(stderr=True), transient=True)


def compare_table(comp, title: str = "") -> Table:
    """Rows: the summary rows of ``lepsim run`` and any SLO/cost metrics; one column per
    policy label, each cell ``mean ± CI half width``."""
    from lepsim.report.html import SLO_COST, format_ci

    table = comp.table()
    t = Table(title=title or None, show_header=True, header_style="bold")
    t.add_column("metric")
    for lab in comp.labels:
        t.add_column(lab, justify="right")
    metrics = comp.metrics()
    rows = [(k, label) for k, label in SUMMARY_ROWS if k in metrics]
    rows += [(k, f"  utilization {k[len('utilization['):-1]}") for k in metrics if k.startswith("utilization[")]
    rows += [(k, label) for k, label in GPU_TIME_ROWS if k in metrics]
    if (table.metric == "lost_gpu_h").any() and (table.loc[table.metric == "lost_gpu_h", "mean"] > 0).any():
        rows += [r for r in FAILURE_ROWS if r[0] == "lost_gpu_h"]
    svc = service_rows(metrics)
    rows += [r for r in svc if r[0] in metrics]
    shown = {k for k, _ in svc} | {k for k in metrics if k.startswith("slo_percentiles_met[")}
    rows += [(k, k) for k in metrics if SLO_COST.search(k) and k not in shown]
    for key, label in rows:
        sub = table[table.metric == key].set_index("policy").reindex(comp.labels)
        t.add_row(label, *(format_ci(key, m, h) for m, h in zip(sub["mean"], sub["ci_half_width"])))
    return t


def cmd_compare(args) -> int:
    import lepsim
    from lepsim.errors import ScenarioError
    from lepsim.experiments.compare import resolve_seeds, run_comparison
    from lepsim.experiments.policyspec import parse_policies

    if args.seeds < 1:
        return _err(f"lepsim: --seeds: found {args.seeds}, expected at least 1")
    if args.workers is not None and args.workers < 1:
        return _err(f"lepsim: --workers: found {args.workers}, expected at least 1")
    if not 0 < args.confidence < 1:
        return _err(f"lepsim: --confidence: found {args.confidence}, expected a level between 0 and 1 (e.g. 0.95)")
    try:
        policies = parse_policies(args.policies)
    except ValueError as e:
        return _err(f"lepsim: --policies: {e}")
    try:
        scenario = lepsim.load_scenario(args.scenario)
    except ScenarioError as e:
        return _report_scenario_error(e)
    name = scenario.name or Path(args.scenario).stem
    out = Path(args.out) if args.out else Path("runs") / f"compare-{name}"
    seeds = resolve_seeds(scenario, args.seeds)
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    from lepsim.experiments.pool import default_workers

    workers = args.workers or default_workers()

    def run():
        if not show:
            return run_comparison(scenario, policies, seeds=seeds, level=args.confidence, workers=workers)
        with _progress_bar("comparing") as prog:
            task = prog.add_task(name, total=len(policies) * len(seeds))

            def progress(label: str, seed: int) -> None:
                prog.update(task, advance=1, description=f"{name} · {label} · seed {seed} done")

            return run_comparison(scenario, policies, seeds=seeds, level=args.confidence, progress=progress,
                                  workers=workers)

    comp, rc = _guarded(run)
    if rc is not None:
        return rc
    comp.write(out)
    console = Console()
    level = int(round(100 * args.confidence))
    console.print(compare_table(comp, title=f"{name} · mean ± {level}% CI over seeds {', '.join(map(str, seeds))}"))
    console.print(f"report: {out / 'report.html'} · tables: {out / 'runs.csv'}, {out / 'stats.csv'}")
    return 0


def cmd_sweep(args) -> int:
    from lepsim.errors import ScenarioError
    from lepsim.experiments.sweep import load_sweep, run_sweep

    if args.workers is not None and args.workers < 1:
        return _err(f"lepsim: --workers: found {args.workers}, expected at least 1")
    if args.ray is not None:
        try:
            import ray  # noqa: F401
        except ImportError:
            return _err("lepsim: --ray needs the ray package, expected it installed: pip install 'lepsim[ray]'")
    try:
        sweep = load_sweep(args.sweep)
    except ScenarioError as e:
        return _report_scenario_error(e)
    out = Path(args.out) if args.out else Path("runs") / f"sweep-{sweep.name}"
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    try:
        if show:
            with _progress_bar("sweeping") as prog:
                task = prog.add_task(sweep.name, total=len(sweep.cells))
                outcome = run_sweep(sweep, out, workers=args.workers, ray=args.ray,
                                    progress=lambda n, total: prog.update(task, completed=n))
        else:
            outcome = run_sweep(sweep, out, workers=args.workers, ray=args.ray)
    except ConnectionError as e:
        return _err(f"lepsim: --ray {args.ray}: cannot connect: {e}")
    for index, why in sorted(outcome.failed.items()):
        c = sweep.cells[index]
        where = ", ".join(f"{k}={v}" for k, v in c.point)
        sys.stderr.write(f"lepsim: cell {index} ({where + ', ' if where else ''}{c.policy.label}, seed {c.seed}) "
                         f"failed: {why}\n")
    _print_sweep(sweep, outcome)
    return 1 if outcome.failed else 0


def _print_sweep(sweep, outcome) -> None:
    from lepsim.experiments.compare import stats_table

    df = outcome.table
    console = Console()
    if len(df):
        keys = sweep.grid_paths + ["policy"]
        df = df.assign(_group=df[keys].astype(str).agg(" | ".join, axis=1)) if keys else df
        metrics = [m for m in ("jct_mean_s", "queueing_delay_mean_s", "utilization") if m in df.columns]
        st = stats_table(df, metrics, by="_group")
        t = Table(title=f"{sweep.name} · mean ± 95% CI over seeds", show_header=True, header_style="bold")
        for k in keys:
            t.add_column(k)
        t.add_column("seeds", justify="right")
        labels = {"jct_mean_s": "mean JCT", "queueing_delay_mean_s": "mean queueing delay", "utilization": "utilization"}
        for m in metrics:
            t.add_column(labels[m], justify="right")
        from lepsim.report.html import format_ci

        for group, g in df.groupby("_group", sort=False):
            first = g.iloc[0]
            sub = st[st["_group"] == group].set_index("metric")
            t.add_row(*(str(first[f"{k}:given"] if f"{k}:given" in g else first[k]) for k in keys),
                      str(len(g)), *(format_ci(m, sub.loc[m, "mean"], sub.loc[m, "ci_half_width"]) for m in metrics))
        console.print(t)
    console.print(f"{len(sweep.cells)} cells: {outcome.ran} ran, {outcome.reused} already recorded, "
                  f"{len(outcome.failed)} failed · table: {outcome.path}")


def cmd_export(args) -> int:
    import lepsim
    from lepsim.report import perfetto

    src = Path(args.source)
    out = Path(args.out)
    if src.is_dir():
        if args.policy or args.param or args.seed is not None:
            return _err("lepsim: --policy, --param and --seed apply to a scenario, not to a run folder")
        try:
            trace = perfetto.trace_of_run_folder(src)
        except (FileNotFoundError, ValueError, KeyError) as e:
            return _err(f"lepsim: {src}: cannot export: {e}")
    else:
        try:
            params = _parse_params(args.param)
        except ValueError as e:
            return _err(f"lepsim: {e}")
        result, rc = _guarded(lambda: lepsim.simulate(_scenario_from_args(src, args, params)))
        if rc is not None:
            return rc
        trace = perfetto.trace_of_result(result)
    perfetto.write_trace(trace, out)
    n = sum(1 for e in trace["traceEvents"] if e["ph"] == "X")
    print(f"wrote {out}: {n} slices, {len(trace['traceEvents'])} events · open it in https://ui.perfetto.dev")
    return 0


def _progress_flags(parser) -> None:
    g = parser.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None, help="show a progress bar")
    g.add_argument("--no-progress", dest="progress", action="store_false", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    from lepsim import __version__

    p = _Parser(prog="lepsim", description="Discrete-event simulator of a GPU cloud for deep-learning work.")
    p.add_argument("--version", action="version", version=f"lepsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    r = sub.add_parser("run", help="simulate a scenario, print the summary, write a run folder")
    r.add_argument("scenario")
    r.add_argument("--policy", help="override the scenario's scheduler policy")
    r.add_argument("--param", action="append", metavar="KEY=VALUE", help="policy parameter (repeatable)")
    r.add_argument("--seed", type=int, help="override the scenario's seed")
    r.add_argument("--out", help="run folder (default runs/<scenario>-<seed>/)")
    _progress_flags(r)
    r.set_defaults(func=cmd_run)

    c = sub.add_parser("compare", help="run policies on the identical workload over seeds; table with CIs, "
                                       "HTML report")
    c.add_argument("scenario")
    c.add_argument("--policies", required=True, metavar="P1,P2[K=V],...",
                   help="comma-separated policies, parameters in brackets: fifo,las[thresholds=[1h,10h]]")
    c.add_argument("--seeds", type=int, default=5, metavar="N",
                   help="number of seeds, counting up from the scenario's seed (default 5)")
    c.add_argument("--confidence", type=float, default=0.95, metavar="LEVEL", help="CI level (default 0.95)")
    c.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: the CPUs available)")
    c.add_argument("--out", help="report folder (default runs/compare-<scenario>/)")
    _progress_flags(c)
    c.set_defaults(func=cmd_compare)

    sw = sub.add_parser("sweep", help="a grid over scenario parameters x policies x seeds into one Parquet table; "
                                      "resumable; local processes or Ray")
    sw.add_argument("sweep", help="sweep file (YAML; see docs/experiments.md)")
    sw.add_argument("--out", help="sweep folder (default runs/sweep-<name>/); rerunning resumes it")
    sw.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: the CPUs available)")
    sw.add_argument("--ray", metavar="ADDRESS", help="run the cells as Ray tasks on this cluster ('auto': the "
                                                   "running one)")
    _progress_flags(sw)
    sw.set_defaults(func=cmd_sweep)

    ex = sub.add_parser("export", help="export a run as a timeline: Chrome trace JSON for Perfetto")
    ex.add_argument("format", choices=("perfetto",), help="perfetto: Chrome Trace Event Format JSON")
    ex.add_argument("source", help="a run folder (lepsim run --out) or a scenario file (simulated first)")
    ex.add_argument("-o", "--out", default="trace.json", help="output file (default trace.json)")
    ex.add_argument("--policy", help="with a scenario: override its policy")
    ex.add_argument("--param", action="append", metavar="KEY=VALUE", help="with a scenario: policy parameter")
    ex.add_argument("--seed", type=int, help="with a scenario: override its seed")
    ex.set_defaults(func=cmd_export)

    v = sub.add_parser("validate", help="check scenario files; report every problem")
    v.add_argument("scenarios", nargs="+")
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("schema", help="print the JSON Schema of scenario files")
    s.add_argument("--out", help="write to this file instead of stdout")
    s.set_defaults(func=cmd_schema)

    pol = sub.add_parser("policies", help="list scheduling policies and their parameters")
    pol.add_argument("name", nargs="?", help="show one policy in full")
    pol.set_defaults(func=cmd_policies)

    b = sub.add_parser("baseline", help="check or update regression baselines of scheduler metrics")
    b.add_argument("action", choices=("check", "update"))
    b.add_argument("scenario")
    b.add_argument("--policies", required=True, help="comma-separated policies, each a name or name[key=value,...] as in compare")
    b.add_argument("--dir", default="tests/regression/baselines", help="baseline folder")
    b.add_argument("--seed", type=int, default=None)
    b.set_defaults(func=cmd_baseline)

    for mod in ("lepsim.costs.cli", "lepsim.costs.profile_cli", "lepsim.workload.importers.cli"):
        try:
            m = __import__(mod, fromlist=["register"])
        except ImportError:
            continue
        m.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return _err("lepsim: interrupted")
    except BrokenPipeError:
        return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
