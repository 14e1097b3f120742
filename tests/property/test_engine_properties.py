"""Properties of every run on random small clusters and workloads (hypothesis).

The conftest fixture already checks the engine's invariants after each simulate() (no GPU
held twice, every job once, GPU-seconds conserved); these tests add what must hold for
any policy setting, and what is exactly true of particular policies.
"""
from __future__ import annotations

import contextlib
import signal
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import lepsim
from lepsim.scenario.spec import Scenario
from tests.property.strategies import clusters, jobs_for, layout, placement_params, policies

# derandomize: the suite gives the same examples on every run (explore more with
# `--hypothesis-seed=N` and derandomize off, or a larger max_examples)
SETTINGS = dict(deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@contextlib.contextmanager
def time_limit(seconds: float):
    """Fail (instead of hanging the suite) when one simulation of a few jobs runs away."""
    if not hasattr(signal, "setitimer"):
        yield
        return

    def fail(*_):
        raise AssertionError(f"a simulation of at most 30 jobs ran longer than {seconds} s (livelock?)")

    old = signal.signal(signal.SIGALRM, fail)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def simulate(scenario: Scenario):
    with time_limit(20):
        return lepsim.simulate(scenario)


def make(pools, jobs, policy, params, preemption=None) -> Scenario:
    sched = {"policy": policy, "params": params}
    if preemption:
        sched["preemption"] = preemption
    return Scenario.model_validate({"cluster": {"pools": pools}, "workload": {"jobs": jobs}, "scheduler": sched})


@st.composite
def cases(draw):
    pools = draw(clusters())
    jobs = draw(jobs_for(pools))
    return pools, jobs, draw(policies())


def _check_resources(res, nodes, jobs_by_id):
    """No node's CPUs or memory are over-committed at any time (not covered by check_invariants)."""
    per_node = defaultdict(list)
    for jid, start, end, node_str in zip(res.intervals["job_id"], res.intervals["start_s"], res.intervals["end_s"],
                                         res.intervals["nodes"].astype(str)):
        j = jobs_by_id[jid]
        for part in node_str.split(","):
            ni, k = (int(x) for x in part.split(":"))
            share = (k / j["gpus"]) if j["gpus"] else 1.0
            per_node[ni].append((start, end, j["cpus"] * share, j["memory"] * share))
    for ni, ivs in per_node.items():
        # sweep: releases before acquisitions at the same instant
        ev = sorted([(s, 1, c, m) for s, e, c, m in ivs] + [(e, 0, -c, -m) for s, e, c, m in ivs])
        cpu = mem = 0.0
        for _, _, c, m in ev:
            cpu += c
            mem += m
            assert cpu <= nodes[ni].cpus + 1e-6, f"node {ni}: {cpu} CPUs in use of {nodes[ni].cpus}"
            assert mem <= nodes[ni].memory * (1 + 1e-9) + 1e-3, f"node {ni}: memory over-committed"


@settings(max_examples=500, **SETTINGS)
@given(cases())
def test_any_policy_completes_every_job_with_exact_accounting(case):
    pools, jobs, (policy, params, preemption) = case
    res = simulate(make(pools, jobs, policy, params, preemption))
    nodes = layout(pools)
    df = res.jobs
    spec = {j["name"]: j for j in jobs}
    by_id = {jid: spec[name] for jid, name in zip(df["job_id"], df["name"])}

    # no horizon and every job fits: all complete, having done exactly their work
    assert (df["status"] == "completed").all(), df[df["status"] != "completed"]
    duration = df["name"].map(lambda n: spec[n]["duration"]).astype(float)
    np.testing.assert_allclose(df["executed_s"], duration, rtol=1e-6)
    assert (df["progress"] == 1.0).all()
    # ids follow submit order; nobody starts before it arrives, and it arrives at its submit
    # time (up to the clock's rounding: the engine schedules events by relative delays, see
    # the report; 1e-9 s is far above that and far below any duration drawn here)
    assert df["submit_time_s"].is_monotonic_increasing
    ev = res.events
    arrival = ev[ev["event"] == "arrive"].set_index("job_id")["time_s"].reindex(df["job_id"]).to_numpy()
    np.testing.assert_allclose(arrival, df["submit_time_s"], rtol=0, atol=1e-9)
    assert (df["first_start_s"].to_numpy() >= arrival).all()
    assert (df["first_start_s"] >= df["submit_time_s"] - 1e-9).all()
    np.testing.assert_allclose(df["queueing_delay_s"], df["first_start_s"] - df["submit_time_s"], rtol=0, atol=1e-12)

    iv = res.intervals.merge(df[["job_id", "submit_time_s", "gpus", "requested_gpu_type"]], on="job_id",
                             suffixes=("", "_job"))
    assert (iv["start_s"] >= iv["submit_time_s"] - 1e-9).all()
    # a gang: every interval holds exactly the job's GPUs, distinct, of one type, on nodes of that type
    for row in iv.itertuples():
        gids = [int(g) for g in str(row.gpu_ids).split()] if row.gpus_job else []
        assert len(gids) == len(set(gids)) == row.gpus == row.gpus_job
        types = set()
        for g in gids:
            node = next(n for n in nodes if n.first_gpu <= g < n.first_gpu + n.gpus)
            types.add(node.gpu_type)
        if gids:
            assert types == {row.gpu_type}
            if not pd.isna(row.requested_gpu_type):
                assert row.gpu_type == row.requested_gpu_type
            if params["consolidate"] == "require" and any(
                n.gpus >= row.gpus_job for n in nodes if n.gpu_type is not None
                and (by_id[row.job_id].get("gpu_type") in (None, n.gpu_type))
            ):
                assert "," not in str(row.nodes), f"job {row.job_id} spread under consolidate=require"

    # time accounting: submit -> end = queued + held (run, checkpoint, restore)
    iv["len"] = iv["end_s"] - iv["start_s"]
    held = iv.groupby("job_id")["len"].sum().reindex(df["job_id"], fill_value=0.0).to_numpy()
    np.testing.assert_allclose(df["jct_s"], df["wait_time_s"].to_numpy() + held, rtol=1e-9, atol=1e-9)
    run = iv[iv["phase"] == "run"].groupby("job_id")["len"].sum().reindex(df["job_id"], fill_value=0.0)
    np.testing.assert_allclose(run.to_numpy(), duration, rtol=1e-6)
    ckpt = iv[iv["phase"] == "checkpoint"].groupby("job_id")["len"].sum().reindex(df["job_id"], fill_value=0.0)
    np.testing.assert_allclose(ckpt.to_numpy(), preemption["checkpoint"] * df["preemptions"].to_numpy(), atol=1e-9)
    restores = iv[iv["phase"] == "restore"]
    n_restores = restores.groupby("job_id").size().reindex(df["job_id"], fill_value=0).to_numpy()
    if preemption["restore"] > 0:
        assert (n_restores == df["preemptions"].to_numpy()).all()
        assert (restores["len"] <= preemption["restore"] + 1e-9).all()
    else:
        assert (n_restores == 0).all()

    if policy in ("fifo", "sjf"):
        # non-preemptive: one run, [first start, end], of exactly the job's duration
        assert (df["preemptions"] == 0).all()
        assert len(iv) == len(df) and (iv["phase"] == "run").all()
        np.testing.assert_allclose(df["end_s"] - df["first_start_s"], duration, rtol=1e-9, atol=1e-9)
        # queued once, from its arrival to its start
        assert (df["wait_time_s"].to_numpy() == df["first_start_s"].to_numpy() - arrival).all()
        if not params["skip_blocked"]:
            _check_strict_order(df, arrival, policy)

    _check_resources(res, nodes, by_id)
    event(f"policy {policy}")
    event("some job preempted" if df["preemptions"].any() else "no preemption")
    event("some gang spread over nodes" if iv["nodes"].astype(str).str.contains(",").any() else "no spread")
    event("some job waited" if (df["wait_time_s"] > 0).any() else "nobody waited")
    s = res.summary
    tenant_sum = sum(v for k, v in s.items() if k.startswith("utilization_tenant["))
    assert tenant_sum == pytest.approx(s["utilization"], rel=1e-9, abs=1e-12)


def _check_strict_order(df, arrival, policy):
    """Strict FIFO/SJF: when a job starts, every job ahead of it in the policy's order that had
    already arrived has started too (at that instant or before)."""
    if policy == "fifo":
        key = list(zip(df["submit_time_s"], df["job_id"]))
    else:
        key = list(zip(df["isolated_runtime_s"], df["job_id"]))
    sub, start = arrival, df["first_start_s"].to_numpy()
    n = len(df)
    for j in range(n):
        for i in range(n):
            if key[i] < key[j] and sub[i] <= start[j]:
                assert start[i] <= start[j], (
                    f"{policy}: job {j} started at {start[j]} while job {i} (ahead, submitted {sub[i]}) "
                    f"waited until {start[i]}")
    if policy == "fifo":
        # hence first starts are non-decreasing in submit order
        assert np.all(np.diff(start) >= 0)


# ----------------------------------------------------------------------- work conservation
@st.composite
def single_gpu_workloads(draw):
    gpus = draw(st.integers(1, 8))
    pools = [{"count": 1, "gpu_type": "V100", "gpus_per_node": gpus, "cpus": 64, "memory": 64 * 2**30}]
    n = draw(st.integers(1, 30))
    jobs = [{"name": f"j{i}", "submit": draw(st.one_of(st.integers(0, 15).map(float), st.floats(0, 20))),
             "gpus": 1, "duration": draw(st.one_of(st.integers(1, 6).map(float), st.floats(0.01, 10)))}
            for i in range(n)]
    thresholds = sorted(draw(st.sets(st.sampled_from([0.5, 1, 2, 3, 5]), min_size=1, max_size=3)))
    return pools, jobs, thresholds


def _steps(tl):
    """The allocated-GPU step function as [(time, value)] with repeated values merged."""
    out = []
    for t, v in zip(tl["time_s"], tl["allocated_gpus"]):
        if out and out[-1][1] == v:
            continue
        out.append((float(t), int(v)))
    return out


@settings(max_examples=200, **SETTINGS)
@given(single_gpu_workloads())
def test_work_conserving_policies_never_idle_and_share_busy_periods(case):
    """1-GPU jobs on one node, free preemption: every policy is work-conserving (no GPU idle
    while a job waits).  On one GPU every such policy has the same busy periods, so the
    utilization timeline is identical for fifo, sjf (strict or not) and las."""
    pools, jobs, thresholds = case
    cap = pools[0]["gpus_per_node"]
    runs = {
        "fifo": ("fifo", {}),
        "fifo-skip": ("fifo", {"skip_blocked": True}),
        "sjf": ("sjf", {}),
        "sjf-skip": ("sjf", {"skip_blocked": True}),
        "las": ("las", {"thresholds": thresholds}),
    }
    steps = {}
    for label, (policy, params) in runs.items():
        res = simulate(make(pools, jobs, policy, params))
        tl = res.timeline
        waiting = tl["pending_jobs"] > 0
        assert (tl.loc[waiting, "allocated_gpus"] == cap).all(), f"{label}: a GPU idles while a job waits"
        steps[label] = _steps(tl)
    if cap == 1:
        ref = steps["fifo"]
        for label, st_ in steps.items():
            assert [v for _, v in st_] == [v for _, v in ref], label
            np.testing.assert_allclose([t for t, _ in st_], [t for t, _ in ref], rtol=1e-9, atol=1e-9,
                                       err_msg=label)


@st.composite
def elastic_priority_cases(draw):
    """Random jobs of two priority classes, some elastic (min_gpus..max_gpus around their
    gpus; half of those profiled resnet18 jobs that pollux grows), some 1-GPU ones on a
    share of a GPU, under pollux with random rounds, placement and preemption costs."""
    pools = draw(clusters())
    jobs = draw(jobs_for(pools, max_jobs=20))
    nodes = layout(pools)
    for j in jobs:
        j["priority"] = draw(st.sampled_from([0, 0, 5]))
        if j["gpus"] >= 1 and draw(st.booleans()):
            t = j.get("gpu_type")
            cap = sum(n.gpus for n in nodes if n.gpu_type is not None and (t is None or n.gpu_type == t))
            j["min_gpus"] = draw(st.integers(1, j["gpus"]))
            j["max_gpus"] = draw(st.integers(j["gpus"], max(j["gpus"], min(cap, 8))))
            if draw(st.booleans()):   # a profiled job: pollux grows it (resnet18 is costed on every type)
                j["model"] = "resnet18"
                j["iterations"] = int(j.pop("duration") * 50) + 1
        elif j["gpus"] == 1 and draw(st.booleans()):   # a share of one GPU (shared with other such jobs)
            j["gpu_fraction"] = draw(st.sampled_from([0.25, 0.5]))
    params = dict(draw(placement_params))
    params["round"] = draw(st.sampled_from([1, 5, 30]))
    preemption = {"checkpoint": draw(st.sampled_from([0, 0.5, 2])), "restore": draw(st.sampled_from([0, 1]))}
    return pools, jobs, params, preemption


@settings(max_examples=150, **SETTINGS)
@given(elastic_priority_cases())
def test_pollux_with_priorities_and_elastic_jobs_completes_every_job(case):
    """Shrinking, preemption for a higher class and holding a node for a waiting job never
    lose a job, over-allocate (the conftest invariants), keep an elastic job outside its
    bounds, or livelock; a job of the top class present is never preempted."""
    pools, jobs, params, preemption = case
    res = simulate(make(pools, jobs, "pollux", params, preemption))
    df = res.jobs
    assert (df["status"] == "completed").all(), df[df["status"] != "completed"]
    assert (df["progress"] == 1.0).all()
    spec = {j["name"]: j for j in jobs}
    timed = df[df["name"].map(lambda n: "duration" in spec[n])]
    np.testing.assert_allclose(timed["executed_s"], timed["name"].map(lambda n: spec[n]["duration"]).astype(float),
                               rtol=1e-6)
    top = max(j["priority"] for j in jobs)
    pre = res.events[res.events["event"] == "preempt"]["job_id"]
    prio = dict(zip(df["job_id"], df["name"].map(lambda n: spec[n]["priority"])))
    assert all(prio[j] < top for j in pre)
    event("preempted for a higher class" if len(pre) else "no preemption")
    event("shrunk" if (res.events["event"] == "resize").any() else "no resize")
