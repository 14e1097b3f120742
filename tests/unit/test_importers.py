"""Trace importers: each on its bundled sample (counts and first rows checked by hand against
the upstream files), bad rows with file and line, the canonical CSV round trip, and the
Philly replay scenario (validated and run on a short horizon; the full replay is
benchmarks/bench_philly.py)."""
from __future__ import annotations

import gzip
import inspect
import re
import typing
from pathlib import Path

import pytest
import yaml

import lepsim
from lepsim.errors import ScenarioError
from lepsim.scenario.spec import TraceSource
from lepsim.workload import importers
from lepsim.workload.importers import ImportOptions, read_format
from lepsim.workload.importers.canonical import peak_concurrent_gpus

ROOT = Path(__file__).resolve().parents[2]
CPU_ONLY_SCHEDULED = 1052  # awk -F, '$4==0 && $11!=""' on the pod list
DATA = ROOT / "lepsim" / "data" / "traces"


def read(fmt: str, rel: str, **opts):
    return read_format(fmt, DATA / rel, rel, ImportOptions(**opts))


@pytest.fixture(scope="module")
def philly():
    return read("philly", "philly/pollux_philly.csv.gz")


# ----------------------------------------------------------------------------- bundled samples
def test_philly_sample(philly) -> None:
    assert len(philly.rows) == 82247 and not philly.problems
    r = philly.rows[0]
    # line 2: 2017-10-09 07:01:55,66.0,1,66.0,11cb48; the earliest job is 2017-09-04 10:30:41:
    # 35 days minus 3 h 28 min 46 s later
    assert (r["line"], r["gpus"], r["duration"], r["tenant"]) == (2, 1, 66.0, "11cb48")
    assert r["submit"] == 35 * 86400 - (3 * 3600 + 28 * 60 + 46)
    assert min(x["submit"] for x in philly.rows) == 0.0
    assert r["model"] is None and r["iterations"] is None
    assert len({x["tenant"] for x in philly.rows}) == 15
    assert max(x["gpus"] for x in philly.rows) == 128


def test_philly_peak_concurrent_demand(philly) -> None:
    """The figure scenarios/philly.yaml is sized from (156 x 8 = 1,248 GPUs >= 1,243)."""
    peak, at = peak_concurrent_gpus(philly.rows)
    assert peak == 1243
    assert 47 * 86400 < at < 48 * 86400
    sc = yaml.safe_load((ROOT / "scenarios" / "philly.yaml").read_text())
    pool = sc["cluster"]["pools"][0]
    assert pool == {"count": 156, "template": "dgx1-v100"} and (pool["count"] - 1) * 8 < peak <= pool["count"] * 8


def test_peak_concurrent_gpus_by_hand() -> None:
    rows = [dict(submit=0.0, duration=10.0, gpus=2), dict(submit=5.0, duration=10.0, gpus=3),
            dict(submit=10.0, duration=1.0, gpus=4), dict(submit=0.0, duration=None, gpus=8)]
    # [0,10) 2 GPUs, [5,15) 3, [10,11) 4: the first job ends at 10 as the third starts
    assert peak_concurrent_gpus(rows) == (7, 10.0)


def test_gavel_sample() -> None:
    res = read("gavel", "gavel/artifact_evaluation.trace")
    assert len(res.rows) == 15 and not res.problems
    r0, r1 = res.rows[0], res.rows[1]
    # "ResNet-50 (batch size 64) ... 2931 1 1 -1.000000 0"
    assert (r0["model"], r0["batch_size"], r0["iterations"], r0["gpus"], r0["submit"]) == ("resnet50", 64, 2931.0, 1, 0.0)
    assert (r0["priority_weight"], r0["slo"], r0["duration"]) == (1.0, None, None)
    # "Transformer (batch size 16) ... 11005 2 1 -1.000000 0"
    assert (r1["model"], r1["batch_size"], r1["iterations"], r1["gpus"]) == ("transformer", 16, 11005.0, 2)
    assert len(read("gavel", "gavel/max_min_fairness.trace").rows) == 96


def test_tiresias_sample() -> None:
    res = read("tiresias", "tiresias/60_job.csv")
    assert len(res.rows) == 60 and not res.problems
    r = res.rows[0]  # 0,1,0,606,vgg19,164,30
    assert (r["name"], r["gpus"], r["submit"], r["duration"], r["model"], r["iterations"]) == (
        "tiresias-0", 1, 0.0, 164.0, "vgg19", None)
    assert res.rows[1]["submit"] == 30.0 and res.rows[1]["gpus"] == 8


