"""Timeline export (Chrome Trace Event Format for Perfetto): structure and content."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import lepsim
from lepsim.build import build_parts
from lepsim.cli import main
from lepsim.report.perfetto import chrome_trace, dumps, trace_of_result, trace_of_run_folder

DATA = Path(__file__).resolve().parents[1] / "data"
SMALL = DATA / "small.yaml"


@pytest.fixture(scope="module")
def las_run():
    r = lepsim.simulate(SMALL, policy="las", params={"thresholds": ["30min"]})
    assert r.summary["preemptions_total"] > 0 and set(r.intervals.phase) == {"run", "checkpoint", "restore"}
    return r


@pytest.fixture(scope="module")
def trace(las_run):
    return json.loads(dumps(trace_of_result(las_run)))   # valid, strict JSON round trip


def _node_of_gpu(result) -> dict:
    """GPU id → node index, from the cluster the engine builds (GPUs numbered node by node)."""
    parts, _ = build_parts(result.scenario)
    out, first = {}, 0
    for n in parts.nodes:
        for g in range(first, first + n.gpus):
            out[g] = n.index
        first += n.gpus
    return out


def test_every_event_has_the_trace_event_format_fields(trace):
    assert trace["displayTimeUnit"] == "ms" and isinstance(trace["traceEvents"], list)
    for e in trace["traceEvents"]:
        assert e["ph"] in {"M", "X", "i", "C", "s", "f"}, e
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int) and isinstance(e["name"], str)
        if e["ph"] != "M":
            assert isinstance(e["ts"], (int, float)) and e["ts"] >= 0
        if e["ph"] == "X":
            assert isinstance(e["dur"], (int, float)) and e["dur"] >= 0
        if e["ph"] == "i":
            assert e["s"] in {"t", "p", "g"}
        if e["ph"] in ("M", "C"):
            assert isinstance(e["args"], dict) and e["args"]
        if e["ph"] in ("s", "f"):
            assert isinstance(e["id"], int) and e["cat"] == "job"


def test_slices_are_the_intervals_exactly(las_run, trace):
    node = _node_of_gpu(las_run)
    expected = Counter()
    for r in las_run.intervals.itertuples():
        for g in map(int, str(r.gpu_ids).split()):
            expected[(r.job_id, r.phase, 1 + node[g], 1 + g, r.start_s * 1e6, (r.end_s - r.start_s) * 1e6)] += 1
    got = Counter((e["args"]["job_id"], e["args"]["phase"], e["pid"], e["tid"], e["ts"], e["dur"])
                  for e in trace["traceEvents"] if e["ph"] == "X")
    assert got == expected


def test_tracks_are_named_and_never_overlap(las_run, trace):
    ev = trace["traceEvents"]
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "thread_name"}
    procs = {e["pid"]: e["args"]["name"] for e in ev if e["ph"] == "M" and e["name"] == "process_name"}
    assert procs[1] == "node V100/0" and procs[2] == "node V100/1" and names[(2, 8)] == "GPU 7"
    by_track: dict = {}
    for e in ev:
        if e["ph"] == "X":
            assert (e["pid"], e["tid"]) in names
            by_track.setdefault((e["pid"], e["tid"]), []).append((e["ts"], e["ts"] + e["dur"]))
    for spans in by_track.values():      # one job at a time on a GPU
        spans.sort()
        assert all(a[1] <= b[0] + 1e-3 for a, b in zip(spans, spans[1:]))   # within a nanosecond of rounding


def test_preemptions_are_visible_on_the_gpus(las_run, trace):
    pre = las_run.events[las_run.events.event == "preempt"]
    marks = [e for e in trace["traceEvents"] if e["ph"] == "i" and e["cat"] == "preempt"]
    on_gpus = Counter((e["args"]["job_id"], e["ts"]) for e in marks if e["pid"] != 0)
    on_cluster = Counter((e["args"]["job_id"], e["ts"]) for e in marks if e["pid"] == 0)
    assert on_cluster == Counter((int(r.job_id), r.time_s * 1e6) for r in pre.itertuples())
    assert set(on_gpus) == set(on_cluster)
    # each preemption is followed on the same GPUs by the job's checkpoint slice
    for e in marks:
        if e["pid"] != 0:
            assert any(x["ph"] == "X" and x["cat"] == "checkpoint" and x["args"]["job_id"] == e["args"]["job_id"]
                       and x["ts"] == e["ts"] and (x["pid"], x["tid"]) == (e["pid"], e["tid"])
                       for x in trace["traceEvents"])


def test_counters_follow_the_timeline(las_run, trace):
    tl = las_run.timeline
    jobs = [e for e in trace["traceEvents"] if e["ph"] == "C" and e["name"] == "jobs"]
    util = [e for e in trace["traceEvents"] if e["ph"] == "C" and e["name"] == "GPU allocation utilization"]
    assert [(e["ts"], e["args"]["running"], e["args"]["pending"]) for e in jobs] == \
        [(t * 1e6, r, p) for t, r, p in zip(tl.time_s, tl.running_jobs, tl.pending_jobs)]
    assert [e["args"]["utilization"] for e in util] == list(tl.utilization)
    assert all(e["pid"] == 0 for e in jobs + util)


def test_run_folder_export_equals_the_result_export(las_run, tmp_path):
    direct = trace_of_result(las_run)
    for fmt in ("parquet", "csv"):
        folder = las_run.save(tmp_path / fmt, formats=(fmt,))
        from_folder = trace_of_run_folder(folder)
        body = [e for e in from_folder["traceEvents"] if not (e["ph"] == "M" and e["pid"] == 0)]
        assert body == [e for e in direct["traceEvents"] if not (e["ph"] == "M" and e["pid"] == 0)], fmt


def test_cpu_only_jobs_get_a_cpu_track():
    sc = lepsim.Scenario.model_validate({
        "cluster": {"pools": [{"count": 1, "gpu_type": "V100", "gpus_per_node": 2, "cpus": 8, "memory": "64GiB"}]},
        "workload": {"jobs": [{"name": "cpu", "gpus": 0, "cpus": 2, "duration": "1h"},
                              {"name": "gpu", "gpus": 1, "duration": "2h"}]},
        "scheduler": {"policy": "fifo"}})
    r = lepsim.simulate(sc)
    t = trace_of_result(r)
    x = {e["name"]: (e["pid"], e["tid"]) for e in t["traceEvents"] if e["ph"] == "X"}
    assert x["job 0 (cpu)"] == (1, 0) and x["job 1 (gpu)"][1] >= 1
    assert {"ph": "M", "name": "thread_name", "pid": 1, "tid": 0, "args": {"name": "CPU jobs"}} in t["traceEvents"]


def test_inconsistent_intervals_are_refused(las_run):
    iv = las_run.intervals
    first = iv.iloc[0]
    assert (first.nodes, first.gpu_ids) == ("0:2", "0 1")
    short = iv.copy()
    short.loc[0, "nodes"] = "0:1"                       # two GPU ids, one counted
    with pytest.raises(ValueError, match="do not account for GPUs"):
        chrome_trace(las_run.jobs, short, las_run.timeline, las_run.events)
    moved = iv.copy()
    moved.loc[0, "nodes"] = "1:2"                       # GPUs 0 and 1 also appear on node 0
    with pytest.raises(ValueError, match="appears on nodes"):
        chrome_trace(las_run.jobs, moved, las_run.timeline, las_run.events)


# ----------------------------------------------------------------------------- CLI
def test_cli_export_from_scenario_and_run_folder(tmp_path, capsys):
    assert main(["export", "perfetto", str(SMALL), "--policy", "las", "--param", "thresholds=[30min]",
                 "-o", str(tmp_path / "a.json")]) == 0
    assert "slices" in capsys.readouterr().out
    assert main(["run", str(SMALL), "--policy", "las", "--param", "thresholds=[30min]", "--out",
                 str(tmp_path / "run"), "--no-progress"]) == 0
    assert main(["export", "perfetto", str(tmp_path / "run"), "-o", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    xs = [[e for e in t["traceEvents"] if e["ph"] == "X"] for t in (a, b)]
    assert xs[0] == xs[1] and len(xs[0]) > 0


@pytest.mark.parametrize("args, needle", [
    (["{run}", "--policy", "las"], "apply to a scenario, not to a run folder"),
    (["{empty}"], "no jobs.parquet or jobs.csv, expected a run folder"),
    (["{missing}"], "no such file, expected a scenario YAML file"),
])
def test_cli_export_bad_input_exit_2(tmp_path, capsys, args, needle):
    (tmp_path / "run").mkdir()
    (tmp_path / "empty").mkdir()
    (tmp_path / "run" / "jobs.csv").write_text("")
    args = [a.format(run=tmp_path / "run", empty=tmp_path / "empty", missing=tmp_path / "nope.yaml") for a in args]
    rc = main(["export", "perfetto", *args, "-o", str(tmp_path / "t.json")])
    err = capsys.readouterr().err
    assert rc == 2 and needle in err and len(err.strip().splitlines()) <= 2
    assert not (tmp_path / "t.json").exists()


def test_flows_link_a_job_across_preemptions(las_run, trace):
    ev = trace["traceEvents"]
    starts = {e["id"]: e for e in ev if e["ph"] == "s"}
    ends = {e["id"]: e for e in ev if e["ph"] == "f"}
    assert starts and set(starts) == set(ends) and all(e["bp"] == "e" for e in ends.values())
    slices = {(e["pid"], e["tid"], e["ts"]): e for e in ev if e["ph"] == "X"}
    for fid, s in starts.items():
        f = ends[fid]
        a, b = slices[(s["pid"], s["tid"], s["ts"])], slices[(f["pid"], f["tid"], f["ts"])]   # both begin a slice
        assert a["args"]["job_id"] == b["args"]["job_id"] and a["ts"] + a["dur"] <= b["ts"] + 1e-3
    # every restore follows an arrow (the job resumes after a gap, maybe elsewhere)
    restores = {(e["args"]["job_id"], e["ts"]) for e in ev if e["ph"] == "X" and e["cat"] == "restore"}
    arrived = {(slices[(f["pid"], f["tid"], f["ts"])]["args"]["job_id"], f["ts"]) for f in ends.values()}
    assert restores <= arrived


def test_shared_gpus_and_concurrent_cpu_jobs_get_lanes():
    """Slices on one thread never overlap: GPU shares (gpu_fraction) and concurrent CPU jobs
    go to further lanes of their track."""
    sc = lepsim.Scenario.model_validate({
        "cluster": {"pools": [{"count": 1, "gpu_type": "V100", "gpus_per_node": 2, "cpus": 8, "memory": "64GiB"}]},
        "workload": {"jobs": [
            {"name": "a", "gpus": 1, "gpu_fraction": 0.5, "duration": "1h"},
            {"name": "b", "gpus": 1, "gpu_fraction": 0.25, "duration": "2h"},
            {"name": "c", "gpus": 0, "cpus": 1, "duration": "1h"},
            {"name": "d", "gpus": 0, "cpus": 1, "duration": "1h"},
        ]},
        "scheduler": {"policy": "fifo"}})
    r = lepsim.simulate(sc)
    t = json.loads(dumps(trace_of_result(r)))["traceEvents"]
    x = {e["name"]: e for e in t if e["ph"] == "X"}
    names = {(e["pid"], e["tid"]): e["args"]["name"] for e in t if e["ph"] == "M" and e["name"] == "thread_name"}
    a, b = x["job 0 (a)"], x["job 1 (b)"]
    assert a["args"]["gpus"] == 0.5 and b["args"]["gpus"] == 0.25
    assert {names[(a["pid"], a["tid"])], names[(b["pid"], b["tid"])]} == {"GPU 0", "GPU 0 · lane 2"}
    c, d = x["job 2 (c)"], x["job 3 (d)"]
    assert {names[(c["pid"], c["tid"])], names[(d["pid"], d["tid"])]} == {"CPU jobs", "CPU jobs · lane 2"}
