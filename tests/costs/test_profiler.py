"""``lepsim profile``: the zoo, the profiler on the MNIST MLP on CPU, the CLI subcommand."""
from __future__ import annotations

import argparse
import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

torch = pytest.importorskip("torch")

from lepsim.costs import profile_cli, profiler, schema, zoo  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
BATCHES = (4, 16)
STEPS = 3
MLP = ((784, 512), (512, 256), (256, 128), (128, 10))


@pytest.fixture(scope="module")
def mlp_profile() -> pd.DataFrame:
    return profiler.profile_model("mnist-mlp", device="cpu", batch_sizes=BATCHES, warmup=1, steps=STEPS, seed=0)


def _row(df, b, phase):
    sel = df[(df["batch_size"] == b) & (df["phase"] == phase) & (df["operator"] == "")]
    assert len(sel) == 1, (b, phase, len(sel))
    return sel.iloc[0]


def _run_cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lepsim")
    sub = parser.add_subparsers(dest="command")
    profile_cli.register(sub)
    args = parser.parse_args(argv)
    return args.func(args)


# --- the profile frame ----------------------------------------------------------------------

def test_columns_and_dtypes_are_the_schema(mlp_profile):
    assert tuple(mlp_profile.columns) == schema.COLUMN_NAMES
    assert {c: str(t) for c, t in mlp_profile.dtypes.items()} == schema.DTYPES


def test_rows_describe_the_run(mlp_profile):
    df = mlp_profile
    assert set(df["batch_size"]) == set(BATCHES)
    assert set(df["phase"]) == {"forward", "backward", "optimizer", "train_iteration", "operator"}
    assert (df["model"] == "mnist-mlp").all()
    assert (df["device"] == profiler.cpu_label()).all() and df["device"].iloc[0].startswith("cpu:")
    assert (df["num_gpus"] == 1).all() and (df["placement"] == "1").all()
    assert (df["source"] == "lepsim-profile").all()
    ref = df["source_ref"].iloc[0]
    assert f"torch {torch.__version__}" in ref and "cuda None" in ref and "lepsim " in ref
    assert df["num_tokens"].isna().all()          # not a token model
    steps = df[df["operator"] == ""]
    assert (steps["count"] == STEPS).all()
    ops = df[df["phase"] == "operator"]
    assert (ops["operator"] != "").all() and ops["input_shapes"].notna().all()
    meta = df.attrs["meta"]
    assert meta["steps"] == STEPS and meta["warmup"] == 1 and meta["dtype"] == "float32"
    assert meta["device"] == profiler.cpu_label() and meta["torch_version"] == torch.__version__
    assert meta["batch_sizes"] == list(BATCHES) and meta["host_cpu_count"] == os.cpu_count()


def test_times_are_positive_and_consistent(mlp_profile):
    df = mlp_profile
    steps = df[df["operator"] == ""]
    assert (steps["time_s"] > 0).all()
    assert (steps["time_min_s"] <= steps["time_median_s"]).all()
    assert (steps["time_median_s"] <= steps["time_max_s"]).all()
    assert (steps["time_min_s"] <= steps["time_s"]).all() and (steps["time_s"] <= steps["time_max_s"]).all()
    assert (steps["time_std_s"] >= 0).all()
    ops = df[df["phase"] == "operator"]
    assert (ops["time_s"] >= 0).all() and (ops["count"] >= 1).all()
    # on CPU time_s is the self CPU time, the same figure as cpu_time_s
    assert (ops["time_s"] == ops["cpu_time_s"]).all()
    for b in BATCHES:
        assert ops[ops["batch_size"] == b]["time_s"].sum() > 0
        mm = ops[(ops["batch_size"] == b) & ops["operator"].isin(["aten::addmm", "aten::mm"])]
        assert (mm["time_s"] > 0).all()


def test_iteration_is_the_sum_of_its_phases(mlp_profile):
    for b in BATCHES:
        it = _row(mlp_profile, b, "train_iteration")
        fwd, bwd, opt = (_row(mlp_profile, b, p) for p in ("forward", "backward", "optimizer"))
        assert it["time_s"] >= fwd["time_s"]
        assert it["time_s"] == pytest.approx(fwd["time_s"] + bwd["time_s"] + opt["time_s"], rel=1e-9)


