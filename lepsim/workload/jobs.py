"""The runtime description of a training job request (built from the scenario)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class JobRequest:
    """One training job as submitted.  Times in seconds, memory in bytes.

    ``job_id`` is counted per simulation in submit order (ties: inline jobs, then generators
    in file order, then traces in file order, each in its own order).
    """

    job_id: int
    name: str
    submit_time: float
    gpus: int
    cpus: float
    memory_bytes: float
    tenant: str
    model: str | None
    gpu_type: str | None          # required canonical GPU type, None = any
    duration: float | None        # reference runtime on the requested allocation (s)
    iterations: float | None
    batch_size: int | None
    source: str                   # where it came from: "workload.jobs[3]", "workload.generators[0]", "trace.csv:12"
    priority: int = 0             # higher = more important (policies that honour priorities read it)
    kind: str = "training"        # "training" or "inference-replica" (a service replica: never completes)
    node_selector: tuple[tuple[str, str], ...] = ()   # node labels required (key, value), sorted
    isolated: bool = False        # its tenant never shares a node with another tenant
    gpu_fraction: float = 1.0     # share of one GPU when < 1 (then gpus == 1)
    dataset_bytes: float | None = None       # read from storage at each start (see lepsim.engine.storage)
    dataset_samples: int | None = None
    checkpoint_bytes: float | None = None    # None: from the model's parameter count, when the catalog has it
    checkpoint_interval: float | None = None  # running seconds between periodic checkpoints
    min_gpus: int | None = None   # elastic: fewest GPUs a Resize may leave it (None: not elastic)
    max_gpus: int | None = None   # elastic: most GPUs a Resize may give it
