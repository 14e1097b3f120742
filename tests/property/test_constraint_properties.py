"""Properties of runs with fractional GPUs, isolated tenants, every placement strategy and
the static policies (hypothesis): every job completes, and the conftest invariants hold
(per-GPU shares <= 1, tenant isolation, GPU-seconds conserved)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lepsim.policies.placement import STRATEGIES
from lepsim.scenario.spec import Scenario
from tests.property.strategies import clusters, jobs_for
from tests.property.test_engine_properties import SETTINGS, simulate


@st.composite
def constrained_cases(draw):
    pools = draw(clusters())
    jobs = draw(jobs_for(pools))
    for j in jobs:
        if j["gpus"] == 1 and draw(st.booleans()):
            j["gpu_fraction"] = draw(st.sampled_from([0.1, 0.25, 0.3, 0.5, 0.75]))
    isolated = draw(st.sets(st.sampled_from(["alice", "bob", "carol"]), max_size=2))
    policy = draw(st.sampled_from(["fifo", "sjf", "easy", "quota", "las"]))
    params = {"placement": draw(st.sampled_from(STRATEGIES)),
              "consolidate": draw(st.sampled_from(["prefer", "require", "none"]))}
    if policy in ("fifo", "sjf", "quota"):
        params["skip_blocked"] = draw(st.booleans())
    if policy == "quota":  # a quota no job exceeds alone: every job can start once the cluster drains
        params["default"] = "100%"
        params["quotas"] = {"alice": draw(st.sampled_from([8, 16, "100%"]))}
    preemption = {"checkpoint": draw(st.sampled_from([0, 1])), "restore": draw(st.sampled_from([0, 2]))}
    return pools, jobs, isolated, policy, params, preemption


@settings(max_examples=60, **SETTINGS)
@given(constrained_cases())
def test_constrained_runs_complete_every_job(case):
    pools, jobs, isolated, policy, params, preemption = case
    sc = Scenario.model_validate({
        "cluster": {"pools": pools},
        "workload": {"jobs": jobs, "tenants": {t: {"isolated": True} for t in isolated}},
        "scheduler": {"policy": policy, "params": params, "preemption": preemption},
    })
    r = simulate(sc)  # the conftest wrapper checks the invariants
    assert r.summary["jobs_completed"] == len(jobs)
    # a fractional job's phases hold exactly its share of one GPU
    frac = {row.job_id: row.name for row in r.jobs.itertuples()}
    wanted = {j["name"]: j.get("gpu_fraction", 1.0) * j["gpus"] for j in jobs}
    for jid, n in zip(r.intervals["job_id"], r.intervals["gpus"]):
        assert abs(n - wanted[frac[jid]]) < 1e-12
    rate = r.summary["fragmentation_rate"]
    assert rate != rate or -1e-9 <= rate <= 1 + 1e-9  # NaN when no GPU was ever idle
