"""Full Philly replay benchmark: scenarios/philly.yaml (82,247 jobs on 156 x 8 GPUs).

Each policy runs in a fresh process pinned to one CPU core, end to end as ``lepsim run``
does it: load and validate the scenario (read the gzipped trace, build the jobs), simulate,
compute the metrics. Prints the wall time of each stage, the process's CPU time (user + system: the figure
to trust on a shared machine, where wall time includes waiting for the core), the peak
resident memory of the process (``resource.getrusage``, ru_maxrss) and the headline
metrics.  "total s" (load + simulate + metrics, wall) is what the target applies to.
Target (issue 7): FIFO and LAS each under 60 s and under 1 GB peak memory on one core.

    python benchmarks/bench_philly.py [--policies fifo,las] [--nodes 156] [--profile]

``--nodes`` replays the same trace on another number of 8-GPU nodes (fewer nodes: jobs
queue, and LAS preempts); ``--profile`` prints the functions that take the most time.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "philly.yaml"
TARGET_S, TARGET_BYTES = 60.0, 1e9


def one(policy: str, nodes: int | None, profile: bool) -> dict:
    """Runs in the child process: one policy, end to end."""
    import resource
    import time

    try:
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # one core (the last: others use the first)
    except (AttributeError, OSError):
        pass
    import lepsim

    t0 = time.perf_counter()
    sc = lepsim.load_scenario(SCENARIO)
    if nodes is not None:
        pools = sc.cluster.model_copy(update={"pools": (sc.cluster.pools[0].model_copy(update={"count": nodes}),)})
        sc = sc.model_copy(update={"cluster": pools})
    sc = sc.with_overrides(policy=policy)
    t1 = time.perf_counter()
    if profile:
        import cProfile
        import io
        import pstats

        prof = cProfile.Profile()
        r = prof.runcall(lepsim.simulate, sc)
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(18)
        sys.stderr.write(buf.getvalue())
    else:
        r = lepsim.simulate(sc)
    t2 = time.perf_counter()
    ru = resource.getrusage(resource.RUSAGE_SELF)
    s = r.summary
    return dict(policy=policy, load_s=t1 - t0, simulate_s=r.stats["wall_simulate_s"],
                metrics_s=r.stats["wall_metrics_s"], total_s=t2 - t0, cpu_s=ru.ru_utime + ru.ru_stime,
                rss_bytes=ru.ru_maxrss * 1024,
                events=r.stats["events"], jobs=len(r.jobs), completed=s["jobs_completed"], jct_mean_s=s["jct_mean_s"],
                queueing_delay_mean_s=s["queueing_delay_mean_s"], queueing_delay_p95_s=s["queueing_delay_p95_s"],
                preemptions=s["preemptions_total"], utilization=s["utilization"],
                gpus=sum(p.count for p in sc.cluster.pools) * 8)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policies", default="fifo,las")
    ap.add_argument("--nodes", type=int, default=None, help="8-GPU nodes (default: the scenario's 156)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(one(args.child, args.nodes, args.profile)))
        return
    print(f"Philly replay ({SCENARIO.relative_to(ROOT)}), one process per policy pinned to one core; "
          f"target < {TARGET_S:.0f} s and < {TARGET_BYTES / 1e9:.0f} GB")
    print(f"{'policy':7} {'GPUs':>5} {'load s':>7} {'sim s':>7} {'metrics s':>9} {'total s':>8} {'CPU s':>6} {'peak RSS MiB':>12} "
          f"{'events':>8} {'jobs':>6} {'mean JCT h':>10} {'mean wait h':>11} {'p95 wait h':>10} {'preempt':>8} "
          f"{'util':>6}  target")
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for pol in args.policies.split(","):
        cmd = [sys.executable, __file__, "--child", pol] + (["--nodes", str(args.nodes)] if args.nodes else []) + (
            ["--profile"] if args.profile else [])
        out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        if out.returncode != 0:
            sys.exit(f"{pol}: failed\n{out.stderr}")
        if args.profile:
            sys.stderr.write(out.stderr)
        d = json.loads(out.stdout.strip().splitlines()[-1])
        ok = d["total_s"] < TARGET_S and d["rss_bytes"] < TARGET_BYTES
        print(f"{pol:7} {d['gpus']:5d} {d['load_s']:7.2f} {d['simulate_s']:7.2f} {d['metrics_s']:9.2f} {d['total_s']:8.2f} "
              f"{d['cpu_s']:6.2f} {d['rss_bytes'] / 2**20:12.0f} {d['events']:8d} {d['completed']:6d} {d['jct_mean_s'] / 3600:10.2f} "
              f"{d['queueing_delay_mean_s'] / 3600:11.3f} {d['queueing_delay_p95_s'] / 3600:10.3f} {d['preemptions']:8d} "
              f"{d['utilization']:6.3f}  {'met' if ok else 'MISSED'}")


if __name__ == "__main__":
    main()
