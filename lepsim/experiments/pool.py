"""Run independent tasks on a local process pool, handing each result back as it finishes."""
from __future__ import annotations

import os
from typing import Any, Callable, Sequence


def default_workers() -> int:
    """The CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover (not Linux)
        return max(1, os.cpu_count() or 1)


def run_tasks(fn: Callable[[Any], Any], tasks: Sequence, workers: int, done: Callable[[int, Any], None]) -> None:
    """Call ``done(i, fn(tasks[i]))`` for every task: in this process when ``workers`` ≤ 1
    (or one task), else on a ``concurrent.futures`` process pool (``fn`` and the tasks must
    pickle).  Results arrive as tasks finish; ``done`` always runs in this process.  On an
    exception (or Ctrl-C) the tasks not yet started are cancelled and it propagates."""
    if workers <= 1 or len(tasks) <= 1:
        for i, t in enumerate(tasks):
            done(i, fn(t))
        return
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait

    with ProcessPoolExecutor(max_workers=min(workers, len(tasks))) as pool:
        pending = {pool.submit(fn, t): i for i, t in enumerate(tasks)}
        try:
            while pending:
                ready, _ = wait(pending, return_when=FIRST_COMPLETED)
                for f in sorted(ready, key=pending.__getitem__):
                    done(pending.pop(f), f.result())
        except BaseException:
            for f in pending:
                f.cancel()
            raise
