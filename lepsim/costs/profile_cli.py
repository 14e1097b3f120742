"""The ``lepsim profile`` subcommand (registered into the main CLI by :func:`register`).

    lepsim profile MODEL [--device cpu|cuda|auto] [--batch-sizes 32,64] [--mode train|inference]
                         [--warmup N] [--steps N] [--dtype float32] [--out FILE.parquet] [--seed N]
    lepsim profile --list

Also runnable as ``python -m lepsim.costs.profile_cli ...`` (same arguments).  User errors
(no PyTorch, unknown model, CUDA asked for but absent, bad output name) print one line to
stderr and return 2; a run that fails inside PyTorch (e.g. out of memory) returns 1.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lepsim.costs import zoo

_PROG = "lepsim profile"
_DESCRIPTION = (
    "Run a built-in PyTorch model under torch.profiler and write kernel/operator timings in the "
    "profile schema (Parquet/CSV) plus a JSON metadata sidecar."
)


def _batch_sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(t) for t in text.replace(" ", "").split(",") if t)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}") from None
    if not sizes or any(b < 1 for b in sizes):
        raise argparse.ArgumentTypeError(f"expected comma-separated positive integers, got {text!r}")
    return sizes


def _non_negative(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def _positive(text: str) -> int:
    v = _non_negative(text)
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The ``profile`` arguments, on any parser."""
    p.add_argument("model", nargs="?", metavar="MODEL", help="zoo model name (see --list)")
    p.add_argument("--list", action="store_true", help="list the built-in model zoo and exit")
    p.add_argument("--device", choices=("cpu", "cuda", "auto"), default="auto",
                   help="where to run (default: auto = cuda when present, else cpu)")
    p.add_argument("--batch-sizes", type=_batch_sizes, default=None, metavar="B1,B2,...",
                   help="per-GPU batch sizes (default: the model's own list)")
    p.add_argument("--mode", choices=("train", "inference"), default="train",
                   help="train: forward+backward+optimizer; inference: forward only (default: train)")
    p.add_argument("--warmup", type=_non_negative, default=3, metavar="N", help="untimed warm-up steps (default 3)")
    p.add_argument("--steps", type=_positive, default=10, metavar="N",
                   help="timed steps, and again as many profiled steps (default 10)")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32",
                   help="parameter and input dtype (default float32)")
    p.add_argument("--seed", type=int, default=0, metavar="N", help="seed of weights and synthetic data (default 0)")
    p.add_argument("--out", default=None, metavar="FILE",
                   help="output .parquet or .csv (default: MODEL.DEVICE.MODE.parquet here); "
                        "metadata goes to FILE.meta.json")
    p.set_defaults(func=run)


def register(subparsers) -> argparse.ArgumentParser:
    """Add the ``profile`` subcommand to the main CLI's ``add_subparsers()`` object."""
    p = subparsers.add_parser(
        "profile",
        help="profile a built-in PyTorch model into a cost profile (needs lepsim[profile])",
        description=_DESCRIPTION,
    )
    add_arguments(p)
    return p


def _err(msg: str) -> None:
    print(msg.replace("\n", " "), file=sys.stderr)


def _list_zoo() -> int:
    from rich.console import Console
    from rich.table import Table

    t = Table(title="lepsim profile: built-in model zoo")
    for col in ("name", "parameters", "one sample", "default batch sizes", "model"):
        t.add_column(col)
    for m in zoo.ZOO.values():
        t.add_row(m.name, f"{m.params:,}", m.sample, ",".join(map(str, m.default_batch_sizes)), m.description)
    Console().print(t)
    return 0