def test_linear_flops_are_2_b_in_out(mlp_profile):
    ops = mlp_profile[mlp_profile["phase"] == "operator"]
    for b in BATCHES:
        addmm = ops[(ops["batch_size"] == b) & (ops["operator"] == "aten::addmm")]
        found = {}
        for _, r in addmm.iterrows():
            shapes = ast.literal_eval(r["input_shapes"])
            (o,), (bb, i) = shapes[0], shapes[1]
            found[(i, o)] = r
            assert bb == b
        assert set(found) == set(MLP)
        for i, o in MLP:
            r = found[(i, o)]
            assert r["flops"] == 2 * b * i * o
            assert r["count"] == STEPS                       # one call per step
            # bytes estimate: bias + input + weight elements x 4 bytes (float32)
            assert r["bytes_moved"] == 4 * (o + b * i + i * o)
        lin = ops[(ops["batch_size"] == b) & (ops["operator"] == "aten::linear")]
        assert len(lin) == 4 and lin["flops"].isna().all()  # counted once, on addmm


def test_step_flops_match_hand_count(mlp_profile):
    # forward: one addmm per layer; backward: a weight-gradient mm per layer and an
    # input-gradient mm for every layer but the first (its input needs no gradient).
    io = [i * o for i, o in MLP]
    for b in BATCHES:
        expected = 2 * b * (2 * sum(io) + sum(io[1:]))
        assert _row(mlp_profile, b, "train_iteration")["flops"] == expected


def test_parquet_round_trip(mlp_profile, tmp_path):
    out, meta_file = profiler.write_profile(mlp_profile, tmp_path / "mlp.parquet")
    back = pd.read_parquet(out)
    expect = mlp_profile.copy()
    expect.attrs = {}
    back.attrs = {}
    pd.testing.assert_frame_equal(back, expect)
    meta = json.loads(meta_file.read_text())
    assert meta_file.name == "mlp.parquet.meta.json"
    assert meta["rows"] == len(mlp_profile) and meta["model"] == "mnist-mlp"


def test_csv_output_has_the_schema_columns(mlp_profile, tmp_path):
    out, _ = profiler.write_profile(mlp_profile, tmp_path / "mlp.csv")
    back = pd.read_csv(out)
    assert tuple(back.columns) == schema.COLUMN_NAMES and len(back) == len(mlp_profile)


def test_output_loads_as_a_profile_store(mlp_profile, tmp_path):
    store_mod = pytest.importorskip("lepsim.costs.store")
    for name in ("mlp.parquet", "mlp.csv"):
        out, _ = profiler.write_profile(mlp_profile, tmp_path / name)
        frame = store_mod.ProfileStore.load(out).frame
        assert len(frame) == len(mlp_profile)
        it = frame[frame["phase"] == "train_iteration"].sort_values("batch_size")
        assert list(it["batch_size"]) == list(BATCHES) and (it["time_s"] > 0).all()


def test_failed_write_leaves_no_file(mlp_profile, tmp_path, monkeypatch):
    def broken(self, path, *a, **k):
        Path(path).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    with pytest.raises(OSError):
        profiler.write_profile(mlp_profile, tmp_path / "x.parquet")
    assert list(tmp_path.iterdir()) == []


def test_inference_mode():
    df = profiler.profile_model("mnist-mlp", device="cpu", batch_sizes=(4,), mode="inference", warmup=0, steps=2)
    assert set(df["phase"]) == {"inference", "operator"}
    assert _row(df, 4, "inference")["time_s"] > 0
    assert not df["operator"].str.contains("Backward").any()
    assert _row(df, 4, "inference")["flops"] == 2 * 4 * sum(i * o for i, o in MLP)


def test_bad_requests_raise_one_line_errors():
    with pytest.raises(zoo.UnknownModel):
        profiler.profile_model("nope")
    for kw in ({"mode": "serve"}, {"steps": 0}, {"batch_sizes": (0,)}, {"dtype": "int8"}, {"device": "tpu"}):
        with pytest.raises(profiler.ProfilerError) as e:
            profiler.profile_model("mnist-mlp", **kw)
        assert "\n" not in str(e.value)


# --- the CLI subcommand ------------------------------------------------------------------------

