"""The ``lepsim models`` and ``lepsim costs check`` subcommands.

    lepsim models [--gpus A100,V100] [--kind train|inference] [--profile FILE ...] [--details]
    lepsim costs check [--case NAME ...] [--strict] [--csv FILE]

``models`` shows, for every model with a profile, on every GPU type of the catalog, whether
its cost is measured, extrapolated (and from which GPU type) or missing.  ``costs check``
prints the prediction error on held-out measured points (see :mod:`lepsim.costs.check`):
exit 0, or 1 with ``--strict`` when a case misses its target.  User errors print one line
to stderr and return 2.
"""
from __future__ import annotations

import argparse
import sys

__all__ = ["register", "cmd_models", "cmd_costs_check"]

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


def _err(msg: str) -> int:
    sys.stderr.write("lepsim: " + str(msg).splitlines()[0] + "\n")
    return EXIT_USAGE


def _console(min_width: int = 100):
    """A rich console at least ``min_width`` wide (tables stay readable when piped)."""
    import shutil

    from rich.console import Console

    return Console(width=max(shutil.get_terminal_size((80, 24)).columns, min_width))


def register(subparsers) -> None:
    """Add ``models`` and ``costs`` (with ``check``) to the main CLI's subparsers."""
    m = subparsers.add_parser("models", help="list workload models x GPU types and where each cost comes from")
    m.add_argument("--gpus", help="comma-separated GPU types (default: every GPU type of the catalog)")
    m.add_argument("--kind", choices=("train", "inference"), help="only training or only inference models")
    m.add_argument("--profile", action="append", default=[], metavar="FILE",
                   help="also load this profile file (Parquet/CSV, the profile schema); repeatable")
    m.add_argument("--details", action="store_true", help="one line per (model, GPU) with the reason")
    m.set_defaults(func=cmd_models)

    c = subparsers.add_parser("costs", help="cost-model tools")
    csub = c.add_subparsers(dest="costs_command", metavar="{check}")
    ck = csub.add_parser("check", help="prediction error of the cost model on held-out measured points")
    ck.add_argument("--case", action="append", default=[], metavar="NAME",
                    help="run only this case (repeatable); default: all")
    ck.add_argument("--strict", action="store_true", help="exit 1 when a case misses its target")
    ck.add_argument("--csv", metavar="FILE", help="also write the table as CSV")
    ck.add_argument("--groups", action="store_true", help="also show each case's sub-groups (operator, GPU, shape...)")
    ck.set_defaults(func=cmd_costs_check)
    c.set_defaults(func=lambda args: _err("costs: expected a subcommand: check"))


def _model(profiles=()):
    from lepsim.costs import build_cost_model

    return build_cost_model(profile_paths=tuple(profiles))


def cmd_models(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from lepsim.costs.store import StoreError

    try:
        cm = _model(args.profile)
        if args.gpus:
            gpus = []
            for g in args.gpus.split(","):
                g = g.strip()
                canon = cm.catalog.gpu_name(g)
                if canon is None:
                    return _err(f"unknown GPU type {g!r}; known: {', '.join(cm.catalog.known_gpu_names())}")
                gpus.append(canon)
        else:
            known = cm.catalog.known_gpu_names()
            gpus = known + [d for d in cm.profiled_devices() if d not in known]   # e.g. cpu:<name> from --profile
        mat = cm.matrix(gpus)
    except (StoreError, OSError) as e:
        return _err(e)
    if args.kind:
        mat = mat[mat["kind"] == args.kind]
    console = _console()
    if args.details:
        t = Table(title="cost provenance", show_lines=False)
        for col in ("model", "kind", "gpu", "status", "why"):
            t.add_column(col)
        for r in mat.itertuples():
            why = r.detail
            if r.status != "missing":
                try:
                    why = cm.explain_detail(r.model, r.gpu)
                except LookupError as e:
                    why = str(e)
            t.add_row(r.model, r.kind, r.gpu, r.status, why)
        console.print(t)
        return EXIT_OK
    t = Table(title="models x GPU types", caption="meas = measured · a GPU name = extrapolated from that GPU · - = missing",
              pad_edge=False, padding=(0, 1))
    t.add_column("model", no_wrap=True, min_width=12)
    t.add_column("kind", no_wrap=True, min_width=5)
    for g in gpus:
        t.add_column(g, justify="center", no_wrap=True, min_width=max(len(g), 9))
    for (model, kind), g in mat.groupby(["model", "kind"], sort=True):
        cells = []
        by_gpu = dict(zip(g["gpu"], g["status"]))
        for gpu in gpus:
            s = by_gpu.get(gpu, "missing")
            if s == "measured":
                cells.append("[green]meas[/green]")
            elif s.startswith("extrapolated from "):
                cells.append("[yellow]" + s.removeprefix("extrapolated from ") + "[/yellow]")
            else:
                cells.append("[dim]-[/dim]")
        t.add_row(model, "train" if kind == "train" else "infer", *cells)
    console = _console(min_width=30 + sum(max(len(g), 9) + 3 for g in gpus))
    console.print(t)
    console.print("Sources: gavel, pollux (training); vidur, splitwise, distserve (inference). "
                  "`lepsim models --details` says why; docs/costs.md explains the rules.")
    return EXIT_OK


def cmd_costs_check(args) -> int:
    from rich.console import Console
    from rich.table import Table

    from lepsim.costs.check import CASES, run_checks

    unknown = [c for c in args.case if c not in CASES]
    if unknown:
        return _err(f"unknown case {unknown[0]!r}; known: {', '.join(CASES)}")
    try:
        results = run_checks(only=args.case or None)
    except (OSError, ValueError, LookupError) as e:
        return _err(e)
    t = Table(title="cost-model accuracy on held-out measured points (absolute % error)")
    for col, just in (("case", "left"), ("median", "right"), ("p90", "right"), ("n", "right"),
                      ("target", "center"), ("result", "center"), ("what is predicted", "left")):
        t.add_column(col, justify=just)
    missed = False
    for r in results:
        if r.passed is None:
            res = "[dim]report[/dim]"
        elif r.passed:
            res = "[green]pass[/green]"
        else:
            res = "[red]FAIL[/red]"
            missed = True
        tgt = "-" if r.target is None else f"≤{r.target[0]:g} / ≤{r.target[1]:g}"
        t.add_row(r.name, f"{r.median:.1f}", f"{r.p90:.1f}", str(r.n), tgt, res, r.description)
        if getattr(args, "groups", False):
            for g, (med, p90, n) in r.groups.items():
                t.add_row(f"  · {g}", f"{med:.1f}", f"{p90:.1f}", str(n), "", "", "")
    console = _console(min_width=150)
    console.print(t)
    console.print("Targets apply to the LLM operator tables (median ≤ 10 %, p90 ≤ 25 %); "
                  "docs/costs.md explains every case and where the error comes from.")
    if args.csv:
        import pandas as pd

        try:
            pd.DataFrame([r.row() for r in results]).to_csv(args.csv, index=False)
        except OSError as e:
            return _err(f"cannot write {args.csv}: {e}")
    return EXIT_FAIL if (args.strict and missed) else EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """``python -m lepsim.costs.cli models|costs check ...``"""
    p = argparse.ArgumentParser(prog="lepsim")
    sub = p.add_subparsers(dest="command", required=True)
    register(sub)
    args = p.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