def test_tiresias_cluster() -> None:
    res = read("tiresias-cluster", "tiresias/cluster_spec.csv", gpu_type="V100")
    # 1 switch x 16 nodes x 4 GPUs, 128 CPUs, 254 GB
    assert res.rows == [{"name": "tiresias", "count": 16, "gpus_per_node": 4, "cpus": 128, "memory": 254e9,
                         "gpu_type": "V100"}]
    res = read("tiresias-cluster", "tiresias/n32g4.csv")
    assert [str(p) for p in res.problems] == [
        "tiresias/n32g4.csv:2: num_gpu_p_node: found '4', expected a GPU type for these GPUs (the file names none: "
        "gpu_type, or --gpu-type)"]


def test_pollux_sample() -> None:
    res = read("pollux", "pollux/workload-1.csv")
    assert len(res.rows) == 160 and not res.problems
    r = res.rows[0]  # cifar10-0,107,cifar10,6,2048
    assert (r["name"], r["submit"], r["model"], r["gpus"]) == ("cifar10-0", 107.0, "cifar10", 6)
    assert r["batch_size"] == 342  # ceil(2048 / 6), within cifar10's profiled local batches (<= 1024)
    # the last row of profiles/pollux/cifar10/validation-2048.csv: iteration 3178
    assert r["iterations"] == 3178.0
    # line 29, bert-27,5813,bert,12,384: local 32 > 12 (bert's largest profiled local batch) -> 3
    # micro-steps of 11; validation-384.csv ends at iteration 480
    n = next(x for x in res.rows if x["line"] == 29)
    assert (n["name"], n["gpus"], n["batch_size"], n["iterations"]) == ("bert-27", 12, 11, 3 * 480.0)
    # ncf-2,135,ncf,1,32768: 32768 was profiled on one GPU (validation-32768.csv ends at 1548)
    assert (res.rows[2]["batch_size"], res.rows[2]["iterations"]) == (32768, 1548.0)


def test_alibaba_pods_sample() -> None:
    res = read("alibaba-pods", "alibaba_openb/openb_pod_list_default.csv.gz")
    assert not res.problems
    # 8152 pods: 897 never scheduled, 2573 scheduled ones ask a share of one GPU (gpu_milli < 1000)
    notes = [(n.line, n.message.split(" (lines")[0]) for n in res.notes]
    assert notes[0] == (63, "897 rows never scheduled (no scheduled_time, so no runtime): left out")
    assert len(res.rows) == 8152 - 897 and len(notes) == 1
    r = next(x for x in res.rows if x["line"] == 3)  # openb-pod-0001,6000,12288,1,460,...
    assert (r["gpus"], r["gpu_fraction"], r["cpus"]) == (1, 0.46, 6.0)
    assert sum(1 for x in res.rows if x["gpu_fraction"] < 1) == 2573
    r = res.rows[0]  # openb-pod-0000,12000,16384,1,1000,,LS,Running,0,12537496,0
    assert (r["name"], r["cpus"], r["memory"], r["gpus"], r["submit"], r["duration"], r["tenant"], r["gpu_type"]) == (
        "openb-pod-0000", 12.0, 16384 * 2**20, 1, 0.0, 12537496.0, "LS", None)
    assert sum(1 for x in res.rows if x["gpus"] == 0) == CPU_ONLY_SCHEDULED


def test_alibaba_nodes_sample() -> None:
    rel = "alibaba_openb/openb_node_list_gpu_node.csv"
    res = read("alibaba-nodes", rel)
    assert [(p.line, p.message.split(",")[0]) for p in res.problems] == [
        (24, "39 rows naming GPU model 'G3'"), (28, "549 rows naming GPU model 'G2'"), (1034, "2 rows naming GPU model 'A10'")]
    res = read("alibaba-nodes", rel, gpu_types={"G2": "A40", "G3": "L4", "A10": "A40"})
    assert not res.problems
    assert sum(p["count"] for p in res.rows) == 1213 and len(res.rows) == 15
    # openb-node-0000,64000,262144,2,P100 (22 such nodes)
    assert res.rows[0] == {"name": "openb-P100-2g", "count": 22, "gpus_per_node": 2, "cpus": 64,
                           "memory": 262144 * 2**20, "gpu_type": "P100"}
    assert len({p["name"] for p in res.rows}) == 15


