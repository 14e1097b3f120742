"""Fabric benchmark: one max-min rate recomputation with 1,000 concurrent flows on a
512-node leaf-spine (issue 4 target: under 10 ms on one core).

The fabric: 512 DGX-A100 nodes (1600 Gb/s NICs), 16 nodes per rack (32 racks), ToR
uplinks 4:1 oversubscribed, storage on the spine.  The flows (named RNG stream, fixed
seed): 700 transfers between random node pairs (10 % capped by a random demand), 200
storage reads to random nodes, and 100 all-reduce rings over 2-16 random nodes, each
capped at a demand.  One recomputation = re-sharing after one flow ends and another
starts (incidence arrays rebuilt, progressive filling); the median, 95th percentile and
worst of ``--repeat`` recomputations are printed, in CPU time of this process (what one
core spends) and in wall time, with the number of distinct rates (bottleneck levels).

    python benchmarks/bench_fabric.py [--nodes 512] [--flows 1000] [--repeat 200]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from lepsim.engine.fabric import Fabric
from lepsim.engine.topology import build_topology
from lepsim.hardware import default_catalog
from lepsim.rng import Streams
from lepsim.scenario.resolve import resolve_cluster
from lepsim.scenario.spec import ClusterSpec


def topology(nodes: int):
    spec = ClusterSpec.model_validate({
        "pools": [{"template": "dgx-a100", "count": nodes}],
        "network": {"nodes_per_rack": 16, "oversubscription": 4},
    })
    cat = default_catalog()
    infos, _ = resolve_cluster(spec, cat)
    topo, problems = build_topology(spec.network, infos, cat)
    assert not problems, problems
    return topo


def flow_set(topo, nodes: int, flows: int, rng):
    out = []  # (links, demand)
    n_rings = flows // 10
    n_storage = flows // 5
    for _ in range(flows - n_rings - n_storage):
        a, b = rng.choice(nodes, size=2, replace=False)
        demand = float(rng.uniform(1e9, 50e9)) if rng.random() < 0.1 else float("inf")
        out.append((topo.path(f"node:{a}", f"node:{b}"), demand))
    for _ in range(n_storage):
        out.append((topo.path("storage", f"node:{rng.integers(nodes)}"), float("inf")))
    for _ in range(n_rings):
        k = int(rng.integers(2, 17))
        members = rng.choice(nodes, size=k, replace=False)
        out.append((topo.ring([f"node:{m}" for m in members]), float(rng.uniform(5e9, 100e9))))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=512)
    ap.add_argument("--flows", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    rng = Streams(0).get("bench-fabric")
    topo = topology(args.nodes)
    flows = flow_set(topo, args.nodes, args.flows + args.repeat, rng)
    fab = Fabric(topo.capacities)
    live = [fab.add(links, demand) for links, demand in flows[: args.flows]]
    fab.rates()
    times, cpu = [], []
    for k in range(args.repeat):
        fab.remove(live[k])
        links, demand = flows[args.flows + k]
        live.append(fab.add(links, demand))
        t0, c0 = time.perf_counter(), time.process_time()
        rates = fab.rates()
        cpu.append(time.process_time() - c0)
        times.append(time.perf_counter() - t0)
    assert len(rates) == args.flows
    # bottleneck levels of the last set (distinct rates) and a feasibility check
    loads = fab.link_loads()
    cap = np.asarray(topo.capacities)
    over = np.max((loads - cap)[np.isfinite(cap)] / cap[np.isfinite(cap)])
    levels = len({round(r, 3) for r in rates.values()})
    t = np.array(times) * 1e3
    c = np.array(cpu) * 1e3
    print(f"fabric: {args.nodes} nodes ({len(topo.capacities)} directed links), {args.flows} concurrent flows, "
          f"{sum(len(fab.links_of(f)) for f in rates)} (flow, link) uses; {levels} distinct rates; "
          f"worst link over capacity by {max(over, 0):.2e} (relative)")
    print(f"one recomputation (rebuild + progressive filling), {args.repeat} times (target < 10 ms on one core):")
    print(f"  CPU time:  median {np.median(c):.2f} ms, p95 {np.percentile(c, 95):.2f} ms, max {c.max():.2f} ms")
    print(f"  wall time: median {np.median(t):.2f} ms, p95 {np.percentile(t, 95):.2f} ms, max {t.max():.2f} ms "
          "(includes waiting for a core on a loaded machine)")


if __name__ == "__main__":
    main()
