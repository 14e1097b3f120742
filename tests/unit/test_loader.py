"""lepsim.load_scenario: every problem as (file, line, field path, message), in-process.

Each scenario below is written to a temporary folder; line numbers are counted by hand
(the ``# n`` comments).  Messages follow "what was found, what was expected".
"""
from __future__ import annotations

from pathlib import Path

import pytest

import lepsim
from lepsim.build import build_parts
from lepsim.errors import Problem, ScenarioError

POOL = "    - {count: 1, gpu_type: V100, gpus_per_node: 4, cpus: 32, memory: 256GiB}"
HEAD = ["cluster:", "  pools:", POOL, "workload:"]          # lines 1-4
TAIL = ["scheduler: {policy: fifo}", "simulation: {horizon: 10h}"]


def write(folder: Path, name: str, rows) -> Path:
    p = folder / name
    p.write_text("\n".join(rows) + "\n" if not isinstance(rows, str) else rows, encoding="utf-8")
    return p


def problems(path: Path) -> list[Problem]:
    with pytest.raises(ScenarioError) as info:
        lepsim.load_scenario(path)
    err = info.value
    assert err.problems, "ScenarioError without problems"
    assert str(err) == "\n".join(str(p) for p in err.problems)
    return err.problems


def where(ps: list[Problem]) -> list[tuple]:
    return [(p.file, p.line, p.path) for p in ps]


def one(ps: list[Problem]) -> Problem:
    assert len(ps) == 1, "\n".join(map(str, ps))
    return ps[0]


def generator(*lines: str) -> list[str]:
    """A scenario whose workload has the given generator lines (starting at line 6)."""
    return HEAD + ["  generators:"] + list(lines) + TAIL


# ----------------------------------------------------------------------------- files
def test_missing_file(tmp_path: Path) -> None:
    p = one(problems(tmp_path / "nope.yaml"))
    assert (p.file, p.line, p.path) == (str(tmp_path / "nope.yaml"), None, "")
    assert p.message == "no such file, expected a scenario YAML file"


def test_directory_instead_of_file(tmp_path: Path) -> None:
    p = one(problems(tmp_path))
    assert p.line is None and "is a directory" in p.message


def test_problem_str_format() -> None:
    assert str(Problem("a.yaml", 3, "cluster.pools[0].count", "found -1, expected >= 1")) == \
        "a.yaml:3: cluster.pools[0].count: found -1, expected >= 1"
    assert str(Problem("a.yaml", None, "", "no such file")) == "a.yaml: no such file"
    assert str(Problem("a.yaml", 1, "", "file is empty")) == "a.yaml:1: file is empty"


def test_display_name_is_the_path_as_given(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "s.yaml", HEAD + ["  jobs: [{gpus: -1, duration: 1h}]", "scheduler: {policy: fifo}"])
    assert where(problems(Path("s.yaml"))) == [("s.yaml", 5, "workload.jobs[0].gpus")]


# ----------------------------------------------------------------------------- union tags
def test_bad_generator_kind(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", generator(
        "    - kind: gamma",       # 6
        "      rate: 1/h",         # 7
        "      duration: 1h",      # 8
    ))
    p = one(problems(s))
    assert (p.line, p.path) == (6, "workload.generators[0]")
    for word in ("'gamma'", "'poisson'", "'burst'"):
        assert word in p.message


def test_bad_distribution_name(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", generator(
        "    - kind: poisson",     # 6
        "      rate: 1/h",         # 7
        "      duration: {dist: weibull, mean: 1h}",  # 8
    ))
    p = one(problems(s))
    assert (p.line, p.path) == (8, "workload.generators[0].duration")
    for word in ("'weibull'", "'exponential'", "'lognormal'", "'bounded_pareto'"):
        assert word in p.message


def test_bad_tag_message_reads_found_expected(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", generator("    - kind: gamma", "      rate: 1/h", "      duration: 1h"))
    msg = one(problems(s)).message
    assert msg.startswith("found ") and ", expected one of " in msg
    assert msg.count("found") == 1


# ----------------------------------------------------------------------------- distributions
def test_choice_weights_length_mismatch(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", generator(
        "    - kind: poisson",     # 6
        "      rate: 1/h",         # 7
        "      gpus: {dist: choice, values: [1, 2, 4], weights: [0.5, 0.5]}",  # 8
        "      duration: 1h",      # 9
    ))
    p = one(problems(s))
    assert (p.line, p.path) == (8, "workload.generators[0].gpus")
    assert p.message == "found 2 weights for 3 values, expected one weight per value"


