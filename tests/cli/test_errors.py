"""Bad input on the command line: every problem reported as ``FILE:LINE: field.path: message``,
exit code 2, no traceback, nothing written.

Each case is run as a subprocess (``python -m lepsim``): ``lepsim run FILE`` in a fresh
folder of its own (a few at a time), and ``lepsim validate`` over all cases in one call
(its stderr is split into one block per file).  A case lists the exact problems it must
produce: (file, line or None, field path or None, substrings of the message).  The stderr
of a bad scenario must hold exactly those lines, each once, plus the closing
``lepsim: N problem(s) found; nothing was run or written`` line.  Cases marked xfail are
validated one by one so that a crash cannot spoil the batch.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))

POOL = "    - {count: 1, gpu_type: V100, gpus_per_node: 4, cpus: 32, memory: 256GiB}"


def lepsim_cli(args: list[str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = dict(os.environ, COLUMNS="200", PYTHONWARNINGS="ignore")
    return subprocess.run([sys.executable, "-m", "lepsim", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=env)


def listing(folder: Path) -> set[str]:
    """Every path under ``folder`` (hidden ones included), relative."""
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@dataclass
class Case:
    id: str
    files: dict[str, str]          # name -> text, written into the run folder
    target: str                    # the scenario file passed to the CLI
    expected: list[tuple]          # (file, line | None, path | None, [substrings of the message])
    marks: list = field(default_factory=list)


def lines(*rows: str) -> str:
    return "\n".join(rows) + "\n"


CASES = [
    Case("missing_file", {}, "missing.yaml",
         [("missing.yaml", None, None, ["no such file", "expected a scenario YAML file"])]),
    Case("empty_file", {"empty.yaml": ""}, "empty.yaml",
         [("empty.yaml", 1, None, ["empty", "expected a mapping"])]),
    Case("only_comments", {"comments.yaml": lines("# nothing here", "", "# still nothing")}, "comments.yaml",
         [("comments.yaml", 1, None, ["empty", "expected a mapping"])]),
    Case("yaml_syntax_error", {"syntax.yaml": lines(
        "name: syntax",            # 1
        "cluster:",                # 2
        "  pools:",                # 3
        POOL,                      # 4
        "workload:",               # 5
        "  jobs: a: b",            # 6  <- mapping values are not allowed here
        "scheduler: {policy: fifo}",
    )}, "syntax.yaml", [("syntax.yaml", 6, None, ["YAML syntax error", "mapping values are not allowed"])]),
    Case("yaml_tab", {"tab.yaml": lines(
        "name: tab",               # 1
        "cluster:",                # 2
        "\tpools: []",             # 3  <- a tab cannot start a token
    )}, "tab.yaml", [("tab.yaml", 3, None, ["YAML syntax error"])]),
    Case("top_level_list", {"list.yaml": lines("- cluster", "- workload")}, "list.yaml",
         [("list.yaml", 1, None, ["found a list", "expected a mapping with cluster, workload and scheduler"])]),
    Case("cluster_is_number", {"shape.yaml": lines(
        "name: shape",                       # 1
        "cluster: 5",                        # 2
        "workload:",                         # 3
        "  jobs: [{gpus: 1, duration: 1h}]",  # 4
        "scheduler: {policy: fifo}",         # 5
    )}, "shape.yaml", [("shape.yaml", 2, "cluster", ["found 5", "expected"])]),
    Case("pools_is_mapping", {"pools.yaml": lines(
        "name: pools",                                                       # 1
        "cluster:",                                                          # 2
        "  pools:",                                                          # 3
        "    a100: {count: 1, template: dgx-a100}",                          # 4
        "workload:",                                                         # 5
        "  jobs: [{gpus: 1, duration: 1h}]",                                 # 6
        "scheduler: {policy: fifo}",                                         # 7
    )}, "pools.yaml", [("pools.yaml", 3, "cluster.pools", ["found a mapping", "expected"])]),
    Case("missing_section", {"nosched.yaml": lines(
        "cluster:",                          # 1
        "  pools:",                          # 2
        POOL,                                # 3
        "workload:",                         # 4
        "  jobs: [{gpus: 1, duration: 1h}]",  # 5
    )}, "nosched.yaml", [("nosched.yaml", 1, "scheduler", ["missing", "'scheduler'"])]),
    Case("negative_count", {"neg.yaml": lines(
        "name: neg",               # 1
        "cluster:",                # 2
        "  pools:",                # 3
        "    - count: -2",         # 4
        "      gpu_type: V100",    # 5
        "      gpus_per_node: 4",  # 6
        "      cpus: 32",          # 7
        "      memory: 256GiB",    # 8
        POOL,                      # 9
        "workload:",               # 10
        "  jobs:",                 # 11
        "    - {gpus: 1, duration: 1h}",  # 12
        "scheduler:",              # 13
        "  policy: fifo",          # 14
    )}, "neg.yaml", [("neg.yaml", 4, "cluster.pools[0].count", ["found -2", "greater than or equal to 1"])]),
    Case("negative_job_gpus", {"neggpus.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        POOL,                      # 3
        "workload:",               # 4
        "  jobs:",                 # 5
        "    - {gpus: 1, duration: 1h}",   # 6
        "    - {gpus: -3, duration: 1h}",  # 7
        "scheduler: {policy: fifo}",
    )}, "neggpus.yaml", [("neggpus.yaml", 7, "workload.jobs[1].gpus", ["found -3", "greater than or equal to 0"])]),
    Case("unknown_gpu_type_in_pool", {"gpu.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        "    - {count: 1, gpu_type: Z100, gpus_per_node: 4, cpus: 32, memory: 256GiB}",  # 3
        "workload:",               # 4
        "  jobs: [{gpus: 1, duration: 1h}]",  # 5
        "scheduler: {policy: fifo}",          # 6
    )}, "gpu.yaml", [("gpu.yaml", 3, "cluster.pools[0].gpu_type", ["found 'Z100'", "expected a GPU type", "V100", "H100"])]),
    Case("unknown_gpu_type_in_job", {"jobgpu.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        POOL,                      # 3
        "workload:",               # 4
        "  jobs:",                 # 5
        "    - {gpus: 1, duration: 1h, gpu_type: Z100}",  # 6
        "scheduler: {policy: fifo}",                      # 7
    )}, "jobgpu.yaml", [("jobgpu.yaml", 6, "workload.jobs[0].gpu_type", ["found 'Z100'", "expected a GPU type", "V100"])]),
    Case("unknown_gpu_type_in_generator", {"gengpu.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        POOL,                      # 3
        "workload:",               # 4
        "  generators:",           # 5
        "    - kind: poisson",     # 6
        "      rate: 2/h",         # 7
        "      gpu_type: Z100",    # 8
        "      gpus: 1",           # 9
        "      duration: 1h",      # 10
        "scheduler: {policy: fifo}",    # 11
        "simulation: {horizon: 10h}",   # 12
    )}, "gengpu.yaml", [("gengpu.yaml", 8, "workload.generators[0].gpu_type", ["found 'Z100'", "expected a GPU type"])]),
    Case("unknown_node_template", {"tpl.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        "    - {count: 2, template: dgx-z9000}",  # 3
        "workload:",               # 4
        "  jobs: [{gpus: 1, duration: 1h}]",  # 5
        "scheduler: {policy: fifo}",          # 6
    )}, "tpl.yaml", [("tpl.yaml", 3, "cluster.pools[0].template", ["found 'dgx-z9000'", "expected a node template", "dgx-a100"])]),
    Case("unknown_policy", {"pol.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        POOL,                      # 3
        "workload:",               # 4
        "  jobs: [{gpus: 1, duration: 1h}]",  # 5
        "scheduler:",              # 6
        "  policy: roundrobin",    # 7
    )}, "pol.yaml", [("pol.yaml", 7, "scheduler.policy", ["found 'roundrobin'", "expected a policy", "fifo", "sjf", "las"])]),
    Case("las_negative_threshold", {"las.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        POOL,                      # 3
        "workload:",               # 4
        "  jobs: [{gpus: 1, duration: 1h}]",  # 5
        "scheduler:",              # 6
        "  policy: las",           # 7
        "  params: {thresholds: [-1]}",  # 8
    )}, "las.yaml", [("las.yaml", 8, "scheduler.params.thresholds", ["-1", "expected positive, increasing thresholds"])]),
    Case("las_bad_threshold_unit", {"lasunit.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        POOL,                      # 3
        "workload:",               # 4
        "  jobs: [{gpus: 1, duration: 1h}]",  # 5
        "scheduler:",              # 6
        "  policy: las",           # 7
        "  params:",               # 8
        "    thresholds: [1h, 3x]",  # 9
    )}, "lasunit.yaml", [("lasunit.yaml", 9, "scheduler.params.thresholds", ["'3x'", "expected a duration"])]),
    Case("unknown_policy_param", {"param.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        POOL,                      # 3
        "workload:",               # 4
        "  jobs: [{gpus: 1, duration: 1h}]",  # 5
        "scheduler:",              # 6
        "  policy: las",           # 7
        "  params:",               # 8
        "    thresholds: [1h]",    # 9
        "    quantum: 5",          # 10
    )}, "param.yaml", [("param.yaml", 10, "scheduler.params.quantum",
                        ["unknown key 'quantum'", "thresholds", "promote_knob", "placement"])]),
    Case("malformed_rate", {"rate.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        POOL,                      # 3
        "workload:",               # 4
        "  generators:",           # 5
        "    - kind: poisson",     # 6
        "      rate: 20/x",        # 7
        "      duration: 1h",      # 8
        "scheduler: {policy: fifo}",   # 9
        "simulation: {horizon: 10h}",  # 10
    )}, "rate.yaml", [("rate.yaml", 7, "workload.generators[0].rate", ["found '20/x'", "unknown time unit 'x'", "expected a rate"])]),
    Case("malformed_duration", {"dur.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        POOL,                      # 3
        "workload:",               # 4
        "  jobs:",                 # 5
        "    - {gpus: 1, duration: 2q}",  # 6
        "scheduler: {policy: fifo}",      # 7
    )}, "dur.yaml", [("dur.yaml", 6, "workload.jobs[0].duration", ["found '2q'", "unknown time unit 'q'", "expected a duration"])]),
    Case("malformed_memory", {"mem.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        "    - count: 1",          # 3
        "      gpu_type: V100",    # 4
        "      gpus_per_node: 4",  # 5
        "      cpus: 32",          # 6
        "      memory: 80GX",      # 7
        POOL,                      # 8
        "workload:",               # 9
        "  jobs: [{gpus: 1, duration: 1h}]",  # 10
        "scheduler: {policy: fifo}",          # 11
    )}, "mem.yaml", [("mem.yaml", 7, "cluster.pools[0].memory", ["found '80GX'", "expected a size"])]),
    Case("memory_lowercase_binary_prefix", {"kib.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        "    - count: 1",          # 3
        "      gpu_type: V100",    # 4
        "      gpus_per_node: 4",  # 5
        "      cpus: 32",          # 6
        "      memory: 256kiB",    # 7
        POOL,                      # 8
        "workload:",               # 9
        "  jobs: [{gpus: 1, duration: 1h}]",  # 10
        "scheduler: {policy: fifo}",          # 11
    )}, "kib.yaml", [("kib.yaml", 7, "cluster.pools[0].memory", ["found '256kiB'", "expected a size"])]),
    Case("unknown_top_level_key", {"key.yaml": lines(
        "name: key",               # 1
        "cluster:",                # 2
        "  pools:",                # 3
        POOL,                      # 4
        "workload:",               # 5
        "  jobs: [{gpus: 1, duration: 1h}]",  # 6
        "scheduler: {policy: fifo}",          # 7
        "simulaton: {seed: 3}",               # 8
    )}, "key.yaml", [("key.yaml", 8, "simulaton",
                      ["unknown key 'simulaton'", "expected one of", "cluster", "workload", "scheduler", "simulation"])]),
    Case("job_never_fits", {"fit.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        POOL,                      # 3
        "workload:",               # 4
        "  jobs:",                 # 5
        "    - {gpus: 1, duration: 1h}",   # 6
        "    - {gpus: 16, duration: 1h}",  # 7
        "scheduler: {policy: fifo}",       # 8
    )}, "fit.yaml", [("fit.yaml", 7, "workload.jobs[1].gpus", ["16 GPUs", "at most 4"])]),
    Case("generator_never_fits", {"genfit.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        POOL,                      # 3
        "workload:",               # 4
        "  generators:",           # 5
        "    - kind: poisson",     # 6
        "      rate: 2/h",         # 7
        "      gpus: {dist: choice, values: [1, 64]}",  # 8
        "      duration: 1h",      # 9
        "scheduler: {policy: fifo}",    # 10
        "simulation: {horizon: 10h}",   # 11
    )}, "genfit.yaml", [("genfit.yaml", 8, "workload.generators[0].gpus", ["64 GPUs", "at most 4"])]),
    Case("trace_bad_rows", {
        "trace.yaml": lines(
            "cluster:",                # 1
            "  pools:",                # 2
            POOL,                      # 3
            "workload:",               # 4
            "  traces:",               # 5
            "    - path: rows.csv",    # 6
            "scheduler: {policy: fifo}",
        ),
        "rows.csv": lines(
            "submit_time,gpus,duration",  # 1
            "0,1,1h",                     # 2
            "60,two,1h",                  # 3
            "120,1,30min",                # 4
            "180,1,-5",                   # 5
            "-1,1,1h",                    # 6
        ),
    }, "trace.yaml", [
        ("rows.csv", 3, "gpus", ["found 'two'", "expected an integer >= 0"]),
        ("rows.csv", 5, "duration", ["found '-5'", "expected a duration > 0"]),
        ("rows.csv", 6, "submit_time", ["found '-1'", "expected a time >= 0"]),
    ]),
    Case("trace_row_never_fits", {
        "tfit.yaml": lines(
            "cluster:",                # 1
            "  pools:",                # 2
            POOL,                      # 3
            "workload:",               # 4
            "  traces:",               # 5
            "    - path: fitrows.csv",  # 6
            "scheduler: {policy: fifo}",
        ),
        "fitrows.csv": lines(
            "submit_time,gpus,duration",  # 1
            "0,1,1h",                     # 2
            "60,32,1h",                   # 3
        ),
    }, "tfit.yaml", [("fitrows.csv", 3, "gpus", ["32 GPUs", "at most 4"])]),
    Case("trace_header", {
        "thead.yaml": lines(
            "cluster:", "  pools:", POOL, "workload:", "  traces:", "    - path: head.csv",
            "scheduler: {policy: fifo}",
        ),
        "head.csv": lines("when,size", "0,1"),
    }, "thead.yaml", [("head.csv", 1, None, ["header lacks", "submit_time", "gpus", "duration or iterations"])]),
    Case("trace_missing", {
        "tmiss.yaml": lines(
            "cluster:", "  pools:", POOL, "workload:", "  traces:", "    - path: nowhere.csv",
            "scheduler: {policy: fifo}",
        ),
    }, "tmiss.yaml", [("tmiss.yaml", 6, "workload.traces[0].path", ["found 'nowhere.csv'", "expected a CSV trace"])]),
    # several problems found by the schema at once
    Case("several_schema_problems", {"multi.yaml": lines(
        "name: multi",             # 1
        "cluster:",                # 2
        "  pools:",                # 3
        "    - count: -1",         # 4
        "      gpu_type: V100",    # 5
        "      gpus_per_node: 4",  # 6
        "      cpus: 32",          # 7
        "      memory: 80GX",      # 8
        POOL,                      # 9
        "workload:",               # 10
        "  jobs:",                 # 11
        "    - gpus: 2",           # 12
        "      duration: 2q",      # 13
        "  generators:",           # 14
        "    - kind: poisson",     # 15
        "      rate: 20/x",        # 16
        "      duration: 1h",      # 17
        "  bogus: 1",              # 18
        "scheduler:",              # 19
        "  policy: fifo",          # 20
        "simulation:",             # 21
        "  horizon: 10h",          # 22
        "  warmup: 6h",            # 23
        "  cooldown: 5h",          # 24
    )}, "multi.yaml", [
        ("multi.yaml", 4, "cluster.pools[0].count", ["found -1"]),
        ("multi.yaml", 8, "cluster.pools[0].memory", ["found '80GX'"]),
        ("multi.yaml", 13, "workload.jobs[0].duration", ["found '2q'"]),
        ("multi.yaml", 16, "workload.generators[0].rate", ["found '20/x'"]),
        ("multi.yaml", 18, "workload.bogus", ["unknown key 'bogus'", "defaults, jobs, generators, traces"]),
        ("multi.yaml", 21, "simulation", ["warmup + cooldown >= horizon"]),
    ]),
    # several problems found by the catalog, registry and trace checks at once
    Case("several_check_problems", {
        "checks.yaml": lines(
            "name: checks",            # 1
            "cluster:",                # 2
            "  pools:",                # 3
            POOL,                      # 4
            "workload:",               # 5
            "  jobs:",                 # 6
            "    - {gpus: 1, duration: 1h, gpu_type: Z100}",  # 7
            "    - {gpus: 9, duration: 1h}",                   # 8
            "  traces:",               # 9
            "    - path: crows.csv",   # 10
            "scheduler:",              # 11
            "  policy: roundrobin",    # 12
        ),
        "crows.csv": lines("submit_time,gpus,duration", "0,1,1h", "10,x,1h", "20,1,zzz"),
    }, "checks.yaml", [
        ("checks.yaml", 7, "workload.jobs[0].gpu_type", ["found 'Z100'"]),
        ("checks.yaml", 8, "workload.jobs[1].gpus", ["9 GPUs", "at most 4"]),
        ("crows.csv", 3, "gpus", ["found 'x'"]),
        ("crows.csv", 4, "duration", ["found 'zzz'"]),
        ("checks.yaml", 12, "scheduler.policy", ["found 'roundrobin'"]),
    ]),
    # schema problems and name problems (policy, GPU types, templates) in one file: all reported
    Case("schema_and_check_problems_together", {"both.yaml": lines(
        "cluster:",                # 1
        "  pools:",                # 2
        "    - {count: 0, gpu_type: Z100, gpus_per_node: 4, cpus: 32, memory: 256GiB}",  # 3
        "    - {count: 1, template: dgx-z9000}",                                          # 4
        "workload:",               # 5
        "  jobs:",                 # 6
        "    - {gpus: -1, duration: 1h}",                 # 7
        "    - {gpus: 1, duration: 1h, gpu_type: Q1}",     # 8
        "scheduler:",              # 9
        "  policy: roundrobin",    # 10
    )}, "both.yaml", [
        ("both.yaml", 3, "cluster.pools[0].count", ["found 0"]),
        ("both.yaml", 3, "cluster.pools[0].gpu_type", ["found 'Z100'", "expected a GPU type"]),
        ("both.yaml", 4, "cluster.pools[1].template", ["found 'dgx-z9000'", "expected a node template"]),
        ("both.yaml", 7, "workload.jobs[0].gpus", ["found -1"]),
        ("both.yaml", 8, "workload.jobs[1].gpu_type", ["found 'Q1'"]),
        ("both.yaml", 10, "scheduler.policy", ["found 'roundrobin'", "expected a policy"]),
    ]),
    # bad trace rows and a trace row that can never fit, in one trace: all must be reported
    Case("trace_bad_and_unfit_rows_together", {
        "tboth.yaml": lines(
            "cluster:", "  pools:", POOL, "workload:", "  traces:", "    - path: bothrows.csv",
            "scheduler: {policy: fifo}",
        ),
        "bothrows.csv": lines("submit_time,gpus,duration", "0,x,1h", "10,32,1h"),
    }, "tboth.yaml", [
        ("bothrows.csv", 2, "gpus", ["found 'x'"]),
        ("bothrows.csv", 3, "gpus", ["32 GPUs"]),
    ]),
    # link outages: a cable the network does not have (the message lists the cables), and
    # outages without a network section
    Case("link_outage_unknown_cable", {"lcable.yaml": lines(
        "cluster:",                                    # 1
        "  pools: [{template: dgx1-v100, count: 4}]",  # 2
        "  network: {nodes_per_rack: 2}",              # 3
        "workload: {jobs: [{gpus: 8, duration: 1h}]}",  # 4
        "scheduler: {policy: fifo}",                   # 5
        "failures:",                                   # 6
        "  link_outages:",                             # 7
        "    - {link: [spine, tor:1], at: 1h, duration: 10min}",  # 8
        "    - {link: [tor:0, tor:1], at: 1h, until: 2h}",        # 9
        "    - {link: [node:0, gpus:0], at: 1h, until: 2h}",      # 10
    )}, "lcable.yaml", [
        ("lcable.yaml", 9, "failures.link_outages[1].link",
         ["found [tor:0, tor:1]", "expected a cable of the network", "4 nic ([node:0, tor:0], [node:1, tor:0], ...)",
          "2 uplink ([tor:0, spine], [tor:1, spine])", "1 storage ([spine, storage])"]),
        ("lcable.yaml", 10, "failures.link_outages[2].link", ["found [node:0, gpus:0]", "expected a cable"]),
    ]),
    Case("link_outage_without_network", {"lnonet.yaml": lines(
        "cluster: {pools: [{template: dgx1-v100, count: 2}]}",  # 1
        "workload: {jobs: [{gpus: 8, duration: 1h}]}",           # 2
        "scheduler: {policy: fifo}",                            # 3
        "failures:",                                            # 4
        "  link_outages:",                                      # 5
        "    - {link: [tor:0, spine], at: 1h, duration: 10min}",  # 6
    )}, "lnonet.yaml", [
        ("lnonet.yaml", 5, "failures.link_outages", ["without cluster.network", "expected a network section"]),
    ]),
    Case("link_outage_schema", {"lschema.yaml": lines(
        "cluster: {pools: [{template: dgx1-v100, count: 2}], network: {}}",  # 1
        "workload: {jobs: [{gpus: 8, duration: 1h}]}",                       # 2
        "scheduler: {policy: fifo}",                                        # 3
        "failures:",                                                        # 4
        "  link_outages:",                                                  # 5
        "    - {link: [tor:0, spine], at: 1h, duration: 10min, until: 2h}",  # 6
        "    - {link: [tor:0, spine], at: 1h, until: 30min}",                # 7
        "    - {link: [tor:0, spine], at: 1h}",                              # 8
    )}, "lschema.yaml", [
        ("lschema.yaml", 6, "failures.link_outages[0]", ["both duration and until", "expected exactly one"]),
        ("lschema.yaml", 7, "failures.link_outages[1]", ["until 1800 s <= at 3600 s"]),
        ("lschema.yaml", 8, "failures.link_outages[2]", ["neither duration nor until"]),
    ]),
]

SUMMARY_RE = re.compile(r"^lepsim: (\d+) problems? found; nothing was run or written$")
LINE_RE = re.compile(r"^[^\s:]+(:\d+)?: \S")


def prefix(file: str, line: int | None, path: str | None) -> str:
    where = f"{file}:{line}" if line is not None else file
    return f"{where}: {path}: " if path else f"{where}: "


def check_problems(proc: subprocess.CompletedProcess, case: Case) -> None:
    out = proc.stdout + proc.stderr
    assert "Traceback" not in out, out
    assert proc.returncode == 2, out
    err = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert err, "nothing on stderr"
    m = SUMMARY_RE.match(err[-1])
    assert m, f"last stderr line is not the summary: {err[-1]!r}"
    assert int(m.group(1)) == len(case.expected), proc.stderr
    problems = err[:-1]
    assert len(problems) == len(case.expected), "\n".join(problems)
    for ln in problems:
        assert LINE_RE.match(ln), f"not FILE[:LINE]: ...: {ln!r}"
    pool = list(problems)
    for file, line, path, parts in case.expected:
        pre = prefix(file, line, path)
        hits = [ln for ln in pool if ln.startswith(pre) and all(p in ln[len(pre):] for p in parts)]
        assert len(hits) == 1, f"expected one line starting {pre!r} containing {parts}; got:\n" + "\n".join(problems)
        pool.remove(hits[0])
    assert not pool


def materialize(case: Case, folder: Path) -> None:
    for name, text in case.files.items():
        (folder / name).write_text(text, encoding="utf-8")


PARAMS = [pytest.param(c, id=c.id, marks=c.marks) for c in CASES]
# cases expected to crash today are validated one by one, so that they cannot spoil the batch
BATCHED = [c for c in CASES if not c.marks]


def test_case_files_are_distinct() -> None:
    """The batched validate below puts every case's files in one folder."""
    names = [n for c in CASES for n in c.files]
    assert len(names) == len(set(names))
    assert len({c.id for c in CASES}) == len(CASES)


