"""The cost-model interface the engine uses.

A cost model is a pure function of (job, allocation) → seconds: no simulation state.
The engine measures a job's progress in *work units*: reference seconds for a job that
gives a ``duration``, iterations for a job that gives ``iterations``.  ``rate`` says how
many work units per second the job makes on an allocation, so its remaining runtime is
``remaining_work / rate``; the engine reschedules the completion when the rate changes.

:class:`CostModel` implements the duration jobs itself (rate 1 on any allocation: the
duration is the job's runtime on the allocation it asked for) and delegates iteration
jobs to :meth:`CostModel.iteration_time`, which the profile-based model overrides.
"""
from __future__ import annotations

from typing import Iterable, Protocol


class MissingProfile(LookupError):
    """No measured profile (nor what is needed to extrapolate) for a (model, GPU) pair."""

    def __init__(self, model: str | None, gpu_type: str, detail: str = ""):
        self.model = model
        self.gpu_type = gpu_type
        msg = f"no cost profile for model {model!r} on GPU type {gpu_type!r}"
        super().__init__(msg + (f" ({detail})" if detail else ""))


class JobLike(Protocol):
    model: str | None
    duration: float | None
    iterations: float | None
    batch_size: int | None
    gpus: int


class CostModel:
    """Base cost model: duration jobs run at rate 1; iteration jobs need a profile."""

    name = "reference"

    # --- what the profile-based model overrides -------------------------------------
    def iteration_time(
        self, model: str | None, gpu_type: str, placement: tuple[int, ...], batch_size: int | None = None
    ) -> float:
        """Seconds per training iteration of ``model`` on ``placement`` (GPUs per node)."""
        raise MissingProfile(model, gpu_type, "this cost model has no profiles")

    def supports(self, model: str | None, gpu_type: str) -> bool:
        """True when :meth:`iteration_time` can answer for this pair."""
        return False

    def param_count(self, model: str | None) -> int | None:
        """The model's parameter count where the catalog knows its exact architecture (None: unknown)."""
        return None

    # --- what the engine calls ---------------------------------------------------------
    def work(self, job: JobLike) -> float:
        """Total work units of a job (reference seconds or iterations)."""
        if job.iterations is not None:
            return float(job.iterations)
        assert job.duration is not None
        return float(job.duration)

    def rate(self, job: JobLike, gpu_type: str | None, placement: tuple[int, ...]) -> float:
        """Work units per second of ``job`` on ``placement`` GPUs of ``gpu_type``."""
        if job.iterations is None:
            return 1.0
        return 1.0 / self.iteration_time(job.model, gpu_type or "cpu", placement, job.batch_size)

    def problems(self, job: JobLike, gpu_types: Iterable[str]) -> list[str]:
        """Why ``job`` cannot be costed on the cluster's GPU types (empty list: it can).

        An iteration job needs a profile on at least one GPU type it may be placed on.
        """
        if job.iterations is None:
            return []
        types = list(gpu_types)
        if any(self.supports(job.model, g) for g in types):
            return []
        return [
            f"model {job.model!r} has no cost profile on any GPU type it may use "
            f"({', '.join(types) or 'none'}); give a duration instead, or add a profile"
        ]
