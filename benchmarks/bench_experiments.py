"""Benchmark the experiment tools: sweep overhead per cell, comparison and report, timeline export.

    python benchmarks/bench_experiments.py [--workers N]

Prints (1) a 36-cell sweep (scenarios/sweeps/steady_load.yaml with a 16 h horizon): the
time of the same simulations called directly, the sweep in this process and on a local
process pool (wall time, cells/s, overhead per cell over the direct calls) and the time of
a rerun that finds every cell recorded; (2) `lepsim compare` on burst.yaml (fifo, sjf, las
x 3 seeds): simulation time and report-writing time, report size; (3) the Perfetto export
of burst.yaml under las: events, slices, file size, time.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2, help="local worker processes for the pool figure")
    args = ap.parse_args(argv)

    import yaml

    import lepsim
    from lepsim.experiments.compare import run_comparison
    from lepsim.experiments.sweep import load_sweep, run_cell, run_sweep
    from lepsim.report.perfetto import dumps, trace_of_result

    tmp = Path(tempfile.mkdtemp(prefix="bench-experiments-"))
    spec = yaml.safe_load((ROOT / "scenarios" / "sweeps" / "steady_load.yaml").read_text())
    spec["set"].update({"simulation.horizon": "16h", "simulation.warmup": "2h", "simulation.cooldown": "2h"})
    spec["scenario"] = str(ROOT / "scenarios" / "steady.yaml")
    sweep = load_sweep(spec)
    n = len(sweep.cells)
    print(f"sweep: {n} cells (steady.yaml, 16 h horizon, 4 rates x 3 policies x 3 seeds)")
    t0 = time.perf_counter()
    for c in sweep.cells:
        run_cell({"scenario_json": c.scenario_json, "source": list(sweep.source), "seed": c.seed})
    direct = time.perf_counter() - t0
    print(f"  direct run_cell calls      {direct:6.2f} s  ({n / direct:5.1f} cells/s)")
    rows = []
    for label, workers in (("in process (--workers 1)", 1), (f"process pool (--workers {args.workers})", args.workers)):
        t0 = time.perf_counter()
        run_sweep(sweep, tmp / f"w{workers}", workers=workers)
        wall = time.perf_counter() - t0
        rows.append(wall)
        print(f"  {label:26s} {wall:6.2f} s  ({n / wall:5.1f} cells/s, {1000 * (wall - direct) / n:+6.1f} ms/cell "
              "vs direct)")
    t0 = time.perf_counter()
    again = run_sweep(sweep, tmp / "w1", workers=1)
    print(f"  rerun, all {again.reused} recorded      {time.perf_counter() - t0:6.2f} s")
    same = (tmp / "w1" / "results.parquet").read_bytes() == (tmp / f"w{args.workers}" / "results.parquet").read_bytes()
    print(f"  in-process and pool tables byte-identical: {same}")

    t0 = time.perf_counter()
    comp = run_comparison(ROOT / "scenarios" / "burst.yaml", "fifo,sjf,las", seeds=3)
    t1 = time.perf_counter()
    out = comp.write(tmp / "compare")
    t2 = time.perf_counter()
    size = (out / "report.html").stat().st_size
    print(f"compare burst.yaml fifo,sjf,las x 3 seeds: simulations {t1 - t0:.2f} s, report {t2 - t1:.2f} s "
          f"(report.html {size / 1024:.0f} KiB)")

    r = lepsim.simulate(ROOT / "scenarios" / "burst.yaml", policy="las")
    t0 = time.perf_counter()
    text = dumps(trace_of_result(r))
    t1 = time.perf_counter()
    import json

    ev = json.loads(text)["traceEvents"]
    slices = sum(1 for e in ev if e["ph"] == "X")
    print(f"perfetto export burst.yaml las: {len(r.intervals)} intervals -> {slices} slices, {len(ev)} events, "
          f"{len(text) / 2**20:.1f} MiB, {t1 - t0:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
