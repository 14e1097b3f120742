"""scenarios/hetero.yaml and what it needs: log-uniform durations, jobs sized on a reference GPU,
and the direction heterogeneity-aware policies should take there."""
from __future__ import annotations

import numpy as np
import pytest

import lepsim
from lepsim.errors import ScenarioError
from lepsim.workload.distributions import sample, support_max, support_min
from tests.conftest import ROOT, scenario


def test_loguniform_is_uniform_in_log_space():
    from pydantic import TypeAdapter

    from lepsim.scenario.spec import DurationDist

    spec = TypeAdapter(DurationDist).validate_python({"dist": "loguniform", "low": "1min", "high": "100min"})
    x = sample(spec, np.random.default_rng(1), 40_000)
    assert x.min() >= 60 and x.max() <= 6000
    # log10(x / 60) ~ U(0, 2): mean 1, P(x < 10 min) = 1/2
    assert np.log10(x / 60).mean() == pytest.approx(1.0, abs=0.02)
    assert (x < 600).mean() == pytest.approx(0.5, abs=0.01)
    assert (support_min(spec), support_max(spec)) == (60.0, 6000.0)


def _sized(gen_extra):
    gen = {"kind": "poisson", "rate": "10/h", "count": 3, "gpus": 2, "model": "resnet50", "batch_size": 32,
           "duration": "1h", **gen_extra}
    return scenario({
        "cluster": {"pools": [{"count": 1, "gpu_type": "V100", "gpus_per_node": 4, "cpus": 32, "memory": "64GiB"},
                              {"count": 1, "gpu_type": "K80", "gpus_per_node": 4, "cpus": 32, "memory": "64GiB"}]},
        "workload": {"generators": [gen]},
        "scheduler": {"policy": "fifo"},
    })


def test_reference_gpu_turns_the_duration_into_iterations_on_that_gpu():
    from lepsim.build import build_parts

    parts, problems = build_parts(_sized({"reference_gpu": "V100"}))
    assert not problems
    t = parts.cost_model.iteration_time("resnet50", "V100", (2,), 32)
    for j in parts.jobs:
        assert j.duration is None and j.iterations == round(3600 / t)
    # alone on a V100 node it runs (about) the hour it was given; on K80 what the profiles say
    r = lepsim.simulate(_sized({"reference_gpu": "V100"}))
    first = r.jobs.iloc[0]
    assert first["gpu_type"] == "V100" and first["isolated_runtime_s"] == pytest.approx(3600, rel=1e-3)


def test_reference_gpu_needs_a_duration_and_a_model_it_can_cost():
    with pytest.raises(Exception, match="reference_gpu"):
        _sized({"reference_gpu": "V100", "duration": None, "iterations": 100})
    with pytest.raises(ScenarioError, match=r"generators\[0\]\.reference_gpu: found 'B42'"):
        lepsim.simulate(_sized({"reference_gpu": "B42"}))
    # A3C was measured on one GPU only and has no gradient size to model two
    with pytest.raises(ScenarioError, match="reference_gpu: cannot size model 'A3C' on V100"):
        lepsim.simulate(_sized({"reference_gpu": "V100", "model": "A3C", "batch_size": None}))


@pytest.mark.slow
def test_heterogeneity_aware_policies_beat_agnostic_ones_on_hetero_yaml():
    # The direction, with the scenario and the policies as they are (no parameter set for it).
    path = ROOT / "scenarios" / "hetero.yaml"
    s = {p: lepsim.simulate(path, policy=p).summary for p in ("fifo", "las", "gavel", "gavel-throughput")}
    for aware in ("gavel", "gavel-throughput"):
        better_jct = s[aware]["jct_mean_s"] < min(s["fifo"]["jct_mean_s"], s["las"]["jct_mean_s"])
        better_makespan = s[aware]["makespan_s"] < min(s["fifo"]["makespan_s"], s["las"]["makespan_s"])
        assert better_jct or better_makespan, (aware, s[aware], s["fifo"], s["las"])