def test_azure_llm_sample() -> None:
    from lepsim.workload.importers.azure_llm import read_requests

    df = read_requests(DATA / "azure_llm_2023" / "AzureLLMInferenceTrace_code.csv.gz")
    assert len(df) == 8819 and list(df.columns) == ["line", "arrival_s", "prompt_tokens", "output_tokens"]
    # 18:17:03.9799600,4808,10 then 18:17:04.0319600,3180,8
    assert df.iloc[0].tolist() == [2, 0.0, 4808, 10]
    assert df.iloc[1]["arrival_s"] == pytest.approx(0.052, abs=1e-6) and df.iloc[1]["prompt_tokens"] == 3180
    assert df["arrival_s"].is_monotonic_increasing and df["arrival_s"].max() < 3600


# ----------------------------------------------------------------------------- bad rows
BROKEN = {
    # format: (file name, text, expected problem prefixes)
    "philly": ("p.csv", "timestamp,duration,num_gpus,gpu_time,cluster\n"
                        "2017-10-09 07:01:55,66.0,1,66.0,a\n"
                        "2017-13-09 07:01:55,66.0,1,66.0,a\n"
                        "2017-10-09 07:01:55,-5,1,-5,a\n"
                        "2017-10-09 07:01:55,10,2,30,\n",
               ["p.csv:3: timestamp: found '2017-13-09 07:01:55'", "p.csv:4: duration: found '-5'",
                "p.csv:4: gpu_time: found '-5'", "p.csv:5: gpu_time: found '30', expected duration x num_gpus = 20",
                "p.csv:5: cluster: found ''"]),
    "gavel": ("g.trace", "ResNet-50 (batch size 64)\tc\td\t-n\t1\t2931\t1\t1\t-1\t0\n"
                         "ResNet-50 (batch size 64)\tc\td\t-n\t1\t0\t1\t1\t-1\t0\n"
                         "LM (batch size 5)\tc\td\t-n\t1\t100\t1.5\t1\t-1\tsoon\n"
                         "short\tline\n",
              ["g.trace:2: total_steps: found '0'", "g.trace:3: scale_factor: found '1.5'",
               "g.trace:3: arrival_time: found 'soon'", "g.trace:4: found 2 fields, expected 10"]),
    "tiresias": ("t.csv", "job_id,num_gpu,submit_time,iterations,model_name,duration,interval\n"
                          "0,1,0,606,vgg19,164,30\n1,0,30,1,vgg11,147,23\n2,2,-1,1,x,0,1\n",
                 ["t.csv:3: num_gpu: found '0'", "t.csv:4: submit_time: found '-1'", "t.csv:4: duration: found '0'"]),
    "pollux": ("w.csv", "name,time,application,num_replicas,batch_size\n"
                        "a,1,cifar10,2,2048\nb,2,alexnet,1,64\nc,3,ncf,1,1000\nd,-4,bert,1,384\n",
               ["w.csv:3: application: found 'alexnet'", "w.csv:4: batch_size: found '1000', expected a global batch "
                "size profiled for ncf: 256, 512, 1024, 2048, 4096, 8192, 16384, 32768", "w.csv:5: time: found '-4'"]),
    "alibaba-pods": ("pods.csv", "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,"
                                 "deletion_time,scheduled_time\n"
                                 "p0,1000,1024,1,1000,,LS,Running,0,100,0\n"
                                 "p1,1000,1024,1,1000,H900,LS,Running,0,100,0\n"
                                 "p2,1000,1024,1,1500,,LS,Running,0,100,0\n"
                                 "p3,1000,1024,1,1000,,LS,Running,50,40,45\n",
                     ["pods.csv:3: gpu_spec: found 'H900'", "pods.csv:4: gpu_milli: found '1500'",
                      "pods.csv:5: deletion_time: found '40', expected a time after scheduled_time (45)"]),
    "azure-llm": ("az.csv", "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:03.97,10,1\n"
                            "2023-11-16 18:17:04,0,1\nyesterday,5,-1\n",
                  ["az.csv:3: ContextTokens: found '0'", "az.csv:4: TIMESTAMP: found 'yesterday'",
                   "az.csv:4: GeneratedTokens: found '-1'"]),
}


