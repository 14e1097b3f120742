"""Gavel-style allocation: the LP on hand-solvable cases, and hand-computed round timelines."""
from __future__ import annotations

import numpy as np
import pytest

import lepsim
from lepsim.policies.adaptive import solve_allocation
from tests.conftest import scenario


# ----------------------------------------------------------------------------- the LP
def test_max_min_two_jobs_two_types_one_gpu_each_is_the_equal_split():
    # throughputs: job A 4 on V100, 1 on K80; job B 2 and 1.  Capacity 1 + 1, one GPU per job.
    # ref_A = (4 + 1)/2 = 2.5, ref_B = (2 + 1)/2 = 1.5.  Filling both GPUs with a on V = x,
    # a on K = 1 - x, b on V = 1 - x, b on K = x:  u_A = (1 + 3x)/2.5, u_B = (2 - x)/1.5.
    # Max-min: u_A = u_B  ->  1.5 + 4.5x = 5 - 2.5x  ->  x = 1/2 (u = 1 each).  Stage 2 would
    # raise x (u_A grows faster) but u_B >= 1 holds it at 1/2.
    X = solve_allocation([[4.0, 1.0], [2.0, 1.0]], [1, 1], [1, 1])
    assert X == pytest.approx(np.array([[0.5, 0.5], [0.5, 0.5]]), abs=1e-6)


def test_max_min_gives_the_fast_type_to_the_job_that_gains_from_it():
    # job A 4 on V100, 1 on K80 (ref 2.5); job B 2 on both (ref 2: no gain from V100).
    # u_B = (2b1 + 2b2)/2 <= 1 whatever it gets, so max-min z* = 1 (B full time somewhere,
    # A at least x >= 1/2 on V).  Stage 2 maximises u_A + u_B = (1 + 3x)/2.5 + 1 -> x = 1:
    # A all on V100, B all on K80.
    X = solve_allocation([[4.0, 1.0], [2.0, 2.0]], [1, 1], [1, 1])
    assert X == pytest.approx(np.array([[1.0, 0.0], [0.0, 1.0]]), abs=1e-6)


def test_max_throughput_two_jobs_two_types():
    # objective Σ u_j: coefficients a_V 4/2.5 = 1.6, a_K 0.4, b_V 2/1.5 = 1.333, b_K 0.667.
    # A on V + B on K = 2.267 beats B on V + A on K = 1.733.
    X = solve_allocation([[4.0, 1.0], [2.0, 1.0]], [1, 1], [1, 1], "max_throughput")
    assert X == pytest.approx(np.array([[1.0, 0.0], [0.0, 1.0]]), abs=1e-6)


def test_lp_respects_capacity_gangs_and_types_a_job_cannot_use():
    rng = np.random.default_rng(3)
    T = rng.uniform(0.5, 4.0, size=(7, 3))
    T[2, 1] = 0.0  # job 2 cannot run on type 1
    g = np.array([1, 2, 4, 1, 8, 2, 1])
    cap = np.array([4, 4, 8])
    for obj in ("max_min", "max_throughput"):
        X = solve_allocation(T, g, cap, obj)
        assert (X >= -1e-9).all() and (X.sum(axis=1) <= 1 + 1e-6).all()
        assert (g @ X <= cap + 1e-6).all()
        assert X[2, 1] == 0.0
        assert X[4, 0] == 0.0 and X[4, 1] == 0.0  # 8 GPUs fit only type 2


def test_single_type_is_water_filling():
    # Σ min(g, z) = 4 with g = 1, 2, 4  ->  z = 1.5: X = 1, 0.75, 0.375
    X = solve_allocation(np.ones((3, 1)), [1, 2, 4], [4])
    assert X[:, 0] == pytest.approx([1.0, 0.75, 0.375])
    assert solve_allocation(np.ones((2, 1)), [1, 2], [4])[:, 0] == pytest.approx([1.0, 1.0])


