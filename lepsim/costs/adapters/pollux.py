"""Pollux (AdaptDL OSDI'21 artifact) traces -> training-iteration and sync rows.

Upstream: ``petuum/adaptdl`` branch osdi21-artifact @ de25dcc, ``simulator/traces/<model>/``
(Apache-2.0).  The measurements were taken on Pollux's testbed: AWS g4dn.12xlarge nodes
with 4 NVIDIA T4 GPUs each (the Pollux paper, OSDI'21, section 5), so the device is ``T4``.

* ``placements.csv``: placement (digits = GPUs used on each node), local_bsz (per-GPU
  batch), step_time, sync_time — both already in **seconds**.  ``step_time`` is the whole
  iteration including the gradient synchronisation; ``sync_time`` is the part of it spent
  synchronising (AdaptDL's simulator uses ``step_time - sync_time`` as the compute time).
* ``scalability.csv``: num_nodes, num_replicas, local_bsz, step_time, sync_time for 6..16
  nodes.  Pollux records only the two counts, so lepsim writes the placement as the most
  even split of the replicas over the nodes (e.g. 7 replicas on 6 nodes -> ``'211111'``).
* ``validation-<bsz>.csv``: gradient statistics per epoch (not costs; not in the store) —
  :func:`load_pollux_gradient_stats` returns them as a DataFrame.

Rows: phase ``train_iteration`` with ``time_s = step_time``, and phase ``sync`` with
``time_s = sync_time``.  SI conversion: none needed (upstream is in seconds); it is the
identity in :func:`_seconds`.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from lepsim.costs.adapters.common import REF_POLLUX, to_store
from lepsim.costs.adapters.names import DATA_DIR, canonical_model
from lepsim.costs.store import ProfileStore

DEFAULT_DIR = DATA_DIR / "pollux"
POLLUX_MODELS = ("bert", "cifar10", "deepspeech2", "imagenet", "ncf", "yolov3")
DEVICE = "T4"


def _seconds(x):
    """SI conversion: Pollux times are already seconds."""
    return x


def even_split(num_nodes: int, num_replicas: int) -> str:
    base, extra = divmod(int(num_replicas), int(num_nodes))
    parts = [base + 1] * extra + [base] * (int(num_nodes) - extra)
    return "".join(str(p) for p in parts if p > 0)


def _rows(df: pd.DataFrame, model: str, placement: pd.Series, ref: str) -> pd.DataFrame:
    num_gpus = placement.map(lambda s: sum(int(ch) for ch in s))
    common = dict(
        device=DEVICE, model=model, batch_size=df["local_bsz"].astype(int).to_numpy(),
        num_gpus=num_gpus.to_numpy(), placement=placement.to_numpy(), source="pollux", source_ref=ref,
    )
    it = pd.DataFrame({**common, "phase": "train_iteration", "time_s": _seconds(df["step_time"].to_numpy(float))})
    sy = pd.DataFrame({**common, "phase": "sync", "time_s": _seconds(df["sync_time"].to_numpy(float))})
    return pd.concat([it, sy], ignore_index=True)


def load_pollux(directory: str | Path | None = None, models=POLLUX_MODELS) -> ProfileStore:
    root = Path(directory) if directory else DEFAULT_DIR
    parts = []
    for m in models:
        model = canonical_model(m)
        pl = pd.read_csv(root / m / "placements.csv")
        parts.append(_rows(pl, model, pl["placement"].astype(str), REF_POLLUX + f"{m}/placements.csv"))
        sc_path = root / m / "scalability.csv"
        if sc_path.exists():
            sc = pd.read_csv(sc_path)
            place = pd.Series([even_split(a, b) for a, b in zip(sc["num_nodes"], sc["num_replicas"])], index=sc.index)
            parts.append(_rows(sc, model, place, REF_POLLUX + f"{m}/scalability.csv"))
    return to_store(pd.concat(parts, ignore_index=True), where=str(root))


def load_pollux_gradient_stats(model: str, directory: str | Path | None = None) -> pd.DataFrame:
    """Gradient statistics of a Pollux model: columns batch_size (global), progress,
    iteration, metric, grad_sqr, grad_var (upstream units; dimensionless statistics)."""
    root = Path(directory) if directory else DEFAULT_DIR
    name = {canonical_model(m): m for m in POLLUX_MODELS}.get(canonical_model(model), model)
    frames = []
    for f in sorted((root / name).glob("validation-*.csv")):
        df = pd.read_csv(f)
        df.insert(0, "batch_size", int(f.stem.split("-", 1)[1]))
        frames.append(df)
    if not frames:
        raise FileNotFoundError(f"no Pollux gradient statistics for model {model!r}")
    return pd.concat(frames, ignore_index=True)
