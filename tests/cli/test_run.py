"""`lepsim run` on good input, and the other subcommands: schema, policies, --version.

The simulations run as subprocesses (``python -m lepsim``) on ``tests/data/small.yaml``
(8 V100 GPUs, an inline job, a Poisson generator and a four-row trace), copied into a
temporary working folder.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import lepsim
from lepsim.scenario.spec import Scenario

DATA = Path(__file__).resolve().parents[1] / "data"
RUN_FILES = {"jobs.parquet", "jobs.csv", "intervals.parquet", "intervals.csv", "timeline.parquet", "timeline.csv",
             "events.parquet", "events.csv", "links.parquet", "links.csv", "summary.json", "manifest.json"}
# tests/data/small.yaml, by hand
SEED = 5
HORIZON = 12 * 3600.0
WINDOW = (1800.0, HORIZON - 3600.0)
CAPACITY = 8
TRACE = {  # name: (submit s, gpus, duration s)
    "t-a": (0.0, 2, 1800.0), "t-b": (600.0, 4, 3600.0), "t-c": (3600.0, 1, 5400.0), "t-d": (7200.0, 8, 1200.0),
}


def lepsim_cli(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "lepsim", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def copy_small(folder: Path) -> None:
    for name in ("small.yaml", "small_trace.csv"):
        shutil.copy(DATA / name, folder / name)


def strict_json(path: Path):
    """json.loads that refuses NaN and Infinity (invalid JSON)."""
    def bad(const):
        raise AssertionError(f"{path.name} holds {const}")
    return json.loads(path.read_text(encoding="utf-8"), parse_constant=bad)


def one_error_line(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stdout + proc.stderr
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1, proc.stderr
    return err[0]


# ----------------------------------------------------------------------------- the runs
RUNS = {
    "a": ["--out", "out/a"],
    "b": ["--out", "out/b"],                       # same seed as a: byte-identical
    "seed6": ["--out", "out/seed6", "--seed", "6"],
    "las": ["--out", "out/las", "--policy", "las", "--param", "thresholds=[1h]"],
    "replace": ["--out", "out/replace"],           # into a folder that already exists
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Every run of this module, two at a time; the default-folder run in a folder of its own."""
    base = tmp_path_factory.mktemp("runs")
    copy_small(base)
    stale = base / "out" / "replace"
    (stale / "old-sub").mkdir(parents=True)
    (stale / "stale.txt").write_text("from an earlier run\n")
    (stale / "jobs.csv").write_text("not,the,new,one\n")
    (stale / "old-sub" / "x").write_text("x")
    default = tmp_path_factory.mktemp("default_out")
    copy_small(default)

    def one(item):
        key, args = item
        cwd = default if key == "default" else base
        return key, lepsim_cli(["run", "small.yaml", "--no-progress", *args], cwd)

    todo = list(RUNS.items()) + [("default", [])]
    with ThreadPoolExecutor(max_workers=2) as pool:
        procs = dict(pool.map(one, todo))
    for key, proc in procs.items():
        assert proc.returncode == 0, (key, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
    return {"base": base, "default": default, "procs": procs}


def folder(runs, key) -> Path:
    return runs["base"] / "out" / key


def test_run_writes_the_run_folder(runs) -> None:
    out = folder(runs, "a")
    names = {p.name for p in out.iterdir()}
    assert RUN_FILES <= names
    assert not [n for n in names if n.startswith(".")]
    assert all((out / n).stat().st_size > 0 for n in RUN_FILES)
    # no temporary or backup folders left beside the run folders
    assert sorted(p.name for p in (runs["base"] / "out").iterdir()) == sorted(RUNS)


def test_run_prints_the_summary_table(runs) -> None:
    proc = runs["procs"]["a"]
    summary = strict_json(folder(runs, "a") / "summary.json")
    out = proc.stdout
    assert "small · fifo · seed 5" in out
    for label in ("completed jobs", "unfinished jobs", "mean JCT", "p95 JCT", "GPU allocation utilization",
                  "preemptions", "makespan"):
        assert label in out
    row = next(ln for ln in out.splitlines() if "completed jobs" in ln)
    assert row.replace("│", " ").split()[-1] == str(summary["jobs_completed"])
    util = next(ln for ln in out.splitlines() if "GPU allocation utilization" in ln)
    assert f"{100 * summary['utilization']:.1f}%" in util
    assert "run folder: out/a" in out
    assert proc.stderr == ""   # --no-progress: nothing on stderr


def test_summary_agrees_with_the_tables(runs) -> None:
    out = folder(runs, "a")
    s = strict_json(out / "summary.json")
    jobs = pd.read_parquet(out / "jobs.parquet")
    timeline = pd.read_parquet(out / "timeline.parquet")
    intervals = pd.read_parquet(out / "intervals.parquet")
    assert (s["scenario"], s["policy"], s["seed"]) == ("small", "fifo", SEED)
    assert (s["window_start_s"], s["window_end_s"]) == WINDOW
    assert s["jobs_total"] == len(jobs)
    assert s["jobs_completed"] == int((jobs["status"] == "completed").sum())
    assert s["jobs_unfinished"] == int((jobs["status"] == "unfinished").sum())
    assert s["jobs_completed"] + s["jobs_unfinished"] + s["jobs_not_submitted"] == len(jobs)
    measured = jobs[jobs["submit_time_s"].between(*WINDOW)]
    assert s["jobs_measured"] == len(measured) == int(jobs["measured"].sum())
    done = measured[measured["status"] == "completed"]
    assert s["jobs_measured_completed"] == len(done) > 10
    jct = (done["end_s"] - done["submit_time_s"]).to_numpy()
    assert s["jct_mean_s"] == pytest.approx(jct.mean(), rel=1e-12)
    assert s["jct_p50_s"] == pytest.approx(np.quantile(jct, 0.5), rel=1e-12)
    assert s["jct_p95_s"] == pytest.approx(np.quantile(jct, 0.95), rel=1e-12)
    qd = (done["first_start_s"] - done["submit_time_s"]).to_numpy()
    assert s["queueing_delay_mean_s"] == pytest.approx(qd.mean(), rel=1e-12)
    assert s["slowdown_mean"] == pytest.approx((jct / done["isolated_runtime_s"].to_numpy()).mean(), rel=1e-12)
    assert s["preemptions_total"] == int(jobs["preemptions"].sum()) == 0   # fifo never preempts
    # utilization: integral of allocated GPUs over the window / (capacity x window)
    t = np.clip(np.append(timeline["time_s"].to_numpy(), WINDOW[1]), *WINDOW)
    gpu_s = float(np.sum(timeline["allocated_gpus"].to_numpy() * np.diff(t)))
    assert s["utilization"] == pytest.approx(gpu_s / (CAPACITY * (WINDOW[1] - WINDOW[0])), rel=1e-9)
    assert s["utilization[V100]"] == pytest.approx(s["utilization"], rel=1e-12)
    # ... and the same GPU-seconds from the allocation intervals
    iv = intervals
    overlap = (np.minimum(iv["end_s"], WINDOW[1]) - np.maximum(iv["start_s"], WINDOW[0])).clip(lower=0) * iv["gpus"]
    assert float(overlap.sum()) == pytest.approx(gpu_s, rel=1e-9)
    assert 0 < s["utilization"] <= 1


def test_jobs_table_holds_the_scenario_jobs(runs) -> None:
    jobs = pd.read_parquet(folder(runs, "a") / "jobs.parquet")
    assert jobs["job_id"].tolist() == list(range(len(jobs)))
    assert jobs["submit_time_s"].is_monotonic_increasing
    by_name = jobs.set_index("name")
    for name, (submit, gpus, duration) in TRACE.items():
        row = by_name.loc[name]
        assert (row["submit_time_s"], row["gpus"], row["isolated_runtime_s"]) == (submit, gpus, duration)
        assert row["source"] == f"small_trace.csv:{2 + list(TRACE).index(name)}"
    big = by_name.loc["big"]
    assert (big["submit_time_s"], big["gpus"], big["isolated_runtime_s"]) == (600.0, 8, 7200.0)
    # tie at t=600s: the inline job comes before the trace row
    assert by_name.loc["t-b", "job_id"] == big["job_id"] + 1
    gen = jobs[jobs["source"] == "workload.generators[0]"]
    assert len(jobs) == len(gen) + 5
    assert set(gen["gpus"]) <= {1, 2, 4} and set(gen["tenant"]) <= {"a", "b"}
    # the CSV copy holds the same table
    csv = pd.read_csv(folder(runs, "a") / "jobs.csv")
    assert csv["job_id"].tolist() == jobs["job_id"].tolist()
    assert csv["name"].tolist() == jobs["name"].tolist()
    np.testing.assert_allclose(csv["submit_time_s"], jobs["submit_time_s"], rtol=1e-15)
    np.testing.assert_allclose(csv["end_s"], jobs["end_s"], rtol=1e-15)


def test_manifest(runs) -> None:
    m = strict_json(folder(runs, "a") / "manifest.json")
    assert m["seed"] == SEED and m["policy"] == "fifo"
    assert m["scenario_file"] == "small.yaml" and m["scenario_name"] == "small"
    # the files it lists are the files written (besides itself)
    listed = {f for entry in m["files"].values() for f in entry["formats"]}
    assert listed | {"manifest.json"} == {p.name for p in folder(runs, "a").iterdir()}
    assert m["versions"]["lepsim"] == lepsim.__version__
    for dep in ("python", "numpy", "pandas", "simpy", "pydantic", "pyarrow"):
        assert m["versions"][dep] and m["versions"][dep] != "not installed"
    sc = m["scenario"]
    # resolved: SI units, defaults filled in
    assert sc["simulation"] == {"seed": SEED, "horizon": HORIZON, "warmup": 1800.0, "cooldown": 3600.0}
    assert sc["workload"]["generators"][0]["rate"] == pytest.approx(3 / 3600, rel=1e-15)
    assert sc["workload"]["generators"][0]["duration"] == {"dist": "exponential", "mean": 2400.0}
    assert sc["cluster"]["pools"][0]["memory"] == 256 * 2**30
    assert sc["scheduler"]["preemption"] == {"checkpoint": 10.0, "restore": 20.0}
    # it reloads to the very scenario that ran
    again = Scenario.model_validate(sc)
    assert again.model_dump() == lepsim.load_scenario(DATA / "small.yaml").model_dump()


def test_same_seed_gives_byte_identical_files(runs) -> None:
    a, b = folder(runs, "a"), folder(runs, "b")
    names = sorted(p.name for p in a.iterdir())
    assert names == sorted(p.name for p in b.iterdir())
    for n in names:
        assert (a / n).read_bytes() == (b / n).read_bytes(), n
    # the printed summaries agree too, apart from wall time and folder
    strip = lambda text: [ln for ln in text.splitlines() if "wall" not in ln]  # noqa: E731
    assert strip(runs["procs"]["a"].stdout) == strip(runs["procs"]["b"].stdout)


def test_seed_flag_changes_the_workload(runs) -> None:
    a = pd.read_parquet(folder(runs, "a") / "jobs.parquet")
    c = pd.read_parquet(folder(runs, "seed6") / "jobs.parquet")
    s = strict_json(folder(runs, "seed6") / "summary.json")
    m = strict_json(folder(runs, "seed6") / "manifest.json")
    assert s["seed"] == m["seed"] == m["scenario"]["simulation"]["seed"] == 6
    ga = a[a["source"] == "workload.generators[0]"]["submit_time_s"].to_numpy()
    gc = c[c["source"] == "workload.generators[0]"]["submit_time_s"].to_numpy()
    assert len(ga) != len(gc) or not np.array_equal(ga, gc)
    # the fixed jobs do not depend on the seed
    fixed = lambda df: df[~df["source"].str.startswith("workload.generators")][["name", "submit_time_s", "gpus"]]  # noqa: E731
    pd.testing.assert_frame_equal(fixed(a).reset_index(drop=True), fixed(c).reset_index(drop=True))
    assert strict_json(folder(runs, "a") / "summary.json")["jct_mean_s"] != s["jct_mean_s"]


def test_policy_and_param_flags(runs) -> None:
    out = folder(runs, "las")
    s = strict_json(out / "summary.json")
    m = strict_json(out / "manifest.json")
    assert s["policy"] == m["policy"] == m["scenario"]["scheduler"]["policy"] == "las"
    assert m["scenario"]["scheduler"]["params"] == {"thresholds": ["1h"]}
    assert "small · las · seed 5" in runs["procs"]["las"].stdout
    las = pd.read_parquet(out / "jobs.parquet")
    fifo = pd.read_parquet(folder(runs, "a") / "jobs.parquet")
    # same seed: the identical workload under both policies
    pd.testing.assert_frame_equal(las[["job_id", "name", "submit_time_s", "gpus", "isolated_runtime_s"]],
                                  fifo[["job_id", "name", "submit_time_s", "gpus", "isolated_runtime_s"]])
    # LAS with a 1 GPU-hour threshold preempts on this load; FIFO never does
    assert s["preemptions_total"] == int(las["preemptions"].sum()) > 0
    events = pd.read_parquet(out / "events.parquet")
    assert (events["event"] == "preempt").sum() == s["preemptions_total"]


def test_default_out_folder(runs) -> None:
    d = runs["default"]
    assert sorted(p.name for p in d.iterdir()) == ["runs", "small.yaml", "small_trace.csv"]
    assert [p.name for p in (d / "runs").iterdir()] == [f"small-{SEED}"]
    out = d / "runs" / f"small-{SEED}"
    assert RUN_FILES <= {p.name for p in out.iterdir()}
    assert f"run folder: runs/small-{SEED}" in runs["procs"]["default"].stdout
    # the same run as --out out/a
    assert (out / "summary.json").read_bytes() == (folder(runs, "a") / "summary.json").read_bytes()


def test_default_out_folder_uses_file_stem_without_name(tmp_path: Path) -> None:
    text = (DATA / "small.yaml").read_text().replace("name: small\n", "")
    (tmp_path / "unnamed.yaml").write_text(text)
    shutil.copy(DATA / "small_trace.csv", tmp_path)
    proc = lepsim_cli(["run", "unnamed.yaml", "--no-progress", "--seed", "2"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["unnamed-2"]
    assert strict_json(tmp_path / "runs" / "unnamed-2" / "manifest.json")["seed"] == 2


def test_rerun_replaces_the_folder(runs) -> None:
    out = folder(runs, "replace")
    names = {p.name for p in out.iterdir()}
    assert "stale.txt" not in names and "old-sub" not in names
    assert RUN_FILES <= names
    assert (out / "jobs.csv").read_bytes() == (folder(runs, "a") / "jobs.csv").read_bytes()


# ----------------------------------------------------------------------------- atomic writes
class _Boom:
    def to_parquet(self, *a, **k):
        raise OSError("disk full (simulated)")

    def to_csv(self, *a, **k):  # pragma: no cover - events are written as parquet only
        raise OSError("disk full (simulated)")


@pytest.fixture(scope="module")
def small_result():
    return lepsim.simulate(lepsim.load_scenario(DATA / "small.yaml"))


def test_failed_write_leaves_no_folder(small_result, tmp_path: Path) -> None:
    from lepsim.report.run_folder import write_run

    bad = replace(small_result, events=_Boom())
    target = tmp_path / "out" / "run"
    with pytest.raises(OSError, match="disk full"):
        write_run(bad, target)
    assert not target.exists()
    assert list((tmp_path / "out").iterdir()) == []   # no temporary folder left behind


def test_failed_write_keeps_the_previous_folder(small_result, tmp_path: Path) -> None:
    from lepsim.report.run_folder import write_run

    target = tmp_path / "run"
    write_run(small_result, target)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with pytest.raises(OSError, match="disk full"):
        write_run(replace(small_result, events=_Boom()), target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    # a successful rewrite is byte-identical to the first
    write_run(small_result, target)
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]


def test_result_save_matches_cli_folder(small_result, runs, tmp_path: Path) -> None:
    """Result.save in-process writes the same tables and summary as the CLI."""
    out = small_result.save(tmp_path / "x")
    for n in ("jobs.parquet", "jobs.csv", "timeline.csv", "intervals.parquet", "events.parquet", "summary.json"):
        assert (out / n).read_bytes() == (folder(runs, "a") / n).read_bytes(), n


# ----------------------------------------------------------------------------- other commands
def test_schema_command(tmp_path: Path) -> None:
    proc = lepsim_cli(["schema"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    schema = json.loads(proc.stdout)
    assert schema["type"] == "object"
    assert {"cluster", "workload", "scheduler", "simulation"} <= set(schema["properties"])
    assert {"cluster", "workload", "scheduler"} <= set(schema["required"])
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    # the bundled scenarios and the test scenario conform; a wrong one does not
    for f in [DATA / "small.yaml", *sorted((DATA.parents[1] / "scenarios").glob("*.yaml"))]:
        data = yaml.safe_load(f.read_text())
        assert not list(validator.iter_errors(data)), f
    assert list(validator.iter_errors({"cluster": 5, "workload": {}, "scheduler": {"policy": "fifo"}}))
    assert list(validator.iter_errors({"cluster": {"pools": []}, "workload": {}}))   # no scheduler

    proc2 = lepsim_cli(["schema", "--out", "sub/schema.json"], tmp_path)
    assert proc2.returncode == 0 and proc2.stdout == ""
    assert (tmp_path / "sub" / "schema.json").read_text() == proc.stdout
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["schema.json"]


def test_schema_accepts_bare_value_distributions() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    data = yaml.safe_load((DATA / "small.yaml").read_text())
    data["workload"]["generators"][0]["gpus"] = 2
    data["workload"]["generators"][0]["duration"] = "40min"
    Scenario.model_validate(data)   # the loader accepts it
    validator = jsonschema.Draft202012Validator(Scenario.model_json_schema())
    errors = list(validator.iter_errors(data))
    assert not errors, [e.message for e in errors]
    # ... and still rejects what the loader rejects
    data["workload"]["generators"][0]["duration"] = {"dist": "weibull", "mean": "1h"}
    assert list(validator.iter_errors(data))
    data["workload"]["generators"][0]["duration"] = ["40min"]
    assert list(validator.iter_errors(data))


def test_policies_command(tmp_path: Path) -> None:
    proc = lepsim_cli(["policies"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    rows = {ln.replace("│", " ").split()[0] for ln in proc.stdout.splitlines()
            if ln.startswith("│") and ln.replace("│", " ").split()}
    assert {"fifo", "sjf", "las"} <= rows
    # grouped by family: one titled table each, static first
    assert proc.stdout.index("static:") < proc.stdout.index("dynamic:")
    assert "thresholds=(3600.0,)" in proc.stdout

    las = lepsim_cli(["policies", "las"], tmp_path)
    assert las.returncode == 0, las.stderr
    for word in ("las", "dynamic", "Tiresias", "thresholds", "promote_knob", "placement"):
        assert word in las.stdout

    line = one_error_line(lepsim_cli(["policies", "nosuch"], tmp_path))
    assert "nosuch" in line and "fifo" in line


def test_version(tmp_path: Path) -> None:
    proc = lepsim_cli(["--version"], tmp_path)
    assert proc.returncode == 0
    assert proc.stdout.strip() == f"lepsim {lepsim.__version__}"


@pytest.mark.parametrize("args, words", [
    (["frobnicate"], ["invalid choice", "frobnicate"]),
    ([], ["required", "command"]),
    (["run", "small.yaml", "--bogus"], ["unrecognized arguments", "--bogus"]),
    (["run"], ["required", "scenario"]),
    (["run", "small.yaml", "--seed", "abc"], ["--seed", "'abc'"]),
    (["run", "small.yaml", "--progress", "--no-progress"], ["not allowed"]),
    (["run", "small.yaml", "--param", "novalue"], ["--param", "KEY=VALUE"]),
])
def test_bad_command_line_is_one_line(args, words, tmp_path: Path) -> None:
    copy_small(tmp_path)
    line = one_error_line(lepsim_cli(args, tmp_path))
    assert line.startswith("lepsim: ")
    for w in words:
        assert w in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.yaml", "small_trace.csv"]


@pytest.mark.parametrize("args, expected", [
    pytest.param(["--policy", "las", "--param", "thresholds=[1h"],
                 ["lepsim: --param 'thresholds=[1h': the value is not valid YAML"], id="param_yaml_syntax"),
    pytest.param(["--seed=-1"], ["small.yaml: simulation.seed: found -1", "expected greater than or equal to 0"],
                 id="negative_seed"),
])
def test_bad_flag_values_are_reported(args, expected, tmp_path: Path) -> None:
    copy_small(tmp_path)
    proc = lepsim_cli(["run", "small.yaml", "--no-progress", "--out", "o", *args], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stdout == ""
    first = proc.stderr.splitlines()[0]
    assert first.startswith(expected[0]) and all(e in first for e in expected[1:]), proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.yaml", "small_trace.csv"]


def test_python_dash_m_and_console_script_agree(tmp_path: Path) -> None:
    exe = shutil.which("lepsim", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("no lepsim console script beside this interpreter")
    a = subprocess.run([exe, "--version"], capture_output=True, text=True, cwd=tmp_path)
    b = lepsim_cli(["--version"], tmp_path)
    assert a.returncode == b.returncode == 0
    assert a.stdout == b.stdout == f"lepsim {lepsim.__version__}\n"


def test_skipped_trace_rows_are_warned_about(tmp_path: Path) -> None:
    """skip_bad_rows: the run goes on; every skipped row is named on stderr and the row is not a job."""
    (tmp_path / "s.yaml").write_text(
        "name: skip\n"
        "cluster: {pools: [{count: 1, gpu_type: V100, gpus_per_node: 4, cpus: 32, memory: 256GiB}]}\n"
        "workload:\n"
        "  traces: [{path: rows.csv, skip_bad_rows: true}]\n"
        "scheduler: {policy: fifo}\n")
    (tmp_path / "rows.csv").write_text("submit_time,gpus,duration,name\n0,1,1h,a\n10,x,1h,b\n20,1,2q,c\n30,2,1h,d\n")
    proc = lepsim_cli(["run", "s.yaml", "--no-progress", "--out", "o"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.splitlines() == [
        "warning: rows.csv:3: gpus: found 'x', expected an integer >= 0 (row skipped)",
        "warning: rows.csv:4: duration: found '2q', expected a number or a duration such as 1h (row skipped)",
    ]
    jobs = pd.read_parquet(tmp_path / "o" / "jobs.parquet")
    assert jobs["name"].tolist() == ["a", "d"]
    assert jobs["source"].tolist() == ["rows.csv:2", "rows.csv:5"]
