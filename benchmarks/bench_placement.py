"""Placement strategies on a GPU-sharing workload: fragmentation, utilization, JCT, speed.

A 256-GPU cluster (32 nodes x 8 V100) serves a mix in the spirit of the Alibaba openb
trace: about 60% of the jobs take a share of one GPU (0.25, 0.5 or 0.75; openb's
``gpu_milli`` < 1000), the rest whole GPUs (1, 2, 4 or 8).  Offered load ~0.9 of the
GPUs; CPUs and memory never bind.  For each placement strategy under FIFO (strict, so a
fragmented cluster blocks the queue) and EASY, prints the fragmentation rate (idle GPU
capacity the mix cannot use, docs/metrics.md), mean fragmented GPUs, utilization, mean
JCT and queueing delay, and wall time.

    python benchmarks/bench_placement.py [--jobs 6000] [--policies fifo,easy] [--strategies ...]
"""
from __future__ import annotations

import argparse
import time

import lepsim
from lepsim.policies.placement import STRATEGIES
from lepsim.scenario.spec import Scenario


def scenario(jobs: int, policy: str, strategy: str) -> Scenario:
    shares = {0.25: 0.25, 0.5: 0.2, 0.75: 0.15}  # share of one GPU -> fraction of all jobs
    whole = 1.0 - sum(shares.values())
    mean_gpus = sum(f * p for f, p in shares.items()) + whole * (0.5 * 1 + 0.2 * 2 + 0.2 * 4 + 0.1 * 8)
    rate = 0.9 * 256 / (mean_gpus * 3600.0)  # jobs/s for ~0.9 load with 1 h mean runtimes
    gens = [{"kind": "poisson", "name": f"share{int(f * 100)}", "rate": rate * p, "count": max(int(jobs * p), 1),
             "gpus": 1, "gpu_fraction": f, "duration": {"dist": "exponential", "mean": "1h"}}
            for f, p in shares.items()]
    gens.append({"kind": "poisson", "name": "whole", "rate": rate * whole, "count": max(int(jobs * whole), 1),
                 "gpus": {"dist": "choice", "values": [1, 2, 4, 8], "weights": [0.5, 0.2, 0.2, 0.1]},
                 "duration": {"dist": "exponential", "mean": "1h"}})
    return Scenario.model_validate({
        "name": "bench-placement",
        "cluster": {"pools": [{"count": 32, "template": "dgx1-v100"}]},
        "workload": {"generators": gens},
        "scheduler": {"policy": policy, "params": {"placement": strategy}},
        "simulation": {"seed": 7},
    })


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=6000)
    ap.add_argument("--policies", default="fifo,easy")
    ap.add_argument("--strategies", default=",".join(STRATEGIES))
    args = ap.parse_args()
    print(f"{args.jobs} jobs (60% fractional) on 256 GPUs (32 x 8 V100), load ~0.9")
    print(f"{'policy':8} {'strategy':10} {'wall s':>7} {'frag rate':>9} {'frag GPUs':>9} {'util':>6} "
          f"{'JCT h':>7} {'queue h':>7}")
    for policy in args.policies.split(","):
        for strategy in args.strategies.split(","):
            sc = scenario(args.jobs, policy, strategy)
            t0 = time.perf_counter()
            r = lepsim.simulate(sc)
            wall = time.perf_counter() - t0
            s = r.summary
            print(f"{policy:8} {strategy:10} {wall:7.2f} {s['fragmentation_rate']:9.4f} {s['fragmented_gpus_mean']:9.2f} "
                  f"{s['utilization']:6.3f} {s['jct_mean_s'] / 3600:7.2f} {s['queueing_delay_mean_s'] / 3600:7.2f}")


if __name__ == "__main__":
    main()
