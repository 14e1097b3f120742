"""``lepsim profile``: measure a zoo model under ``torch.profiler`` into the tidy schema.

:func:`profile_model` runs a model of :mod:`lepsim.costs.zoo` on the local device (CPU,
or CUDA when present) and returns a :class:`pandas.DataFrame` with exactly the columns of
:mod:`lepsim.costs.schema`; :func:`write_profile` stores it (Parquet or CSV) with a JSON
sidecar ``<out>.meta.json``, both written atomically.  docs/profiling.md is the user guide.

For each batch size, in this order:

1. a fresh model (weights from ``seed``), optimizer and one synthetic batch drawn from a
   local ``torch.Generator(seed)``, all moved to the device once (no host-to-device input
   copy is timed);
2. ``warmup`` untimed steps;
3. ``steps`` timed steps, without the profiler: each phase is timed with
   :func:`time.perf_counter`, with ``torch.cuda.synchronize`` at each phase boundary on
   CUDA.  A training step is forward+loss | backward | ``optimizer.step`` +
   ``zero_grad``; its ``train_iteration`` time is the sum of the three (first clock read to
   last), so it is never below ``forward``.  An inference step is a forward pass under
   ``torch.inference_mode`` (phase ``inference``);
4. one profiler warm-up step then ``steps`` profiled steps under ``torch.profiler``
   (``record_shapes=True``, ``with_flops=True``), aggregated with
   ``key_averages(group_by_input_shape=True)`` into one row per (operator or kernel, input
   shapes).

Time semantics of the per-operator rows (all per call; ``count`` is the number of calls in
all profiled steps, so calls per step = ``count`` / the ``count`` of the batch's step row):

* CPU: phase ``operator``; ``time_s`` = ``cpu_time_s`` = *self* host CPU time per call
  (time in the operator minus time in the operators it called), so the rows add up.
* CUDA: phase ``operator`` rows have ``time_s`` = self device time per call (the kernels
  the operator itself launched) and ``cpu_time_s`` = self host time per call; phase
  ``kernel`` rows are the GPU kernels (and memcpy/memset) with ``time_s`` = device time per
  launch.  Operator and kernel rows describe the same device time twice: sum one or the
  other, never both.

``flops`` is what torch's FLOP counter reports per call (matrix products and convolutions;
null where it reports none); it is additive across rows.  ``bytes_moved`` is an *estimate*
per call: element size of the profiled dtype x the elements of every tensor input (from the
recorded input shapes), outputs and workspaces not counted, 0 for view/metadata operators.
It includes inputs read by an operator's children, so it is not additive across rows.

Randomness: no global RNG is touched.  Inputs come from a local ``torch.Generator``;
weights are initialised under ``torch.random.fork_rng`` + ``torch.manual_seed(seed)``
(see :meth:`lepsim.costs.zoo.ZooModel.build`), which restores the global state after.
"""
from __future__ import annotations

import json
import math
import os
import platform
import re
import secrets
import statistics
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Sequence

import pandas as pd

from lepsim.costs import schema, zoo

SOURCE = "lepsim-profile"
TORCH_MISSING = "lepsim profile needs PyTorch: pip install 'lepsim[profile]'"
MODES = ("train", "inference")
DTYPES = ("float32", "bfloat16", "float16")

# Operators that only make views or metadata: no bytes moved.
_VIEW_OPS = frozenset(
    "aten::" + n
    for n in (
        "view", "_reshape_alias", "as_strided", "t", "transpose", "permute",
        "expand", "expand_as", "unsqueeze", "squeeze", "select", "slice", "split",
        "split_with_sizes", "chunk", "unbind", "narrow", "alias", "detach", "detach_",
        "lift_fresh", "resolve_conj", "resolve_neg", "empty", "empty_like", "empty_strided",
        "unflatten", "_unsafe_view", "numpy_T", "size", "stride", "is_nonzero",
    )
) | frozenset({"detach"})


class ProfilerError(RuntimeError):
    """A user-facing problem with a profiling request (message is one line)."""


class TorchMissing(ProfilerError):
    """PyTorch is not installed."""

    def __init__(self) -> None:
        super().__init__(TORCH_MISSING)


def require_torch():
    """Import and return :mod:`torch`, or raise :class:`TorchMissing`."""
    try:
        import torch
    except ImportError:
        raise TorchMissing() from None
    return torch


# --- device names ---------------------------------------------------------------------------

_VENDOR = re.compile(r"^(nvidia|tesla|geforce|quadro|amd|radeon)\b[\s_-]*", re.I)
# Words that name a package of the same chip (same datasheet figures): safe to drop.
_SAME_CHIP = re.compile(r"^(sxm\d*|hbm\d*e?)$", re.I)