def test_choice_weights_summing_to_zero(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", generator(
        "    - kind: poisson",     # 6
        "      rate: 1/h",         # 7
        "      gpus: 1",           # 8
        "      duration: {dist: choice, values: [1h, 2h], weights: [0, 0]}",  # 9
    ))
    p = one(problems(s))
    assert (p.line, p.path) == (9, "workload.generators[0].duration")
    assert "summing to 0" in p.message and "expected a positive sum" in p.message


def test_label_choice_problem_reported_once(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", generator(
        "    - kind: poisson",     # 6
        "      rate: 1/h",         # 7
        "      gpus: 1",           # 8
        "      duration: 1h",      # 9
        "      tenant: {dist: choice, values: [a, b], weights: [1]}",  # 10
    ))
    p = one(problems(s))
    assert (p.line, p.path) == (10, "workload.generators[0].tenant")
    assert "expected one weight per value" in p.message


def test_lognormal_parameters(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", generator(
        "    - kind: poisson",     # 6
        "      rate: 1/h",         # 7
        "      gpus: 1",           # 8
        "      duration:",         # 9
        "        dist: lognormal",  # 10
        "        median: -1h",     # 11
        "        sigma: -0.5",     # 12
    ))
    ps = problems(s)
    assert where(ps) == [(str(s), 11, "workload.generators[0].duration.median"),
                         (str(s), 12, "workload.generators[0].duration.sigma")]
    assert ps[0].message == "found '-1h', expected greater than 0"
    assert ps[1].message == "found -0.5, expected greater than or equal to 0"


def test_lognormal_with_bounds_loads_in_si(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", generator(
        "    - kind: poisson", "      rate: 1/h", "      gpus: 1",
        "      duration: {dist: lognormal, median: 30min, sigma: 1.2, min: 2min, max: 1d}",
    ))
    d = lepsim.load_scenario(s).workload.generators[0].duration
    assert (d.dist, d.median, d.sigma, d.min, d.max) == ("lognormal", 1800.0, 1.2, 120.0, 86400.0)


@pytest.mark.parametrize("spec, path_end, words", [
    ("{dist: uniform, low: 2h, high: 1h}", "", ["low=7200", "high=3600", "expected low <= high"]),
    ("{dist: bounded_pareto, alpha: 1.1, low: 1h, high: 1h}", "", ["expected low < high"]),
    ("{dist: bounded_pareto, alpha: 0, low: 1min, high: 1h}", ".alpha", ["found 0", "greater than 0"]),
    ("{dist: hyperexponential, means: [1h, 2h], probs: [0.5, 0.6]}", "", ["summing to 1.1", "expected 1"]),
    ("{dist: erlang, k: 0, mean: 1h}", ".k", ["found 0", "greater than or equal to 1"]),
    ("{dist: exponential, mean: 0s}", ".mean", ["found '0s'", "greater than 0"]),
    ("{dist: exponential}", ".mean", ["missing"]),
])
def test_distribution_parameter_checks(tmp_path: Path, spec, path_end, words) -> None:
    s = write(tmp_path, "s.yaml", generator("    - kind: poisson", "      rate: 1/h", "      gpus: 1",
                                            f"      duration: {spec}"))   # line 9
    p = one(problems(s))
    assert (p.line, p.path) == (9, "workload.generators[0].duration" + path_end)
    for w in words:
        assert w in p.message, p.message


# ----------------------------------------------------------------------------- windows, simulation
def test_window_end_before_start(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", generator(
        "    - kind: burst",       # 6
        "      rate: 1/h",         # 7
        "      factor: 4",         # 8
        "      duration: 1h",      # 9
        "      windows:",          # 10
        "        - {start: 1h, end: 2h}",   # 11
        "        - {start: 5h, end: 5h}",   # 12
    ))
    p = one(problems(s))
    assert (p.line, p.path) == (12, "workload.generators[0].windows[1]")
    assert p.message == "found end 18000s <= start 18000s, expected end after start"


