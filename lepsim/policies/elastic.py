"""Goodput-driven elasticity after Pollux (Qiao et al., OSDI'21).

* ``pollux``: elastic jobs (``min_gpus``/``max_gpus``) start on their fewest GPUs and
  grow, at rounds, by the largest marginal gain in goodput per GPU, where goodput =
  throughput (cost model) x statistical efficiency (gradient noise scale from the packaged
  Pollux gradient statistics).  See :class:`Pollux` for what is simplified.
"""
from __future__ import annotations

import functools
import heapq
import itertools
import math

from pydantic import Field, field_validator

from lepsim.engine.view import CHECKPOINTING, RUNNING
from lepsim.policies.actions import Preempt, Resize, Wakeup
from lepsim.policies.adaptive import _duration
from lepsim.policies.base import Policy, start_action
from lepsim.policies.builtin import PlacementConfig
from lepsim.policies.placement import SHARE_EPS, covers
from lepsim.policies.registry import register


@functools.lru_cache(maxsize=None)
def noise_scale(model: str | None, batch: float) -> float | None:
    """Gradient noise scale phi (samples) of ``model`` near global batch ``batch``, from the
    Pollux gradient statistics; None when the model has none.

    AdaptDL keeps ``grad_var`` normalised to the model's smallest validated batch M_v (its
    ``init_batch_size``), so phi = M_v x grad_var / grad_sqr.  The statistics of the two
    validated batches around ``batch`` are interpolated linearly (clamped to the range), as
    AdaptDL's simulator does; lepsim then takes the median of phi over the recorded epochs
    (one phi per job: no tracking over training progress)."""
    if model is None:
        return None
    from lepsim.costs.adapters import load_pollux_gradient_stats
    try:
        df = load_pollux_gradient_stats(model)
    except (FileNotFoundError, OSError):
        return None
    sizes = sorted(df["batch_size"].unique())
    m_v = float(sizes[0])
    lo = max([b for b in sizes if b <= batch], default=sizes[0])
    hi = min([b for b in sizes if b >= batch], default=sizes[-1])
    a, b = df[df["batch_size"] == lo], df[df["batch_size"] == hi]
    n = min(len(a), len(b))
    w = 0.0 if hi == lo else (min(max(batch, lo), hi) - lo) / (hi - lo)
    sqr = (1 - w) * a["grad_sqr"].to_numpy()[:n] + w * b["grad_sqr"].to_numpy()[:n]
    var = (1 - w) * a["grad_var"].to_numpy()[:n] + w * b["grad_var"].to_numpy()[:n]
    phis = sorted(m_v * v / s for v, s in zip(var, sqr) if s > 0)
    return phis[len(phis) // 2] if phis else None


def efficiency(phi: float | None, m0: float, m: float) -> float:
    """Pollux's statistical efficiency of global batch ``m`` relative to ``m0``:
    E(m) = (phi + m0) / (phi + m); 1.0 without a noise scale."""
    if phi is None:
        return 1.0
    return (phi + m0) / (phi + m)


def greedy(speedups: dict, current: dict, free: int) -> dict:
    """Give ``free`` GPUs one at a time to the job whose speedup grows most by one more GPU.

    ``speedups[j][n]`` is job j's speedup on n GPUs (index n; entries up to its maximum),
    ``current[j]`` its GPUs now; ties go to the lower job id.  Stops when no job gains.
    A heap of each job's next gain: O(free log jobs)."""
    target = dict(current)
    heap = []
    for j, n in target.items():
        s = speedups[j]
        if n + 1 < len(s) and s[n + 1] - s[n] > 0:
            heap.append((s[n] - s[n + 1], j))
    heapq.heapify(heap)
    for _ in range(free):
        if not heap:
            break
        _neg, j = heapq.heappop(heap)
        n = target[j] = target[j] + 1
        s = speedups[j]
        if n + 1 < len(s) and s[n + 1] - s[n] > 0:
            heapq.heappush(heap, (s[n] - s[n + 1], j))
    return target


class _Sized:
    """A job seen on ``gpus`` GPUs of ``gpu_type`` (CPU and memory in proportion), to place
    it with a FreeMap; every other attribute is the job's."""

    __slots__ = ("_job", "gpus", "gpu_type", "cpus", "memory_bytes")

    def __init__(self, job, gpus: int, gpu_type):
        self._job = job
        self.gpus = gpus
        self.gpu_type = gpu_type
        self.cpus = job.cpus / job.gpus * gpus
        self.memory_bytes = job.memory_bytes / job.gpus * gpus

    def __getattr__(self, name):
        return getattr(self._job, name)


class PolluxConfig(PlacementConfig):
    round: float | None = Field(
        None, description="seconds between reallocations (or a duration); null = scheduler.round, else 60 s")

    @field_validator("round", mode="before")
    @classmethod
    def _parse_round(cls, v):
        return None if v is None else _duration(v, positive=True)


@register
class Pollux(Policy):
    """Goodput-driven elastic allocation after Pollux (OSDI'21), simplified.

    An elastic job (``min_gpus``/``max_gpus``) with a cost profile has, on n GPUs of its
    type at its per-GPU batch b, goodput(n) = n b / iteration_time(n GPUs packed, b) x
    E(n b), with Pollux's statistical efficiency E(M) = (phi + M0) / (phi + M) relative to
    its submitted global batch M0, phi the gradient noise scale from the packaged Pollux
    gradient statistics (:func:`noise_scale`; efficiency 1 for models without them, e.g.
    every non-Pollux model).

    Admission, at every decision: pending jobs in order of ``priority`` (highest first),
    then submit order; elastic jobs start on their ``min_gpus``, rigid jobs (inference
    replicas included) on their ``gpus``.  A job that finds no room *makes* room:

    * when it fits in one node, on the one node of its type where it costs least: running
      elastic jobs of its priority or lower there shrink (least loss of speedup first,
      never below ``min_gpus``);
      a job of a higher ``priority`` may also preempt jobs of lower priority on that node
      (the fewest GPUs preempted first; they checkpoint and wait, and the job starts on
      their GPUs when the checkpoints end; meanwhile what it needs of the node's free
      GPUs, CPUs and memory is held for it, and it starts at once where room frees otherwise).
      Room is GPUs and the job's CPU and memory shares there; nothing is shrunk or
      preempted on a node where no room can be made;
    * a larger job: elastic jobs of its type and priority or lower shrink by count (least
      loss first), when the job then places on what they free.

    Jobs that still find no room wait (the round's growth may take the free GPUs).  At each
    round (``round``) the free GPUs of each type go one at a time to the running
    elastic job whose speedup goodput(n)/goodput(min_gpus) grows most by one more GPU; a
    job is resized only when the gain pays for the move's checkpoint and restore over the
    time it can expect to keep the new allocation, estimated by the time it has run so far
    (at least one round; for heavy-tailed job sizes the expected remaining time grows with
    the time already run): goodput(new) x (H - checkpoint - restore) > goodput(now) x H,
    H = max(round, executed time).

    With inference services this is the elastic half of the adaptive family: under
    ``inference-autoscaler`` with ``base: pollux``, a new replica (priority 100) shrinks
    elastic training jobs on an A100 node instead of preempting them, and when the
    replicas are retired the training jobs grow back into the freed GPUs at the next round.

    Simplifications against Pollux: no genetic algorithm over the whole cluster (greedy
    increments; running jobs never give GPUs to each other except to admit pending jobs);
    the per-GPU batch is kept (no batch-size or learning-rate re-tuning; a ``Resize``
    could change it); one noise scale per job (median over the recorded epochs, not
    tracked over progress); the engine counts progress by samples processed and does not
    charge efficiency, so efficiency shapes decisions only; no fairness exponent p; the
    re-allocation penalty is the job's own checkpoint and restore time over the horizon H
    above, not Pollux's fixed 10 % of speedup; priorities are lepsim's (Pollux has none).

    ```yaml
    workload:
      jobs:
        - {gpus: 1, min_gpus: 1, max_gpus: 4, model: cifar10, batch_size: 128, iterations: 20000}
    scheduler:
      policy: pollux
      params: {round: 60s}
      preemption: {checkpoint: 10s, restore: 20s}
    ```
    """

    name = "pollux"
    family = "adaptive"
    reference = ("Qiao et al., Pollux: Co-adaptive Cluster Scheduling for Goodput-Optimized Deep Learning, "
                 "OSDI'21 (statistical efficiency from the gradient noise scale; AdaptDL)")
    Config = PolluxConfig

    def __init__(self, config=None):
        super().__init__(config)
        self._next_round = -math.inf
        self._speedups: dict[tuple, list[float]] = {}
        self._m0: dict[int, float] = {}   # job -> submitted global batch (GPUs x per-GPU batch)
        self._gpn: dict = {}              # GPU type -> GPUs per node
        self._vacating: dict[int, tuple] = {}  # waiting job -> (node, jobs preempted for it, GPUs, type)

    # --- goodput
    def _round_s(self, view) -> float:
        r = self.config.round
        return r if r is not None else (view.round_length or 60.0)

    def _goodputs(self, view, job, gpu_type) -> list[float]:
        """goodput(n) for n = 0..max_gpus (samples/s x efficiency; 0 where not costed)."""
        req = job.request
        b = view.batch_size(job)
        m0 = self._m0.setdefault(job.job_id, job.gpus * b)
        # the same for every job of one model, type, batch, submitted batch and maximum
        key = (req.model, gpu_type, b, m0, req.max_gpus, req.iterations is None)
        g = self._speedups.get(key)
        if g is None:
            gpn = self._gpus_per_node(view, gpu_type)
            phi = noise_scale(req.model, m0) if req.iterations is not None else None
            g = [0.0]
            for n in range(1, req.max_gpus + 1):
                if req.iterations is None:
                    g.append(1.0)
                    continue
                full, rest = divmod(n, gpn) if gpn else (0, 0)
                packed = (gpn,) * full + ((rest,) if rest else ())
                tput = view.throughput(job, gpu_type, packed) if gpn else 0.0
                g.append(n * b * tput * efficiency(phi, m0, n * b))
            self._speedups[key] = g
        return g

    def _gpus_per_node(self, view, gpu_type) -> int:
        gpn = self._gpn.get(gpu_type)
        if gpn is None:
            gpn = self._gpn[gpu_type] = view.gpus_per_node(gpu_type) if gpu_type is not None else 0
        return gpn

    def _speedup(self, view, job, gpu_type) -> list[float]:
        g = self._goodputs(view, job, gpu_type)
        base = g[job.request.min_gpus]
        return [x / base if base > 0 else 0.0 for x in g]

    # --- decisions
    def decide(self, view):
        now = view.now
        round_due = now >= self._next_round - 1e-9
        if not round_due and not view.pending_count():
            return []   # nothing to admit, no round due (its Wakeup is pending)
        fm = view.free_map()
        cfg = self.config
        plan = _Plan(view, fm)
        running = view.running()
        # one pass: the running elastic jobs, the GPUs they hold above min_gpus per type
        # (spare), and the lowest class running (a higher one may preempt it)
        elastic_running, spare, low = [], {}, None
        for j in running:
            if low is None or j.priority < low:
                low = j.priority
            lo = j.request.min_gpus
            if lo is not None and j.state == RUNNING:
                elastic_running.append(j)
                t = j.allocated_gpu_type
                spare[t] = spare.get(t, 0) + j.gpus - lo
        pending = list(view.pending())
        if any(j.priority != pending[0].priority for j in pending):
            pending.sort(key=lambda j: -j.priority)   # stable: submit order inside a class
        # 1. admission: elastic jobs on min_gpus, making room when needed
        all_types = view.gpu_types
        self._vacating = {k: v for k, v in self._vacating.items()
                          if any(view.job(x).state == CHECKPOINTING for x in v[1])}
        for job in pending:
            req = job.request
            if req.min_gpus is not None and job.job_id not in self._m0:  # as submitted
                self._m0[job.job_id] = job.gpus * view.batch_size(job)
            if job.gpus == 0:
                placed = fm.place(job, cfg.placement, cfg.consolidate)
                if placed is not None:
                    plan.actions.append(start_action(job, placed))
                continue
            hold = self._vacating.get(job.job_id)
            if hold is not None:   # its room is being vacated: it starts if room frees otherwise, else keeps it
                sized = _Sized(job, hold[2], hold[3])
                placed = fm.place(sized, cfg.placement, "require" if cfg.consolidate != "none" else "none")
                if placed is not None:
                    plan.actions.append(start_action(job, placed))
                    del self._vacating[job.job_id]
                else:
                    _hold_node(fm, hold[0], sized)
                continue
            n = req.min_gpus if req.min_gpus is not None else job.gpus
            can_preempt = low is not None and job.priority > low
            # an untyped job: the types with most free GPUs first (the first that takes it)
            types = ((job.gpu_type,) if job.gpu_type is not None else all_types if len(all_types) < 2
                     else sorted(all_types, key=lambda x: -fm.free_gpus(x)))
            # an elastic job on min_gpus, else on the GPUs it asked for (which may place where
            # fewer cannot: consolidate=require keeps a job that fits a node's GPUs on one
            # node, whose CPUs or memory may be short)
            sizes = (n,) if n == job.gpus else (n, job.gpus)
            for t, k in itertools.product(types, sizes):
                if self._admit(plan, job, k, t, spare, can_preempt, running, elastic_running):
                    break
        actions = plan.actions
        # 2. at rounds: grow running elastic jobs by marginal speedup, with hysteresis
        R = self._round_s(view)
        if round_due:
            self._next_round = now + R
            by_type: dict = {}
            for j in elastic_running:
                if not plan.touched(j.job_id) and j.request.iterations is not None:
                    by_type.setdefault(j.allocated_gpu_type, []).append(j)
            for t, jobs in by_type.items():
                budget = fm.free_gpus(t)   # the GPUs held for vacated room are off the map
                if budget <= 0:
                    continue
                sp = {j.job_id: self._speedup(view, j, t) for j in jobs}
                cur = {j.job_id: j.gpus for j in jobs}
                target = greedy(sp, cur, budget)
                for j in jobs:
                    n0, n1 = cur[j.job_id], target[j.job_id]
                    if n1 <= n0:
                        continue
                    g = self._goodputs(view, j, t)
                    ckpt, restore = view.preemption_costs(j)   # with storage: this job's estimate
                    H = max(R, j.executed_time)
                    if not (g[n1] * (H - ckpt - restore) > g[n0] * H):
                        continue
                    extra = fm.place(_Sized(j, n1 - n0, t), cfg.placement, cfg.consolidate)
                    if extra is not None:
                        actions.append(Resize(j.job_id, tuple(sorted(j.allocated_gpus + tuple(extra)))))
            actions.append(Wakeup(self._next_round))
        return actions

    def _admit(self, plan, job, n: int, t, spare: dict, can_preempt: bool, running, elastic_running) -> bool:
        """Start ``job`` on ``n`` GPUs of type ``t``, making room if needed; True when it
        started or waits for room being vacated for it (no other type is tried then)."""
        fm, cfg = plan.fm, self.config
        free = fm.free_gpus(t)
        if free + spare.get(t, 0) < n and not can_preempt and job.gpu_fraction == 1.0:
            return False   # a quick count reject (long queues); a GPU share may fit on a partly used GPU
        sized = _Sized(job, n, t)
        placed = None
        if spare.get(t, 0) > 0 or can_preempt:   # room could be made
            if n <= self._gpus_per_node(plan.view, t) and cfg.consolidate != "none":
                placed = fm.place(sized, cfg.placement, "require")   # one node, as it is
                if placed is None:
                    freed, later = self._room_on_node(plan, sized, t, n, running, can_preempt)
                    spare[t] = spare.get(t, 0) - freed
                    if later:
                        return True
            elif free < n:
                spare[t] = spare.get(t, 0) - self._shrink(plan, sized, t, n - free, elastic_running)
        if placed is None:
            placed = fm.place(sized, cfg.placement, cfg.consolidate)
        if placed is not None:
            plan.actions.append(start_action(job, placed))
            return True
        return False

    def _room_on_node(self, plan, job, t, n: int, running, can_preempt: bool) -> tuple[int, bool]:
        """Make room for ``job`` (``n`` GPUs of type ``t``, fitting one node) on the one
        allowed node where it costs least (fewest GPUs preempted, then least loss): shrink
        elastic jobs of its class or lower there (least loss of speedup first; a job already shrunk in this
        decision may shrink further) and, when that is not enough and ``can_preempt``,
        preempt jobs of lower priority there (the lowest class, the latest submitted first;
        the elastic jobs counted as shrinking last, a preempted one's shrink undone),
        until the node has the job's GPUs and its CPU and memory shares; then the
        preemptions and shrinks that turn out not to be needed are dropped (a fractional
        job's GPU counts as freed only when no other job shares it).  Returns (GPUs freed at
        once by shrinking, whether the job must wait for preemptions' checkpoints); (0, False)
        and no action when no node can make the room."""
        view, fm = plan.view, plan.fm
        here = plan.by_node(running)   # node -> job id -> its GPUs there
        best = None
        want = (n, job.cpus, job.memory_bytes)
        for i in fm.nodes_by_type.get(t, ()):
            if fm.gpn[i] < n or not fm.allowed(i, job):
                continue
            jobs = here.get(i, {})
            # what the node has free, GPUs, CPUs and memory: the job needs its CPU and memory shares too
            have = [len(fm.free[i]), fm.cpus[i], fm.mem[i]]
            if not jobs and _short(have, want):
                continue
            cand = {}   # elastic jobs here: (speedups, GPUs now, most they can give here, CPUs and memory per GPU)
            for jid, gl in jobs.items():
                j = view.job(jid)
                if j.request.min_gpus is not None and j.state == RUNNING and j.priority <= job.priority:
                    cur = len(plan.gpus(j))
                    cand[jid] = (self._speedup(view, j, t), cur, min(len(gl), cur - j.request.min_gpus),
                                 j.cpus / j.gpus, j.memory_bytes / j.gpus)
            cut: dict[int, int] = {}
            steps: list[tuple[int, float]] = []   # (job, loss) per GPU cut, in order
            loss = 0.0
            extra = False   # gone past what counting whole GPUs alone needs (CPUs, memory, shared GPUs)
            while _short(have, want):   # one GPU at a time from the elastic job that loses least
                extra |= have[0] >= want[0]
                ok = [(sp[cur - cut.get(k, 0)] - sp[cur - cut.get(k, 0) - 1], k)
                      for k, (sp, cur, most, _c, _m) in cand.items() if cut.get(k, 0) < most]
                if not ok:
                    break
                d, k = min(ok)
                cut[k] = cut.get(k, 0) + 1
                steps.append((k, d))
                loss += d
                _free(have, (1, cand[k][3], cand[k][4]))
            drop: list[int] = []
            if _short(have, want):
                if not can_preempt:
                    continue
                # the jobs counted as shrinking come last: preempting one undoes its shrink
                victims = sorted((view.job(jid) for jid in jobs if not plan.touched(jid)),
                                 key=lambda j: (j.job_id in cut, j.priority, -j.submit_time, -j.job_id))
                gives = {}
                for j in victims:
                    if not _short(have, want):
                        break
                    extra |= have[0] >= want[0]
                    if j.priority < job.priority and j.state == RUNNING:
                        c = cut.pop(j.job_id, 0)
                        if c:
                            _free(have, (c, cand[j.job_id][3] * c, cand[j.job_id][4] * c), -1)
                            loss -= sum(d for k, d in steps if k == j.job_id)
                            steps = [(k, d) for k, d in steps if k != j.job_id]
                            extra = True
                        drop.append(j.job_id)
                        gives[j.job_id] = g = _vacated(fm, i, j, jobs[j.job_id])
                        extra |= g[0] < len(jobs[j.job_id])
                        _free(have, g)
                if _short(have, want):
                    continue
            if drop and extra:   # keep only the preemptions (and shrinks) needed
                for x in reversed(drop[:-1]):
                    _free(have, gives[x], -1)
                    if _short(have, want):
                        _free(have, gives[x])
                    else:
                        drop.remove(x)
                for k, d in reversed(steps):   # and only the shrinks still needed beside them
                    g = (1, cand[k][3], cand[k][4])
                    _free(have, g, -1)
                    if _short(have, want):
                        _free(have, g)
                    else:
                        cut[k] -= 1
                        loss -= d
                        if not cut[k]:
                            del cut[k]
            key = (sum(len(jobs[x]) for x in drop), loss, i)
            if best is None or key < best[0]:
                best = (key, i, cut, drop)
        if best is None:
            return 0, False
        _key, i, cut, drop = best
        freed = 0
        for jid, k in sorted(cut.items()):
            j = view.job(jid)
            mine = here[i][jid]
            plan.shrink(j, mine[len(mine) - k:])
            freed += k
        if drop:
            for jid in drop:
                plan.preempt(jid)
            self._vacating[job.job_id] = (i, tuple(drop), n, t)
            _hold_node(fm, i, job)
            return freed, True
        return freed, False

    def _shrink(self, plan, job, t, need: int, running) -> int:
        """Free ``need`` GPUs of type ``t`` for ``job`` by shrinking running elastic jobs
        of its class or lower (least loss of speedup per GPU first); nothing when they cannot free enough, or when
        ``job`` would still not be placed on what they free (its node selector or tenant
        isolation, CPUs, memory: tried on a copy of the map).  Returns the GPUs freed."""
        view = plan.view
        jobs = [j for j in running if j.allocated_gpu_type == t and j.job_id not in plan.dropped
                and len(plan.gpus(j)) > j.request.min_gpus and j.priority <= job.priority]
        if sum(len(plan.gpus(j)) - j.request.min_gpus for j in jobs) < need:
            return 0
        target = {j.job_id: len(plan.gpus(j)) for j in jobs}
        sp = {j.job_id: self._speedup(view, j, t) for j in jobs}
        for _ in range(need):
            jid = min((k for k in target if target[k] > view.job(k).request.min_gpus),
                      key=lambda k: (sp[k][target[k]] - sp[k][target[k] - 1], k))
            target[jid] -= 1
        gives = []
        for j in jobs:
            held = plan.gpus(j)
            n1 = target[j.job_id]
            if n1 != len(held):
                keep = _keep(view, held, n1)
                gives.append((j, [g for g in held if g not in keep], keep))
        trial = plan.fm.copy()
        for j, give, keep in gives:
            trial.release(j, view.node_of, give, keep)
        if trial.place(job, self.config.placement, self.config.consolidate) is None:
            return 0   # shrinking would not admit it: no Resize for nothing
        for j, give, _keep_ in gives:
            plan.shrink(j, give)
        return need


class _Plan:
    """One decision's actions on a scratch FreeMap, where a running job may shrink more
    than once (one ``Resize`` per job, kept at the place of its first shrink so that the
    ``Start`` actions using the GPUs it gives back come after it) or be preempted."""

    __slots__ = ("view", "fm", "actions", "_resized", "dropped", "_here")

    def __init__(self, view, fm):
        self.view, self.fm = view, fm
        self.actions: list = []
        self._resized: dict[int, tuple[int, tuple]] = {}   # job -> (index in actions, GPUs it keeps)
        self.dropped: set[int] = set()
        self._here: dict | None = None

    def by_node(self, running) -> dict[int, dict[int, list[int]]]:
        """node -> running job id -> the GPUs it holds there (after this decision's shrinks
        and preemptions), built on first use."""
        if self._here is None:
            here: dict[int, dict[int, list[int]]] = {}
            node_of = self.view.node_of
            for j in running:
                for g in j.allocated_gpus:
                    here.setdefault(node_of(g), {}).setdefault(j.job_id, []).append(g)
            self._here = here
            for jid in self.dropped:
                self._forget(jid)
            for jid, (_i, keep) in self._resized.items():
                self._keep_only(jid, keep)
        return self._here

    def _forget(self, jid: int) -> None:
        for jobs in self._here.values():
            jobs.pop(jid, None)

    def _keep_only(self, jid: int, keep) -> None:
        k = set(keep)
        for jobs in self._here.values():
            if jid in jobs:
                jobs[jid] = [g for g in jobs[jid] if g in k]

    def gpus(self, job) -> tuple:
        r = self._resized.get(job.job_id)
        return r[1] if r is not None else job.allocated_gpus

    def touched(self, jid: int) -> bool:
        return jid in self._resized or jid in self.dropped

    def shrink(self, job, give) -> None:
        keep = tuple(sorted(g for g in self.gpus(job) if g not in give))
        self.fm.release(job, self.view.node_of, give, keep)   # applied at once by the engine: later Starts may use them
        r = self._resized.get(job.job_id)
        if r is None:
            self._resized[job.job_id] = (len(self.actions), keep)
            self.actions.append(Resize(job.job_id, keep))
        else:
            self.actions[r[0]] = Resize(job.job_id, keep)
            self._resized[job.job_id] = (r[0], keep)
        if self._here is not None:
            self._keep_only(job.job_id, keep)

    def preempt(self, jid: int) -> None:
        self.dropped.add(jid)
        self.actions.append(Preempt(jid))
        if self._here is not None:
            self._forget(jid)


def _keep(view, gpus, n: int) -> tuple[int, ...]:
    """The ``n`` of ``gpus`` to keep: those on the nodes holding most of them."""
    per: dict[int, list[int]] = {}
    for g in gpus:
        per.setdefault(view.node_of(g), []).append(g)
    order = sorted(per, key=lambda i: (-len(per[i]), i))
    out = [g for i in order for g in per[i]]
    return tuple(sorted(out[:n]))


def _short(have, want) -> bool:
    """``have`` (a node's free GPUs, CPUs, memory) falls short of ``want``."""
    return have[0] < want[0] or not covers(have[1], want[1]) or not covers(have[2], want[2])


def _free(have, give, sign: int = 1) -> None:
    """Count ``give`` = (GPUs, CPUs, memory) as freed on the node (``sign=-1``: no longer)."""
    for x in range(3):
        have[x] += sign * give[x]


def _vacated(fm, i: int, job, gpus) -> tuple:
    """(GPUs, CPUs, memory) a preempted ``job`` frees on node ``i``, where it holds ``gpus``:
    a GPU shared with other fractional jobs stays taken."""
    if getattr(job, "gpu_fraction", 1.0) < 1.0:
        (g,) = gpus
        alone = fm.used[i].get(g, 0.0) <= job.gpu_fraction + SHARE_EPS
        return (1 if alone else 0), job.cpus, job.memory_bytes
    k = len(gpus)
    return k, job.cpus / job.gpus * k, job.memory_bytes / job.gpus * k


def _hold_node(fm, i: int, job) -> None:
    """Take what ``job`` (sized) needs of node ``i``'s free GPUs, CPUs and memory off a
    scratch FreeMap: they wait for it while its room is being vacated there (no one after
    it starts or grows on them in this decision); the rest stays free."""
    k = min(len(fm.free[i]), job.gpus)
    if k:
        fm.free_total[fm.node_type[i]] -= k
        fm.free[i] = fm.free[i][k:]
    fm.cpus[i] -= max(0.0, min(fm.cpus[i], job.cpus))
    fm.mem[i] -= max(0.0, min(fm.mem[i], job.memory_bytes))