def canonical_gpu_name(raw: str, catalog=None) -> str | None:
    """The catalog's canonical name for a driver-reported GPU name, or None.

    ``'NVIDIA H200'`` -> ``'H200'``, ``'Tesla V100-SXM2-32GB'`` -> ``'V100'``,
    ``'NVIDIA H100 80GB HBM3'`` -> ``'H100'`` when the catalog lists those (by name or
    alias, case-insensitive, spaces/underscores as hyphens).  Tries the raw name, then
    without vendor words (NVIDIA, Tesla, GeForce, AMD, ...), then also without package
    words that do not change the figures (SXM*, HBM*).  Words that name another product
    (PCIe, NVL, MIG, a memory size) are kept, so an unlisted variant gives None rather than
    the wrong GPU.
    """
    if catalog is None:
        from lepsim.hardware import default_catalog

        catalog = default_catalog()
    name = str(raw).strip()
    stripped = name
    while True:
        s = _VENDOR.sub("", stripped)
        if s == stripped:
            break
        stripped = s
    words = [w for w in re.split(r"[\s_-]+", stripped) if w]
    core = [w for w in words if not _SAME_CHIP.match(w)]
    for c in (name, stripped, "-".join(words), "-".join(core)):
        if c:
            hit = catalog.gpu_name(c)
            if hit is not None:
                return hit
    return None


def cpu_label() -> str:
    """The ``device`` column for a CPU run: ``'cpu:<processor or machine>'``."""
    return f"cpu:{platform.processor() or platform.machine() or 'unknown'}"


def resolve_device(device: str) -> str:
    """``'cpu'``, ``'cuda'`` or ``'auto'`` -> ``'cpu'`` or ``'cuda'`` (needs torch)."""
    d = str(device).strip().lower()
    if d not in ("cpu", "cuda", "auto"):
        raise ProfilerError(f"unknown device {device!r}; use cpu, cuda or auto")
    torch = require_torch()
    has_cuda = bool(torch.cuda.is_available())
    if d == "auto":
        return "cuda" if has_cuda else "cpu"
    if d == "cuda" and not has_cuda:
        why = "torch was built without CUDA" if torch.version.cuda is None else "no CUDA device is visible"
        raise ProfilerError(f"--device cuda requested but CUDA is not available ({why}); use --device cpu")
    return d


def device_info(device: str) -> tuple[str, str]:
    """``(device column, raw device name)`` for ``'cpu'`` or ``'cuda'``."""
    if device == "cpu":
        label = cpu_label()
        return label, label[4:]
    torch = require_torch()
    raw = torch.cuda.get_device_name(torch.cuda.current_device())
    canon = canonical_gpu_name(raw)
    return (canon if canon else f"cuda:{raw}"), raw


