"""Smallest-GPU-count-first: the example policy of docs/policies.md."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from lepsim.policies.base import HookPolicy, PolicyConfig


class SmallestFirstConfig(PolicyConfig):
    placement: Literal["first_fit", "best_fit", "pack", "spread", "topology", "frag"] = Field(
        "first_fit", description="placement strategy (lepsim.policies.placement)"
    )
    consolidate: Literal["prefer", "require", "none"] = Field(
        "prefer", description="prefer one node; require: wait for one node; none: spread over nodes"
    )
    max_gpus: int | None = Field(None, ge=0, description="admission: jobs asking more GPUs wait (null: no limit)")


class SmallestFirst(HookPolicy):
    """Start pending jobs with the fewest GPUs first (ties: submit order); never preempts.

    Jobs that do not fit now are passed over, so small jobs fill the gaps a large job
    at the head of a FIFO queue would leave idle (and large jobs may wait long).

    ```yaml
    scheduler:
      policy: smallest-first
      params: {placement: best_fit, max_gpus: 8}
    ```
    """

    name = "smallest-first"
    family = "static"
    reference = "example in docs/policies.md"
    Config = SmallestFirstConfig

    def admit(self, view, job):  # 1. admission: which pending jobs are considered now
        return self.config.max_gpus is None or job.gpus <= self.config.max_gpus

    def order(self, view, jobs):  # 2. queue order
        return sorted(jobs, key=lambda j: (j.gpus, j.job_id))

    # 4. allocate (inherited): in queue order, each job placed by 5. place (inherited:
    # FreeMap.place with the placement and consolidate parameters), passing over the
    # jobs that do not fit now; each start is recorded on the plan (plan.start).
