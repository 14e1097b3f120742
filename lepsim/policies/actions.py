"""Typed actions a policy returns; the engine validates and applies them in order."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Start:
    """Start (or resume) a pending job on exactly these GPUs (global GPU ids).

    A job that asks for no GPUs names the ``node`` to run on instead.  The GPUs must be
    free, as many as the job asks for (gang: all or nothing), of one GPU type, and each
    node must have the job's CPU and memory share (in proportion to the GPUs used there).
    """

    job_id: int
    gpus: tuple[int, ...]
    node: int | None = None


@dataclass(frozen=True, slots=True)
class Preempt:
    """Stop a running (or restoring) job; it checkpoints, releases its GPUs and re-queues."""

    job_id: int


@dataclass(frozen=True, slots=True)
class Migrate:
    """Move a running (or restoring) job to other GPUs, at the cost of a preemption.

    The new GPUs (as many as the job asks for, of one type, each free now, none of them
    the job's own, with the CPU and memory shares on their nodes) are reserved at once; the
    job checkpoints on its old GPUs for ``scheduler.preemption.checkpoint`` seconds, the old
    GPUs are released, and it restores on the new ones for ``restore`` seconds before it
    progresses again.  Counted in ``migrations``, not ``preemptions``.
    """

    job_id: int
    gpus: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Resize:
    """Change a running (or restoring) elastic job's GPUs (grow or shrink), and optionally
    its per-GPU batch size, at the cost of a preemption.

    ``gpus`` is the whole new set (it may keep some or all of the job's GPUs); the GPUs it
    does not hold yet must be free now, all of one type (the type it runs on), with the
    CPU and memory shares on their nodes (CPU and memory scale with the GPU count) and the
    job's placement constraints.  The count must lie within the job's
    ``[min_gpus, max_gpus]`` (a job without them is not elastic: refused).  The GPUs change
    hands at once: the job checkpoints on the new set for ``scheduler.preemption.checkpoint``
    seconds (or its checkpoint size over the storage bandwidth), restores for ``restore``
    seconds and runs on at the cost model's rate for the new placement and batch size; its
    work done is kept.  An iteration job's work stays counted in iterations of its submitted
    global batch (GPUs x per-GPU batch): on n GPUs at per-GPU batch b it progresses at
    ``n b / (n0 b0) / iteration_time(placement, b)``, i.e. by samples processed (statistical
    efficiency is not charged by the engine).  A duration job's rate stays 1 (the cost
    model has nothing to scale it by).  Counted in ``migrations``.
    """

    job_id: int
    gpus: tuple[int, ...]
    batch_size: int | None = None


@dataclass(frozen=True, slots=True)
class Wakeup:
    """Invoke the policy again at simulated time ``at`` (e.g. when a job crosses a threshold)."""

    at: float


@dataclass(frozen=True, slots=True)
class ScaleService:
    """Set the number of replicas of an inference service (``workload.services[].name``).

    Scaling up adds pending replica jobs (``kind="inference-replica"``) that a policy places
    like any job; each pays its cold start once placed.  Scaling down retires the newest
    replicas first: pending ones, then loading ones, then serving ones (fewest outstanding
    requests first); a serving replica drains: it takes no new requests and releases its
    GPUs once it has finished those it holds.  The count is clipped to
    the service's ``replicas: {min, max}`` (a fixed ``replicas: N`` cannot be scaled).
    """

    service: str
    replicas: int


@dataclass(frozen=True, slots=True)
class AddNodes:
    """Provision ``count`` more nodes of an autoscaling pool (``cluster.pools[].autoscale``).

    The pool's lowest-numbered nodes that are not provisioned are billed from now on and
    become allocatable after the pool's ``provisioning_delay``; the pool's ``count`` is its
    maximum, and asking for more nodes than it has left is refused.
    """

    pool: str
    count: int = 1


@dataclass(frozen=True, slots=True)
class RemoveNodes:
    """Give back idle nodes (node indices) of autoscaling pools: billing stops at once.

    Each node must be up (provisioned, not failed) and idle (no job holds any of its
    GPUs, CPUs or memory), and its pool must keep at least ``autoscale.min`` nodes.
    """

    nodes: tuple[int, ...]


Action = Start | Preempt | Migrate | Resize | Wakeup | ScaleService | AddNodes | RemoveNodes