def device_slug(label: str) -> str:
    """A folder-safe form of a ``device`` label (``'cuda:NVIDIA X'`` -> ``'cuda-NVIDIA-X'``)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", label).strip("-") or "unknown"


def lepsim_version() -> str:
    try:
        import lepsim

        v = getattr(lepsim, "__version__", None)
        if v:
            return str(v)
    except ImportError:  # pragma: no cover - we are inside lepsim
        pass
    try:
        from importlib.metadata import PackageNotFoundError, version

        return version("lepsim")
    except (ImportError, PackageNotFoundError):
        return "unknown"


# --- the measurement ------------------------------------------------------------------------

def _stats(xs: Sequence[float]) -> dict[str, float]:
    return {
        "time_s": statistics.fmean(xs),
        "time_median_s": statistics.median(xs),
        "time_std_s": statistics.stdev(xs) if len(xs) > 1 else 0.0,
        "time_min_s": min(xs),
        "time_max_s": max(xs),
    }


def _shape_elems(shapes: Iterable) -> int:
    total = 0
    for s in shapes or ():
        if isinstance(s, (list, tuple)) and len(s) > 0 and all(isinstance(d, int) for d in s):
            total += math.prod(s)
    return total


def _is_device_event(e) -> bool:
    return str(getattr(e, "device_type", "CPU")).rsplit(".", 1)[-1] != "CPU"


def _profile_rows(events, *, on_cuda: bool, elem_size: int, base: dict) -> list[dict]:
    rows: list[dict] = []
    for e in events:
        key = str(e.key)
        if getattr(e, "is_user_annotation", False) or key.startswith("ProfilerStep"):
            continue
        n = int(e.count)
        if n <= 0:
            continue
        if _is_device_event(e):
            if not on_cuda:
                continue
            rows.append({
                **base, "phase": "kernel", "operator": key, "count": n,
                "time_s": float(e.self_device_time_total) / n * 1e-6,
            })
            continue
        shapes = getattr(e, "input_shapes", None) or []
        self_cpu = float(e.self_cpu_time_total) / n * 1e-6
        flops = float(e.flops or 0) / n
        rows.append({
            **base, "phase": "operator", "operator": key, "count": n,
            "time_s": float(e.self_device_time_total) / n * 1e-6 if on_cuda else self_cpu,
            "cpu_time_s": self_cpu,
            "flops": flops if flops > 0 else None,
            "bytes_moved": 0.0 if key in _VIEW_OPS else float(_shape_elems(shapes) * elem_size),
            "input_shapes": str([list(s) if isinstance(s, (list, tuple)) else s for s in shapes]),
        })
    return rows


def _frame(rows: list[dict]) -> pd.DataFrame:
    """Rows -> a DataFrame of exactly schema.COLUMN_NAMES with schema dtypes."""
    cols = {}
    for name in schema.COLUMN_NAMES:
        dtype = schema.DTYPES[name]
        vals = [r.get(name) for r in rows]
        if dtype == "float64":
            vals = [math.nan if v is None else float(v) for v in vals]
        cols[name] = pd.array(vals, dtype=dtype)
    return pd.DataFrame(cols, columns=list(schema.COLUMN_NAMES))


def profile_model(
    model_name: str,
    device: str = "cpu",
    batch_sizes: Sequence[int] | None = None,
    mode: str = "train",
    warmup: int = 3,
    steps: int = 10,
    seed: int = 0,
    dtype: str = "float32",
) -> pd.DataFrame:
    """Profile a zoo model; return schema rows (``df.attrs['meta']`` holds the metadata).

    ``device`` is ``'cpu'``, ``'cuda'`` or ``'auto'``; ``batch_sizes`` defaults to the zoo
    entry's; ``mode`` is ``'train'`` (forward, backward, optimizer) or ``'inference'``.
    Raises :class:`TorchMissing`, :class:`zoo.UnknownModel` or :class:`ProfilerError`.
    """
    entry = zoo.get(model_name)
    if mode not in MODES:
        raise ProfilerError(f"unknown mode {mode!r}; use train or inference")
    if dtype not in DTYPES:
        raise ProfilerError(f"unknown dtype {dtype!r}; use {', '.join(DTYPES)}")
    if warmup < 0 or steps < 1:
        raise ProfilerError(f"need warmup >= 0 and steps >= 1 (got warmup={warmup}, steps={steps})")
    sizes = tuple(int(b) for b in (batch_sizes or entry.default_batch_sizes))
    if not sizes or any(b < 1 for b in sizes):
        raise ProfilerError(f"batch sizes must be positive integers, got {list(sizes)}")

    torch = require_torch()
    kind = resolve_device(device)
    from torch.profiler import ProfilerActivity, profile, schedule

    label, raw = device_info(kind)
    dev = torch.device("cuda", torch.cuda.current_device()) if kind == "cuda" else torch.device("cpu")
    tdtype = getattr(torch, dtype)
    elem_size = torch.empty((), dtype=tdtype).element_size()
    on_cuda = kind == "cuda"
    version = lepsim_version()
    source_ref = (
        f"lepsim {version} torch {torch.__version__} cuda {torch.version.cuda} "
        f"device {raw} dtype {dtype}"
    )
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_cuda else [])

    def sync() -> None:
        if on_cuda:
            torch.cuda.synchronize(dev)

    rows: list[dict] = []
    peak_mem: dict[str, int] = {}
    notes: list[str] = []
    started = time.perf_counter()
    for b in sizes:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        model = entry.build(seed).to(device=dev, dtype=tdtype)
        x, y = entry.make_batch(b, gen)
        x = x.to(dev, dtype=tdtype) if x.is_floating_point() else x.to(dev)
        y = y.to(dev)
        if on_cuda:
            torch.cuda.reset_peak_memory_stats(dev)
        base = {
            "device": label, "model": entry.name, "batch_size": b,
            "num_tokens": b * entry.tokens_per_sample if entry.tokens_per_sample else None,
            "num_gpus": 1, "placement": "1", "tensor_parallel": 1, "co_located_with": "",
            "source": SOURCE, "source_ref": source_ref,
        }

        if mode == "train":
            model.train()
            opt = entry.make_optimizer(model.parameters())

            def step(timed: bool):
                t0 = time.perf_counter()
                loss = entry.loss(model(x), y)
                if timed:
                    sync()
                t1 = time.perf_counter()
                loss.backward()
                if timed:
                    sync()
                t2 = time.perf_counter()
                opt.step()
                opt.zero_grad(set_to_none=True)
                sync()
                t3 = time.perf_counter()
                return t1 - t0, t2 - t1, t3 - t2, t3 - t0
        else:
            model.eval()

            def step(timed: bool):
                t0 = time.perf_counter()
                with torch.inference_mode():
                    model(x)
                sync()
                return (time.perf_counter() - t0,)

        for _ in range(warmup):
            step(False)
        sync()
        samples = [step(True) for _ in range(steps)]

        captured: list = []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with profile(
                activities=activities,
                record_shapes=True,
                with_flops=True,
                schedule=schedule(wait=0, warmup=1, active=steps, repeat=1),
                on_trace_ready=lambda p: captured.append(p.key_averages(group_by_input_shape=True)),
            ) as prof:
                for _ in range(steps + 1):
                    step(False)
                    prof.step()
        op_rows = _profile_rows(captured[-1] if captured else [], on_cuda=on_cuda, elem_size=elem_size, base=base)
        if not op_rows:
            notes.append(f"batch {b}: the profiler recorded no operators")
        elif on_cuda and not any(r["phase"] == "kernel" for r in op_rows):
            notes.append(f"batch {b}: no CUDA kernel events (is CUPTI usable here?); device times are 0")
        step_flops = sum(r["flops"] * r["count"] for r in op_rows if r.get("flops")) / steps or None

        phases = ("forward", "backward", "optimizer", "train_iteration") if mode == "train" else ("inference",)
        for i, phase in enumerate(phases):
            xs = [s[i] for s in samples]
            flops = step_flops if phase in ("train_iteration", "inference") else None
            rows.append({**base, "phase": phase, "operator": "", "count": steps, "flops": flops, **_stats(xs)})
        rows.extend(op_rows)
        if on_cuda:
            peak_mem[str(b)] = int(torch.cuda.max_memory_allocated(dev))
        del model, x, y
        if mode == "train":
            del opt

    df = _frame(rows)
    df.attrs["meta"] = {
        "format": "lepsim-profile/1",
        "model": entry.name,
        "model_params": entry.params,
        "mode": mode,
        "device": label,
        "device_raw": raw,
        "device_kind": kind,
        "dtype": dtype,
        "batch_sizes": list(sizes),
        "warmup": warmup,
        "steps": steps,
        "seed": seed,
        "lepsim_version": version,
        "torch_version": str(torch.__version__),
        "cuda_version": torch.version.cuda,
        "cudnn_version": (torch.backends.cudnn.version() if on_cuda else None),
        "tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32) if on_cuda else None,
        "tf32_cudnn": bool(torch.backends.cudnn.allow_tf32) if on_cuda else None,
        "torch_threads": torch.get_num_threads(),
        "host_cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "peak_memory_bytes": peak_mem or None,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "wall_s": round(time.perf_counter() - started, 3),
        "warnings": notes,
        "time_semantics": (
            "operator rows: time_s = self device time per call on CUDA, self host CPU time per call on CPU; "
            "kernel rows: device time per launch; step rows: wall time per step (perf_counter)"
        ),
    }
    return df


# --- writing (only the CLI calls this) ---------------------------------------------------

def meta_path(out: str | os.PathLike) -> Path:
    """The sidecar of ``out``: ``<out>.meta.json``."""
    p = Path(out)
    return p.with_name(p.name + ".meta.json")


def _atomic_write(path: Path, write) -> None:
    # A fresh name in the same folder (so os.replace is atomic); created by the writer
    # itself, so the file gets the usual permissions.
    tmp = str(path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"))
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_profile(df: pd.DataFrame, out: str | os.PathLike, meta: dict[str, Any] | None = None) -> tuple[Path, Path]:
    """Write ``df`` to ``out`` (``.parquet`` or ``.csv``) and ``<out>.meta.json``, atomically.

    Each file is written to a temporary file in the same folder and moved into place with
    :func:`os.replace`, so a reader never sees a half-written file.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in (".parquet", ".csv"):
        raise ProfilerError(f"{out}: output must end in .parquet or .csv")
    meta = dict(meta if meta is not None else df.attrs.get("meta", {}))
    meta["rows"] = int(len(df))
    meta["file"] = out.name
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = df.copy()
    frame.attrs = {}

    def write_data(tmp: str) -> None:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        else:
            frame.to_csv(tmp, index=False)

    def write_meta(tmp: str) -> None:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(meta, f, indent=2, sort_keys=True)
            f.write("\n")

    mp = meta_path(out)
    _atomic_write(out, write_data)
    _atomic_write(mp, write_meta)
    return out, mp