def test_only_item_invalid_reported_once(tmp_path: Path) -> None:
    """No follow-up 'list too short' problem when a list's only item is invalid."""
    s = write(tmp_path, "s.yaml", generator(
        "    - kind: burst", "      rate: 1/h", "      factor: 4", "      duration: 1h",
        "      windows: [{start: 2h, end: 1h}]",   # 10
    ))
    p = one(problems(s))
    assert (p.line, p.path) == (10, "workload.generators[0].windows[0]")
    s2 = write(tmp_path, "s2.yaml", ["cluster:", "  pools:", "    - {count: 0, template: dgx-a100}",  # 3
                                     "workload:", "  jobs: [{gpus: 1, duration: 1h}]", "scheduler: {policy: fifo}"])
    p2 = one(problems(s2))
    assert (p2.line, p2.path) == (3, "cluster.pools[0].count")
    # an empty list is still reported as too short
    s3 = write(tmp_path, "s3.yaml", ["cluster:", "  pools: []", "workload:", "  jobs: [{gpus: 1, duration: 1h}]",
                                     "scheduler: {policy: fifo}"])
    p3 = one(problems(s3))
    assert (p3.line, p3.path) == (2, "cluster.pools") and "at least 1" in p3.message


def test_generator_end_before_start(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", generator("    - kind: poisson", "      rate: 1/h", "      duration: 1h",
                                            "      gpus: 1", "      start: 2h", "      end: 1h"))
    p = one(problems(s))
    assert (p.line, p.path) == (6, "workload.generators[0]")
    assert "expected end after start" in p.message


def test_warmup_plus_cooldown_at_least_horizon(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", HEAD + [
        "  jobs: [{gpus: 1, duration: 1h}]",   # 5
        "scheduler: {policy: fifo}",           # 6
        "simulation:",                         # 7
        "  horizon: 10h",                      # 8
        "  warmup: 4h",                        # 9
        "  cooldown: 6h",                      # 10
    ])
    p = one(problems(s))
    assert (p.line, p.path) == (7, "simulation")
    assert p.message == "found warmup + cooldown >= horizon, expected a non-empty measurement window"
    # just below the limit loads
    write(tmp_path, "ok.yaml", HEAD + ["  jobs: [{gpus: 1, duration: 1h}]", "scheduler: {policy: fifo}",
                                       "simulation: {horizon: 10h, warmup: 4h, cooldown: 5h59min}"])
    assert lepsim.load_scenario(tmp_path / "ok.yaml").simulation.cooldown == 21540.0


def test_unbounded_generator(tmp_path: Path) -> None:
    rows = HEAD + ["  generators:",
                   "    - kind: poisson",   # 6
                   "      rate: 1/h", "      gpus: 1", "      duration: 1h",
                   "scheduler: {policy: fifo}"]
    p = one(problems(write(tmp_path, "s.yaml", rows)))
    assert (p.line, p.path) == (6, "workload.generators[0]")
    assert p.message == "found neither end nor count and no simulation.horizon, expected a bound on arrivals"
    # a count, an end or a horizon bounds it
    for extra in ("      count: 5", "      end: 3h"):
        ok = write(tmp_path, "ok.yaml", rows[:-1] + [extra, rows[-1]])
        assert lepsim.load_scenario(ok).workload.generators[0] is not None
    ok = write(tmp_path, "ok2.yaml", rows + ["simulation: {horizon: 3h}"])
    assert lepsim.load_scenario(ok).simulation.horizon == 10800.0


# ----------------------------------------------------------------------------- jobs
@pytest.mark.parametrize("job", ["{gpus: 1}", "{gpus: 1, duration: 1h, iterations: 100}"])
def test_inline_job_needs_exactly_one_size(tmp_path: Path, job) -> None:
    s = write(tmp_path, "s.yaml", HEAD + ["  jobs:", "    - {gpus: 1, duration: 1h}", f"    - {job}",  # 7
                                          "scheduler: {policy: fifo}"])
    p = one(problems(s))
    assert (p.line, p.path) == (7, "workload.jobs[1]")
    assert p.message == "expected exactly one of duration or iterations"


