"""lepsim.report.plots: exact bin averages of the timeline, the JCT CDF, the summary table."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless; must precede the pyplot import

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

import lepsim  # noqa: E402
from lepsim.api import Result  # noqa: E402
from lepsim.metrics.summary import step_integral  # noqa: E402
from lepsim.report import plots  # noqa: E402
from lepsim.scenario.spec import Scenario  # noqa: E402

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"



@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def fake_result(timeline: list[tuple], *, capacity: dict, end_time: float, policy: str = "p",
                jobs: pd.DataFrame | None = None, summary: dict | None = None) -> Result:
    """A Result carrying only what the plots read: timeline, capacity, end_time, jobs, summary."""
    types = list(capacity)
    cols = ["time_s", "allocated_gpus", "running_jobs", "pending_jobs"] + [f"allocated_gpus[{t}]" for t in types]
    tl = pd.DataFrame.from_records(timeline, columns=cols)
    if jobs is None:
        jobs = pd.DataFrame({"status": pd.Series([], dtype="string"), "measured": pd.Series([], dtype=bool),
                             "jct_s": pd.Series([], dtype=float)})
    return Result(scenario=None, policy=policy, seed=0, jobs=jobs, intervals=pd.DataFrame(), timeline=tl,
                  events=pd.DataFrame(), summary=summary or {}, capacity=capacity, end_time=end_time)


# A 4-GPU cluster (3 A + 1 B).  allocated: 2 on [0,1.5), 4 on [1.5,4), 1 on [4,7), 3 on [7,end).
# pending: 5, 0, 2, 1 on the same pieces.
TIMELINE = [
    (0.0, 2, 1, 5, 2, 0),
    (1.5, 4, 2, 0, 3, 1),
    (4.0, 1, 1, 2, 1, 0),
    (7.0, 3, 2, 1, 2, 1),
]


def test_bin_average_utilization_is_the_exact_step_integral():
    r = fake_result(TIMELINE, capacity={"A": 3, "B": 1}, end_time=10.0)
    df = plots.utilization_frame(r, bin=2)
    # by hand: [0,2): (2·1.5 + 4·0.5)/2 = 2.5 → 2.5/4; [2,4): 4; [4,6): 1; [6,8): (1 + 3)/2 = 2; [8,10): 3
    assert list(df.index) == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert df["p"].tolist() == pytest.approx([2.5 / 4, 1.0, 0.25, 0.5, 0.75], abs=1e-12)
    # the same numbers as the summary's integral over each bin
    times, alloc = np.array([t[0] for t in TIMELINE]), np.array([t[1] for t in TIMELINE], dtype=float)
    for lo, u in df["p"].items():
        assert u == pytest.approx(step_integral(times, alloc, lo, lo + 2) / (4 * 2), abs=1e-12)


def test_last_bin_is_shorter_and_averaged_over_its_own_length():
    r = fake_result(TIMELINE, capacity={"A": 3, "B": 1}, end_time=9.0)
    df = plots.utilization_frame(r, bin="2s")
    assert list(df.index) == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert df["p"].iloc[-1] == pytest.approx(0.75)   # [8, 9): 3 GPUs of 4
    # bins not aligned with the breakpoints; "1.5s" keeps 1.5 as an edge, 2.5 s bins do not
    df = plots.utilization_frame(r, bin=2.5)
    # [0,2.5): 2·1.5 + 4·1 = 7 → 7/2.5/4; [2.5,5): 4·1.5 + 1·1 = 7; [5,7.5): 1·2 + 3·0.5 = 3.5; [7.5,9): 3
    assert df["p"].tolist() == pytest.approx([0.7, 0.7, 0.35, 0.75], abs=1e-12)


def test_per_type_utilization_and_queue_length():
    r = fake_result(TIMELINE, capacity={"A": 3, "B": 1}, end_time=10.0)
    a = plots.utilization_frame(r, bin=5, gpu_type="A")["p"]
    # A: 2 on [0,1.5), 3 on [1.5,4), 1 on [4,7), 2 on [7,10)
    assert a.tolist() == pytest.approx([(2 * 1.5 + 3 * 2.5 + 1 * 1) / 5 / 3, (1 * 2 + 2 * 3) / 5 / 3])
    q = plots.queue_length_frame(r, bin=5)["p"]
    assert q.tolist() == pytest.approx([(5 * 1.5 + 0 * 2.5 + 2 * 1) / 5, (2 * 2 + 1 * 3) / 5])
    with pytest.raises(KeyError, match="gpu_type='C'"):
        plots.utilization_frame(r, gpu_type="C")


def test_step_bin_means_before_first_time_and_repeated_times():
    # 0 before t=1; the later of two rows at t=2 wins
    m = plots.step_bin_means([1.0, 2.0, 2.0], [4.0, 7.0, 1.0], [0.0, 2.0, 4.0])
    assert m.tolist() == pytest.approx([(0 * 1 + 4 * 1) / 2, 1.0])
    with pytest.raises(ValueError):
        plots.step_bin_means([0.0, 1.0], [1.0, 2.0], [0.0, 0.0])


@settings(max_examples=60, deadline=None)
@given(
    gaps=st.lists(st.floats(0.0, 50.0), min_size=1, max_size=30),
    values=st.lists(st.integers(0, 64), min_size=30, max_size=30),
    width=st.floats(0.5, 40.0),
    extra=st.floats(0.0, 30.0),
)
def test_bin_means_integrate_to_the_step_integral(gaps, values, width, extra):
    times = np.cumsum(gaps) - gaps[0]
    v = np.array(values[: len(times)], dtype=float)
    end = float(times[-1]) + extra
    if end <= 0:
        return
    edges = plots._edges(end, width)
    means = plots.step_bin_means(times, v, edges)
    assert edges[0] == 0.0 and edges[-1] == end and np.all(np.diff(edges) > 0)
    assert len(edges) == 2 or edges[-1] - edges[-2] > 1e-9 * width   # no sliver bin at the end
    assert np.all(np.diff(edges)[:-1] == pytest.approx(width))
    total = float(np.sum(means * np.diff(edges)))
    exact_total = step_integral(times, v, 0.0, end)
    assert total == pytest.approx(exact_total, rel=1e-9, abs=1e-9)
    for k in range(len(means)):   # each bin's integral, up to rounding relative to the whole
        exact = step_integral(times, v, edges[k], edges[k + 1])
        assert means[k] * (edges[k + 1] - edges[k]) == pytest.approx(exact, abs=1e-9 * max(1.0, exact_total))


def test_utilization_plot_draws_the_bin_averages():
    r = fake_result(TIMELINE, capacity={"A": 3, "B": 1}, end_time=10.0)
    fig, ax = plt.subplots()
    out = plots.utilization_over_time({"x": r}, ax=ax, bin=2)
    assert out is ax
    (stairs,) = ax.patches
    values, edges, _ = stairs.get_data()
    assert edges.tolist() == pytest.approx([0, 2 / 3600, 4 / 3600, 6 / 3600, 8 / 3600, 10 / 3600])
    assert values.tolist() == pytest.approx([0.625, 1.0, 0.25, 0.5, 0.75])
    assert stairs.get_label() == "x"
    # raw step function: ends at end_time with the last value
    ax2 = plots.queue_length_over_time(r, bin=None)
    (line,) = ax2.get_lines()
    assert line.get_xdata()[-1] == pytest.approx(10 / 3600) and line.get_ydata()[-1] == 1


def y_ends_at_one(line) -> bool:
    return float(np.asarray(line.get_ydata())[-1]) == 1.0


def test_ecdf_with_ties_is_exact_monotone_and_ends_at_one():
    x, y = plots.ecdf([4.0, 1.0, 2.0, 1.0, math.nan])
    assert x.tolist() == [1.0, 2.0, 4.0]
    assert y.tolist() == [0.5, 0.75, 1.0]


def test_jct_cdf_uses_measured_completed_jobs_only():
    jobs = pd.DataFrame({
        "status": pd.Series(["completed", "completed", "completed", "unfinished", "completed", "completed"],
                            dtype="string"),
        "measured": [True, True, True, True, False, True],
        "jct_s": [7200.0, 3600.0, 36000.0, math.nan, 360.0, 3600.0],
    })
    r = fake_result([(0.0, 0, 0, 0, 0)], capacity={"A": 4}, end_time=10.0, jobs=jobs)
    ax = plots.jct_cdf({"fifo": r})
    assert ax.get_xscale() == "log"
    (line,) = ax.get_lines()
    x, y = np.asarray(line.get_xdata()), np.asarray(line.get_ydata())
    assert x.tolist() == [1.0, 1.0, 2.0, 10.0]          # hours; starts from 0 at the first value
    assert y.tolist() == [0.0, 0.5, 0.75, 1.0]
    assert np.all(np.diff(x) >= 0) and np.all(np.diff(y) >= 0) and y[-1] == 1.0


def test_summary_frame_columns_rows_and_missing_values():
    a = fake_result(TIMELINE, capacity={"A": 3, "B": 1}, end_time=1.0, policy="fifo",
                    summary={"jct_mean_s": 10.0, "utilization": 0.5, "utilization[A]": 0.4, "jobs_unfinished": 3})
    b = fake_result(TIMELINE, capacity={"A": 3, "B": 1}, end_time=1.0, policy="las",
                    summary={"jct_mean_s": 8.0, "utilization": 0.6, "utilization[B]": 0.9})
    df = plots.summary_frame([b, a])
    assert list(df.columns) == ["las", "fifo"]
    rows = list(df.index)
    assert rows[: rows.index("utilization") + 3][-3:] == ["utilization", "utilization[A]", "utilization[B]"]
    assert df.loc["jct_mean_s"].tolist() == [8.0, 10.0]
    assert df.loc["jobs_unfinished", "fifo"] == 3 and math.isnan(df.loc["jobs_unfinished", "las"])
    assert math.isnan(df.loc["utilization[A]", "las"])
    assert plots.summary_frame({"x": a}, metrics=["utilization"]).to_dict() == {"x": {"utilization": 0.5}}
    with pytest.raises(ValueError, match="two results for policy 'fifo'"):
        plots.summary_frame([a, a])


def test_burst_windows_repeat_clip_and_merge():
    s = Scenario.model_validate({
        "cluster": {"pools": [{"count": 1, "gpu_type": "V100", "gpus_per_node": 4, "cpus": 64, "memory": "512GiB"}]},
        "workload": {"generators": [
            {"kind": "burst", "rate": "1/h", "factor": 5, "duration": "1min", "start": "30min",
             "windows": [{"start": 0, "end": "1h"}], "period": "4h"},
            {"kind": "burst", "rate": "1/h", "factor": 5, "duration": "1min",
             "windows": [{"start": "50min", "end": "2h"}]},
            {"kind": "poisson", "rate": "1/h", "duration": "1min"},
        ]},
        "scheduler": {"policy": "fifo"},
        "simulation": {"horizon": "10h"},
    })
    h = 3600.0
    assert plots.burst_windows(s) == [(0.5 * h, 2 * h), (4 * h, 5 * h), (8 * h, 9 * h)]


def test_on_the_burst_scenario_bins_average_to_the_summary_utilization():
    r = lepsim.simulate(SCENARIOS / "burst.yaml", policy="fifo")
    df = plots.utilization_frame(r, bin="10min")
    lo, hi = r.summary["window_start_s"], r.summary["window_end_s"]   # multiples of 10 min
    inside = df.loc[(df.index >= lo) & (df.index < hi), "fifo"]
    assert len(inside) == (hi - lo) / 600
    assert inside.mean() == pytest.approx(r.summary["utilization"], rel=1e-9)
    q = plots.queue_length_frame(r, bin="1h")
    assert q.loc[(q.index >= lo) & (q.index < hi), "fifo"].mean() == pytest.approx(r.summary["queue_length_mean"],
                                                                                 rel=1e-9)
    # the CDF counts the jobs the summary counts: every step is a whole number of 1/n (ties, e.g.
    # jobs clipped to the minimum duration and started at once, make a few steps of 2/n)
    n = r.summary["jobs_measured_completed"]
    (line,) = plots.jct_cdf(r).get_lines()
    steps = np.diff(np.asarray(line.get_ydata())) * n
    assert n > 100 and y_ends_at_one(line)
    assert np.allclose(steps, np.round(steps), atol=1e-6) and steps.min() > 0.999
    assert round(steps.sum()) == n and len(steps) > 0.9 * n
    h = 3600.0
    assert plots.burst_windows(r.scenario) == [(2 * h, 2.5 * h), (5 * h, 5.5 * h), (8 * h, 8 * h + 1200),
                                               (10 * h, 10.75 * h)]
