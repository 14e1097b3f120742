"""`lepsim compare` and `lepsim.compare`: identical workloads, labels, CIs against scipy, the report."""
from __future__ import annotations

import base64
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import lepsim
from lepsim.cli import main
from lepsim.errors import ScenarioError
from lepsim.experiments import mean_ci, parse_policies, parse_policy, policy_label, run_comparison

DATA = Path(__file__).resolve().parents[1] / "data"
SMALL = DATA / "small.yaml"


@pytest.fixture(scope="module")
def comp():
    return run_comparison(SMALL, "fifo,las[thresholds=[30min]]", seeds=3)


# ----------------------------------------------------------------------------- policy specs
def test_policy_specs_and_labels():
    p = parse_policy("las[thresholds=[1h, 10h]]")
    assert (p.name, dict(p.params), p.label) == ("las", {"thresholds": ["1h", "10h"]}, "las[thresholds=[1h,10h]]")
    specs = parse_policies("fifo, sjf ,las[thresholds=[1h,10h], x=0.5]")
    assert [s.label for s in specs] == ["fifo", "sjf", "las[thresholds=[1h,10h],x=0.5]"]
    assert policy_label("las", {"a": True, "b": None, "c": {"d": 1}}) == "las[a=true,b=null,c={d:1}]"
    assert parse_policies([("las", {"thresholds": ["1h"]}), {"name": "fifo", "label": "base"}])[1].label == "base"
    for bad in ("", "las[", "las]", "las[x]", "fifo=1", "las[x=[1,]"):
        with pytest.raises(ValueError):
            parse_policies(bad) if bad else parse_policy(bad)
    with pytest.raises(ValueError, match="twice"):
        parse_policies("fifo,fifo")


def test_result_label_names_the_parameters():
    r = lepsim.simulate(SMALL, policy="las", params={"thresholds": ["30min"]})
    assert r.policy == "las" and r.label == "las[thresholds=[30min]]"
    assert lepsim.simulate(SMALL).label == "fifo"


# ----------------------------------------------------------------------------- statistics
@pytest.mark.parametrize("values", [[1.0, 2.0, 4.0], [10.0, 10.5, 9.0, 12.0, 11.0], [3.0, 3.0]])
def test_mean_ci_matches_scipy(values):
    mean, half, std, n = mean_ci(values, 0.95)
    lo, hi = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values)) \
        if np.std(values) > 0 else (np.mean(values), np.mean(values))
    assert n == len(values) and mean == pytest.approx(np.mean(values))
    assert mean - half == pytest.approx(lo) and mean + half == pytest.approx(hi)
    assert std == pytest.approx(np.std(values, ddof=1))


def test_mean_ci_edge_cases():
    assert math.isnan(mean_ci([])[0]) and mean_ci([]).__getitem__(3) == 0
    m, h, s, n = mean_ci([5.0, math.nan])
    assert (m, n) == (5.0, 1) and math.isnan(h)
    assert mean_ci([1.0, 3.0], 0.9)[1] == pytest.approx(stats.t.ppf(0.95, 1) * np.std([1, 3], ddof=1) / math.sqrt(2))
    # the same dollars summed in another order differ in the last bits: no spread, not 1e-11
    same = [25670.4 + 3.6e-12, 25670.4, 25670.4 - 3.6e-12]
    assert mean_ci(same)[1:3] == (0.0, 0.0)
    assert mean_ci([25670.4, 25670.5])[1] > 0


def test_large_values_print_without_an_exponent():
    from lepsim.report.html import format_metric

    assert format_metric("requests_timeout[chat]", 21955.33) == "21955"
    assert format_metric("cost_usd", 25670.4) == "25670"
    assert format_metric("usd_per_1k_slo_requests[chat]", 12.3456) == "12.35"


# ----------------------------------------------------------------------------- the comparison
def test_every_policy_sees_the_identical_workload(comp):
    assert comp.labels == ["fifo", "las[thresholds=[30min]]"] and comp.seeds == [5, 6, 7]
    cols = ["job_id", "name", "submit_time_s", "gpus", "isolated_runtime_s"]
    for i, seed in enumerate(comp.seeds):
        a, b = (comp.runs[lab][i] for lab in comp.labels)
        assert a.seed == b.seed == seed and a.policy == "fifo" and b.policy == "las"
        pd.testing.assert_frame_equal(a.jobs[cols], b.jobs[cols])
    # different seeds draw different workloads
    assert not comp.runs["fifo"][0].jobs["submit_time_s"].equals(comp.runs["fifo"][1].jobs["submit_time_s"])


def test_table_holds_the_mean_and_t_interval_of_the_per_seed_values(comp):
    per = comp.per_run()
    assert len(per) == 6 and list(per.columns[:3]) == ["policy", "policy_name", "seed"]
    table = comp.table()
    for lab in comp.labels:
        for m in ("jct_mean_s", "utilization", "preemptions_total"):
            vals = per.loc[per.policy == lab, m].to_numpy(dtype=float)
            row = table[(table.policy == lab) & (table.metric == m)].iloc[0]
            assert row["mean"] == pytest.approx(vals.mean()) and row["n"] == 3
            if vals.std() > 0:
                lo, hi = stats.t.interval(0.95, 2, loc=vals.mean(), scale=stats.sem(vals))
                assert (row.ci_low, row.ci_high) == (pytest.approx(lo), pytest.approx(hi))
            else:
                assert row.ci_half_width == 0
    assert (table[table.metric == "preemptions_total"].set_index("policy")["mean"]["fifo"]) == 0
    assert comp.wide().columns.tolist() == comp.labels