@pytest.mark.parametrize("size", [[], ["      duration: 1h", "      iterations: 10"]])
def test_generator_needs_exactly_one_size(tmp_path: Path, size) -> None:
    s = write(tmp_path, "s.yaml", generator("    - kind: poisson", "      rate: 1/h", "      gpus: 1", *size))
    p = one(problems(s))
    assert (p.line, p.path) == (6, "workload.generators[0]")
    assert p.message == "expected exactly one of duration or iterations"


MODEL = "no-such-model-xyz"


def test_iteration_job_without_profile(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", HEAD + [
        "  jobs:",                                           # 5
        "    - {gpus: 1, duration: 1h}",                      # 6
        f"    - {{gpus: 2, iterations: 1000, model: {MODEL}}}",  # 7
        "scheduler: {policy: fifo}",
    ])
    p = one(problems(s))
    assert (p.line, p.path) == (7, "workload.jobs[1].model")
    assert repr(MODEL) in p.message


def test_iteration_generator_and_trace_without_profile(tmp_path: Path) -> None:
    write(tmp_path, "it.csv", ["submit_time,gpus,iterations,model", f"0,1,500,{MODEL}-b"])
    s = write(tmp_path, "s.yaml", HEAD + [
        "  generators:",                 # 5
        "    - kind: poisson",           # 6
        "      rate: 2/h",               # 7
        "      gpus: 1",                 # 8
        "      iterations: 1000",        # 9
        f"      model: {MODEL}",         # 10
        "  traces:",                     # 11
        "    - path: it.csv",            # 12
        "scheduler: {policy: fifo}",
        "simulation: {horizon: 10h}",
    ])
    ps = problems(s)
    assert len(ps) == 2, ps   # one per source, not one per generated job
    gen = next(p for p in ps if p.file == str(s))
    assert gen.path == "workload.generators[0].model" and gen.line == 10 and repr(MODEL) in gen.message
    tr = next(p for p in ps if p.file != str(s))
    assert (tr.file, tr.line, tr.path) == ("it.csv", 2, "model") and repr(MODEL + "-b") in tr.message


# ----------------------------------------------------------------------------- unknown keys
@pytest.mark.parametrize("rows, line, path, allowed", [
    (HEAD + ["  jobs: [{gpus: 1, duration: 1h}]", "scheduler: {policy: fifo}", "seed: 3"], 7, "seed",
     ["name", "description", "cluster", "workload", "scheduler", "simulation", "costs"]),
    (["cluster:", "  pools:", "    - {count: 1, template: dgx-a100, racks: 2}", POOL, "workload:",
      "  jobs: [{gpus: 1, duration: 1h}]", "scheduler: {policy: fifo}"], 3, "cluster.pools[0].racks",
     ["name", "count", "template", "gpu_type", "gpus_per_node", "cpus", "memory", "intra_node_link", "labels"]),
    (HEAD + ["  jobs: [{gpus: 1, duration: 1h, deadline: 3}]", "scheduler: {policy: fifo}"], 5,
     "workload.jobs[0].deadline", ["submit", "gpus", "duration", "iterations", "model", "tenant"]),
    (generator("    - kind: poisson", "      rate: 1/h", "      gpus: 1", "      duration: 1h", "      burst: 2"),
     10, "workload.generators[0].burst", ["rate", "start", "end", "count", "gpus", "duration", "kind"]),
    (generator("    - kind: burst", "      rate: 1/h", "      gpus: 1", "      duration: 1h", "      factor: 2",
               "      windows: [{start: 1h, end: 2h}]", "      every: 1d"),
     12, "workload.generators[0].every", ["factor", "windows", "period"]),
    (HEAD + ["  jobs: [{gpus: 1, duration: 1h}]", "scheduler:", "  policy: fifo", "  preemption: {save: 1s}"], 8,
     "scheduler.preemption.save", ["checkpoint", "restore"]),
    (HEAD + ["  jobs: [{gpus: 1, duration: 1h}]", "scheduler: {policy: fifo}", "simulation: {seed: 1, until: 2h}"], 7,
     "simulation.until", ["seed", "horizon", "warmup", "cooldown"]),
    (HEAD + ["  jobs: [{gpus: 1, duration: 1h}]", "scheduler:", "  policy: sjf", "  params: {order: size}"], 8,
     "scheduler.params.order", ["placement", "consolidate"]),
])
def test_unknown_key_lists_allowed_keys(tmp_path: Path, rows, line, path, allowed) -> None:
    p = one(problems(write(tmp_path, "s.yaml", rows)))
    assert (p.line, p.path) == (line, path)
    key = path.rsplit(".", 1)[-1]
    assert p.message.startswith(f"found unknown key {key!r}, expected one of: ")
    listed = p.message.split("expected one of: ", 1)[1].split(", ")
    assert set(allowed) <= set(listed), listed
    assert key not in listed