# `lepsim run` on every case costs a subprocess each; a representative few run in the quick
# tier, the rest are marked slow (they go through the same loader as `validate`)
RUN_QUICK = {"missing_file", "yaml_syntax_error", "unknown_gpu_type_in_job", "las_negative_threshold",
             "malformed_duration", "trace_bad_rows", "several_schema_problems", "several_check_problems",
             "schema_and_check_problems_together"}
RUN_QUICK |= {c.id for c in CASES if c.marks}
RUN_PARAMS = [pytest.param(c, id=c.id, marks=c.marks + ([] if c.id in RUN_QUICK else [pytest.mark.slow]))
              for c in CASES]


def _run_cases(base: Path, cases: list[Case]) -> dict:
    """``lepsim run CASE --no-progress`` for each case in its own folder, a few at a time."""
    def one(c: Case):
        d = base / c.id
        d.mkdir()
        materialize(c, d)
        before = listing(d)
        proc = lepsim_cli(["run", c.target, "--no-progress"], d)
        return c.id, (proc, before, listing(d), (d / "runs").exists())

    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        return dict(pool.map(one, cases))


@pytest.fixture(scope="module")
def run_results_quick(tmp_path_factory) -> dict:
    return _run_cases(tmp_path_factory.mktemp("run_quick"), [c for c in CASES if c.id in RUN_QUICK])


