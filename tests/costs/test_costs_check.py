"""Accuracy thresholds of `lepsim costs check`, and the CLI around it."""
from __future__ import annotations

import pytest

from lepsim.costs.check import TARGET_MEDIAN, TARGET_P90, run_checks


@pytest.fixture(scope="module")
def llm_results():
    return {r.name: r for r in run_checks(only=["llm-ops", "llm-forward"])}


@pytest.mark.parametrize("name", ["llm-forward A100-80GB->A40", "llm-forward A40->A100-80GB"])
def test_llm_forward_meets_targets(llm_results, name):
    r = llm_results[name]
    assert r.n > 2000
    assert r.median <= TARGET_MEDIAN, r.row()
    assert r.p90 <= TARGET_P90, r.row()
    assert r.passed


@pytest.mark.parametrize("name", ["llm-ops A100-80GB->A40", "llm-ops A40->A100-80GB"])
@pytest.mark.parametrize("op", ["attn_pre_proj", "attn_post_proj", "mlp_up_proj", "mlp_down_proj"])
def test_llm_gemm_operators_meet_targets(llm_results, name, op):
    med, p90, n = llm_results[name].groups[op]
    assert n > 2000
    assert med <= TARGET_MEDIAN and p90 <= TARGET_P90, (op, med, p90)


@pytest.mark.parametrize("name", ["llm-ops A100-80GB->A40", "llm-ops A40->A100-80GB"])
def test_llm_all_operators_documented_miss(llm_results, name):
    """All operators together miss the target (latency-bound elementwise kernels; see
    docs/costs.md).  Keep the figure from getting worse than documented."""
    r = llm_results[name]
    assert r.passed is False
    assert r.median <= 30.0 and r.p90 <= 170.0, r.row()


def test_other_cases_run_and_hold_out():
    res = {r.name: r for r in run_checks(only=["nccl-multinode", "gavel-gpu", "train-batch", "llm-tokens"])}
    assert set(res) == {"nccl-multinode", "gavel-gpu", "train-batch", "llm-tokens"}
    for r in res.values():
        assert r.n > 50 and r.target is None and r.passed is None
    # interpolation cases are tight; cross-GPU training extrapolation is documented as loose
    assert res["train-batch"].median < 10 and res["llm-tokens"].median < 5
    assert res["gavel-gpu"].median < 40 and res["nccl-multinode"].median < 60


def test_cli_check_and_models(capsys):
    from lepsim.costs.cli import main

    assert main(["costs", "check", "--case", "llm-forward", "--strict"]) == 0
    out = capsys.readouterr().out
    assert "llm-forward" in out and "pass" in out
    assert main(["costs", "check", "--case", "llm-ops", "--strict"]) == 1
    assert main(["costs", "check", "--case", "llm-ops"]) == 0
    assert main(["costs", "check", "--case", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lepsim: unknown case") and err.count("\n") == 1
    assert main(["models", "--gpus", "V100,H100"]) == 0
    out = capsys.readouterr().out
    assert "resnet50" in out and "meas" in out
    assert main(["models", "--gpus", "Z100"]) == 2
    assert main(["models", "--profile", "/nonexistent/profile.parquet"]) == 2
    err = capsys.readouterr().err
    assert "no such profile file" in err and "Traceback" not in err