@pytest.mark.parametrize("fmt", sorted(BROKEN))
def test_bad_rows_reported_with_lines(fmt, tmp_path) -> None:
    name, text, expected = BROKEN[fmt]
    (tmp_path / name).write_text(text)
    res = read_format(fmt, tmp_path / name, name, ImportOptions())
    got = [str(p) for p in res.problems]
    assert len(got) == len(expected), got
    for g, e in zip(got, expected):
        assert g.startswith(e), (g, e)
    assert len(res.rows) == 1  # the good row survives (for skip_bad_rows)


def test_missing_columns_and_empty_and_gzip(tmp_path) -> None:
    (tmp_path / "h.csv").write_text("timestamp,duration,num_gpus\n")
    res = read_format("philly", tmp_path / "h.csv", "h.csv", ImportOptions())
    assert [str(p) for p in res.errors] == [
        "h.csv:1: header lacks gpu_time, cluster; found columns timestamp, duration, num_gpus"]
    (tmp_path / "e.csv").write_text("")
    assert [str(p) for p in read_format("tiresias", tmp_path / "e.csv", "e.csv", ImportOptions()).errors] == [
        "e.csv:1: trace is empty, expected a header row"]
    (tmp_path / "w.csv.gz").write_bytes(gzip.compress(b"name,time,application,num_replicas,batch_size\nx,1,ncf,1,zz\n"))
    assert [str(p) for p in read_format("pollux", tmp_path / "w.csv.gz", "w.csv.gz", ImportOptions()).problems] == [
        "w.csv.gz:2: batch_size: found 'zz', expected an integer >= 1"]
    (tmp_path / "bad.gz").write_bytes(b"not gzip")
    assert "malformed file" in str(read_format("pollux", tmp_path / "bad.gz", "bad.gz", ImportOptions()).errors[0])


def scenario(tmp_path: Path, trace: dict, pools: str = "[{count: 2, template: dgx1-v100}]", extra: str = "") -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(f"cluster: {{pools: {pools}}}\nworkload: {{traces: [{yaml.safe_dump(trace, default_flow_style=True).strip()}]}}\n"
                 f"scheduler: {{policy: fifo}}\n{extra}")
    return p


def test_scenario_bad_rows_fail_or_skip(tmp_path) -> None:
    name, text, _ = BROKEN["tiresias"]
    (tmp_path / name).write_text(text)
    with pytest.raises(ScenarioError) as e:
        lepsim.load_scenario(scenario(tmp_path, {"path": name, "format": "tiresias"}))
    assert [str(p).split(",")[0] for p in e.value.problems] == [
        "t.csv:3: num_gpu: found '0'", "t.csv:4: submit_time: found '-1'", "t.csv:4: duration: found '0'"]
    r = lepsim.simulate(scenario(tmp_path, {"path": name, "format": "tiresias", "skip_bad_rows": True}))
    assert r.summary["jobs_total"] == 1
    assert [str(w).endswith("(row skipped)") for w in r.warnings] == [True] * 3
    (tmp_path / "g.csv").write_text("submit_time,gpus,duration\n0,1,10\n")  # not a Tiresias file
    with pytest.raises(ScenarioError) as e:
        lepsim.load_scenario(scenario(tmp_path, {"path": "g.csv", "format": "tiresias", "skip_bad_rows": True}))
    assert [str(p) for p in e.value.problems] == [
        "g.csv:1: header lacks job_id, num_gpu; found columns submit_time, gpus, duration"]


