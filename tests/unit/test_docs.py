"""The project's docs stay true to the code.

* docs/scenario.md: every complete scenario in a YAML block loads and runs; fragments
  validate; the error example is what ``lepsim validate`` prints; the quoted warning,
  override and generator-check messages are the code's; the field tables name exactly the
  fields of the spec models; the distribution, trace-column and catalog lists match the
  code and data.
* docs/metrics.md: the table columns and the summary keys are exactly what a simulation
  produces; the worked example's hand-computed values and timeline are the code's; the
  run-folder files and manifest entries are what ``Result.save`` writes.
* docs/policies.md: the example policy is tests/unit/policy_example.py verbatim and gives
  the hand-computed timeline; the parameter and view tables match the code; a broken entry
  point is reported as documented.
"""
from __future__ import annotations

import json
import re
import types
import typing
from pathlib import Path

import pytest
import yaml
from pydantic import BaseModel

import lepsim
from lepsim.scenario import spec

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
HERE = Path(__file__).resolve().parent


# ----------------------------------------------------------------------------- markdown helpers
def _text(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", text, re.S | re.M)


def _cells(line: str) -> list[str]:
    # split on | but not on \| (escaped pipes inside cells)
    parts = re.split(r"(?<!\\)\|", line.strip())
    return [p.strip() for p in parts[1:-1]]


def tables(text: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """(nearest heading above, header cells, rows of cells) for every markdown table."""
    out = []
    heading = ""
    lines = text.splitlines()
    in_code = False
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            heading = line.lstrip("#").strip()
        elif not in_code and line.startswith("|") and i + 1 < len(lines) and re.match(r"^\|[\s\-:|]+\|$", lines[i + 1]):
            header = _cells(line)
            rows = []
            i += 2
            while i < len(lines) and lines[i].startswith("|"):
                rows.append(_cells(lines[i]))
                i += 1
            out.append((heading, header, rows))
            continue
        i += 1
    return out


def ticked(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def names_in(rows: list[list[str]]) -> set[str]:
    """Backticked names in the first column (``capacity(gpu_type=None)`` → ``capacity``)."""
    return {re.sub(r"\(.*\)$", "", t) for r in rows for t in ticked(r[0])}


# ----------------------------------------------------------------------------- spec walking
def _models(tp) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Annotated, Optional, unions, tuples)."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _models(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType, tuple, list):
        return [m for a in typing.get_args(tp) if a is not Ellipsis for m in _models(a)]
    if origin is dict:  # a mapping NAME -> model, documented as `path.<name>`
        return _models(typing.get_args(tp)[1])
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    return []


def models_at(path: str) -> list[type[BaseModel]]:
    """Models at a documented path such as ``workload.generators[].windows[]``."""
    if path == "Scenario":
        return [spec.Scenario]
    cur = [spec.Scenario]
    for part in path.replace("[]", "").split("."):
        if part.startswith("<"):  # `tenants.<name>`: the mapping's value model (already in cur)
            continue
        nxt = []
        for m in cur:
            if part in m.model_fields:
                nxt.extend(_models(m.model_fields[part].annotation))
        assert nxt, f"docs/scenario.md documents {path!r}, but {part!r} is not a field holding a model"
        cur = nxt
    return cur


def _field_tables(text: str):
    for heading, header, rows in tables(text):
        if header and header[0] == "field":
            paths = ticked(heading)
            assert len(paths) == 1, f"field table under heading {heading!r}: expected one `path` in the heading"
            yield paths[0], rows


# ----------------------------------------------------------------------------- docs/scenario.md
def test_scenario_field_tables_match_the_spec_models():
    text = _text("scenario.md")
    seen_paths = set()
    for path, rows in _field_tables(text):
        seen_paths.add(path)
        models = models_at(path)
        fields = set().union(*(m.model_fields for m in models))
        documented = names_in(rows)
        unknown = documented - fields
        assert not unknown, f"docs/scenario.md `{path}` documents fields the spec lacks: {sorted(unknown)}"
        missing = fields - documented
        assert not missing, f"`{path}` fields not documented in docs/scenario.md: {sorted(missing)}"
    # every model reachable from Scenario has its table
    expected = {
        "Scenario", "cluster", "cluster.pools[]", "cluster.pools[].autoscale", "cluster.network", "cluster.network.edges[]",
        "cluster.network.storage", "workload", "workload.defaults", "workload.jobs[]",
        "workload.generators[]", "workload.generators[].windows[]", "workload.traces[]", "workload.tenants.<name>", "scheduler",
        "scheduler.preemption", "simulation", "costs", "workload.services[]", "workload.services[].replicas",
        "workload.services[].batching", "workload.services[].queue", "workload.services[].slo",
        "workload.services[].arrivals", "workload.services[].arrivals.windows[]",
        "storage", "storage.cache", "failures", "failures.faults[]", "failures.storage_outages[]",
        "failures.link_outages[]",
    }
    assert seen_paths == expected


@pytest.mark.parametrize("dist_type", [spec.DurationDist, spec.CountDist], ids=["duration", "count"])
def test_distribution_table_matches_the_models(dist_type):
    rows = next(r for h, hdr, r in tables(_text("scenario.md")) if hdr[:2] == ["`dist`", "parameters"])
    documented = {ticked(r[0])[0]: set(ticked(r[1])) for r in rows}
    models = {typing.get_args(m.model_fields["dist"].annotation)[0]: m for m in _models(dist_type)}
    assert set(documented) == set(models)
    for name, params in documented.items():
        assert params == set(models[name].model_fields) - {"dist"}, name


def test_trace_columns_table_matches_the_reader():
    from lepsim.workload.traces import _ALIASES

    rows = next(r for h, hdr, r in tables(_text("scenario.md")) if hdr[:2] == ["column", "aliases"])
    documented = {ticked(r[0])[0]: set(ticked(r[1])) for r in rows}
    assert documented == {k: set(v) - {k} for k, v in _ALIASES.items()}


def test_catalog_lists_match_the_catalog_file():
    from lepsim.hardware import default_catalog
    from lepsim.units import parse_bytes

    cat = default_catalog()
    text = _text("scenario.md")
    m = re.search(r"^GPU types: (.*?)\n\n", text, re.S | re.M)
    assert m, "docs/scenario.md: the 'GPU types:' list is missing"
    assert ticked(m.group(1)) == list(cat.gpus)
    rows = next(r for h, hdr, r in tables(text) if hdr[:1] == ["template"])
    assert [ticked(r[0])[0] for r in rows] == list(cat.nodes)
    for r in rows:
        n = cat.nodes[ticked(r[0])[0]]
        assert int(r[1]) == n.gpus and int(r[3]) == n.cpus and r[5] == n.intra_node_link, n.name
        assert (r[2] if r[2] != "–" else None) == n.gpu_type, n.name
        assert parse_bytes(r[4].replace(" ", "")) == pytest.approx(n.memory_bytes, rel=1e-9), n.name


def _bad_files(text: str) -> dict[str, str]:
    """YAML files the doc shows on purpose with errors: ``File `bad….yaml`:`` then a yaml block."""
    return dict(re.findall(r"File `(bad[\w.-]*\.yaml)`:\s*\n```yaml\n(.*?)^```", text, re.S | re.M))


def test_yaml_blocks_validate_and_complete_scenarios_run(tmp_path):
    text = _text("scenario.md")
    for name, content in re.findall(r"File `([\w.-]+)`:\s*\n```csv\n(.*?)^```", text, re.S | re.M):
        (tmp_path / name).write_text(content)
    bad = set(_bad_files(text).values())
    complete = 0
    for block in code_blocks(text, "yaml"):
        if block in bad:
            continue
        data = yaml.safe_load(block)
        if data is None:  # only the yaml-language-server comment
            continue
        if {"cluster", "workload", "scheduler"} <= set(data):
            spec.Scenario.model_validate(data)
            path = tmp_path / f"block{complete}.yaml"
            path.write_text(block)
            result = lepsim.simulate(path)  # loads with every check (catalog, policy, traces), then runs
            assert result.summary["jobs_total"] > 0
            complete += 1
        elif "generators" in data:
            spec.WorkloadSpec.model_validate(data)
        elif set(data) == {"cluster"}:  # a cluster section on its own
            spec.ClusterSpec.model_validate(data["cluster"])
        elif set(data) <= {"storage", "failures"}:  # a top-level section on its own
            if "storage" in data:
                spec.StorageSpec.model_validate(data["storage"])
            if "failures" in data:
                spec.FailuresSpec.model_validate(data["failures"])
        else:  # generator fields (distributions, labels)
            spec.PoissonGenerator.model_validate({"kind": "poisson", "rate": 1, "count": 1, "duration": 1, **data})
    assert complete >= 3


def test_error_example_is_what_the_cli_prints(tmp_path, monkeypatch, capsys):
    from lepsim.cli import main

    text = _text("scenario.md")
    files = _bad_files(text)
    assert set(files) == {"bad.yaml"}
    (tmp_path / "bad.yaml").write_text(files["bad.yaml"])
    m = re.search(r"^\$ lepsim validate bad.yaml\n(.*?)^\$ echo \$\?\n(\d+)\n", text, re.S | re.M)
    assert m, "docs/scenario.md: the `lepsim validate bad.yaml` console example is missing"
    monkeypatch.chdir(tmp_path)
    rc = main(["validate", "bad.yaml"])
    out = capsys.readouterr()
    assert rc == int(m.group(2)) == 2
    assert out.out == ""
    assert out.err == m.group(1)


def test_trace_example_ids_follow_submit_then_row_order(tmp_path):
    """The doc says bob's and carol's jobs are both submitted at 90 s, ids in row order."""
    text = _text("scenario.md")
    (name, content), = re.findall(r"File `([\w.-]+)`:\s*\n```csv\n(.*?)^```", text, re.S | re.M)
    (tmp_path / name).write_text(content)
    block = next(b for b in code_blocks(text, "yaml") if "traces:" in b)
    (tmp_path / "replay.yaml").write_text(block)
    jobs = lepsim.simulate(tmp_path / "replay.yaml").jobs
    assert jobs["tenant"].tolist() == ["alice", "bob", "carol"]
    assert jobs["submit_time_s"].tolist() == [0.0, 90.0, 90.0]
    assert jobs["isolated_runtime_s"].tolist() == [7200.0, 2700.0, 600.0]


def _quoted(text: str, start: str) -> str:
    """The backticked text in a doc that begins with ``start`` (line breaks read as spaces)."""
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)  # inline code only, not code blocks
    found = [" ".join(q.split()) for q in re.findall(r"`([^`]+)`", prose) if q.startswith(start)]
    assert len(found) == 1, f"expected one `{start}…` in the doc, found {found}"
    return found[0]


def test_skipped_trace_rows_warning_is_what_the_cli_prints(tmp_path, monkeypatch, capsys):
    from lepsim.cli import main

    line = _quoted(_text("scenario.md"), "warning: ")
    (tmp_path / "jobs.csv").write_text("submit_time,gpus,runtime\n0,4,120\n-1,2,30\n5,1,60\n")
    (tmp_path / "s.yaml").write_text(
        "cluster: {pools: [{count: 1, template: dgx1-v100}]}\n"
        "workload: {traces: [{path: jobs.csv, skip_bad_rows: true}]}\n"
        "scheduler: {policy: fifo}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "s.yaml"]) == 0
    assert "warning" not in capsys.readouterr().err  # validate does not print them
    assert main(["run", "s.yaml", "--out", "run", "--no-progress"]) == 0
    assert capsys.readouterr().err.splitlines() == [line]
    r = lepsim.simulate(tmp_path / "s.yaml")
    assert [str(w) for w in r.warnings] == [line.removeprefix("warning: ")]
    assert r.summary["jobs_total"] == 2  # the bad row was skipped


def test_override_error_example(tmp_path):
    from lepsim.errors import ScenarioError

    quoted = _quoted(_text("scenario.md"), "simulation.seed: found -1 (an override)")
    sc = _example_scenario()
    with pytest.raises(ScenarioError) as e:
        sc.with_overrides(seed=-1)
    assert [str(p) for p in e.value.problems] == [f"<scenario>: {quoted}"]
    assert sc.with_overrides(seed=7).simulation.seed == 7


@pytest.mark.parametrize("gen, quoted", [
    ({"gpus": {"dist": "exponential", "mean": 2}, "duration": 60}, "found an unbounded exponential distribution"),
    ({"gpus": {"dist": "uniform", "low": -1, "high": 2}, "duration": 60}, "can generate negative GPU counts"),
    ({"gpus": 1, "duration": {"dist": "choice", "values": [0, 60], "weights": [1, 1]}}, "can generate duration <= 0"),
    ({"gpus": {"dist": "choice", "values": [1, 16]}, "duration": 60}, "can generate a job that"),
])
def test_generator_size_checks_report_what_the_doc_quotes(gen, quoted):
    from lepsim.scenario.loader import check_scenario

    text = _quoted(_text("scenario.md"), quoted).rstrip(" …")
    sc = spec.Scenario.model_validate({
        "cluster": {"pools": [{"count": 1, "template": "dgx1-v100"}]},
        "workload": {"generators": [{"kind": "poisson", "rate": 1, "count": 3, **gen}]},
        "scheduler": {"policy": "fifo"},
    })
    problems = check_scenario(sc)
    assert len(problems) == 1 and problems[0].message.startswith(text), problems


def test_size_prefixes_as_documented():
    from lepsim.units import UnitError, parse_bytes

    assert parse_bytes("1KiB") == 1024 and parse_bytes("1kB") == parse_bytes("1KB") == 1000
    for bad in ("1kiB", "1KIB"):  # "Other prefixes, such as `kiB` or `KIB`, are rejected"
        with pytest.raises(UnitError):
            parse_bytes(bad)


# ----------------------------------------------------------------------------- docs/metrics.md
def _metrics_scenario():
    """The worked example of docs/metrics.md (two GPU types, two tenants, a preemption)."""
    block = next(b for b in code_blocks(_text("metrics.md"), "yaml") if "worked-example" in b)
    return spec.Scenario.model_validate(yaml.safe_load(block))


def _worked_rows() -> dict[str, str]:
    rows = next(r for h, hdr, r in tables(_text("metrics.md")) if "worked example" in h and hdr[:1] == ["key"])
    return {ticked(r[0])[0]: ticked(r[2])[0] for r in rows}


def _arith(expr: str) -> float:
    assert re.fullmatch(r"[0-9.+\-*/() ]+", expr), expr
    return eval(expr, {"__builtins__": {}})  # arithmetic only (checked above)


def test_worked_example_values_are_the_summary():
    rows = _worked_rows()
    assert len(rows) >= 15 and "running_jobs_mean" in rows
    r = lepsim.simulate(_metrics_scenario())
    for key, expr in rows.items():
        assert r.summary[key] == pytest.approx(_arith(expr), rel=1e-12, abs=1e-12), key
    assert r.window == (5.0, 290.0)  # "The window is [5, 290]"
    assert r.measured_completed()["job_id"].tolist() == [1, 2]


def test_worked_example_timeline_marks_the_checkpoint_start():
    """At 25 job 0 starts checkpointing: from then on it is neither running nor pending,
    while its four V100s stay allocated until 30 (docs/metrics.md, `timeline`)."""
    tl = lepsim.simulate(_metrics_scenario()).timeline
    rows = tl[["time_s", "allocated_gpus", "running_jobs", "pending_jobs"]].values.tolist()
    assert rows == [
        [0.0, 4, 1, 0],    # job 0 starts
        [10.0, 6, 2, 0],   # job 1 starts
        [20.0, 6, 2, 1],   # job 2 arrives
        [25.0, 6, 1, 1],   # job 0 checkpoints (GPUs held), job 2 still pending
        [30.0, 4, 2, 1],   # checkpoint ends, job 0 re-queued, job 2 starts
        [60.0, 4, 1, 0],   # jobs 1 and 2 complete, job 0 restores
        [140.0, 0, 0, 0],  # job 0 completes
    ]


def _family(key: str) -> str:
    return re.sub(r"\[.*\]$", "[]", key)


def _section_rows(text: str, heading_part: str, first_header: str) -> list[list[str]]:
    found = [r for h, hdr, r in tables(text) if heading_part in h and hdr[:1] == [first_header]]
    assert len(found) == 1, f"expected one table under a heading containing {heading_part!r}"
    return found[0]


def test_summary_keys_documented_exactly():
    r = lepsim.simulate(_metrics_scenario())
    produced = {_family(k) for k in r.summary}
    # the families must really occur in this run, so that the check below is not vacuous
    assert {"utilization[]", "utilization_tenant[]"} <= produced
    assert r.summary["jobs_not_submitted"] == 1 and r.summary["preemptions_total"] >= 1
    documented = {_family(k) for k in names_in(_section_rows(_text("metrics.md"), "Summary", "key"))}
    assert documented - produced == set(), "documented summary keys that simulate() does not produce"
    assert produced - documented == set(), "summary keys missing from docs/metrics.md"


@pytest.mark.parametrize("table", ["jobs", "intervals", "timeline", "events", "links"])
def test_table_columns_documented_exactly(table):
    r = lepsim.simulate(_metrics_scenario())
    produced = {_family(c) for c in getattr(r, table).columns}
    documented = {_family(c) for c in names_in(_section_rows(_text("metrics.md"), f"`{table}`", "column"))}
    assert documented == produced


def test_run_folder_files_and_manifest_keys_documented(tmp_path):
    r = lepsim.simulate(_metrics_scenario())
    folder = r.save(tmp_path / "run")
    text = _text("metrics.md")
    files = names_in(_section_rows(text, "The run folder", "file"))
    assert files == {p.name for p in folder.iterdir()}
    manifest = json.loads((folder / "manifest.json").read_text())
    rows = next(rw for h, hdr, rw in tables(text) if "run folder" in h.lower() and hdr[:1] == ["key"])
    assert names_in(rows) == set(manifest)
    assert manifest["lepsim_run_format"] == 1
    # `files`: {content, formats} per table and for the summary; the formats are the folder's files
    assert set(manifest["files"]) == {"jobs", "intervals", "timeline", "events", "links", "summary"}
    assert all(set(e) == {"content", "formats"} for e in manifest["files"].values())
    listed = [f for e in manifest["files"].values() for f in e["formats"]]
    assert sorted(listed) == sorted(files - {"manifest.json"})
    assert manifest["files"]["jobs"]["formats"] == ["jobs.parquet", "jobs.csv"]


def test_run_folder_writes_every_table_in_each_requested_format(tmp_path):
    """"Every table is written in each format that `formats` lists" (docs/metrics.md)."""
    r = lepsim.simulate(_metrics_scenario())
    folder = r.save(tmp_path / "csv-only", formats=("csv",))
    tables_ = ("jobs", "intervals", "timeline", "events", "links")
    assert {p.name for p in folder.iterdir()} == {f"{t}.csv" for t in tables_} | {"summary.json", "manifest.json"}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert {t: manifest["files"][t]["formats"] for t in tables_} == {t: [f"{t}.csv"] for t in tables_}
    import pandas as pd

    assert len(pd.read_csv(folder / "intervals.csv")) == len(r.intervals) == 6
    assert pd.read_csv(folder / "events.csv")["event"].tolist() == r.events["event"].tolist()


# ----------------------------------------------------------------------------- docs/policies.md
def _doc_policy_block() -> str:
    text = _text("policies.md")
    section = text[text.index("## Write your own policy"):]
    return code_blocks(section, "python")[0]


def test_policy_example_in_doc_is_the_example_module():
    assert _doc_policy_block() == (HERE / "policy_example.py").read_text(encoding="utf-8")


@pytest.fixture
def isolated_registry(monkeypatch):
    """Register policies for one test only (the registry is process-wide)."""
    from lepsim.policies import registry

    loaded = dict(registry.available())
    monkeypatch.setattr(registry, "_REGISTRY", dict(loaded))
    return registry


def test_broken_entry_point_is_reported_as_documented(monkeypatch):
    from importlib.metadata import EntryPoint

    from lepsim.policies import registry

    loaded = dict(registry.available())
    monkeypatch.setattr(registry, "_REGISTRY", dict(loaded))
    monkeypatch.setattr(registry, "_BROKEN", {})
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    eps = [EntryPoint("gone", "lepsim_no_such_module:Gone", registry.ENTRY_POINT_GROUP),
           EntryPoint("not-a-policy", "json:dumps", registry.ENTRY_POINT_GROUP)]
    monkeypatch.setattr(registry, "entry_points", lambda group: eps if group == registry.ENTRY_POINT_GROUP else [])
    assert list(registry.available()) == list(loaded)  # the others still load
    broken = registry.broken()
    assert set(broken) == {"gone", "not-a-policy"}
    doc = _quoted(_text("policies.md"), "entry point 'NAME'").removesuffix("...")
    expected = doc.replace("'NAME'", "'gone'").replace("module:Class", "lepsim_no_such_module:Gone")
    assert broken["gone"].startswith(expected), broken["gone"]
    with pytest.raises(KeyError) as e:
        registry.get("gone")
    assert e.value.args[0] == broken["gone"]
    assert "not a lepsim Policy subclass" in broken["not-a-policy"]


EXAMPLE_JOBS = [  # (submit s, GPUs, duration s), as in docs/policies.md
    (0, 4, 100), (10, 3, 50), (20, 2, 30), (30, 1, 40), (40, 0, 10),
]


def _example_scenario():
    jobs = [{"submit": s, "gpus": g, "duration": d} | ({"cpus": 8} if g == 0 else {}) for s, g, d in EXAMPLE_JOBS]
    return spec.Scenario.model_validate({
        "cluster": {"pools": [{"count": 1, "gpu_type": "V100", "gpus_per_node": 4, "cpus": 64, "memory": "512GiB"}]},
        "workload": {"jobs": jobs},
        "scheduler": {"policy": "fifo"},
    })


def test_policy_example_gives_the_hand_computed_timeline(isolated_registry, monkeypatch):
    import importlib.util
    import sys

    spec_ = importlib.util.spec_from_file_location("lepsim_docs_policy_example", HERE / "policy_example.py")
    mod = importlib.util.module_from_spec(spec_)
    monkeypatch.setitem(sys.modules, spec_.name, mod)  # pydantic resolves the config's annotations there
    spec_.loader.exec_module(mod)
    isolated_registry.register(mod.SmallestFirst)
    assert isolated_registry.get("smallest-first") is mod.SmallestFirst

    r = lepsim.simulate(_example_scenario(), policy="smallest-first")
    jobs = r.jobs.set_index("job_id")
    # t=100: job 0 ends; jobs 3 (1 GPU) and 2 (2 GPUs) start, job 1 (3 GPUs) is passed over
    # t=130: job 2 ends, job 1 starts on GPUs 1 2 3; job 4 (CPU-only) ran at once at t=40
    assert jobs["first_start_s"].tolist() == [0.0, 130.0, 100.0, 100.0, 40.0]
    assert jobs["end_s"].tolist() == [100.0, 180.0, 130.0, 140.0, 50.0]
    assert jobs["jct_s"].tolist() == [100.0, 170.0, 110.0, 110.0, 10.0]
    gpu_ids = dict(zip(r.intervals["job_id"], r.intervals["gpu_ids"].astype(str)))
    assert gpu_ids == {0: "0 1 2 3", 1: "1 2 3", 2: "1 2", 3: "0", 4: ""}
    assert r.summary["jct_mean_s"] == 100.0

    fifo = lepsim.simulate(_example_scenario(), policy="fifo").jobs
    assert fifo["first_start_s"].tolist() == [0.0, 100.0, 150.0, 150.0, 150.0]
    assert fifo["end_s"].tolist() == [100.0, 150.0, 180.0, 190.0, 160.0]
    assert fifo["jct_s"].mean() == 136.0

    # the table in docs/policies.md shows these same numbers
    rows = next(rw for h, hdr, rw in tables(_text("policies.md")) if hdr[:3] == ["job", "GPUs", "start"])
    for row in rows:
        jid = int(row[0])
        assert [float(row[2]), float(row[3]), float(row[4])] == [
            jobs.at[jid, "first_start_s"], jobs.at[jid, "end_s"], jobs.at[jid, "jct_s"]]
        assert row[5] == (gpu_ids[jid] or "–")
        assert [float(x) for x in row[6].split(",")] == [fifo.at[jid, "first_start_s"], fifo.at[jid, "end_s"]]


def test_policy_parameter_tables_match_the_configs():
    from lepsim.policies.builtin import LASConfig, QueueConfig

    text = _text("policies.md")
    shared = next(r for h, hdr, r in tables(text) if hdr[:2] == ["parameter", "values"])
    assert names_in(shared) == set(QueueConfig.model_fields)
    for row in shared:
        name = ticked(row[0])[0]
        assert ticked(row[2])[0] == str(QueueConfig.model_fields[name].default).lower(), name
    las = next(r for h, hdr, r in tables(text) if "las" in h and hdr[:2] == ["parameter", "default"])
    assert names_in(las) == set(LASConfig.model_fields)
    assert LASConfig().thresholds == (3600.0,) and LASConfig().promote_knob is None


def test_view_tables_match_the_view_classes():
    from lepsim.engine.view import ClusterView, JobView
    from lepsim.policies.placement import FreeMap

    text = _text("policies.md")

    def public(cls):
        return {n for n in dir(cls) if not n.startswith("_")}

    cluster = next(r for h, hdr, r in tables(text) if "ClusterView" in h)
    assert names_in(cluster) == public(ClusterView)
    job = next(r for h, hdr, r in tables(text) if "JobView" in h)
    assert names_in(job) == public(JobView)
    from lepsim.engine.view import ServiceView

    svc = next(r for h, hdr, r in tables(text) if "ServiceView" in h)
    assert names_in(svc) == public(ServiceView)
    fm = next(r for h, hdr, r in tables(text) if "FreeMap" in h)
    assert {"free_gpus", "first_fit", "place", "release"} <= names_in(fm) <= public(FreeMap)