def test_cli_writes_both_files_atomically(tmp_path, monkeypatch, capsys):
    out = tmp_path / "profiles" / "mlp.parquet"
    replaced: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src, dst):
        src, dst = Path(src), Path(dst)
        assert src.parent == dst.parent and src.exists() and not dst.exists()
        replaced.append((src, dst))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", spy)
    rc = _run_cli(["profile", "mnist-mlp", "--device", "cpu", "--batch-sizes", "2,4",
                   "--warmup", "0", "--steps", "2", "--out", str(out)])
    assert rc == 0
    assert [d.name for _, d in replaced] == ["mlp.parquet", "mlp.parquet.meta.json"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["mlp.parquet", "mlp.parquet.meta.json"]
    df = pd.read_parquet(out)
    assert tuple(df.columns) == schema.COLUMN_NAMES and set(df["batch_size"]) == {2, 4}
    meta = json.loads((out.parent / "mlp.parquet.meta.json").read_text())
    assert meta["steps"] == 2 and meta["warmup"] == 0 and meta["device_kind"] == "cpu"
    shown = capsys.readouterr().out
    assert "wall time per step" in shown and "wrote" in shown


def test_cli_without_torch_prints_one_line(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "torch", None)      # `import torch` now raises ImportError
    rc = _run_cli(["profile", "mnist-mlp", "--device", "cpu", "--out", str(tmp_path / "p.parquet")])
    cap = capsys.readouterr()
    assert rc == 2
    assert cap.err.splitlines() == ["lepsim profile needs PyTorch: pip install 'lepsim[profile]'"]
    assert cap.out == "" and list(tmp_path.iterdir()) == []
    assert _run_cli(["profile", "--list"]) == 0           # the zoo list needs no torch
    assert "gpt-small" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["profile", "resnet-huge"], "unknown zoo model 'resnet-huge'"),
        (["profile"], "give a MODEL"),
        (["profile", "mnist-mlp", "--out", "p.txt"], ".parquet or .csv"),
    ],
)
def test_cli_user_errors(argv, needle, capsys):
    assert _run_cli(argv) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and needle in err[0] and err[0].startswith("lepsim profile: ")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cli_cuda_absent(capsys, tmp_path):
    assert _run_cli(["profile", "mnist-mlp", "--device", "cuda", "--out", str(tmp_path / "p.parquet")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "CUDA is not available" in err[0]


def test_main_cli_has_the_subcommand(capsys):
    cli = pytest.importorskip("lepsim.cli")
    assert cli.main(["profile", "--list"]) == 0
    assert "resnet-small" in capsys.readouterr().out


def test_package_imports_without_torch():
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import lepsim.costs.zoo as z, lepsim.costs.profiler, lepsim.costs.profile_cli\n"
        "print(','.join(z.names()))"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "mnist-mlp,resnet-small,gpt-small"


# --- the zoo ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", zoo.names())
def test_zoo_model_trains_one_step_at_tiny_batch(name):
    entry = zoo.get(name)
    model = entry.build(seed=0)
    assert sum(p.numel() for p in model.parameters()) == entry.params
    x, y = entry.make_batch(2, torch.Generator().manual_seed(0))
    out = model(x)
    assert out.shape[0] == 2
    loss = entry.loss(out, y)
    assert torch.isfinite(loss)
    loss.backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    entry.make_optimizer(model.parameters()).step()


def test_zoo_is_deterministic_and_leaves_global_rng_alone():
    entry = zoo.get("mnist-mlp")
    state = torch.get_rng_state()
    a, b = entry.build(seed=3), entry.build(seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    x1, _ = entry.make_batch(4, torch.Generator().manual_seed(1))
    x2, _ = entry.make_batch(4, torch.Generator().manual_seed(1))
    assert torch.equal(x1, x2)
    with pytest.raises(zoo.UnknownModel, match="known: mnist-mlp"):
        zoo.get("nope")


# --- device names -------------------------------------------------------------------------------

def test_canonical_gpu_name(tmp_path):
    from lepsim.hardware import load_catalog

    figs = "memory: 32GB\n    memory_bandwidth: 900GB/s\n    fp32_tflops: 15\n    fp16_tflops: 120\n"
    (tmp_path / "cat.yaml").write_text(
        "gpus:\n"
        f"  V100:\n    {figs}    aliases: [V100-SXM2-32GB, V100-32GB]\n"
        f"  A100-80GB:\n    {figs}    aliases: [A100-SXM4-80GB]\n"
        f"  H100:\n    {figs}    aliases: [H100-80GB]\n"
        f"  H200:\n    {figs}"
        "nodes: {}\n"
    )
    cat = load_catalog(tmp_path / "cat.yaml")
    c = lambda raw: profiler.canonical_gpu_name(raw, cat)  # noqa: E731
    assert c("NVIDIA H200") == "H200"
    assert c("Tesla V100-SXM2-32GB") == "V100"
    assert c("NVIDIA A100-SXM4-80GB") == "A100-80GB"
    assert c("NVIDIA H100 80GB HBM3") == "H100"
    assert c("NVIDIA H100 PCIe") is None          # another product: not silently the SXM part
    assert c("NVIDIA GeForce RTX 4090") is None
    assert profiler.canonical_gpu_name("NVIDIA H200") == "H200"   # the packaged catalog
    assert profiler.device_slug("cuda:NVIDIA GeForce RTX 4090") == "cuda-NVIDIA-GeForce-RTX-4090"


def test_gpu_script_is_valid_bash():
    r = subprocess.run(["bash", "-n", str(REPO / "benchmarks" / "gpu_profile.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_cuda_rows_from_profiler_events(monkeypatch):
    """The CUDA branch of the row builder, on hand-made events (no GPU needed)."""
    from types import SimpleNamespace as Ev

    from torch.autograd import DeviceType

    def ev(key, dev, count, self_cpu_us=0.0, self_dev_us=0.0, flops=0, shapes=(), annot=False):
        return Ev(key=key, device_type=dev, count=count, self_cpu_time_total=self_cpu_us,
                  self_device_time_total=self_dev_us, flops=flops, input_shapes=list(shapes),
                  is_user_annotation=annot)

    events = [
        ev("ProfilerStep*", DeviceType.CPU, 3, 900.0, annot=True),
        ev("ProfilerStep#2", DeviceType.CUDA, 3, 0.0, 500.0),
        ev("aten::addmm", DeviceType.CPU, 6, 60.0, 30.0, flops=6 * 2 * 8 * 4 * 2, shapes=[[2], [8, 4], [4, 2], [], []]),
        ev("aten::t", DeviceType.CPU, 6, 12.0, 0.0, shapes=[[2, 4]]),
        ev("sm90_xmma_gemm_f32f32", DeviceType.CUDA, 6, 0.0, 24.0),
    ]
    base = {"device": "H200", "model": "m", "batch_size": 8, "source": "lepsim-profile"}
    rows = profiler._profile_rows(events, on_cuda=True, elem_size=4, base=base)
    by = {r["operator"]: r for r in rows}
    assert set(by) == {"aten::addmm", "aten::t", "sm90_xmma_gemm_f32f32"}
    mm, view, kern = by["aten::addmm"], by["aten::t"], by["sm90_xmma_gemm_f32f32"]
    assert mm["phase"] == "operator" and mm["time_s"] == pytest.approx(5e-6) and mm["cpu_time_s"] == pytest.approx(1e-5)
    assert mm["flops"] == 2 * 8 * 4 * 2 and mm["bytes_moved"] == 4 * (2 + 32 + 8)
    assert view["time_s"] == 0 and view["flops"] is None and view["bytes_moved"] == 0
    assert kern["phase"] == "kernel" and kern["time_s"] == pytest.approx(4e-6) and kern["count"] == 6
    assert "cpu_time_s" not in kern and "input_shapes" not in kern
    frame = profiler._frame(rows)
    assert tuple(frame.columns) == schema.COLUMN_NAMES and frame["cpu_time_s"].isna().sum() == 1
    # on CPU, device events are ignored and time_s is the self CPU time
    cpu_rows = profiler._profile_rows(events, on_cuda=False, elem_size=4, base=base)
    assert {r["operator"] for r in cpu_rows} == {"aten::addmm", "aten::t"}
    assert all(r["time_s"] == r["cpu_time_s"] for r in cpu_rows)


def test_cuda_device_label(monkeypatch):
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: "NVIDIA H200")
    assert profiler.device_info("cuda") == ("H200", "NVIDIA H200")
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=None: "NVIDIA Imaginary X1")
    assert profiler.device_info("cuda") == ("cuda:NVIDIA Imaginary X1", "NVIDIA Imaginary X1")