def _summary(df, out: Path, meta_file: Path) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    meta = df.attrs.get("meta", {})
    con = Console()
    train = meta.get("mode", "train") == "train"
    step_phase = "train_iteration" if train else "inference"
    t = Table(title=escape(f"{meta.get('model')} on {meta.get('device')} ({meta.get('mode')}, {meta.get('dtype')}): "
                           "wall time per step"))
    phases = ("forward", "backward", "optimizer") if train else ()
    short = {"forward": "fwd ms", "backward": "bwd ms", "optimizer": "opt ms"}
    for c in ("batch", "step ms", "± ms", *(short[p] for p in phases), "samples/s", "GFLOP/step"):
        t.add_column(c, justify="right")
    whole = df[df["phase"] == step_phase].sort_values("batch_size")
    for _, r in whole.iterrows():
        b = int(r["batch_size"])
        sel = df[(df["batch_size"] == b) & (df["operator"] == "")]
        ph = {p: float(sel[sel["phase"] == p]["time_s"].iloc[0]) for p in phases if (sel["phase"] == p).any()}
        t.add_row(
            str(b), f"{r['time_s'] * 1e3:.3f}", f"{r['time_std_s'] * 1e3:.3f}",
            *[f"{ph[p] * 1e3:.3f}" if p in ph else "" for p in phases],
            f"{b / r['time_s']:,.0f}", "" if _isna(r["flops"]) else f"{r['flops'] / 1e9:.3f}",
        )
    con.print(t)

    if len(whole):
        bmax = int(whole["batch_size"].max())
        step = whole[whole["batch_size"] == bmax].iloc[0]
        on_cuda = bool((df["phase"] == "kernel").any())
        detail = df[(df["batch_size"] == bmax) & (df["phase"] == ("kernel" if on_cuda else "operator"))].copy()
        nsteps = int(step["count"])
        detail["per_step"] = detail["time_s"] * detail["count"].astype(float) / nsteps
        top = detail.sort_values("per_step", ascending=False).head(10)
        what = "GPU kernels, device time" if on_cuda else "operators, self CPU time"
        tt = Table(title=f"top {what}, batch {bmax} (profiled steps; GFLOP per call)")
        tt.add_column("name", no_wrap=True, overflow="ellipsis", max_width=32)
        for c in ("n/step", "ms/step", "%", "GFLOP"):
            tt.add_column(c, justify="right", no_wrap=True, min_width=len(c) + 2)
        tt.add_column("input shapes", no_wrap=True, overflow="ellipsis", max_width=26)
        for _, r in top.iterrows():
            shapes = "" if _isna(r["input_shapes"]) else str(r["input_shapes"])
            tt.add_row(
                escape(_clip(str(r["operator"]), 32)), f"{int(r['count']) / nsteps:g}", f"{r['per_step'] * 1e3:.3f}",
                f"{100 * r['per_step'] / step['time_s']:.0f}",
                "" if _isna(r["flops"]) else f"{r['flops'] / 1e9:.4f}", escape(_clip(shapes, 26)),
            )
        con.print(tt)
    for note in meta.get("warnings") or ():
        con.print(f"[yellow]warning:[/yellow] {escape(str(note))}")
    con.print(escape(f"wrote {out} ({len(df)} rows) and {meta_file.name}"))


def _clip(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1] + "…"


def _isna(v) -> bool:
    import pandas as pd

    return bool(pd.isna(v))


def run(args: argparse.Namespace) -> int:
    """Handler of ``lepsim profile``; returns the exit status."""
    if args.list:
        return _list_zoo()
    if not args.model:
        _err(f"{_PROG}: give a MODEL to profile (one of: {', '.join(zoo.names())}), or --list")
        return 2
    try:
        zoo.get(args.model)
    except zoo.UnknownModel as e:
        _err(f"{_PROG}: {e}")
        return 2
    if args.out is not None and Path(args.out).suffix.lower() not in (".parquet", ".csv"):
        _err(f"{_PROG}: --out {args.out}: the file name must end in .parquet or .csv")
        return 2

    from lepsim.costs import profiler

    try:
        df = profiler.profile_model(
            args.model, device=args.device, batch_sizes=args.batch_sizes, mode=args.mode,
            warmup=args.warmup, steps=args.steps, seed=args.seed, dtype=args.dtype,
        )
    except profiler.TorchMissing as e:
        _err(str(e))
        return 2
    except profiler.ProfilerError as e:
        _err(f"{_PROG}: {e}")
        return 2
    except KeyboardInterrupt:
        _err(f"{_PROG}: interrupted; nothing written")
        return 130
    except RuntimeError as e:  # failures inside PyTorch (out of memory, unsupported dtype, ...)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        _err(f"{_PROG}: {args.model} failed in PyTorch: {first}")
        return 1

    meta = df.attrs.get("meta", {})
    out = Path(args.out) if args.out else Path(
        f"{args.model}.{profiler.device_slug(str(meta.get('device', 'unknown')))}.{args.mode}.parquet"
    )
    try:
        out, meta_file = profiler.write_profile(df, out)
    except (OSError, profiler.ProfilerError) as e:
        _err(f"{_PROG}: cannot write {out}: {e}")
        return 1
    _summary(df, out, meta_file)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m lepsim.costs.profile_cli``."""
    p = argparse.ArgumentParser(prog=_PROG, description=_DESCRIPTION)
    add_arguments(p)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
