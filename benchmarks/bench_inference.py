"""Inference benchmark: 1,000,000 requests through 16 replicas with continuous batching.

One LLaMA-2-7B service (Vidur operator profiles, A100-80GB, tensor parallelism 1) on two
DGX A100 nodes, Poisson arrivals at about 80 % of the replicas' capacity, prompts and
outputs log-normal.  Prints the wall time of the simulation (engine and request loop) and
of the metrics, simulated requests per wall-second, decode/prefill segments, cost-model
calls, and peak Python memory (tracemalloc, in a separate run so that tracing does not slow
the timed one).  Target (issue 6): under 30 s on one core.

    python benchmarks/bench_inference.py [--requests 1000000] [--router least-outstanding] [--no-memory]
"""
from __future__ import annotations

import argparse
import time

import lepsim
from lepsim.scenario.spec import Scenario


def scenario(requests: int, rate: float, router: str) -> Scenario:
    return Scenario.model_validate({
        "name": "bench-inference",
        "cluster": {"pools": [{"count": 2, "template": "dgx-a100"}]},
        "workload": {"services": [{
            "name": "chat", "model": "llama-2-7b", "gpu_type": "A100-80GB", "replicas": 16, "cold_start": 0,
            "router": router,
            "batching": {"kind": "continuous", "max_batch": 128, "max_prefill_tokens": 4096},
            "arrivals": {"kind": "poisson", "rate": rate, "count": requests},
            "prompt_tokens": {"dist": "lognormal", "median": 300, "sigma": 0.8, "min": 8, "max": 4000},
            "output_tokens": {"dist": "lognormal", "median": 100, "sigma": 0.8, "min": 1, "max": 1000},
            "slo": {"ttft": {"p99": "2s"}, "tpot": {"p99": "100ms"}},
            "metrics_window": "10min",
        }]},
        "scheduler": {"policy": "fifo"},
        "simulation": {"seed": 7, "horizon": requests / rate + 600.0},
    })


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=1_000_000)
    ap.add_argument("--rate", type=float, default=160.0, help="requests per second (all replicas)")
    ap.add_argument("--router", default="least-outstanding")
    ap.add_argument("--no-memory", action="store_true", help="skip the (slow) tracemalloc run")
    args = ap.parse_args()
    sc = scenario(args.requests, args.rate, args.router)
    t0, c0 = time.perf_counter(), time.process_time()
    r = lepsim.simulate(sc)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    st = r.stats
    s = r.summary
    n = len(r.requests)
    print(f"{n:,} requests, 16 replicas of llama-2-7b on A100-80GB, continuous batching, router {args.router}")
    print(f"wall total {wall:.2f} s, CPU {cpu:.2f} s  (simulate {st['wall_simulate_s']:.2f} s, "
          f"metrics {st['wall_metrics_s']:.2f} s; the rest builds the workload and the cost model)")
    print(f"simulated requests per wall-second: {n / st['wall_simulate_s']:,.0f} (simulate only), {n / wall:,.0f} (total)")
    print(f"completed {s['requests_completed[chat]']:,}, ttft p99 {s['ttft_p99_s[chat]']:.3f} s, "
          f"tpot p99 {s['tpot_p99_s[chat]']:.4f} s, SLO attainment {s['slo_attainment[chat]']:.4f}, "
          f"replica utilization {s['replica_utilization[chat]']:.3f}")
    if not args.no_memory:
        peak = lepsim.simulate(sc, measure_memory=True).stats["peak_memory_bytes"] / 2**20
        print(f"peak Python memory (tracemalloc): {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
