"""``lepsim trace convert --format F INPUT -o OUT``: an upstream trace → lepsim's files.

Job formats become lepsim's canonical trace CSV (:mod:`.canonical`), cluster formats a
``cluster.pools`` YAML block, request formats a CSV of ``arrival_s, prompt_tokens,
output_tokens``.  Bad rows: one line each on stderr (``FILE:LINE: column: found …,
expected …``), exit 2 and nothing written, unless ``--skip-bad-rows``.  The output is
written atomically.
"""
from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["register", "cmd_trace_convert"]

EXIT_USAGE = 2


def register(subparsers) -> None:
    from lepsim.workload.importers import FORMATS

    t = subparsers.add_parser("trace", help="trace tools: convert upstream traces to lepsim's formats")
    tsub = t.add_subparsers(dest="trace_command", metavar="{convert}")
    c = tsub.add_parser("convert", help="convert an upstream trace (docs/traces.md) to lepsim's canonical files")
    c.add_argument("input", help="upstream trace file (plain or .gz)")
    c.add_argument("--format", required=True, choices=FORMATS, help="the input's format")
    c.add_argument("-o", "--out", required=True, help="output file (CSV; YAML for cluster formats)")
    c.add_argument("--skip-bad-rows", action="store_true", help="leave bad rows out (reported) instead of failing")
    c.add_argument("--tenant", help="tenant of jobs whose format names none (default: 'default')")
    c.add_argument("--gpu-type", help="GPU type of a cluster file that names none (tiresias-cluster)")
    c.add_argument("--gpu-map", action="append", default=[], metavar="MODEL=TYPE",
                   help="map an upstream GPU model to a catalog GPU type (alibaba-*); repeatable")
    c.set_defaults(func=cmd_trace_convert)
    t.set_defaults(func=lambda args: _err("lepsim: trace: expected a subcommand: convert"))


def _err(msg: str) -> int:
    sys.stderr.write(msg.rstrip("\n") + "\n")
    return EXIT_USAGE


def cmd_trace_convert(args) -> int:
    from lepsim.errors import Problem
    from lepsim.hardware import default_catalog
    from lepsim.report.run_folder import atomic_write_text
    from lepsim.scenario.spec import TraceSource
    from lepsim.units import format_duration
    from lepsim.workload.importers import CLUSTER_FORMATS, JOB_FORMATS, ImportOptions, read_format, read_jobs
    from lepsim.workload.importers import azure_llm, canonical

    gpu_map: dict[str, str] = {}
    for item in args.gpu_map:
        k, sep, v = item.partition("=")
        if not sep or not k.strip() or not v.strip():
            return _err(f"lepsim: --gpu-map {item!r}: expected MODEL=TYPE")
        gpu_map[k.strip()] = v.strip()
    catalog = default_catalog()
    for given in [*gpu_map.values(), *([args.gpu_type] if args.gpu_type else [])]:
        if catalog.gpu_name(given) is None:
            return _err(f"lepsim: GPU type {given!r}: expected one of {', '.join(catalog.known_gpu_names())}")
    inp = Path(args.input)
    if not inp.is_file():
        return _err(f"lepsim: {args.input}: not a file")
    display = args.input
    if args.format in JOB_FORMATS:
        src = TraceSource(path=args.input, format=args.format, tenant=args.tenant, gpu_types=gpu_map)
        res = read_jobs(src, inp, display)
        kept = []
        for r in res.rows:  # one catalog name per type, as a scenario would resolve it
            if r["gpu_type"] is not None:
                canon = catalog.gpu_name(r["gpu_type"])
                if canon is None:
                    res.problems.append(Problem(display, r["line"], "gpu_type",
                                                f"found {r['gpu_type']!r}, expected a GPU type"))
                    continue
                r["gpu_type"] = canon
            kept.append(r)
        res.rows = kept
    else:
        res = read_format(args.format, inp, display,
                          ImportOptions(tenant=args.tenant, gpu_types=gpu_map,
                                        gpu_type=catalog.gpu_name(args.gpu_type) if args.gpu_type else None))
    for n in res.notes:
        sys.stderr.write(f"note: {n}\n")
    if res.errors or (res.problems and not args.skip_bad_rows):
        fatal = res.errors + ([] if args.skip_bad_rows else res.problems)
        for p in fatal:
            sys.stderr.write(f"{p}\n")
        n = len(fatal)
        hint = "" if res.errors else " (--skip-bad-rows leaves bad rows out)"
        return _err(f"lepsim: {n} problem{'s' if n != 1 else ''} found in {display}; nothing was written{hint}")
    for p in res.problems:
        sys.stderr.write(f"warning: {p} (row skipped)\n")
    if args.format in JOB_FORMATS:
        text = canonical.to_csv_text(res.rows)
        what = f"{len(res.rows)} job{'s' if len(res.rows) != 1 else ''}"
        if res.rows:
            span = max(r["submit"] for r in res.rows) - min(r["submit"] for r in res.rows)
            peak, at = canonical.peak_concurrent_gpus(res.rows)
            what += f", submits over {format_duration(span)}"
            if peak:
                what += f", peak concurrent GPU demand {peak} at t={format_duration(at)}"
    elif args.format in CLUSTER_FORMATS:
        text = canonical.pools_yaml(res.rows)
        what = (f"{len(res.rows)} node pools, {sum(p['count'] for p in res.rows)} nodes, "
                f"{sum(p['count'] * p['gpus_per_node'] for p in res.rows)} GPUs")
    else:
        df = azure_llm.to_frame(res.rows)
        text = df.drop(columns="line").to_csv(index=False, lineterminator="\n")
        what = f"{len(df)} requests"
    try:
        atomic_write_text(Path(args.out), text)
    except OSError as e:
        return _err(f"lepsim: cannot write {args.out}: {e.strerror or e}")
    print(f"wrote {args.out}: {what}")
    return 0
