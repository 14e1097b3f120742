"""Workload: arrival generators, distributions, named random streams, traces, job order.

Statistical checks use fixed seeds and bounds at (at least) 99.9% for a correct
implementation (z = 3.29 for two-sided normal approximations); a wrong process (rate off
by 10%, deterministic spacing, windows not repeated, wrong SCV) falls far outside them.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from pydantic import TypeAdapter

import lepsim
from lepsim.build import build_parts
from lepsim.rng import Streams
from lepsim.scenario.spec import BurstGenerator, CountDist, DurationDist, PoissonGenerator, Scenario, TraceSource
from lepsim.workload.distributions import sample, support_max, support_min
from lepsim.workload.generators import arrival_times, burst_windows
from lepsim.workload.traces import read_trace

Z = 3.29  # two-sided 99.9% normal quantile


def poisson(**kw) -> PoissonGenerator:
    return PoissonGenerator.model_validate({"kind": "poisson", "gpus": 1, "duration": 1, **kw})


def burst(**kw) -> BurstGenerator:
    return BurstGenerator.model_validate({"kind": "burst", "gpus": 1, "duration": 1, **kw})


def within_poisson(n: int, mean: float) -> bool:
    return abs(n - mean) <= Z * math.sqrt(mean)


# ----------------------------------------------------------------------------- Poisson arrivals
@pytest.mark.parametrize("seed", range(4))
def test_poisson_count_over_long_window(seed) -> None:
    g = poisson(rate=5.0, start=0, end=4000)           # rate x T = 20000
    t = arrival_times(g, np.random.default_rng(seed), 4000.0)
    assert within_poisson(len(t), 20000), len(t)
    assert t.min() >= 0 and t.max() < 4000
    assert np.all(np.diff(t) > 0)


def test_poisson_rate_with_units_and_start() -> None:
    g = poisson(rate="360/h", start="1h", end="11h")   # 0.1/s over 36000 s: 3600 expected
    t = arrival_times(g, np.random.default_rng(11), g.end)
    assert within_poisson(len(t), 3600)
    assert t.min() >= 3600 and t.max() < 39600


def test_poisson_interarrivals_exponential() -> None:
    rate = 2.0
    g = poisson(rate=rate, end=10000)                  # ~20000 gaps
    t = arrival_times(g, np.random.default_rng(3), 10000.0)
    gaps = np.diff(np.concatenate([[0.0], t]))
    n = len(gaps)
    mean = gaps.mean()
    assert abs(mean - 1 / rate) <= Z * (1 / rate) / math.sqrt(n)
    cv = gaps.std(ddof=1) / mean
    # the sample CV of n exponentials has sd about 1/sqrt(n) = 0.007 here: 0.04 is > 5 sd
    # (a deterministic or Erlang-2 spacing gives 0 or 0.71)
    assert abs(cv - 1.0) < 0.04, cv
    # memoryless: P(gap > mean) = e^-1
    frac = np.mean(gaps > 1 / rate)
    assert abs(frac - math.exp(-1)) <= Z * math.sqrt(math.exp(-1) * (1 - math.exp(-1)) / n)


def test_poisson_counts_are_poisson_dispersed() -> None:
    """Counts in 1000 equal bins: variance/mean = 1 (0 for evenly spaced, >1 for clumped)."""
    g = poisson(rate=20.0, end=1000)                   # 20 per unit bin
    t = arrival_times(g, np.random.default_rng(5), 1000.0)
    counts = np.bincount(np.floor(t).astype(int), minlength=1000)
    assert len(counts) == 1000
    index = counts.var(ddof=1) / counts.mean()
    assert abs(index - 1.0) < Z * math.sqrt(2 / 999) + 0.01, index


def test_count_stops_exactly() -> None:
    g = poisson(rate=1.0, count=37)
    t = arrival_times(g, np.random.default_rng(0), math.inf)
    assert len(t) == 37 and np.all(np.diff(t) > 0)
    # the first 37 arrivals of the unbounded process: same draws as a long window would give
    long = arrival_times(poisson(rate=1.0, end=1000), np.random.default_rng(0), 1000.0)
    np.testing.assert_array_equal(t, long[:37])
    # an end before the count-th arrival binds first
    g2 = poisson(rate=1.0, count=10_000, end=100)
    t2 = arrival_times(g2, np.random.default_rng(0), 100.0)
    assert within_poisson(len(t2), 100) and t2.max() < 100
    # a count larger than one internal batch
    t3 = arrival_times(poisson(rate=1.0, count=5000), np.random.default_rng(1), math.inf)
    assert len(t3) == 5000 and np.all(np.diff(t3) > 0)
    assert abs(t3[-1] - 5000) <= Z * math.sqrt(5000)


# ----------------------------------------------------------------------------- burst arrivals
def in_windows(t: np.ndarray, windows) -> np.ndarray:
    m = np.zeros(len(t), dtype=bool)
    for a, b in windows:
        m |= (t >= a) & (t < b)
    return m


@pytest.mark.parametrize("seed", range(3))
def test_burst_rates_inside_and_outside(seed) -> None:
    rate, factor = 2.0, 5.0
    wins = [(1000.0, 2000.0), (5000.0, 6000.0)]
    g = burst(rate=rate, factor=factor, end=10000, windows=[{"start": a, "end": b} for a, b in wins])
    t = arrival_times(g, np.random.default_rng(seed), 10000.0)
    inside = in_windows(t, wins)
    assert within_poisson(int(inside.sum()), rate * factor * 2000)     # 20000
    assert within_poisson(int((~inside).sum()), rate * 8000)           # 16000
    assert np.all(np.diff(t) > 0) and t.max() < 10000


def test_burst_factor_zero_silences_windows() -> None:
    g = burst(rate=1.0, factor=0, end=3000, windows=[{"start": 1000, "end": 2000}])
    t = arrival_times(g, np.random.default_rng(0), 3000.0)
    assert not np.any((t >= 1000) & (t < 2000))
    assert within_poisson(len(t), 2000)


def test_burst_period_repeats_windows() -> None:
    g = burst(rate=0.01, factor=100, end=20000, period=1000, windows=[{"start": 0, "end": 100}])
    t = arrival_times(g, np.random.default_rng(2), 20000.0)
    wins = [(k * 1000.0, k * 1000.0 + 100) for k in range(20)]
    inside = in_windows(t, wins)
    assert within_poisson(int(inside.sum()), 1.0 * 100 * 20)          # 2000
    assert within_poisson(int((~inside).sum()), 0.01 * 900 * 20)      # 180
    # every repetition is busy: about 100 arrivals each, none empty
    per = np.bincount((t[inside] // 1000).astype(int), minlength=20)
    assert per.min() > 100 - 5 * 10 and per.max() < 100 + 5 * 10


def test_burst_period_with_offset_windows_and_start() -> None:
    """A generator starting mid-way: windows are absolute times, repeated every period."""
    g = burst(rate=0.0001, factor=10000, start=2500, end=6000, period=1000, windows=[{"start": 200, "end": 300}])
    t = arrival_times(g, np.random.default_rng(4), 6000.0)
    wins = [(k * 1000.0 + 200, k * 1000.0 + 300) for k in range(3, 6)]   # 3200, 4200, 5200
    inside = in_windows(t, wins)
    assert t.min() >= 2500
    assert within_poisson(int(inside.sum()), 300)
    assert (~inside).sum() <= 5                                        # 0.35 expected outside


def test_burst_windows_repeat_and_clip() -> None:
    g = burst(rate=1.0, factor=2, start=1500, period=1000, windows=[{"start": 0, "end": 100}, {"start": 400, "end": 600}])
    assert burst_windows(g, 3450.0) == [(1500.0, 1600.0), (2000.0, 2100.0), (2400.0, 2600.0), (3000.0, 3100.0), (3400.0, 3450.0)]
    once = burst(rate=1.0, factor=2, windows=[{"start": 50, "end": 80}])
    assert burst_windows(once, 1e9) == [(50.0, 80.0)]
    assert burst_windows(once, 60.0) == [(50.0, 60.0)]
    assert burst_windows(poisson(rate=1.0), 100.0) == []


def test_burst_count_stops_exactly() -> None:
    g = burst(rate=1.0, factor=10, count=500, windows=[{"start": 10, "end": 20}])
    t = arrival_times(g, np.random.default_rng(0), math.inf)
    assert len(t) == 500 and np.all(np.diff(t) > 0)


# ----------------------------------------------------------------------------- distributions
DUR = TypeAdapter(DurationDist)
CNT = TypeAdapter(CountDist)
N = 200_000


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_constant_from_bare_value() -> None:
    spec = DUR.validate_python("30min")
    assert spec.dist == "constant" and spec.value == 1800.0
    np.testing.assert_array_equal(sample(spec, rng(), 5), np.full(5, 1800.0))
    assert support_min(spec) == support_max(spec) == 1800.0


def test_exponential_mean() -> None:
    x = sample(DUR.validate_python({"dist": "exponential", "mean": "100s"}), rng(1), N)
    assert abs(x.mean() - 100) <= Z * 100 / math.sqrt(N)
    assert abs(x.var() / x.mean() ** 2 - 1.0) < 0.04     # SCV 1 (sd ~0.006 at this N)
    assert x.min() >= 0


@pytest.mark.parametrize("k", [1, 4, 10])
def test_erlang_mean_and_scv(k) -> None:
    x = sample(DUR.validate_python({"dist": "erlang", "k": k, "mean": "1h"}), rng(k), N)
    assert abs(x.mean() - 3600) <= Z * 3600 / math.sqrt(k * N)
    scv = x.var(ddof=1) / x.mean() ** 2
    # within a quarter of the gap to the next k (>= 4.5 sd of the sample SCV at this N)
    assert abs(scv - 1 / k) < 0.25 * (1 / k - 1 / (k + 1)), scv


def test_hyperexponential_mean_and_second_moment() -> None:
    means, probs = (10.0, 1000.0), (0.9, 0.1)
    x = sample(DUR.validate_python({"dist": "hyperexponential", "means": list(means), "probs": list(probs)}),
               rng(2), 2 * N)
    m1 = sum(p * m for p, m in zip(probs, means))                 # 109
    m2 = sum(p * 2 * m * m for p, m in zip(probs, means))         # 200180
    m4 = sum(p * 24 * m**4 for p, m in zip(probs, means))
    assert abs(x.mean() - m1) <= Z * math.sqrt(m2 - m1 * m1) / math.sqrt(len(x))
    assert abs(np.mean(x * x) - m2) <= Z * math.sqrt(m4 - m2 * m2) / math.sqrt(len(x))
    assert np.mean(x * x) / m1**2 - 1 > 10      # SCV ~16: far above an exponential's 1


def test_bounded_pareto_bounds_mean_and_cdf() -> None:
    a, lo, hi = 1.5, 60.0, 86400.0
    x = sample(DUR.validate_python({"dist": "bounded_pareto", "alpha": a, "low": "1min", "high": "1d"}), rng(3), N)
    assert x.min() >= lo and x.max() <= hi
    mean = (lo**a / (1 - (lo / hi) ** a)) * (a / (a - 1)) * (lo ** (1 - a) - hi ** (1 - a))
    m2 = (lo**a / (1 - (lo / hi) ** a)) * (a / (2 - a)) * (hi ** (2 - a) - lo ** (2 - a))
    assert abs(x.mean() - mean) <= Z * math.sqrt(m2 - mean**2) / math.sqrt(N)
    for q in (120.0, 600.0, 3600.0):
        cdf = (1 - (lo / q) ** a) / (1 - (lo / hi) ** a)
        assert abs(np.mean(x <= q) - cdf) <= Z * math.sqrt(cdf * (1 - cdf) / N)
    assert support_min(DUR.validate_python({"dist": "bounded_pareto", "alpha": a, "low": lo, "high": hi})) == lo


def test_lognormal_median_sigma_and_clipping() -> None:
    x = sample(DUR.validate_python({"dist": "lognormal", "median": "30min", "sigma": 1.2}), rng(4), N)
    # the sample median of a continuous law: P(X <= median) = 1/2 -> binomial bound on the fraction
    assert abs(np.mean(x <= 1800) - 0.5) <= Z * 0.5 / math.sqrt(N)
    logs = np.log(x)
    assert abs(logs.mean() - math.log(1800)) <= Z * 1.2 / math.sqrt(N)
    assert abs(logs.std(ddof=1) - 1.2) <= Z * 1.2 / math.sqrt(2 * N)
    spec = DUR.validate_python({"dist": "lognormal", "median": "30min", "sigma": 1.2, "min": "10min", "max": "2h"})
    y = sample(spec, rng(4), N)
    assert y.min() == 600.0 and y.max() == 7200.0
    assert (support_min(spec), support_max(spec)) == (600.0, 7200.0)
    # clipping keeps the draws: same stream, same order
    np.testing.assert_array_equal(y, np.clip(x, 600, 7200))


def test_uniform_bounds_and_mean() -> None:
    x = sample(DUR.validate_python({"dist": "uniform", "low": "1h", "high": "3h"}), rng(5), N)
    assert x.min() >= 3600 and x.max() <= 10800
    assert abs(x.mean() - 7200) <= Z * (7200 / math.sqrt(3)) / math.sqrt(N)


def test_choice_frequencies() -> None:
    spec = CNT.validate_python({"dist": "choice", "values": [1, 2, 4], "weights": [1, 2, 1]})
    x = sample(spec, rng(6), N)
    assert set(np.unique(x)) == {1.0, 2.0, 4.0}
    for v, p in ((1, 0.25), (2, 0.5), (4, 0.25)):
        assert abs(np.mean(x == v) - p) <= Z * math.sqrt(p * (1 - p) / N)
    uniform = sample(CNT.validate_python({"dist": "choice", "values": [8, 16, 32, 64]}), rng(7), N)
    for v in (8, 16, 32, 64):
        assert abs(np.mean(uniform == v) - 0.25) <= Z * math.sqrt(0.25 * 0.75 / N)
    # a zero weight is never drawn and does not count as the maximum
    spec0 = CNT.validate_python({"dist": "choice", "values": [1, 64], "weights": [1, 0]})
    assert np.all(sample(spec0, rng(8), 1000) == 1) and support_max(spec0) == 1.0


def test_duration_choice_takes_units() -> None:
    spec = DUR.validate_python({"dist": "choice", "values": ["1h", "30min", 60]})
    assert spec.values == (3600.0, 1800.0, 60.0)


# ----------------------------------------------------------------------------- named streams
def test_streams_independent_of_draw_order() -> None:
    s1, s2 = Streams(42), Streams(42)
    a_first = s1.get("workload.generators[0].arrivals").random(5)
    s2.get("workload.generators[1].duration").random(1000)      # other draws first
    s2.get("something.else").random(3)
    a_later = s2.get("workload.generators[0].arrivals").random(5)
    np.testing.assert_array_equal(a_first, a_later)
    # get() always restarts the stream: the same name gives the same numbers again
    np.testing.assert_array_equal(s1.get("workload.generators[0].arrivals").random(5), a_first)


def test_streams_differ_by_name_and_seed() -> None:
    a = Streams(42).get("x").random(4)
    assert not np.array_equal(a, Streams(42).get("y").random(4))
    assert not np.array_equal(a, Streams(43).get("x").random(4))
    assert not np.array_equal(a, Streams(0).get("x").random(4))
    # uncorrelated: |r| of 100000 pairs of uniforms within 3.29/sqrt(n)
    u, v = Streams(1).get("a").random(100_000), Streams(1).get("b").random(100_000)
    assert abs(np.corrcoef(u, v)[0, 1]) < Z / math.sqrt(100_000)


def test_streams_reject_negative_seed() -> None:
    with pytest.raises(ValueError):
        Streams(-1)


# ----------------------------------------------------------------------------- common random numbers
def two_generator_scenario(g0_extra: dict | None = None, seed: int = 9) -> Scenario:
    g0 = {"kind": "poisson", "name": "steady", "rate": "12/h", "gpus": {"dist": "choice", "values": [1, 2]},
          "duration": {"dist": "exponential", "mean": "1h"}}
    g0.update(g0_extra or {})
    g1 = {"kind": "burst", "name": "burst", "rate": "4/h", "factor": 5, "gpus": 1,
          "windows": [{"start": "2h", "end": "3h"}], "duration": {"dist": "erlang", "k": 2, "mean": "30min"},
          "tenant": {"dist": "choice", "values": ["a", "b"]}}
    return Scenario.model_validate({
        "cluster": {"pools": [{"count": 2, "gpu_type": "V100", "gpus_per_node": 8, "cpus": 64, "memory": "512GiB"}]},
        "workload": {"generators": [g0, g1]},
        "scheduler": {"policy": "fifo"},
        "simulation": {"seed": seed, "horizon": "24h"},
    })


def jobs_of(sc: Scenario, source: str) -> list:
    parts, problems = build_parts(sc)
    assert problems == []
    return [j for j in parts.jobs if j.source == source]


def fields(jobs, *names):
    return [tuple(getattr(j, n) for n in names) for j in jobs]


def test_changing_one_generator_leaves_the_other_alone() -> None:
    base = two_generator_scenario()
    g1 = jobs_of(base, "workload.generators[1]")
    g0 = jobs_of(base, "workload.generators[0]")
    assert len(g1) > 50 and len(g0) > 200
    for change in ({"duration": {"dist": "lognormal", "median": "2h", "sigma": 2}},
                   {"gpus": {"dist": "choice", "values": [1, 2, 4, 8], "weights": [1, 1, 1, 1]}},
                   {"rate": "30/h"}):
        other = two_generator_scenario(change)
        assert fields(jobs_of(other, "workload.generators[1]"), "name", "submit_time", "gpus", "duration",
                      "tenant") == fields(g1, "name", "submit_time", "gpus", "duration", "tenant"), change
    # a new duration law for generator 0 keeps its own arrival times and sizes
    new = jobs_of(two_generator_scenario({"duration": {"dist": "uniform", "low": "1min", "high": "2h"}}),
                  "workload.generators[0]")
    assert fields(new, "submit_time", "gpus") == fields(g0, "submit_time", "gpus")
    assert fields(new, "duration") != fields(g0, "duration")


def test_seed_changes_and_reproduces_the_workload() -> None:
    a = jobs_of(two_generator_scenario(seed=9), "workload.generators[0]")
    b = jobs_of(two_generator_scenario(seed=9), "workload.generators[0]")
    c = jobs_of(two_generator_scenario(seed=10), "workload.generators[0]")
    assert fields(a, "submit_time", "gpus", "duration") == fields(b, "submit_time", "gpus", "duration")
    assert fields(a, "submit_time") != fields(c, "submit_time")


def test_generator_without_end_stops_at_horizon() -> None:
    jobs = jobs_of(two_generator_scenario(), "workload.generators[0]")
    assert max(j.submit_time for j in jobs) < 24 * 3600
    assert within_poisson(len(jobs), 12 * 24)
    assert {j.gpus for j in jobs} == {1, 2}
    assert [j.name for j in jobs] == [f"steady-{k}" for k in range(len(jobs))]


# ----------------------------------------------------------------------------- traces
def write(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def trace(**kw) -> TraceSource:
    return TraceSource.model_validate({"path": "t.csv", **kw})


def test_trace_column_aliases(tmp_path: Path) -> None:
    p = write(tmp_path / "t.csv", [
        "Timestamp,Num_GPUs,Runtime,Job_ID,User,Model_Name,GPU_Type,Num_CPUs,Mem,Batch_Size",
        "0,2,1h,j0,alice,resnet50,V100,8,64GiB,32",
        "30,1,90s,j1,,,,,,",
    ])
    rows, problems = read_trace(p, trace(tenant="lab"), "t.csv")
    assert problems == []
    r0, r1 = rows
    assert (r0["submit"], r0["gpus"], r0["duration"], r0["iterations"]) == (0.0, 2, 3600.0, None)
    assert (r0["name"], r0["tenant"], r0["model"], r0["gpu_type"]) == ("j0", "alice", "resnet50", "V100")
    assert (r0["cpus"], r0["memory"], r0["batch_size"], r0["line"]) == (8.0, 64 * 2**30, 32, 2)
    assert (r1["submit"], r1["duration"], r1["name"], r1["tenant"], r1["model"], r1["line"]) == \
        (30.0, 90.0, "j1", "lab", None, 3)


@pytest.mark.parametrize("header", ["submit,gpu,duration", "time,num_gpu,duration", "SUBMIT_TIME, GPUS ,DURATION"])
def test_trace_header_variants(tmp_path: Path, header) -> None:
    p = write(tmp_path / "t.csv", [header, "5,3,10"])
    rows, problems = read_trace(p, trace(), "t.csv")
    assert problems == [] and (rows[0]["submit"], rows[0]["gpus"], rows[0]["duration"]) == (5.0, 3, 10.0)


def test_trace_iterations_column(tmp_path: Path) -> None:
    p = write(tmp_path / "t.csv", ["submit_time,gpus,total_steps,application", "0,4,5000,bert"])
    rows, problems = read_trace(p, trace(), "t.csv")
    assert problems == [] and (rows[0]["iterations"], rows[0]["duration"], rows[0]["model"]) == (5000.0, None, "bert")


def test_trace_time_unit_and_scales(tmp_path: Path) -> None:
    p = write(tmp_path / "t.csv", [
        "submit_time,gpus,duration",
        "2,1,30",          # plain numbers in minutes
        "90s,1,1h",        # strings with units ignore time_unit
        "1.5,1,0.5",
    ])
    rows, problems = read_trace(p, trace(time_unit="min", time_scale=0.5, duration_scale=2), "t.csv")
    assert problems == []
    assert [(r["submit"], r["duration"]) for r in rows] == [(60.0, 3600.0), (45.0, 7200.0), (45.0, 60.0)]
    rows_h, _ = read_trace(p, trace(time_unit="h"), "t.csv")
    assert [(r["submit"], r["duration"]) for r in rows_h] == [(7200.0, 108000.0), (90.0, 3600.0), (5400.0, 1800.0)]


def test_trace_limit(tmp_path: Path) -> None:
    p = write(tmp_path / "t.csv", ["submit_time,gpus,duration"] + [f"{10 * k},1,60" for k in range(10)])
    rows, problems = read_trace(p, trace(limit=3), "t.csv")
    assert problems == [] and [r["submit"] for r in rows] == [0.0, 10.0, 20.0]


def test_trace_defaults_for_cpus_and_memory(tmp_path: Path) -> None:
    write(tmp_path / "t.csv", ["submit_time,gpus,duration,cpus", "0,2,60,", "10,2,60,5"])
    (tmp_path / "s.yaml").write_text(
        "cluster: {pools: [{count: 1, gpu_type: V100, gpus_per_node: 8, cpus: 64, memory: 512GiB}]}\n"
        "workload:\n"
        "  defaults: {cpus_per_gpu: 1, memory_per_gpu: 1GiB}\n"
        "  traces: [{path: t.csv, cpus_per_gpu: 3, memory_per_gpu: 8GiB, tenant: x}]\n"
        "scheduler: {policy: fifo}\n")
    parts, problems = build_parts(lepsim.load_scenario(tmp_path / "s.yaml"))
    assert problems == []
    assert [(j.cpus, j.memory_bytes, j.tenant) for j in parts.jobs] == [(6.0, 16 * 2**30, "x"), (5.0, 16 * 2**30, "x")]
    assert [j.name for j in parts.jobs] == ["trace0-0", "trace0-1"]


def test_job_order_and_ties(tmp_path: Path) -> None:
    """ids 0..n-1 in submit order; ties: inline jobs, then generators, then traces (each in its own order)."""
    gen = {"kind": "poisson", "name": "g", "rate": "6/h", "gpus": 1, "duration": "10min"}
    cluster = {"pools": [{"count": 1, "gpu_type": "V100", "gpus_per_node": 8, "cpus": 64, "memory": "512GiB"}]}
    only_gen = Scenario.model_validate({"cluster": cluster, "workload": {"generators": [gen]},
                                        "scheduler": {"policy": "fifo"}, "simulation": {"seed": 4, "horizon": "5h"}})
    t_star = jobs_of(only_gen, "workload.generators[0]")[2].submit_time   # an arrival time of g
    ts = repr(t_star)
    write(tmp_path / "a.csv", ["submit_time,gpus,duration,name", f"{ts},1,60,tr-a1", "0,1,60,tr-a0", f"{ts},1,60,tr-a2"])
    write(tmp_path / "b.csv", ["submit_time,gpus,duration,name", f"{ts},1,60,tr-b1"])
    (tmp_path / "s.yaml").write_text(
        f"cluster: {{pools: [{{count: 1, gpu_type: V100, gpus_per_node: 8, cpus: 64, memory: 512GiB}}]}}\n"
        "workload:\n"
        "  jobs:\n"
        f"    - {{name: in-1, gpus: 1, duration: 60, submit: {ts}}}\n"
        f"    - {{name: in-2, gpus: 1, duration: 60, submit: {ts}}}\n"
        "    - {name: in-0, gpus: 1, duration: 60}\n"
        "  generators:\n"
        "    - {kind: poisson, name: g, rate: 6/h, gpus: 1, duration: 10min}\n"
        "  traces: [{path: a.csv}, {path: b.csv}]\n"
        "scheduler: {policy: fifo}\n"
        "simulation: {seed: 4, horizon: 5h}\n")
    jobs = build_parts(lepsim.load_scenario(tmp_path / "s.yaml"))[0].jobs
    assert [j.job_id for j in jobs] == list(range(len(jobs)))
    times = [j.submit_time for j in jobs]
    assert times == sorted(times)
    names = [j.name for j in jobs]
    # at t=0: the inline job before the trace row
    assert names[:2] == ["in-0", "tr-a0"]
    # at t*: inline jobs (file order), the generator's job, trace a's rows (row order), then trace b
    k = names.index("in-1")
    assert names[k:k + 6] == ["in-1", "in-2", "g-2", "tr-a1", "tr-a2", "tr-b1"]
    assert all(jobs[i].submit_time == t_star for i in range(k, k + 6))
    assert [j.source for j in jobs[k:k + 6]] == ["workload.jobs[0]", "workload.jobs[1]", "workload.generators[0]",
                                                 "a.csv:2", "a.csv:4", "b.csv:2"]
    # the generator's jobs are the same with or without the other sources
    assert fields([j for j in jobs if j.source == "workload.generators[0]"], "name", "submit_time") == \
        fields(jobs_of(only_gen, "workload.generators[0]"), "name", "submit_time")
