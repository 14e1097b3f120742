"""Checkpoint interval trade-off on scenarios/failures.yaml: overhead vs work lost.

Sweeps ``storage.checkpoint_interval`` (through ``Scenario.with_overrides(values=...)``)
over several seeds and prints, per interval, the GPU-hours spent writing checkpoints,
reading them back (restores), and lost to node failures (work since the last checkpoint),
their total, and the useful utilization (effective utilization minus the lost work).
The total is U-shaped: short intervals pay for writes, long ones for lost work.  Young's
first-order optimum ``tau* = sqrt(2 * delta * M)`` (delta: time to write one checkpoint,
M: a job's mean time between failures = node MTBF / nodes of the job) is printed beside it.

    python benchmarks/bench_checkpoint_interval.py [--seeds 4] [--scenario scenarios/failures.yaml]
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import lepsim

ROOT = Path(__file__).resolve().parents[1]
INTERVALS = ("1min", "3min", "10min", "20min", "40min", "1h30min", "3h", "8h", "30d")


def wasted(result) -> dict:
    j = result.jobs
    h = 3600.0
    return {
        "checkpoint_gpu_h": float((j["checkpoint_s"] * j["gpus"]).sum()) / h,
        "restore_gpu_h": float((j["restore_s"] * j["gpus"]).sum()) / h,
        "lost_gpu_h": float(j["lost_gpu_s"].sum()) / h,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=str(ROOT / "scenarios" / "failures.yaml"))
    ap.add_argument("--seeds", type=int, default=4)
    args = ap.parse_args()
    base = lepsim.load_scenario(args.scenario)
    cap = sum(n.count * 8 for n in base.cluster.pools)  # dgx-a100 nodes: 8 GPUs each
    span = base.simulation.horizon
    t0 = time.perf_counter()
    print(f"{'interval':>9} {'ckpt GPU-h':>10} {'restore GPU-h':>13} {'lost GPU-h':>10} {'total GPU-h':>11} "
          f"{'effective util':>14} {'useful util':>11}")
    rows = []
    for iv in INTERVALS:
        acc = {"checkpoint_gpu_h": 0.0, "restore_gpu_h": 0.0, "lost_gpu_h": 0.0, "eff": 0.0}
        for k in range(args.seeds):
            sc = base.with_overrides(values={"storage.checkpoint_interval": iv}, seed=base.simulation.seed + k)
            r = lepsim.simulate(sc)
            for key, v in wasted(r).items():
                acc[key] += v / args.seeds
            acc["eff"] += r.summary["effective_utilization"] / args.seeds
        total = acc["checkpoint_gpu_h"] + acc["restore_gpu_h"] + acc["lost_gpu_h"]
        useful = acc["eff"] - acc["lost_gpu_h"] * 3600.0 / (cap * span)
        rows.append((iv, total))
        print(f"{iv:>9} {acc['checkpoint_gpu_h']:>10.2f} {acc['restore_gpu_h']:>13.2f} {acc['lost_gpu_h']:>10.2f} "
              f"{total:>11.2f} {acc['eff']:>14.4f} {useful:>11.4f}")
    best = min(rows, key=lambda r: r[1])
    st, fl = base.storage, base.failures
    size = base.workload.generators[0].checkpoint_size
    delta = size / st.bandwidth
    mtbf = fl.mtbf.mean
    print(f"\nlowest total at interval {best[0]} ({best[1]:.2f} GPU-h, mean of {args.seeds} seeds)")
    print(f"Young tau* = sqrt(2 delta M): delta = {size / 1e9:g} GB / {st.bandwidth / 1e9:g} GB/s = {delta:g} s alone")
    for nodes in (1, 2, 4):
        m = mtbf / nodes
        print(f"  job on {nodes} node(s): M = {m / 3600:.0f} h -> tau* = {math.sqrt(2 * delta * m) / 60:.1f} min")
    print(f"\n{len(INTERVALS) * args.seeds} runs in {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
