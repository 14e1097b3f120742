"""Benchmark the cost model: load time and iteration_time lookups per second.

    python benchmarks/bench_costs.py [--keys N] [--repeat R]

Prints (1) the time to build the bundled cost model (Parquet read + model object) and
to build its lazy indexes on the first lookup, (2) iteration_time lookups/s on cached
keys (what the engine sees after the first start of each (model, GPU, placement, batch)),
(3) lookups/s on never-seen keys (the cache cleared before each pass), and (4)
decode_time lookups/s, cached and uncached.
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=2000, help="distinct (model, GPU, placement, batch) keys")
    ap.add_argument("--repeat", type=int, default=50, help="passes over the keys for the cached figure")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    import lepsim.costs as costs
    from lepsim.costs import MissingProfile
    t_import = time.perf_counter() - t0

    t0 = time.perf_counter()
    cm = costs.build_cost_model()
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    cm.iteration_time("resnet50", "V100", (4,), 64)
    t_first = time.perf_counter() - t0
    t_reload = costs._load_seconds()   # store + model again, pyarrow already imported

    models = ["resnet50", "resnet18", "transformer", "lm", "cifar10", "imagenet", "bert", "yolov3"]
    gpus = ["V100", "P100", "K80", "T4", "A100-80GB", "H100"]
    placements = [(1,), (2,), (4,), (8,), (2, 2), (4, 4), (8, 8), (1, 1, 1, 1), (4, 4, 4, 4)]
    batches = [8, 12, 16, 24, 32, 48, 64]
    keys = []
    for m, g, p, b in itertools.product(models, gpus, placements, batches):
        try:
            cm.iteration_time(m, g, p, b)
            keys.append((m, g, p, b))
        except MissingProfile:
            pass
        if len(keys) >= args.keys:
            break
    cm = costs.build_cost_model()

    # uncached: clear the lookup cache before each pass (indexes stay built)
    passes = 5
    t0 = time.perf_counter()
    for _ in range(passes):
        cm._iter_cache.clear()
        for k in keys:
            cm.iteration_time(*k)
    unc = passes * len(keys) / (time.perf_counter() - t0)

    t0 = time.perf_counter()
    for _ in range(args.repeat):
        for k in keys:
            cm.iteration_time(*k)
    cached = args.repeat * len(keys) / (time.perf_counter() - t0)

    inf_keys = [(m, g, b, c, tp) for m in ("llama-2-7b", "llama-2-70b", "opt-13b")
                for g in ("A100-80GB", "H100", "A40") for b in (1, 4, 16, 64) for c in (256, 1024, 4096) for tp in (2, 4, 8)]
    ok = []
    for k in inf_keys:
        try:
            cm.decode_time(*k[:4], tp=k[4])
            ok.append(k)
        except MissingProfile:
            pass
    t0 = time.perf_counter()
    for _ in range(passes):
        cm._inf_cache.clear()
        for m, g, b, c, tp in ok:
            cm.decode_time(m, g, b, c, tp=tp)
    dec_unc = passes * len(ok) / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        for m, g, b, c, tp in ok:
            cm.decode_time(m, g, b, c, tp=tp)
    dec_c = args.repeat * len(ok) / (time.perf_counter() - t0)

    print(f"import lepsim.costs:                   {t_import * 1e3:8.1f} ms")
    print(f"build_cost_model (first, cold):        {t_load * 1e3:8.1f} ms  (Parquet import + read + model)")
    print(f"build_cost_model (again, warm import): {t_reload * 1e3:8.1f} ms")
    print(f"first iteration_time (lazy indexes):   {t_first * 1e3:8.1f} ms")
    print(f"iteration_time, cached keys:           {cached:12,.0f} lookups/s  ({len(keys)} keys x {args.repeat})")
    print(f"iteration_time, uncached keys:         {unc:12,.0f} lookups/s  ({len(keys)} keys x {passes}, cache cleared)")
    print(f"decode_time, cached keys:              {dec_c:12,.0f} lookups/s  ({len(ok)} keys)")
    print(f"decode_time, uncached keys:            {dec_unc:12,.0f} lookups/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