@pytest.fixture(scope="module")
def run_results_slow(tmp_path_factory) -> dict:
    return _run_cases(tmp_path_factory.mktemp("run_slow"), [c for c in CASES if c.id not in RUN_QUICK])


@pytest.fixture(scope="module")
def validate_results(tmp_path_factory) -> dict:
    """One ``lepsim validate A B C ...`` over every batched case: a block of stderr per file."""
    d = tmp_path_factory.mktemp("validate_cases")
    for c in BATCHED:
        materialize(c, d)
    before = listing(d)
    proc = lepsim_cli(["validate", *(c.target for c in BATCHED)], d)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert listing(d) == before
    blocks, cur = [], []
    for ln in proc.stderr.splitlines():
        cur.append(ln)
        if SUMMARY_RE.match(ln):
            blocks.append(cur)
            cur = []
    assert not cur, cur
    assert len(blocks) == len(BATCHED), proc.stderr
    return {c.id: subprocess.CompletedProcess(proc.args, 2, "", "\n".join(b) + "\n") for c, b in zip(BATCHED, blocks)}


@pytest.mark.parametrize("case", PARAMS)
def test_validate_reports_every_problem(case: Case, validate_results: dict, tmp_path: Path) -> None:
    if case.id in validate_results:
        check_problems(validate_results[case.id], case)
        return
    materialize(case, tmp_path)
    before = listing(tmp_path)
    proc = lepsim_cli(["validate", case.target], tmp_path)
    check_problems(proc, case)
    assert proc.stdout == ""
    assert listing(tmp_path) == before