def test_unknown_key_in_distribution_lists_allowed_keys(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", generator("    - kind: poisson", "      rate: 1/h", "      gpus: 1",
                                            "      duration: {dist: exponential, mean: 1h, shape: 2}"))
    p = one(problems(s))
    assert (p.line, p.path) == (9, "workload.generators[0].duration.shape")
    assert p.message == "found unknown key 'shape', expected one of: dist, mean"


@pytest.mark.parametrize("rows, expected", [
    (["cluster: 5", "workload: {jobs: [{gpus: 1, duration: 1h}]}", "scheduler: {policy: fifo}"], "expected a mapping"),
    (["cluster: {pools: {a: {count: 1, template: dgx-a100}}}", "workload: {jobs: [{gpus: 1, duration: 1h}]}",
      "scheduler: {policy: fifo}"], "expected a list"),
])
def test_wrong_shape_message_speaks_yaml(tmp_path: Path, rows, expected) -> None:
    p = one(problems(write(tmp_path, "s.yaml", rows)))
    assert expected in p.message


def test_generator_without_gpus_defaults_to_one(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", generator("    - kind: poisson", "      rate: 2/h", "      duration: 1h"))
    sc = lepsim.load_scenario(s)
    parts, ps = build_parts(sc)
    assert ps == [] and parts.jobs and all(j.gpus == 1 for j in parts.jobs)


# ----------------------------------------------------------------------------- traces
def trace_scenario(tmp_path: Path, extra: str = "") -> Path:
    return write(tmp_path, "s.yaml", HEAD + [
        "  traces:",                                   # 5
        f"    - {{path: t.csv{extra}}}",               # 6
        "scheduler: {policy: fifo}",
    ])


def test_trace_file_missing(tmp_path: Path) -> None:
    s = trace_scenario(tmp_path)
    p = one(problems(s))
    assert (p.file, p.line, p.path) == (str(s), 6, "workload.traces[0].path")
    assert p.message.startswith("found 't.csv', which is not a file") and p.message.endswith("expected a CSV trace")


def test_trace_empty(tmp_path: Path) -> None:
    write(tmp_path, "t.csv", "")
    p = one(problems(trace_scenario(tmp_path)))
    assert (p.file, p.line) == ("t.csv", 1) and "empty" in p.message


BAD_TRACE = [
    "Submit_Time,GPUs,duration,name,memory,cpus,batch_size",   # 1
    "0,1,1h,ok-1,,,",                                          # 2
    "10,1.5,1h,frac,,,",                                       # 3  gpus not an integer
    "20,1,,nosize,,,",                                         # 4  neither duration nor iterations
    "30,1,1h,mem,16GX,,",                                      # 5  bad memory
    "",                                                        # 6  blank: skipped silently
    "40,1,1h,ok-2,16GiB,4,32",                                 # 7
    "abc,1,1h,when,,,",                                        # 8  bad submit time
    "50,1,1h,cpu,,-2,",                                        # 9  negative cpus
    "60,1,1h,batch,,,0",                                       # 10 batch size < 1
    "70,1,0,zero,,,",                                          # 11 zero duration
    "80,2,2h,ok-3,,,",                                         # 12
]


def test_trace_bad_rows_each_reported_with_its_line(tmp_path: Path) -> None:
    write(tmp_path, "t.csv", BAD_TRACE)
    ps = problems(trace_scenario(tmp_path))
    assert where(ps) == [("t.csv", 3, "gpus"), ("t.csv", 4, "duration"), ("t.csv", 5, "memory"),
                         ("t.csv", 8, "submit_time"), ("t.csv", 9, "cpus"), ("t.csv", 10, "batch_size"),
                         ("t.csv", 11, "duration")]
    msgs = [p.message for p in ps]
    assert msgs[0] == "found '1.5', expected an integer >= 0"
    assert msgs[1] == "found '', expected a duration or an iterations value"
    assert msgs[2] == "found '16GX', expected a size such as 16GiB"
    assert msgs[3] == "found 'abc', expected a number or a duration such as 90s"
    assert msgs[4] == "found '-2', expected a number >= 0"
    assert msgs[5] == "found '0', expected an integer >= 1"
    assert msgs[6] == "found '0', expected a duration > 0"


def test_trace_skip_bad_rows(tmp_path: Path) -> None:
    write(tmp_path, "t.csv", BAD_TRACE)
    sc = lepsim.load_scenario(trace_scenario(tmp_path, ", skip_bad_rows: true"))
    parts, ps = build_parts(sc)
    assert ps == []
    # every skipped row is still reported, as a warning with its line
    assert [(w.file, w.line, w.path) for w in parts.warnings] == [
        ("t.csv", 3, "gpus"), ("t.csv", 4, "duration"), ("t.csv", 5, "memory"), ("t.csv", 8, "submit_time"),
        ("t.csv", 9, "cpus"), ("t.csv", 10, "batch_size"), ("t.csv", 11, "duration")]
    assert all(w.message.endswith("(row skipped)") for w in parts.warnings)
    assert [(j.name, j.submit_time, j.source) for j in parts.jobs] == [
        ("ok-1", 0.0, "t.csv:2"), ("ok-2", 40.0, "t.csv:7"), ("ok-3", 80.0, "t.csv:12")]
    ok2 = parts.jobs[1]
    assert (ok2.memory_bytes, ok2.cpus, ok2.batch_size) == (16 * 2**30, 4.0, 32)
    assert parts.jobs[2].duration == 7200.0 and parts.jobs[2].gpus == 2


def test_trace_header_without_required_columns(tmp_path: Path) -> None:
    write(tmp_path, "t.csv", ["start,size,len", "0,1,1h"])
    p = one(problems(trace_scenario(tmp_path)))
    assert (p.file, p.line, p.path) == ("t.csv", 1, "")
    assert p.message.startswith("header lacks submit_time, gpus, duration or iterations; found columns start, size, len")


def test_trace_unknown_gpu_type_and_unfit_row(tmp_path: Path) -> None:
    write(tmp_path, "t.csv", ["submit_time,gpus,duration,gpu_type", "0,1,1h,V100", "5,1,1h,Z100", "9,8,1h,"])
    ps = problems(trace_scenario(tmp_path))
    assert where(ps) == [("t.csv", 3, "gpu_type"), ("t.csv", 4, "gpus")]
    assert "found 'Z100', expected a GPU type" == ps[0].message
    assert "asks 8 GPUs, but the cluster has at most 4 GPUs" in ps[1].message


@pytest.mark.parametrize("gpus, words", [
    ("{dist: exponential, mean: 2}", ["unbounded exponential", "expected a bounded one"]),
    ("{dist: lognormal, median: 2, sigma: 1}", ["unbounded lognormal"]),
    ("{dist: uniform, low: -2, high: 2}", ["negative GPU counts"]),
    ("-1", ["negative GPU counts"]),
])
def test_generator_gpu_distribution_must_be_bounded_and_nonnegative(tmp_path: Path, gpus, words) -> None:
    s = write(tmp_path, "s.yaml", generator("    - kind: poisson", "      rate: 1/h", "      duration: 1h",
                                            f"      gpus: {gpus}"))   # line 9
    p = one(problems(s))
    assert (p.line, p.path) == (9, "workload.generators[0].gpus")
    for w in words:
        assert w in p.message, p.message


@pytest.mark.parametrize("size, path", [
    ("      duration: {dist: uniform, low: 0s, high: 1h}", "duration"),
    ("      duration: {dist: choice, values: [1h, 0s]}", "duration"),
    ("      iterations: 0", "iterations"),
])
def test_generator_sizes_must_be_positive(tmp_path: Path, size, path) -> None:
    s = write(tmp_path, "s.yaml", generator("    - kind: poisson", "      rate: 1/h", "      gpus: 1", size,  # 9
                                            "      model: resnet50"))
    p = one(problems(s))
    assert (p.line, p.path) == (9, f"workload.generators[0].{path}")
    assert f"can generate {path} <= 0, expected values > 0" == p.message


def test_iterations_need_a_model(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", generator("    - kind: poisson", "      rate: 1/h", "      gpus: 1",
                                            "      iterations: 100"))
    p = one(problems(s))
    assert (p.line, p.path) == (6, "workload.generators[0]")
    assert p.message == "found iterations without a model, expected a model whose cost profile gives the runtime"