def test_cli_convert_bad_rows_exit_2_nothing_written(tmp_path, capsys, monkeypatch) -> None:
    from lepsim.cli import main

    name, text, expected = BROKEN["gavel"]
    (tmp_path / name).write_text(text)
    monkeypatch.chdir(tmp_path)
    assert main(["trace", "convert", "--format", "gavel", name, "-o", "out.csv"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == len(expected) + 1
    assert all(g.startswith(e) for g, e in zip(err, expected))
    assert err[-1] == (f"lepsim: 4 problems found in {name}; nothing was written (--skip-bad-rows leaves bad rows out)")
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]
    assert main(["trace", "convert", "--format", "gavel", name, "-o", "out.csv", "--skip-bad-rows"]) == 0
    out = capsys.readouterr()
    assert out.out == "wrote out.csv: 1 job, submits over 0ms\n"
    assert [ln.split(": found")[0] for ln in out.err.splitlines()] == [
        "warning: g.trace:2: total_steps", "warning: g.trace:3: scale_factor", "warning: g.trace:3: arrival_time",
        "warning: g.trace:4"]
    assert (tmp_path / "out.csv").read_text() == (
        "name,submit_time,gpus,duration,iterations,tenant,model,gpu_type,cpus,memory,batch_size,priority_weight\n"
        ",0,1,,2931,default,resnet50,,,,64,1\n")
    # a file of another format fails even when bad rows are skipped
    (tmp_path / "other.csv").write_text("submit_time,gpus,duration\n0,1,10\n")
    assert main(["trace", "convert", "--format", "philly", "other.csv", "-o", "x.csv", "--skip-bad-rows"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "other.csv:1: header lacks timestamp, num_gpus, gpu_time, cluster; found columns submit_time, gpus, duration",
        "lepsim: 1 problem found in other.csv; nothing was written"]
    assert main(["trace", "convert", "--format", "gavel", "nope.trace", "-o", "x.csv"]) == 2
    assert capsys.readouterr().err == "lepsim: nope.trace: not a file\n"
    assert main(["trace", "convert", "--format", "alibaba-nodes", name, "-o", "x.yaml", "--gpu-map", "G2"]) == 2
    assert capsys.readouterr().err == "lepsim: --gpu-map 'G2': expected MODEL=TYPE\n"


# ----------------------------------------------------------------------------- round trip
def _jobs(path: Path) -> list[tuple]:
    from lepsim.build import build_parts

    parts, problems = build_parts(lepsim.load_scenario(path))
    assert not problems
    return [(j.job_id, j.name, j.submit_time, j.gpus, j.cpus, j.memory_bytes, j.tenant, j.model, j.gpu_type,
             j.duration, j.iterations, j.batch_size, j.gpu_fraction, j.node_selector) for j in parts.jobs]


@pytest.mark.parametrize("fmt,rel,pools", [
    ("gavel", "gavel/artifact_evaluation.trace", "[{count: 2, template: dgx1-v100}]"),
    ("pollux", "pollux/workload-2.csv", "[{count: 16, template: t4-4x}]"),
    ("alibaba-pods", "alibaba_openb/openb_pod_list_default.csv.gz",
     "[{count: 4, gpu_type: V100, gpus_per_node: 8, cpus: 128, memory: 1TiB}]"),
])
def test_convert_then_run_gives_the_same_jobs(fmt, rel, pools, tmp_path, capsys) -> None:
    from lepsim.cli import main

    assert main(["trace", "convert", "--format", fmt, str(DATA / rel), "-o", str(tmp_path / "c.csv")]) == 0
    capsys.readouterr()
    direct = _jobs(scenario(tmp_path, {"path": str(DATA / rel), "format": fmt}, pools))
    conv = _jobs(scenario(tmp_path, {"path": "c.csv"}, pools))
    # names: the canonical CSV keeps the upstream name; rows without one are named by the reader
    assert conv == direct
    s = scenario(tmp_path, {"path": "c.csv", "limit": 40}, pools, "simulation: {horizon: 2d}\n")
    r = lepsim.simulate(s)
    assert r.summary["jobs_total"] >= 1


def test_tiresias_cluster_pools_yaml_runs_its_trace(tmp_path, capsys) -> None:
    from lepsim.cli import main

    assert main(["trace", "convert", "--format", "tiresias-cluster", str(DATA / "tiresias/cluster_spec.csv"),
                 "--gpu-type", "p100", "-o", str(tmp_path / "pools.yaml")]) == 0
    assert capsys.readouterr().out.endswith("1 node pools, 16 nodes, 64 GPUs\n")
    pools = yaml.safe_load((tmp_path / "pools.yaml").read_text())["pools"]
    assert pools == [{"name": "tiresias", "count": 16, "gpus_per_node": 4, "cpus": 128, "memory": 254000000000,
                      "gpu_type": "P100"}]
    r = lepsim.simulate(scenario(tmp_path, {"path": str(DATA / "tiresias/60_job.csv"), "format": "tiresias"},
                                 yaml.safe_dump(pools, default_flow_style=True).strip()))
    assert r.summary["jobs_completed"] == 60


# ----------------------------------------------------------------------------- wiring and docs
def test_spec_formats_are_the_importers() -> None:
    assert typing.get_args(TraceSource.model_fields["format"].annotation) == tuple(importers.JOB_FORMATS)


def test_docs_tables_are_the_module_docstrings() -> None:
    docs = (ROOT / "docs" / "traces.md").read_text()
    mods = [importers.philly, importers.gavel, importers.tiresias, importers.pollux, importers.alibaba,
            importers.azure_llm]
    for m in mods:
        tables = re.findall(r"((?:^\|.*\|\n)+)", inspect.getdoc(m) + "\n", re.M)
        assert tables, m.__name__
        for t in tables:
            assert t in docs, f"docs/traces.md lacks the table of {m.__name__}"
    for fmt in importers.FORMATS:
        if fmt != "csv":
            assert f"`{fmt}`" in docs


def test_philly_scenario_short_horizon(tmp_path, philly) -> None:
    """scenarios/philly.yaml validates (its trace is found from the scenario's folder) and
    runs; here on its first 3,000 rows (of any date) up to day 30."""
    sc = yaml.safe_load((ROOT / "scenarios" / "philly.yaml").read_text())
    t = sc["workload"]["traces"][0]
    assert (ROOT / "scenarios" / t["path"]).resolve() == (DATA / "philly" / "pollux_philly.csv.gz").resolve()
    t.update(path=str(DATA / "philly" / "pollux_philly.csv.gz"), limit=3000)
    sc["simulation"] = {"horizon": "30d"}
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(sc))
    sc = lepsim.load_scenario(tmp_path / "p.yaml")  # read once; both runs share the built jobs
    for pol in ("fifo", "las"):
        r = lepsim.simulate(sc, policy=pol)
        assert r.summary["jobs_total"] > 100
        assert set(r.jobs["tenant"]) <= {x["tenant"] for x in philly.rows[:3000]}


def test_alibaba_gpu_shares(tmp_path) -> None:
    """A share of one GPU becomes gpu_fraction; a share of several GPUs is left out (a note)."""
    from lepsim.workload.importers import canonical

    (tmp_path / "p.csv").write_text(
        "name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time\n"
        "a,1000,1024,1,460,,LS,Running,0,100,0\n"
        "b,1000,1024,2,500,V100M32,BE,Running,5,100,10\n"
        "c,2500,1024,1,1000,V100M16|V100M32,BE,Running,5,100,10\n")
    res = read_format("alibaba-pods", tmp_path / "p.csv", "p.csv", ImportOptions())
    assert not res.problems
    assert [(r["name"], r["gpus"], r["gpu_fraction"], r["gpu_type"], r["cpus"]) for r in res.rows] == [
        ("a", 1, 0.46, None, 1.0), ("c", 1, 1.0, "V100", 2.5)]
    assert [str(n) for n in res.notes] == [
        "p.csv:3: 1 row asking a share (gpu_milli < 1000) of more than one GPU, which the engine cannot place: "
        "left out (lines 3)"]
    assert canonical.to_csv_text(res.rows).splitlines()[:2] == [
        "name,submit_time,gpus,duration,iterations,tenant,model,gpu_type,cpus,memory,batch_size,gpu_fraction",
        "a,0,1,100,,LS,,,1,1073741824,,0.46"]


def test_time_unit_is_for_csv_only(tmp_path) -> None:
    with pytest.raises(ScenarioError) as e:
        lepsim.load_scenario(scenario(tmp_path, {"path": "x.trace", "format": "gavel", "time_unit": "min"}))
    (p,) = e.value.problems
    assert (p.line, p.path) == (2, "workload.traces[0]")
    assert "found time_unit 'min' with format 'gavel', expected time_unit only with format csv" in p.message


def test_services_read_azure_through_the_importer(tmp_path) -> None:
    """Inference services' trace arrivals use this importer: exact differences of 100 ns
    timestamps, a limit counted from its own first request, bad rows named with their line."""
    from lepsim.inference.workload import read_azure_trace

    (tmp_path / "ok.csv").write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:17:04.0319600,3,1\n"
                                     "2023-11-16 18:17:03.9799600,5,2\n2023-11-16 18:17:05.0799600,7,0\n")
    t, p, o = read_azure_trace(tmp_path / "ok.csv")
    assert t.tolist() == [0.0, 0.052, 1.1] and p.tolist() == [5, 3, 7] and o.tolist() == [2, 1, 0]
    t, p, o = read_azure_trace(tmp_path / "ok.csv", limit=1)
    assert t.tolist() == [0.0] and p.tolist() == [3]
    name, text, _ = BROKEN["azure-llm"]
    (tmp_path / name).write_text(text)
    with pytest.raises(ValueError) as e:
        read_azure_trace(tmp_path / name)
    assert str(e.value) == (f"{tmp_path / name}:3: ContextTokens: found '0', expected an integer >= 1 "
                            "(and 2 more bad rows)")


