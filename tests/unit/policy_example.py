"""Smallest-GPU-count-first: the example policy of docs/policies.md."""
from __future__ import annotations

from typing import Literal

from pydantic import Field

from lepsim.policies.actions import Start
from lepsim.policies.base import Policy, PolicyConfig


class SmallestFirstConfig(PolicyConfig):
    consolidate: Literal["prefer", "require", "none"] = Field(
        "prefer", description="prefer one node; require: wait for one node; none: spread over nodes"
    )


class SmallestFirst(Policy):
    """Start pending jobs with the fewest GPUs first (ties: submit order); never preempts.

    Jobs that do not fit now are passed over, so small jobs fill the gaps a large job
    at the head of a FIFO queue would leave idle (and large jobs may wait long).
    """

    name = "smallest-first"
    family = "static"
    reference = "example in docs/policies.md"
    Config = SmallestFirstConfig

    def decide(self, view):
        free = view.free_map()  # private scratch copy: each placement takes its resources
        actions = []
        for job in sorted(view.pending(), key=lambda j: (j.gpus, j.job_id)):
            placed = free.first_fit(job, self.config.consolidate)
            if placed is None:
                continue  # does not fit now: try the next job
            if job.gpus == 0:  # a CPU-only job is placed on a node: ("node", index)
                actions.append(Start(job.job_id, (), node=placed[1]))
            else:
                actions.append(Start(job.job_id, placed))
        return actions