def test_periodic_burst_without_end_is_loaded_or_reported(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", HEAD + [
        "  generators:",
        "    - kind: burst",        # 6
        "      rate: 1/h", "      gpus: 1", "      factor: 3", "      count: 50", "      period: 1d",
        "      windows: [{start: 1h, end: 2h}]", "      duration: 1h",
        "scheduler: {policy: fifo}",
    ])
    try:
        sc = lepsim.load_scenario(s)
    except ScenarioError as e:
        assert [p.path for p in e.problems] == ["workload.generators[0]"] or \
            [p.path for p in e.problems] == ["workload.generators[0].period"]
        return
    parts, ps = build_parts(sc)
    assert ps == [] and len(parts.jobs) == 50


# ----------------------------------------------------------------------------- several at once
def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, "t.csv", ["submit_time,gpus,duration", "0,x,1h"])
    s = write(tmp_path, "s.yaml", [
        "cluster:",                                                  # 1
        "  pools:",                                                  # 2
        POOL,                                                        # 3
        "    - {count: 1, template: dgx-a100}",                       # 4
        "workload:",                                                 # 5
        "  jobs:",                                                   # 6
        "    - {gpus: 1, duration: 1h, gpu_type: Z100}",              # 7
        "    - {gpus: 9, duration: 1h, gpu_type: V100}",              # 8
        "  generators:",                                             # 9
        "    - {kind: poisson, rate: 1/h, gpus: 1, duration: 1h}",    # 10
        "  traces:",                                                 # 11
        "    - path: t.csv",                                         # 12
        "scheduler:",                                                # 13
        "  policy: las",                                             # 14
        "  params: {thresholds: [2h, 1h], knob: 1}",                  # 15
    ])
    ps = problems(s)
    got = sorted((p.file, p.line or 0, p.path) for p in ps)
    f = str(s)
    assert got == sorted([
        (f, 15, "scheduler.params.thresholds"), (f, 15, "scheduler.params.knob"),
        (f, 7, "workload.jobs[0].gpu_type"), (f, 8, "workload.jobs[1].gpus"),
        (f, 10, "workload.generators[0]"), ("t.csv", 2, "gpus"),
    ]), "\n".join(map(str, ps))


def test_schema_and_name_problems_reported_together(tmp_path: Path) -> None:
    s = write(tmp_path, "s.yaml", [
        "cluster:",                                                                      # 1
        "  pools:",                                                                      # 2
        "    - {count: 1, gpu_type: Z100, gpus_per_node: 4, cpus: 32, memory: 9QB}",     # 3
        "    - {count: 1, template: dgx-nope}",                                          # 4
        "workload:",                                                                     # 5
        "  jobs: [{gpus: 1, duration: 2q}]",                                             # 6
        "  generators: [{kind: poisson, rate: 1/h, gpus: 1, duration: 1h, gpu_type: Q}]",  # 7
        "scheduler: {policy: roundrobin}",                                               # 8
    ])
    ps = problems(s)
    assert where(ps) == [(str(s), 3, "cluster.pools[0].gpu_type"), (str(s), 3, "cluster.pools[0].memory"),
                         (str(s), 4, "cluster.pools[1].template"), (str(s), 6, "workload.jobs[0].duration"),
                         (str(s), 7, "workload.generators[0].gpu_type"), (str(s), 8, "scheduler.policy")]
