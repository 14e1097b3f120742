"""The comparison report: figures and one self-contained HTML page.

Figures are drawn on :class:`matplotlib.figure.Figure` objects (no pyplot, no global
backend) and embedded in the page as base64 PNG, so ``report.html`` needs no other file.
PNGs are written without a software/date stamp: the same comparison gives identical files.
"""
from __future__ import annotations

import base64
import html
import io
import math
import re
from pathlib import Path

import numpy as np

from lepsim.report import plots

HOUR = 3600.0

#: Metrics drawn as bars with confidence intervals in the report's headline figure.
HEADLINE_METRICS = ("jct_mean_s", "queueing_delay_mean_s", "slowdown_mean", "utilization")

#: Metrics whose names match this (service-level objectives, money, energy) get their own
#: figure when a summary has them.
SLO_COST = re.compile(r"(^|_)slo(_|\[|$)|attainment|cost|usd|dollar|price|kwh|energy", re.IGNORECASE)


# ----------------------------------------------------------------------------- formatting
def format_metric(metric: str, v) -> str:
    """Human text of a metric value: durations for ``*_s``, percentages for utilizations,
    attainments and fractions, whole numbers from 10,000 on, 4 significant digits otherwise."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    v = float(v)
    metric = re.sub(r"\[.*\]$", "", metric)  # per-type/tenant/service keys: the unit of their family
    if metric.endswith("_s"):
        from lepsim.units import format_duration

        return format_duration(v)
    if _is_fraction(metric):
        return f"{100 * v:.1f}%"
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v)}"
    if abs(v) >= 1e4:   # counts and dollars in the tens of thousands: no exponent
        return f"{v:.0f}"
    return f"{v:.4g}"


def _is_fraction(metric: str) -> bool:
    return (metric.startswith("utilization") or "attainment" in metric
            or metric.endswith(("_fraction", "_utilization", "_share")))


def format_ci(metric: str, mean, half) -> str:
    """``mean ± half`` (the half width in the metric's unit); the mean alone without a CI."""
    m = format_metric(metric, mean)
    if half is None or (isinstance(half, float) and not math.isfinite(half)):
        return m
    if half == 0:
        return f"{m} ± 0"
    return f"{m} ± {format_metric(metric, half)}"


# ----------------------------------------------------------------------------- figures
def _figure(nrows: int = 1, ncols: int = 1, size=(7.0, 4.0)):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def _pooled(comp, column: str) -> dict:
    """{label: values of ``column`` over every seed's measured completed jobs}."""
    out = {}
    for label in comp.labels:
        parts = [r.measured_completed()[column].to_numpy(dtype=float) for r in comp.runs[label]]
        out[label] = np.concatenate(parts) if parts else np.empty(0)
    return out


def _cdf(ax, values: dict, xlabel: str, *, log: bool) -> None:
    for label, v in values.items():
        x, y = plots.ecdf(v / HOUR)
        if len(x) == 0:
            ax.plot([], [], label=f"{label} (no jobs)")
            continue
        ax.step(np.concatenate(([x[0]], x)), np.concatenate(([0.0], y)), where="post", label=label)
    if log:
        ax.set_xscale("log")
    else:
        ax.set_xscale("symlog", linthresh=1.0 / 60.0)   # linear below one minute: zero delays show
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction of measured completed jobs")
    ax.set_ylim(0.0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")


def jct_cdf_figure(comp):
    fig, ax = _figure()
    _cdf(ax[0][0], _pooled(comp, "jct_s"), "job completion time (h)", log=True)
    ax[0][0].set_title(f"JCT CDF (all {len(comp.seeds)} seeds pooled)")
    return fig


def queueing_cdf_figure(comp):
    fig, ax = _figure()
    _cdf(ax[0][0], _pooled(comp, "queueing_delay_s"), "queueing delay (h, linear below 1 min)", log=False)
    ax[0][0].set_title(f"Queueing-delay CDF (all {len(comp.seeds)} seeds pooled)")
    return fig


def _bin(comp) -> float:
    end = max(float(r.end_time) for r in comp.first_seed().values())
    return max(60.0, end / 150.0)


def _over_time(comp, draw, title: str):
    fig, ax = _figure()
    draw(comp.first_seed(), ax=ax[0][0], bin=_bin(comp))
    ax[0][0].set_title(f"{title} (seed {comp.seeds[0]})")
    ax[0][0].grid(alpha=0.3)
    return fig


def utilization_figure(comp):
    return _over_time(comp, plots.utilization_over_time, "GPU allocation utilization over time")


def queue_figure(comp):
    return _over_time(comp, plots.queue_length_over_time, "Queue length over time")


def metric_bars_figure(comp, metrics, title: str):
    """One panel per metric: the mean per policy with its confidence interval as error bars."""
    table = comp.table()
    n = len(metrics)
    ncols = min(n, 4)
    nrows = math.ceil(n / ncols)
    fig, axes = _figure(nrows, ncols, size=(3.0 * ncols + 0.6, 3.2 * nrows + 0.4))
    labels = comp.labels
    for i, m in enumerate(metrics):
        ax = axes[i // ncols][i % ncols]
        t = table[table.metric == m].set_index("policy").reindex(labels)
        scale, unit = (1.0 / HOUR, " (h)") if m.endswith("_s") else (1.0, "")
        means = t["mean"].to_numpy(dtype=float) * scale
        err = np.nan_to_num(t["ci_half_width"].to_numpy(dtype=float) * scale)
        ax.bar(range(len(labels)), means, yerr=err, capsize=4, color=[f"C{k}" for k in range(len(labels))])
        ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right", fontsize="small")
        ax.set_title(m + unit, fontsize="medium")
        ax.grid(axis="y", alpha=0.3)
    for j in range(n, nrows * ncols):
        axes[j // ncols][j % ncols].set_visible(False)
    fig.suptitle(f"{title} (mean, {int(round(100 * comp.level))} % CI over {len(comp.seeds)} seeds)")
    return fig


def figures(comp) -> dict:
    """``{file stem: (caption, Figure)}`` in report order."""
    metrics = comp.metrics()
    out = {
        "metrics": ("Headline metrics", metric_bars_figure(
            comp, [m for m in HEADLINE_METRICS if m in metrics], "Headline metrics")),
        "jct_cdf": ("Job completion time", jct_cdf_figure(comp)),
        "queueing_delay_cdf": ("Queueing delay", queueing_cdf_figure(comp)),
        "utilization": ("Utilization over time", utilization_figure(comp)),
        "queue_length": ("Queue length over time", queue_figure(comp)),
    }
    per_run = comp.per_run()
    extra = [m for m in metrics if SLO_COST.search(m) and m in per_run and per_run[m].notna().any()]  # NaN-only: none
    if extra:
        out["slo_cost"] = ("SLO attainment and cost", metric_bars_figure(comp, extra, "SLO attainment and cost"))
    return out


def png_bytes(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


# ----------------------------------------------------------------------------- HTML
_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2em auto;max-width:1100px;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:0.9em;margin:0.5em 0}
th,td{padding:0.25em 0.7em;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
thead th{background:#f4f4f4} td.best{font-weight:bold}
img{max-width:100%;margin:0.5em 0} .note{color:#666;font-size:0.9em}
pre{background:#f7f7f7;padding:0.7em;overflow:auto;font-size:0.8em}
"""

#: Metrics where smaller is better (bold in the table); larger is better for the others
#: named in LARGER_BETTER; no bold for the rest.
SMALLER_BETTER = re.compile(r"^(jct|queueing_delay|wait_time|slowdown|makespan|preemptions|queue_length|jobs_unfinished"
                            r"|cost|energy)")
LARGER_BETTER = re.compile(r"^(utilization$|throughput|jobs_completed|jobs_measured_completed|.*attainment)")


def _best(metric: str, means: list[float]) -> int | None:
    vals = [v for v in means if v is not None and math.isfinite(v)]
    if len(vals) < 2 or len(set(vals)) == 1:
        return None
    if SMALLER_BETTER.search(metric):
        target = min(vals)
    elif LARGER_BETTER.search(metric):
        target = max(vals)
    else:
        return None
    return means.index(target)


def stats_html(comp) -> str:
    table = comp.table()
    labels = comp.labels
    head = "".join(f"<th>{html.escape(lab)}</th>" for lab in labels)
    rows = []
    for m in comp.metrics():
        t = table[table.metric == m].set_index("policy").reindex(labels)
        means = [float(x) for x in t["mean"]]
        best = _best(m, means)
        cells = "".join(
            f"<td{' class=best' if i == best else ''}>{html.escape(format_ci(m, mean, half))}</td>"
            for i, (mean, half) in enumerate(zip(means, t["ci_half_width"]))
        )
        rows.append(f"<tr><td>{html.escape(m)}</td>{cells}</tr>")
    return f"<table><thead><tr><th>metric</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def per_run_html(comp) -> str:
    df = comp.per_run()
    cols = list(df.columns)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = []
    for rec in df.itertuples(index=False):
        cells = "".join(
            f"<td>{html.escape(str(v) if c in ('policy', 'policy_name', 'seed') else format_metric(c, v))}</td>"
            for c, v in zip(cols, rec)
        )
        body.append(f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def report_html(comp, pngs: dict, *, title: str) -> str:
    """The page: settings, the means ± CI table, the figures, the per-seed table and the scenario."""
    from lepsim import __version__
    from lepsim.report.run_folder import dumps

    sc = comp.scenario
    level = int(round(100 * comp.level))
    figs = "".join(
        f"<h2>{html.escape(caption)}</h2>"
        f"<img alt='{html.escape(caption)}' src='data:image/png;base64,{base64.b64encode(data).decode('ascii')}'>"
        for caption, data in pngs.values()
    )
    seeds = ", ".join(map(str, comp.seeds))
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(title)}</h1>
<p>Scenario <b>{html.escape(sc.name or '')}</b>{(' — ' + html.escape(sc.description)) if sc.description else ''}.
Policies: {', '.join('<b>' + html.escape(lab) + '</b>' for lab in comp.labels)}.
Seeds: {seeds} (every policy sees the identical workload for a seed).
lepsim {html.escape(__version__)}.</p>
<h2>Summary metrics: mean ± {level} % confidence interval across {len(comp.seeds)} seeds</h2>
<p class="note">Student-t interval: mean ± t<sub>{(1 + comp.level) / 2:.3g}, n−1</sub>·s/√n over the seeds;
no interval with one seed. Bold: the best mean where smaller (JCT, delays, slowdown, queue, cost) or larger
(utilization, throughput, attainment) is better. Formulas: docs/metrics.md.</p>
{stats_html(comp)}
{figs}
<h2>Every run</h2>
<details><summary>one row per policy and seed</summary>{per_run_html(comp)}</details>
<h2>Scenario</h2>
<details><summary>the scenario as run (before the policy and seed overrides)</summary>
<pre>{html.escape(dumps(sc.model_dump(mode="json")))}</pre></details>
</body></html>
"""


def write_comparison(comp, folder: Path, *, title: str | None = None) -> Path:
    """Write ``report.html``, ``runs.csv``, ``stats.csv`` and ``figures/*.png`` into
    ``folder``, atomically (the folder appears complete or not at all)."""
    from lepsim.report.run_folder import atomic_folder

    title = title or f"lepsim comparison: {comp.scenario.name or 'scenario'}"
    figs = figures(comp)
    pngs = {stem: (caption, png_bytes(fig)) for stem, (caption, fig) in figs.items()}
    with atomic_folder(Path(folder)) as tmp:
        (tmp / "figures").mkdir()
        for stem, (_, data) in pngs.items():
            (tmp / "figures" / f"{stem}.png").write_bytes(data)
        comp.per_run().to_csv(tmp / "runs.csv", index=False, lineterminator="\n")
        comp.table().to_csv(tmp / "stats.csv", index=False, lineterminator="\n")
        (tmp / "report.html").write_text(report_html(comp, pngs, title=title), encoding="utf-8")
    return Path(folder)