@pytest.mark.parametrize("case", RUN_PARAMS)
def test_run_reports_every_problem_and_writes_nothing(case: Case, request) -> None:
    fixture = "run_results_quick" if case.id in RUN_QUICK else "run_results_slow"
    proc, before, after, runs_exists = request.getfixturevalue(fixture)[case.id]
    check_problems(proc, case)
    assert proc.stdout == ""
    assert not runs_exists
    assert after == before   # no run folder, no temporary folder, nothing


@pytest.mark.parametrize("case_id", ["unknown_policy", "trace_bad_rows", "several_schema_problems"])
def test_run_with_out_writes_nothing(case_id: str, tmp_path: Path) -> None:
    case = next(c for c in CASES if c.id == case_id)
    materialize(case, tmp_path)
    before = listing(tmp_path)
    proc = lepsim_cli(["run", case.target, "--no-progress", "--out", "out/run1"], tmp_path)
    check_problems(proc, case)
    assert not (tmp_path / "out").exists()
    assert listing(tmp_path) == before


def test_run_bad_overrides_write_nothing(tmp_path: Path) -> None:
    """--policy/--param problems are reported like scenario problems (no line: they come from flags)."""
    case = Case("override", {"ok.yaml": lines(
        "cluster:", "  pools:", POOL, "workload:", "  jobs: [{gpus: 1, duration: 1h}]", "scheduler: {policy: fifo}",
    )}, "ok.yaml", [])
    materialize(case, tmp_path)
    before = listing(tmp_path)
    for args, expected in [
        (["--policy", "nope"], [("ok.yaml", None, "scheduler.policy", ["found 'nope'", "fifo"])]),
        (["--policy", "las", "--param", "thresholds=[-1h]"], [("ok.yaml", None, "scheduler.params.thresholds", ["-1h"])]),
        (["--param", "foo=1"], [("ok.yaml", None, "scheduler.params.foo", ["unknown key 'foo'", "skip_blocked"])]),
    ]:
        proc = lepsim_cli(["run", "ok.yaml", "--no-progress", "--out", "o", *args], tmp_path)
        check_problems(proc, Case("override", {}, "ok.yaml", expected))
    proc = lepsim_cli(["run", "ok.yaml", "--no-progress", "--param", "thresholds"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == ["lepsim: --param 'thresholds': expected KEY=VALUE"]
    assert listing(tmp_path) == before


def test_validate_several_files_reports_each(tmp_path: Path) -> None:
    """One bad file among good ones: the good ones say ok, the bad one's problems are listed, exit 2."""
    by_id = {c.id: c for c in CASES}
    for cid in ("unknown_policy", "malformed_rate"):
        materialize(by_id[cid], tmp_path)
    good = SCENARIOS[0]
    proc = lepsim_cli(["validate", str(good), "pol.yaml", "rate.yaml"], tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stdout.splitlines() == [f"{good}: ok (" + proc.stdout.split(": ok (", 1)[1].splitlines()[0]]
    err = proc.stderr.splitlines()
    assert err[0].startswith("pol.yaml:7: scheduler.policy: found 'roundrobin'")
    assert SUMMARY_RE.match(err[1])
    assert err[2].startswith("rate.yaml:7: workload.generators[0].rate: found '20/x'")
    assert SUMMARY_RE.match(err[3]) and len(err) == 4


def test_validate_bundled_scenarios_ok(tmp_path: Path) -> None:
    assert len(SCENARIOS) >= 3
    proc = lepsim_cli(["validate", *map(str, SCENARIOS)], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout.splitlines()
    assert len(out) == len(SCENARIOS)
    for f, ln in zip(SCENARIOS, out):
        assert ln.startswith(f"{f}: ok (")
    assert listing(tmp_path) == set()


def test_validate_reads_file_relative_to_cwd(tmp_path: Path) -> None:
    """A relative path resolves against the working directory; traces against the scenario's folder."""
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "s.yaml").write_text(lines(
        "cluster:", "  pools:", POOL, "workload:", "  traces:", "    - path: t.csv", "scheduler: {policy: fifo}",
    ))
    (sub / "t.csv").write_text(lines("submit_time,gpus,duration", "0,1,1h"))
    proc = lepsim_cli(["validate", "sub/s.yaml"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "sub/s.yaml: ok (fifo, 1 node pool(s))"
