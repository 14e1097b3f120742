"""`lepsim sweep`: the sweep file's errors, determinism, resuming, local pool == in-process == Ray."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pandas as pd
import pytest

import lepsim
from lepsim.cli import main
from lepsim.errors import ScenarioError
from lepsim.experiments import sweep as sweep_mod
from lepsim.experiments.sweep import load_sweep, run_sweep

DATA = Path(__file__).resolve().parents[1] / "data"

# ----------------------------------------------------------------------------- the cells
def test_cells_cover_the_grid_in_order(sweep_folder):
    sw = load_sweep(sweep_folder / "load.yaml")
    assert sw.name == "load" and len(sw.cells) == 8
    got = [(dict(c.point)["workload.generators[0].rate"], c.policy.label, c.seed) for c in sw.cells]
    assert got == [(r, p, s) for r in ("2/h", "4/h") for p in ("fifo", "las[thresholds=[30min]]") for s in (5, 6)]
    assert len({c.cell_id for c in sw.cells}) == 8
    c = sw.cells[-1]
    assert c.resolved == (("workload.generators[0].rate", pytest.approx(4 / 3600)),)
    sc = lepsim.Scenario.model_validate_json(c.scenario_json)
    assert sc.simulation.horizon == 8 * 3600 and sc.scheduler.params == {"thresholds": ["30min"]}


def test_table_rows_are_the_simulations(sweep_folder):
    out = run_sweep(sweep_folder / "load.yaml", sweep_folder / "out", workers=1)
    df = out.table
    assert (out.ran, out.reused, out.failed) == (8, 0, {})
    assert list(df.columns[:7]) == ["cell", "cell_id", "workload.generators[0].rate",
                                    "workload.generators[0].rate:given", "policy", "policy_name", "seed"]
    pd.testing.assert_frame_equal(pd.read_parquet(out.path), df)
    sc = lepsim.load_scenario(sweep_folder / "small.yaml").with_overrides(
        values={"simulation.horizon": "8h", "workload.generators[0].rate": "4/h"}, policy="las",
        params={"thresholds": ["30min"]})
    r = lepsim.simulate(sc, seed=6)
    row = df.iloc[7]
    assert (row["policy"], row["seed"], row["workload.generators[0].rate:given"]) == ("las[thresholds=[30min]]", 6, "4/h")
    for k in ("jct_mean_s", "utilization", "preemptions_total", "jobs_completed"):
        assert row[k] == r.summary[k]


# ----------------------------------------------------------------------------- determinism
def test_same_table_twice_and_pool_equals_in_process(sweep_folder):
    a = run_sweep(sweep_folder / "load.yaml", sweep_folder / "a", workers=1)
    b = run_sweep(sweep_folder / "load.yaml", sweep_folder / "b", workers=2)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.path.read_bytes() == b.path.read_bytes()
    c = run_sweep(sweep_folder / "load.yaml", sweep_folder / "c", workers=1)
    assert c.path.read_bytes() == a.path.read_bytes()


# ----------------------------------------------------------------------------- resuming
def test_resume_runs_only_the_missing_cells(sweep_folder, monkeypatch):
    full = run_sweep(sweep_folder / "load.yaml", sweep_folder / "out", workers=1)
    sw = load_sweep(sweep_folder / "load.yaml")
    for i in (1, 4, 6):
        sweep_mod.cell_path(sweep_folder / "out", sw.cells[i]).unlink()
    (sweep_folder / "out" / "results.parquet").unlink()
    ran = []
    real = sweep_mod.run_cell

    def counting(task):
        ran.append(task["cell_id"])
        return real(task)

    monkeypatch.setattr(sweep_mod, "run_cell", counting)
    again = run_sweep(sw, sweep_folder / "out", workers=1)
    assert ran == [sw.cells[i].cell_id for i in (1, 4, 6)]
    assert (again.ran, again.reused) == (3, 5)
    assert again.path.read_bytes() == full.path.read_bytes()


def test_interrupted_sweep_keeps_finished_cells(sweep_folder, monkeypatch):
    real = sweep_mod.run_cell
    calls = []

    def dies_on_the_fourth(task):
        calls.append(1)
        if len(calls) == 4:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(sweep_mod, "run_cell", dies_on_the_fourth)
    with pytest.raises(KeyboardInterrupt):
        run_sweep(sweep_folder / "load.yaml", sweep_folder / "out", workers=1)
    partial = pd.read_parquet(sweep_folder / "out" / "results.parquet")
    assert partial["cell"].tolist() == [0, 1, 2]
    monkeypatch.setattr(sweep_mod, "run_cell", real)
    rest = run_sweep(sweep_folder / "load.yaml", sweep_folder / "out", workers=1)
    assert (rest.ran, rest.reused) == (5, 3)
    fresh = run_sweep(sweep_folder / "load.yaml", sweep_folder / "fresh", workers=1)
    assert rest.path.read_bytes() == fresh.path.read_bytes()


def test_a_changed_cell_is_run_again(sweep_text, sweep_folder):
    run_sweep(sweep_folder / "load.yaml", sweep_folder / "out", workers=1)
    (sweep_folder / "load.yaml").write_text(sweep_text.replace("[2/h, 4/h]", "[2/h, 5/h]"))
    again = run_sweep(sweep_folder / "load.yaml", sweep_folder / "out", workers=1)
    assert (again.ran, again.reused) == (4, 4)


def test_failed_cells_are_reported_not_recorded(sweep_folder, monkeypatch, capsys):
    real = sweep_mod.run_cell

    def fails_for_seed_6(task):
        if task["seed"] == 6:
            raise ValueError("boom")
        return real(task)

    monkeypatch.setattr(sweep_mod, "run_cell", fails_for_seed_6)
    rc = main(["sweep", str(sweep_folder / "load.yaml"), "--out", str(sweep_folder / "out"), "--workers", "1", "--no-progress"])
    cap = capsys.readouterr()
    assert rc == 1
    lines = cap.err.strip().splitlines()
    assert len(lines) == 4 and all(re.match(r"lepsim: cell \d \(.*seed 6\) failed: ValueError: boom$", x) for x in lines)
    assert pd.read_parquet(sweep_folder / "out" / "results.parquet")["seed"].tolist() == [5] * 4


# ----------------------------------------------------------------------------- CLI
def test_cli_sweep_prints_the_table_and_resumes(sweep_folder, capsys):
    args = ["sweep", str(sweep_folder / "load.yaml"), "--out", str(sweep_folder / "out"), "--workers", "1", "--no-progress"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "8 cells: 8 ran, 0 already recorded, 0 failed" in out and "mean JCT" in out
    assert main(args) == 0
    assert "8 cells: 0 ran, 8 already recorded" in capsys.readouterr().out


BAD = [
    ("seeds: 2\n", "seeds: 0\n", r"load.yaml:9: seeds: found 0, expected a count of at least 1 or a list of seeds$"),
    ("name: load\n", "name: load\nbogus: 1\n", r"load.yaml:2: bogus: found unknown key 'bogus', expected one of: name, "),
    ("[2/h, 4/h]", "[2/h, -4/h]", r"load.yaml:5: grid.workload.generators\[0\].rate\[1\]: found '-4/h', expected "
                                  r"greater than 0 \(an override\)"),
    ("workload.generators[0].rate:", "workload.generators[3].rate:",
     r"load.yaml:5: grid.workload.generators\[3\].rate\[0\]: found no 3 in workload.generators"),
    ("  - fifo\n", "  - fifo[x=\n", r"load.yaml:7: policies\[0\]: found 'fifo\[x=', expected NAME\[KEY=VALUE,...\]"),
    ("  - fifo\n", "  - nope\n", r"load.yaml:7: policies\[0\]: scheduler.policy: found 'nope', expected a policy: "),
    ("scenario: small.yaml", "scenario: missing.yaml", r"load.yaml:2: scenario: found 'missing.yaml', no such file"),
    ("seeds: 2\n", "seeds: [1, 1]\n", r"load.yaml:9: seeds: found repeated seeds \[1, 1\], expected distinct seeds"),
    ("set: {simulation.horizon: 8h}", "set: {simulation.horizon: 1h}", r"load.yaml:3: set.simulation.horizon: "
                                                                       r"found warmup \+ cooldown >= horizon"),
]


@pytest.mark.parametrize("old, new, pattern", BAD, ids=[b[2][:40] for b in BAD])
def test_bad_sweep_file_exit_2_one_line_each(sweep_text, sweep_folder, capsys, old, new, pattern):
    text = sweep_text.replace(old, new, 1)
    assert text != sweep_text
    (sweep_folder / "load.yaml").write_text(text)
    rc = main(["sweep", str(sweep_folder / "load.yaml"), "--out", str(sweep_folder / "out"), "--no-progress"])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert rc == 2 and "Traceback" not in err
    assert re.search(pattern, lines[0].replace(str(sweep_folder) + os.sep, "")), lines
    assert lines[-1].endswith("nothing was run or written") and len(lines) == 2, lines
    assert not (sweep_folder / "out").exists()


def test_a_grid_point_that_cannot_run_is_reported_once(sweep_text, sweep_folder, capsys):
    (sweep_folder / "load.yaml").write_text(sweep_text.replace("[2/h, 4/h]", "[2/h, 4/h]\n  cluster.pools[0].gpus_per_node: [4, 2]"))
    rc = main(["sweep", str(sweep_folder / "load.yaml"), "--out", str(sweep_folder / "out"), "--no-progress"])
    lines = capsys.readouterr().err.replace(str(sweep_folder) + os.sep, "").strip().splitlines()
    assert rc == 2 and len(lines) == 3 and not (sweep_folder / "out").exists()
    assert lines[-1] == "lepsim: 2 problems found; nothing was run or written"
    assert all(x.startswith("load.yaml:4: ") and x.endswith(
        "(first at the grid point workload.generators[0].rate=2/h, cluster.pools[0].gpus_per_node=2)") for x in lines[:2])
    assert any(x.startswith("load.yaml:4: small_trace.csv:5: gpus: job asks 8 GPUs") for x in lines), lines
    assert any("small.yaml:" in x and "workload.jobs[0]" in x for x in lines), lines


def test_bad_flags(sweep_folder, capsys):
    assert main(["sweep", str(sweep_folder / "load.yaml"), "--workers", "0"]) == 2
    assert "--workers: found 0, expected at least 1" in capsys.readouterr().err
    assert main(["sweep", str(sweep_folder / "nope.yaml")]) == 2
    assert "nope.yaml: no such file, expected a sweep YAML file" in capsys.readouterr().err


# ----------------------------------------------------------------------------- dotted overrides
def test_with_overrides_values_sets_paths_and_validates():
    sc = lepsim.load_scenario(DATA / "small.yaml")
    new = sc.with_overrides(values={"workload.generators.0.rate": "6/h", "cluster.pools[0].count": 3}, seed=9)
    assert new.workload.generators[0].rate == pytest.approx(6 / 3600) and new.cluster.pools[0].count == 3
    assert new.simulation.seed == 9 and new._source == sc._source and sc.cluster.pools[0].count == 2
    assert sc.with_overrides(values={"simulation.seed": sc.simulation.seed}) == sc
    with pytest.raises(ScenarioError, match=r"cluster.pools\[0\].count: found 'x' \(an override\)|count"):
        sc.with_overrides(values={"cluster.pools[0].count": "x"})
    with pytest.raises(ScenarioError, match=r"cluster.nope: found unknown key .nope., expected one of: pools.*\(an override\)"):
        sc.with_overrides(values={"cluster.nope": 1})


def test_example_sweep_in_the_docs_loads():
    sw = load_sweep(DATA.parents[1] / "scenarios" / "sweeps" / "steady_load.yaml")
    assert len(sw.cells) == 4 * 3 * 3 and sw.name == "steady_load"
    assert [c.policy.label for c in sw.cells[:9:3]] == ["fifo", "sjf", "las[thresholds=[1h,10h]]"]


KILL_SWEEP = """\
scenario: {root}/scenarios/steady.yaml
set:
  cluster.pools[0].count: 8
  simulation.horizon: 36h