def test_cluster_pools_from_a_trace(tmp_path) -> None:
    """cluster.pools[] entries {trace, format} read pools from a cluster file (relative to the
    scenario); problems name the entry and the file's line."""
    import shutil

    shutil.copy(DATA / "tiresias" / "cluster_spec.csv", tmp_path / "cluster.csv")
    shutil.copy(DATA / "tiresias" / "60_job.csv", tmp_path / "jobs.csv")
    s = scenario(tmp_path, {"path": "jobs.csv", "format": "tiresias"},
                 "[{trace: cluster.csv, format: tiresias-cluster, gpu_type: p100}, {count: 1, template: dgx1-v100}]")
    from lepsim.build import build_parts

    parts, problems = build_parts(lepsim.load_scenario(s))
    assert not problems
    pools = {}
    for n in parts.nodes:
        pools.setdefault(n.pool, []).append((n.gpu_type, n.gpus, n.cpus, n.memory_bytes))
    assert sorted(pools) == ["dgx1-v100", "tiresias"]
    assert pools["tiresias"] == [("P100", 4, 128, 254e9)] * 16
    assert lepsim.simulate(s).summary["jobs_completed"] == 60
    (tmp_path / "b.yaml").write_text(
        "cluster:\n  pools:\n"
        "    - {trace: nope.csv, format: alibaba-nodes}\n"
        f"    - {{trace: {DATA / 'tiresias' / 'n32g4.csv'}, format: tiresias-cluster}}\n"
        "    - {trace: cluster.csv, format: tiresias-cluster, gpu_type: H900}\n"
        "    - {trace: cluster.csv, format: tiresias-cluster, colour: red}\n"
        "workload: {jobs: [{gpus: 1, duration: 1h}]}\nscheduler: {policy: fifo}\n")
    with pytest.raises(ScenarioError) as e:
        lepsim.load_scenario(tmp_path / "b.yaml")
    p = e.value.problems[-1]  # the schema's problems first: the files are not read yet
    assert len(e.value.problems) == 2 and (p.line, p.path) == (6, "cluster.pools[3].colour")
    assert p.message == "found unknown key 'colour', expected one of: trace, format, gpu_type, gpu_types"
    (tmp_path / "b.yaml").write_text((tmp_path / "b.yaml").read_text().replace(", colour: red", ""))
    with pytest.raises(ScenarioError) as e:
        lepsim.load_scenario(tmp_path / "b.yaml")
    got = [(p.line, p.path, p.message.split(",")[0]) for p in e.value.problems]
    assert got == [
        (3, "cluster.pools[0].trace", "found 'nope.csv'"),
        (4, "cluster.pools[1].trace", f"{DATA / 'tiresias' / 'n32g4.csv'}:2: num_gpu_p_node: found '4'"),
        (5, "cluster.pools[2].gpu_type", "found 'H900'"),
        (6, "cluster.pools[3].trace", "cluster.csv:2: num_gpu_p_node: found '4'")]


def test_traces_doc_yaml_examples() -> None:
    """docs/traces.md's YAML examples validate, and their paths (relative to docs/) exist."""
    from lepsim.hardware import default_catalog
    from lepsim.scenario.resolve import resolve_cluster
    from lepsim.scenario.spec import ClusterSpec, WorkloadSpec

    text = (ROOT / "docs" / "traces.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"^```yaml\n(.*?)^```", text, re.S | re.M)]
    assert [sorted(b) for b in blocks] == [["workload"], ["cluster"]]
    wl = WorkloadSpec.model_validate(blocks[0]["workload"])
    assert (ROOT / "docs" / wl.traces[0].path).is_file() and wl.traces[0].format == "gavel"
    nodes, problems = resolve_cluster(ClusterSpec.model_validate(blocks[1]["cluster"]), default_catalog(), ROOT / "docs")
    assert not problems
    assert len(nodes) == 1213 and len({n.pool for n in nodes}) == 15
