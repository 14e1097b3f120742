"""Golden regression baselines of scheduler metrics, one file per (scenario, policy).

A metric fails when it drifts beyond the tolerance written in its baseline file.  To accept
an intended change, regenerate on purpose and commit the diff with the reason:

    lepsim baseline update scenarios/burst.yaml --policies fifo,sjf,las
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from lepsim.testing import BaselineMismatch, check_baseline, compare_to_baseline

ROOT = Path(__file__).resolve().parents[2]
BASELINES = Path(__file__).resolve().parent / "baselines"
CASES = sorted(BASELINES.glob("*.json"))


def test_every_scenario_and_builtin_policy_has_a_baseline():
    have = {p.stem for p in CASES}
    for scenario in ("burst", "steady", "philly_like"):
        for policy in ("fifo", "sjf", "las"):
            assert f"{scenario}-{policy}" in have
    # the static family (quota needs tenants: steady has one)
    for name in ("burst-easy", "steady-easy", "philly_like-easy", "burst-quota", "philly_like-quota"):
        assert name in have


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_metrics_match_baseline(path, monkeypatch):
    doc = json.loads(path.read_text())
    monkeypatch.chdir(ROOT)
    check_baseline(doc["scenario"], doc["policy"], directory=BASELINES, seed=doc["seed"])


def test_a_drift_beyond_tolerance_is_reported():
    baseline = {"metrics": {"jct_mean_s": {"value": 100.0, "rel_tol": 0.01, "abs_tol": 0.0},
                            "jobs_completed": {"value": 10, "rel_tol": 0.0, "abs_tol": 0.0}}}
    assert compare_to_baseline({"jct_mean_s": 100.9, "jobs_completed": 10}, baseline) == []
    drift = compare_to_baseline({"jct_mean_s": 101.5, "jobs_completed": 11}, baseline)
    assert len(drift) == 2 and drift[0].startswith("jct_mean_s") and drift[1].startswith("jobs_completed")


def test_check_baseline_raises_on_drift(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    src = BASELINES / "burst-fifo.json"
    doc = json.loads(src.read_text())
    doc["metrics"]["jct_mean_s"]["value"] *= 1.5
    (tmp_path / "burst-fifo.json").write_text(json.dumps(doc))
    with pytest.raises(BaselineMismatch, match="jct_mean_s"):
        check_baseline(doc["scenario"], "fifo", directory=tmp_path, seed=doc["seed"])


def test_a_policy_with_parameters_has_its_own_baseline(tmp_path, monkeypatch):
    import lepsim
    from lepsim.testing import update_baseline

    monkeypatch.chdir(ROOT)
    small = "tests/data/small.yaml"
    path = update_baseline(small, "las[thresholds=[30min]]", directory=tmp_path)
    assert path.name == "small-las[thresholds=[30min]].json"
    doc = json.loads(path.read_text())
    assert doc["policy"] == "las[thresholds=[30min]]"
    want = lepsim.simulate(small, policy="las", params={"thresholds": ["30min"]}, seed=doc["seed"]).summary
    assert doc["metrics"]["jct_mean_s"]["value"] == want["jct_mean_s"]
    check_baseline(small, "las[thresholds=[30min]]", directory=tmp_path)
    with pytest.raises(FileNotFoundError):
        check_baseline(small, "las[thresholds=[2h]]", directory=tmp_path)