grid:
  workload.generators[0].rate: [15/h, 24/h]
policies: [fifo, las]
seeds: 3
"""


@pytest.mark.slow
def test_killed_sweep_process_resumes_with_only_the_missing_cells(tmp_path):
    """SIGKILL a `lepsim sweep` process mid-run: the cells it recorded are kept, a rerun
    simulates only the others, and the table is the one an uninterrupted run writes."""
    import signal
    import subprocess
    import sys
    import time

    (tmp_path / "kill.yaml").write_text(KILL_SWEEP.format(root=DATA.parents[1]))
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "lepsim", "sweep", str(tmp_path / "kill.yaml"), "--out", str(out),
                             "--workers", "1", "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if len(list((out / "cells").glob("*.json"))) >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    proc.wait(timeout=60)
    if proc.returncode != -signal.SIGKILL:
        pytest.skip(f"the sweep finished before it could be killed (rc {proc.returncode})")
    recorded = len(list((out / "cells").glob("*.json")))
    assert 3 <= recorded < 12 and not (out / "results.parquet").exists()
    again = run_sweep(tmp_path / "kill.yaml", out, workers=1)
    assert (again.ran, again.reused, again.failed) == (12 - recorded, recorded, {})
    fresh = run_sweep(tmp_path / "kill.yaml", tmp_path / "fresh", workers=1)
    assert again.path.read_bytes() == fresh.path.read_bytes()


@pytest.mark.slow
def test_no_ray_cluster_is_one_line_exit_2_nothing_written(sweep_folder):
    """`--ray auto` with no cluster running: exit 2, one line, no sweep folder (a subprocess,
    so that this process's ray stays unimported for the loopback fixture)."""
    import importlib.util
    import subprocess
    import sys

    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed")
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env.update(RAY_USAGE_STATS_ENABLED="0", PYTHONWARNINGS="ignore")
    proc = subprocess.run([sys.executable, "-m", "lepsim", "sweep", str(sweep_folder / "load.yaml"), "--out",
                           str(sweep_folder / "out"), "--ray", "auto", "--no-progress"], capture_output=True, text=True,
                          env=env, timeout=120)
    if proc.returncode == 0:
        pytest.skip("a Ray cluster is running on this machine")
    assert proc.returncode == 2 and proc.stderr.startswith("lepsim: --ray auto: cannot connect: ")
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (sweep_folder / "out").exists()


def test_docs_example_is_the_bundled_sweep_file():
    """The sweep file quoted in docs/experiments.md is scenarios/sweeps/steady_load.yaml (same data)."""
    import yaml

    doc = (DATA.parents[1] / "docs" / "experiments.md").read_text()
    block = doc.split("# scenarios/sweeps/steady_load.yaml\n", 1)[1].split("```", 1)[0]
    bundled = yaml.safe_load((DATA.parents[1] / "scenarios" / "sweeps" / "steady_load.yaml").read_text())
    assert yaml.safe_load(block) == bundled


def test_docs_sweep_keys_table_lists_the_spec_fields():
    from lepsim.experiments.sweep import SweepSpec

    doc = (DATA.parents[1] / "docs" / "experiments.md").read_text()
    table = doc.split("| key | meaning |", 1)[1].split("\n\n", 1)[0]
    assert set(re.findall(r"^\| `(\w+)` \|", table, flags=re.M)) == set(SweepSpec.model_fields)


def test_grid_over_a_distribution_stores_it_as_json(sweep_text, sweep_folder):
    text = sweep_text.replace("workload.generators[0].rate: [2/h, 4/h]",
                              "workload.generators[0].duration:\n    - {dist: exponential, mean: 20min}\n"
                              "    - {dist: constant, value: 1h}")
    (sweep_folder / "load.yaml").write_text(text)
    out = run_sweep(sweep_folder / "load.yaml", sweep_folder / "out", workers=1)
    col = pd.read_parquet(out.path)["workload.generators[0].duration"]
    assert col.iloc[0] == '{"dist": "exponential", "mean": 1200.0}' and col.iloc[-1] == '{"dist": "constant", "value": 3600.0}'
    assert pd.read_parquet(out.path)["workload.generators[0].duration:given"].iloc[0] == "{dist:exponential,mean:20min}"