def test_scenario_policy_keeps_its_parameters_and_label():
    sc = lepsim.load_scenario(SMALL).with_overrides(policy="las", params={"thresholds": ["1h"]})
    c = run_comparison(sc, ["las", "las[thresholds=[2h]]", "fifo"], seeds=1)
    assert c.labels == ["las[thresholds=[1h]]", "las[thresholds=[2h]]", "fifo"]
    assert c.runs["las[thresholds=[2h]]"][0].scenario.scheduler.params == {"thresholds": ["2h"]}


def test_compare_api_returns_the_stats_frame(tmp_path):
    t = lepsim.compare(SMALL, "fifo,sjf", seeds=2, out=tmp_path / "cmp")
    assert set(t.policy) == {"fifo", "sjf"} and {"mean", "ci_low", "ci_high", "n"} <= set(t.columns)
    assert (tmp_path / "cmp" / "report.html").is_file()


def test_bad_policies_are_reported_before_anything_runs():
    with pytest.raises(ScenarioError) as e:
        run_comparison(SMALL, "fifo,nope,las[thresholds=-1]", seeds=1)
    msgs = [str(p) for p in e.value.problems]
    assert len(msgs) == 2 and "(policy nope)" in msgs[0] and "(policy las[thresholds=-1])" in msgs[1]


# ----------------------------------------------------------------------------- the report
def test_report_is_self_contained_and_byte_identical(comp, tmp_path):
    a = comp.write(tmp_path / "a")
    b = comp.write(tmp_path / "b")
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert files == ["figures/jct_cdf.png", "figures/metrics.png", "figures/queue_length.png",
                     "figures/queueing_delay_cdf.png", "figures/slo_cost.png", "figures/utilization.png",
                     "report.html", "runs.csv", "stats.csv"]  # slo_cost: every run has an energy figure
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    html = (a / "report.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", html), "an external asset"
    imgs = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", html)
    assert len(imgs) == 6 and all(base64.b64decode(i).startswith(b"\x89PNG") for i in imgs)
    assert "las[thresholds=[30min]]" in html and "± " in html
    stats_csv = pd.read_csv(a / "stats.csv")
    pd.testing.assert_frame_equal(stats_csv, comp.table(), check_dtype=False)


def test_slo_and_cost_metrics_get_a_figure_when_present(comp, tmp_path):
    saved = {lab: [r.summary for r in comp.runs[lab]] for lab in comp.labels}
    for i, lab in enumerate(comp.labels):
        for j, r in enumerate(comp.runs[lab]):
            r.summary = {**r.summary, "slo_attainment": 0.9 - 0.1 * i + 0.01 * j, "cost_usd": 100.0 + i}
    try:
        assert {"slo_attainment", "cost_usd"} <= set(comp.metrics())
        out = comp.write(tmp_path / "r")
        assert (out / "figures" / "slo_cost.png").is_file()
        assert "SLO attainment and cost" in (out / "report.html").read_text()
    finally:  # the fixture is shared: give every run its own summary back
        for lab in comp.labels:
            for r, summary in zip(comp.runs[lab], saved[lab]):
                r.summary = summary


# ----------------------------------------------------------------------------- CLI
def test_cli_compare(tmp_path, capsys):
    shutil.copy(DATA / "small.yaml", tmp_path)
    shutil.copy(DATA / "small_trace.csv", tmp_path)
    rc = main(["compare", str(tmp_path / "small.yaml"), "--policies", "fifo,las[thresholds=[30min]]", "--seeds", "2",
               "--out", str(tmp_path / "out"), "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "mean JCT" in out and "las[thresholds=[30min]]" in out and "±" in out
    assert (tmp_path / "out" / "report.html").is_file()


@pytest.mark.parametrize("args, needle", [
    (["--policies", "las[thresholds=[1h"], "--policies: found"),
    (["--policies", "fifo", "--seeds", "0"], "--seeds: found 0"),
    (["--policies", "fifo", "--confidence", "95"], "--confidence: found 95"),
    (["--policies", "fifo", "--workers", "0"], "--workers: found 0"),
    (["--policies", "fifo,nope"], "scheduler.policy: found 'nope'"),
])
def test_cli_compare_bad_input_exit_2_nothing_written(tmp_path, capsys, args, needle):
    rc = main(["compare", str(SMALL), "--out", str(tmp_path / "out"), "--no-progress", "--workers", "1", *args])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_process_pool_gives_the_same_comparison(comp):
    pooled = run_comparison(SMALL, "fifo,las[thresholds=[30min]]", seeds=3, workers=2)
    pd.testing.assert_frame_equal(pooled.per_run(), comp.per_run())
    for lab in comp.labels:
        for a, b in zip(comp.runs[lab], pooled.runs[lab]):
            pd.testing.assert_frame_equal(a.intervals, b.intervals)
            pd.testing.assert_frame_equal(a.timeline, b.timeline)


@pytest.mark.parametrize("command, heading", [("compare", "## `lepsim compare`"), ("sweep", "## Sweeps")])
def test_docs_option_tables_match_the_parser(command, heading):
    """The option tables of docs/experiments.md list exactly the command's options."""
    from lepsim.cli import build_parser

    doc = (DATA.parents[1] / "docs" / "experiments.md").read_text()
    section = doc.split(heading, 1)[1].split("\n## ", 1)[0]
    table = section.split("| option | meaning |", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"`(--[a-z-]+)", table))
    sub = build_parser()._subparsers._group_actions[0].choices[command]
    options = {o for a in sub._actions for o in a.option_strings if o.startswith("--") and o != "--help"}
    assert documented == options