# ----------------------------------------------------------------------------- timelines
def _run(preemption=None):
    sched = {"policy": "gavel", "params": {"round": 100}}
    if preemption:
        sched["preemption"] = preemption
    sc = scenario({
        "cluster": {"pools": [{"count": 1, "gpu_type": "V100", "gpus_per_node": 1, "cpus": 8, "memory": "64GiB"}]},
        "workload": {"jobs": [{"name": "a", "gpus": 1, "duration": 150}, {"name": "b", "gpus": 1, "duration": 150}]},
        "scheduler": sched,
    })
    r = lepsim.simulate(sc)
    return r, r.jobs.set_index("name")


def test_rounds_rotate_jobs_by_allocation_over_received_time():
    # One GPU, two 150 s jobs, rounds of 100 s, free preemption.  X = 1/2 each.
    # t=0   round: both never ran (priority inf); tie -> lower id: a starts.
    # t=100 round: a received 100/100 -> priority 0.5; b inf -> b chosen, a preempted, b starts.
    # t=200 round: a 100/200, b 100/200 -> both 1.0; the running one (b) keeps its GPU.
    # t=250 b completes (150 s run); a restarts on the freed GPU with 50 s left -> ends at 300.
    r, df = _run()
    assert (df.loc["a", "first_start_s"], df.loc["a", "end_s"], df.loc["a", "preemptions"]) == (0, 300, 1)
    assert (df.loc["b", "first_start_s"], df.loc["b", "end_s"], df.loc["b", "preemptions"]) == (100, 250, 0)


def test_preemption_is_charged_checkpoint_and_restore():
    # As above with checkpoint 10 s, restore 20 s.
    # t=100 round: a preempted, holds the GPU until 110 (checkpoint); b waits for it.
    # t=110 checkpoint ends: b (chosen) starts, never preempted so no restore: runs 110..260.
    # t=200 round: a 100/200 -> 1.0; b 90/200 -> 0.5/0.45 = 1.11: b keeps the GPU.
    # t=260 b ends; a resumes: restore 260..280, then its last 50 s -> ends at 330.
    r, df = _run({"checkpoint": 10, "restore": 20})
    assert (df.loc["a", "first_start_s"], df.loc["a", "end_s"]) == (0, 330)
    assert (df.loc["b", "first_start_s"], df.loc["b", "end_s"]) == (110, 260)
    phases = r.intervals[r.intervals["job_id"] == 0][["phase", "start_s", "end_s"]].values.tolist()
    assert phases == [["run", 0, 100], ["checkpoint", 100, 110], ["restore", 260, 280], ["run", 280, 330]]


def test_view_throughput_reads_the_cost_model():
    from lepsim.build import build_parts
    from lepsim.engine.simulation import Simulation

    sc = scenario({
        "cluster": {"pools": [{"count": 1, "gpu_type": "V100", "gpus_per_node": 4, "cpus": 32, "memory": "64GiB"},
                              {"count": 1, "gpu_type": "K80", "gpus_per_node": 4, "cpus": 32, "memory": "64GiB"}]},
        "workload": {"jobs": [{"gpus": 2, "model": "resnet50", "batch_size": 64, "iterations": 10},
                              {"gpus": 1, "duration": 5}]},
        "scheduler": {"policy": "gavel"},
    })
    parts, problems = build_parts(sc)
    assert not problems
    sim = Simulation(sc, parts.nodes, parts.jobs, parts.policy, parts.cost_model)
    view = sim._view
    job = view.job(0)
    cm = parts.cost_model
    assert view.throughput(job, "V100") == pytest.approx(1 / cm.iteration_time("resnet50", "V100", (2,), 64))
    assert view.throughput(job, "K80") == pytest.approx(1 / cm.iteration_time("resnet50", "K80", (2,), 64))
    assert view.throughput(job, "V100", 4) == pytest.approx(1 / cm.iteration_time("resnet50", "V100", (4,), 64))
    assert view.throughput(job, "K80", (1, 1)) == 0.0  # batch 64 spread on K80: beyond the measured range
    assert view.throughput(job, "V100", 8) == 0.0      # no 8 V100 GPUs in this cluster
    assert view.throughput(view.job(1), "K80") == 1.0  # a duration job: reference seconds everywhere
