"""Matplotlib plots and tables of one or more :class:`lepsim.Result` objects.

Every function takes ``results`` as a single Result, a mapping ``label → Result`` (e.g.
``{"fifo": r1, "las": r2}``; the labels name the lines and columns), or a sequence of
Results (labelled by their policy).  Plotting functions draw on ``ax`` when given, else on
a new figure from :func:`matplotlib.pyplot.subplots`, and return the Axes; they never call
``show()`` and work under any backend (including the headless ``Agg``).

Times on the x-axes are in hours; the underlying tables stay in SI seconds.

The time series come from ``Result.timeline``: a right-continuous step function (each row
holds from its ``time_s`` until the next row's; the last row holds until ``Result.end_time``;
the value before the first row is 0).  Binned values are *exact* time-weighted averages of
that step function over each bin (its integral over the bin divided by the bin's length),
the same integral :func:`lepsim.metrics.summary.step_integral` computes for the summary, not
samples of it.

>>> import lepsim
>>> from lepsim.report import plots
>>> results = {p: lepsim.simulate("scenarios/burst.yaml", policy=p) for p in ("fifo", "las")}
>>> plots.summary_frame(results)
>>> ax = plots.utilization_over_time(results, bin="10min")
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Union

import numpy as np
import pandas as pd

from lepsim.units import parse_duration

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

    from lepsim.api import Result
    from lepsim.scenario.spec import Scenario

    Results = Union[Result, Mapping[str, Result], Sequence[Result]]

__all__ = [
    "SUMMARY_METRICS",
    "burst_windows",
    "ecdf",
    "jct_cdf",
    "link_utilization_over_time",
    "queue_length_frame",
    "queue_length_over_time",
    "shade_windows",
    "step_bin_means",
    "summary_frame",
    "utilization_frame",
    "utilization_over_time",
]

#: Rows of :func:`summary_frame` (in this order) when no ``metrics`` are given; per-GPU-type
#: utilizations found in the summaries are appended after ``utilization``.
SUMMARY_METRICS = (
    "jobs_measured_completed",
    "jobs_unfinished",
    "jct_mean_s",
    "jct_p50_s",
    "jct_p95_s",
    "jct_p99_s",
    "queueing_delay_mean_s",
    "queueing_delay_p95_s",
    "wait_time_mean_s",
    "slowdown_mean",
    "preemptions_total",
    "utilization",
    "queue_length_mean",
    "throughput_jobs_per_h",
    "makespan_s",
)

HOUR = 3600.0


# ----------------------------------------------------------------------------- inputs
def _as_dict(results) -> dict:
    """``results`` → an ordered ``{label: Result}``."""
    from lepsim.api import Result

    if isinstance(results, Result):
        return {results.policy: results}
    if isinstance(results, Mapping):
        out = dict(results)
    elif isinstance(results, Iterable) and not isinstance(results, (str, bytes)):
        out = {}
        for r in results:
            if not isinstance(r, Result):
                raise TypeError(f"found {type(r).__name__} in results, expected lepsim.Result objects")
            if r.policy in out:
                raise ValueError(
                    f"found two results for policy {r.policy!r}; pass a dict {{label: Result}} to tell them apart"
                )
            out[r.policy] = r
    else:
        raise TypeError(
            f"found {type(results).__name__}, expected a lepsim.Result, a dict label → Result or a list of Results"
        )
    if not out:
        raise ValueError("found no results, expected at least one")
    for label, r in out.items():
        if not isinstance(r, Result):
            raise TypeError(f"results[{label!r}] is a {type(r).__name__}, expected a lepsim.Result")
    return out


def _bin_seconds(bin) -> float | None:
    if bin is None:
        return None
    width = parse_duration(bin)
    if not (width > 0 and math.isfinite(width)):
        raise ValueError(f"found bin={bin!r}, expected a positive duration such as '10min' or 600")
    return width


def _new_axes(ax):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots()
    return ax


# ----------------------------------------------------------------------------- step functions
def step_bin_means(times, values, edges) -> np.ndarray:
    """Exact time-weighted means of a right-continuous step function over bins.

    The function is ``values[i]`` on ``[times[i], times[i+1])``, ``values[-1]`` after the
    last time and 0 before the first; ``times`` must be non-decreasing (a repeated time
    means the later value wins).  ``edges`` (strictly increasing, length ``n + 1``) delimit
    ``n`` bins ``[edges[k], edges[k+1])``; the result is, for each bin,
    ``∫ f(t) dt over the bin / (edges[k+1] - edges[k])``.
    """
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    e = np.asarray(edges, dtype=float)
    if t.ndim != 1 or t.shape != v.shape:
        raise ValueError(f"found times of shape {t.shape} and values of shape {v.shape}, expected equal 1-D shapes")
    if e.ndim != 1 or len(e) < 2 or np.any(np.diff(e) <= 0):
        raise ValueError("expected at least two strictly increasing bin edges")
    if len(t) == 0:
        return np.zeros(len(e) - 1)
    if np.any(np.diff(t) < 0):
        raise ValueError("expected non-decreasing times")
    # F(x) = ∫_{-inf}^{x} f: exact at the breakpoints, linear in between.
    at_breaks = np.concatenate(([0.0], np.cumsum(v[:-1] * np.diff(t))))
    i = np.searchsorted(t, e, side="right") - 1
    ic = np.clip(i, 0, None)
    F = np.where(i < 0, 0.0, at_breaks[ic] + v[ic] * (e - t[ic]))
    return np.diff(F) / np.diff(e)


def _edges(end: float, width: float) -> np.ndarray:
    """Bin edges 0, w, 2w, ... with the last bin ending at ``end``: shorter than ``w``, or a
    hair longer where a sliver (< 1e-9 w, a rounding artefact) would otherwise remain."""
    if not end > 0:
        return np.array([0.0])
    n = max(int(math.ceil(end / width - 1e-9)), 1)
    edges = np.arange(n + 1) * width
    edges[-1] = end
    return edges


def _series(result, column: str, scale: float) -> tuple[np.ndarray, np.ndarray]:
    tl = result.timeline
    if column not in tl.columns:
        raise KeyError(f"timeline has no column {column!r}; it has {', '.join(map(str, tl.columns))}")
    return tl["time_s"].to_numpy(dtype=float), tl[column].to_numpy(dtype=float) * scale


def _binned_frame(results, column_of, width: float | None, name: str) -> pd.DataFrame:
    cols = {}
    for label, r in _as_dict(results).items():
        column, scale = column_of(r)
        times, values = _series(r, column, scale)
        edges = _edges(float(r.end_time), width)
        if len(edges) < 2:  # a run that ended at time 0
            cols[label] = pd.Series(dtype=float)
            continue
        cols[label] = pd.Series(step_bin_means(times, values, edges), index=edges[:-1])
    df = pd.DataFrame(cols)
    df.index.name = "bin_start_s"
    df.columns.name = name
    return df


def _plot_series(ax, results, column_of, width: float | None) -> None:
    for label, r in _as_dict(results).items():
        column, scale = column_of(r)
        times, values = _series(r, column, scale)
        end = float(r.end_time)
        if width is None:
            if len(times) == 0:
                continue
            x = np.append(times, max(end, times[-1])) / HOUR
            ax.step(x, np.append(values, values[-1]), where="post", label=str(label))
        else:
            edges = _edges(end, width)
            if len(edges) < 2:
                continue
            ax.stairs(step_bin_means(times, values, edges), edges / HOUR, baseline=None, label=str(label))
    ax.set_xlabel("time (h)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend()


def _utilization_column(gpu_type: str | None):
    def column_of(r):
        if gpu_type is None:
            cap = float(sum(r.capacity.values()))
            column = "allocated_gpus"
        else:
            if gpu_type not in r.capacity:
                raise KeyError(f"found gpu_type={gpu_type!r}, expected one of {', '.join(map(str, r.capacity))}")
            cap = float(r.capacity[gpu_type])
            column = f"allocated_gpus[{gpu_type}]"
        return column, (1.0 / cap if cap > 0 else math.nan)

    return column_of


# ----------------------------------------------------------------------------- utilization, queue
def utilization_frame(results: "Results", bin="10min", *, gpu_type: str | None = None) -> pd.DataFrame:
    """GPU allocation utilization (allocated GPUs / capacity) averaged over time bins.

    Bins are ``[k·bin, (k+1)·bin)`` from time 0; the last one ends at the run's
    ``end_time`` and may be shorter (its average is over its own length).  Index
    ``bin_start_s``; one column per label (NaN where a run had ended).  ``gpu_type``
    restricts to one GPU type (allocated GPUs of that type / its capacity).
    """
    width = _bin_seconds(bin)
    if width is None:
        raise ValueError("utilization_frame needs a bin width")
    return _binned_frame(results, _utilization_column(gpu_type), width, "utilization")


def utilization_over_time(results: "Results", ax: "Axes | None" = None, bin="10min", *,
                          gpu_type: str | None = None) -> "Axes":
    """Plot GPU allocation utilization over time, one line per label.

    With ``bin`` (a duration: ``"10min"``, ``"1h"`` or seconds) each bin shows the exact
    time-weighted average (see :func:`utilization_frame`); with ``bin=None`` the raw step
    function is drawn.
    """
    ax = _new_axes(ax)
    _plot_series(ax, results, _utilization_column(gpu_type), _bin_seconds(bin))
    ax.set_ylabel("GPU allocation utilization" + (f" [{gpu_type}]" if gpu_type else ""))
    ax.set_ylim(0.0, 1.05)
    return ax


def link_utilization_over_time(result: "Result", ax: "Axes | None" = None, *, links: Sequence[str] | None = None,
                               kind: str | None = "uplink", top: int = 6) -> "Axes":
    """Plot network link utilization (``Result.links``) over time as step functions, one
    line per directed link: the ``links`` named, else the ``top`` busiest (by peak) of
    ``kind`` (``None``: every kind).  Each row holds until the link's next row; the last
    until ``end_time``.  Draws nothing but the axes for a run without ``cluster.network``."""
    ax = _new_axes(ax)
    df = result.links if result.links is not None else pd.DataFrame(columns=["link", "kind", "time_s", "utilization"])
    if links is None:
        pool = df if kind is None else df[df["kind"] == kind]
        peak = pool.groupby("link", sort=True)["utilization"].max()
        links = list(peak.sort_values(ascending=False, kind="stable").index[:top]) if len(peak) else []
    for name in links:
        rows = df[df["link"] == name]
        if not len(rows):
            continue
        t = np.append(rows["time_s"].to_numpy(dtype=float), result.end_time) / HOUR
        u = rows["utilization"].to_numpy(dtype=float)
        ax.step(t, np.append(u, u[-1]), where="post", label=name)
    ax.set_xlabel("time (h)")
    ax.set_ylabel("link utilization")
    ax.set_ylim(0.0, 1.05)
    if links:
        ax.legend(fontsize="small")
    return ax


def _queue_column(r):
    return "pending_jobs", 1.0


def queue_length_frame(results: "Results", bin="10min") -> pd.DataFrame:
    """Number of pending (submitted, not running) jobs averaged over time bins; bins as in
    :func:`utilization_frame`."""
    width = _bin_seconds(bin)
    if width is None:
        raise ValueError("queue_length_frame needs a bin width")
    return _binned_frame(results, _queue_column, width, "queue_length")


def queue_length_over_time(results: "Results", ax: "Axes | None" = None, bin="10min") -> "Axes":
    """Plot the queue length (pending jobs) over time: exact bin averages, or the raw step
    function with ``bin=None``."""
    ax = _new_axes(ax)
    _plot_series(ax, results, _queue_column, _bin_seconds(bin))
    ax.set_ylabel("pending jobs" + (" (time-weighted mean per bin)" if bin is not None else ""))
    ax.set_ylim(bottom=0.0)
    return ax


# ----------------------------------------------------------------------------- JCT
def ecdf(values) -> tuple[np.ndarray, np.ndarray]:
    """Empirical CDF: the distinct finite ``values`` sorted, and the fraction of values ≤ each."""
    a = np.asarray(values, dtype=float)
    a = a[np.isfinite(a)]
    if len(a) == 0:
        return np.empty(0), np.empty(0)
    x, counts = np.unique(a, return_counts=True)
    return x, np.cumsum(counts) / len(a)


def _measured_jcts(result) -> np.ndarray:
    jobs = result.jobs
    done = jobs[(jobs["status"] == "completed") & jobs["measured"].astype(bool)]
    return done["jct_s"].to_numpy(dtype=float)


def jct_cdf(results: "Results", ax: "Axes | None" = None) -> "Axes":
    """Empirical CDF of the job completion time (hours, log x-axis) of the measured
    completed jobs (submitted inside the metrics window), one line per label — the same
    jobs the summary's ``jct_*`` metrics use.  Labels with no such job are listed with
    ``(no jobs)`` in the legend."""
    ax = _new_axes(ax)
    for label, r in _as_dict(results).items():
        x, y = ecdf(_measured_jcts(r) / HOUR)
        if len(x) == 0:
            ax.plot([], [], label=f"{label} (no jobs)")
            continue
        ax.step(np.concatenate(([x[0]], x)), np.concatenate(([0.0], y)), where="post", label=str(label))
    ax.set_xscale("log")
    ax.set_xlabel("job completion time (h)")
    ax.set_ylabel("fraction of measured completed jobs")
    ax.set_ylim(0.0, 1.02)
    ax.legend()
    return ax


# ----------------------------------------------------------------------------- windows
def burst_windows(scenario: "Scenario", *, until: float | None = None) -> list[tuple[float, float]]:
    """The time windows (seconds) in which a burst generator of ``scenario`` submits at its
    raised rate: each generator's windows, repeated every ``period`` when it has one,
    clipped to the generator's ``[start, end)`` (end: the generator's, else the horizon,
    else ``until``), then merged where they overlap and sorted."""
    from lepsim.scenario.spec import Scenario

    if not isinstance(scenario, Scenario):
        raise TypeError(f"found {type(scenario).__name__}, expected a lepsim.Scenario")
    horizon = scenario.simulation.horizon
    from lepsim.workload.generators import burst_windows as generator_windows

    spans: list[tuple[float, float]] = []
    for g in scenario.workload.generators:
        if g.kind != "burst":
            continue
        end = g.end if g.end is not None else (horizon if horizon is not None else until)
        if g.period is not None and end is None:
            raise ValueError("found a periodic burst generator without end or horizon; pass until=")
        spans.extend(generator_windows(g, math.inf if end is None else float(end)))
    spans.sort()
    merged: list[tuple[float, float]] = []
    for lo, hi in spans:
        if merged and lo <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def shade_windows(ax: "Axes", windows: Iterable[tuple[float, float]], *, label: str | None = "burst",
                  color: str = "tab:orange", alpha: float = 0.15) -> "Axes":
    """Shade time windows given in seconds on an Axes whose x-axis is in hours (as the
    plots here draw it).  Only the first span carries ``label`` (one legend entry)."""
    for i, (lo, hi) in enumerate(windows):
        ax.axvspan(lo / HOUR, hi / HOUR, color=color, alpha=alpha, lw=0, label=label if i == 0 else None)
    return ax


# ----------------------------------------------------------------------------- table
def summary_frame(results: "Results", metrics: Sequence[str] | None = None) -> pd.DataFrame:
    """Key summary metrics side by side: one row per metric (units in the names, as in
    ``Result.summary``), one column per label.  Without ``metrics``: :data:`SUMMARY_METRICS`
    plus every per-GPU-type ``utilization[...]`` row found.  A metric missing from a
    result's summary is NaN."""
    res = _as_dict(results)
    if metrics is None:
        per_type = sorted({k for r in res.values() for k in r.summary if k.startswith("utilization[")})
        metrics = []
        for m in SUMMARY_METRICS:
            metrics.append(m)
            if m == "utilization":
                metrics.extend(per_type)
    metrics = list(metrics)
    data = {label: [r.summary.get(m, math.nan) for m in metrics] for label, r in res.items()}
    df = pd.DataFrame(data, index=pd.Index(metrics, name="metric"), dtype=float)
    df.columns.name = "policy"
    return df
