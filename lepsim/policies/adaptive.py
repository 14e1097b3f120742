"""Adaptive policies: they change allocations from observed state and the cost model.

* ``gavel`` / ``gavel-throughput``: heterogeneity-aware allocation after Gavel (OSDI'20):
  an allocation matrix of time fractions per (job, GPU type), the optimum of a linear
  program over the jobs' throughputs on each type (scipy's HiGHS), realised in rounds.
* ``cloud-autoscaler``: FIFO placement; cloud pools grow with the queue (AddNodes, after a
  provisioning delay) and give back idle nodes (RemoveNodes); billed per node-hour.
"""
from __future__ import annotations

import math

import numpy as np
from pydantic import Field, field_validator

from lepsim.policies.actions import AddNodes, Preempt, RemoveNodes, Start, Wakeup
from lepsim.policies.base import Policy
from lepsim.policies.builtin import PlacementConfig, QueueConfig, _place_in_order
from lepsim.policies.placement import OfType
from lepsim.policies.registry import register
from lepsim.units import UnitError, parse_duration

DEFAULT_ROUND_S = 360.0  # Gavel's default round (its --time_per_iteration, 6 minutes)


# ----------------------------------------------------------------------------- the LP
def solve_allocation(tput, gpus, capacity, objective: str = "max_min") -> np.ndarray:
    """The Gavel allocation: X[j, t] = fraction of time job j should run on GPU type t.

    ``tput[j, t]``: job j's throughput on type t (work units/s; 0 = cannot run there),
    ``gpus[j]``: GPUs the job needs (gang), ``capacity[t]``: GPUs of type t.

    Constraints: Σ_t X[j,t] ≤ 1 (a job runs on one type at a time), Σ_j gpus_j X[j,t] ≤
    capacity_t, X ≥ 0, X[j,t] = 0 where tput is 0.  Each job's throughput is normalised by
    its *equal-share* throughput ref_j = Σ_t (capacity_t / Σ capacity) tput[j,t] (what it
    makes with its time spread over the types in proportion to their size, ignoring
    heterogeneity), and weighted by its GPUs, so that one unit is one GPU of equal share:
    u_j(X) = gpus_j Σ_t X[j,t] tput[j,t] / ref_j.

    * ``"max_min"``: maximise min_j u_j (Gavel's heterogeneity-aware max-min fairness),
      then, with every u_j held at ≥ that minimum, maximise Σ_j u_j (no idle capacity
      left when a job can use it).
    * ``"max_throughput"``: maximise Σ_j u_j (the total normalised throughput).

    With a single GPU type every u_j is gpus_j X_j and the answer is the water-filling
    solution X_j = min(1, z / gpus_j) with Σ_j min(gpus_j, z) = capacity (an optimum of
    both LPs, the max-min-fair one), computed in closed form.  Otherwise the LP is solved
    with ``scipy.optimize.linprog(method="highs")`` over classes of identical jobs (same
    throughputs and GPUs), each class's allocation split evenly among its jobs.
    """
    tput = np.asarray(tput, dtype=float)
    gpus = np.asarray(gpus, dtype=float)
    cap = np.asarray(capacity, dtype=float)
    J, T = tput.shape
    X = np.zeros((J, T))
    if J == 0 or T == 0:
        return X
    if T == 1:
        jobs = np.flatnonzero((tput[:, 0] > 0) & (gpus <= cap[0]))
        X[jobs, 0] = _water_fill(gpus[jobs], cap[0])
        return X
    # Jobs with identical (throughput row, GPUs) are interchangeable: both objectives are
    # symmetric in them and the feasible set is convex, so averaging an optimum over their
    # permutations is an optimum that gives each the same row.  Solve for one aggregate row
    # per class (up to n_c in "one type at a time") and split it evenly: exact, and the LP
    # has (classes x types) variables instead of (jobs x types).
    keys = [(tuple(row), gv) for row, gv in zip(tput.tolist(), gpus.tolist())]
    index: dict = {}
    cls = np.array([index.setdefault(k, len(index)) for k in keys])
    C = len(index)
    n = np.bincount(cls, minlength=C).astype(float)
    first = np.zeros(C, dtype=int)
    first[cls[::-1]] = np.arange(J)[::-1]
    Xc = _solve_classes(tput[first], gpus[first], n, cap, objective)
    return Xc[cls] / n[cls][:, None]


def _solve_classes(tput, gpus, n, cap, objective) -> np.ndarray:
    """The LP over job classes: X[c, t] = Σ over the n_c jobs of class c of their time
    fractions on type t; u_c = gpus_c Σ_t X[c,t] tput[c,t] / (ref_c n_c) per job."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    J, T = tput.shape
    X = np.zeros((J, T))
    total = cap.sum()
    ref = (tput * (cap / total)).sum(axis=1)
    pairs = np.argwhere((tput > 0) & (gpus[:, None] <= cap[None, :]))  # (class, type) variables
    if len(pairs) == 0:
        return X
    jj, tt = pairs[:, 0], pairs[:, 1]
    nv = len(pairs)
    coef = gpus[jj] * tput[jj, tt] / ref[jj] / n[jj]   # per-job u of class j per unit of X[j,t]
    k = np.arange(nv)
    # rows: J "one type at a time" (≤ n_c), T capacity
    rows = np.concatenate([jj, J + tt])
    cols = np.concatenate([k, k])
    vals = np.concatenate([np.ones(nv), gpus[jj]])
    b = np.concatenate([n, cap])
    bounds = [(0, n[j]) for j in jj]
    active = np.unique(jj)
    if objective == "max_throughput":
        A = coo_matrix((vals, (rows, cols)), shape=(J + T, nv)).tocsr()
        res = linprog(-coef * n[jj], A_ub=A, b_ub=b, bounds=bounds, method="highs")
        _check(res)
        X[jj, tt] = np.clip(res.x, 0.0, n[jj])
        return X
    # stage 1: max z  s.t.  z - u_c ≤ 0 for every class that can run somewhere
    pos = {j: i for i, j in enumerate(active)}
    urow = J + T + np.array([pos[j] for j in jj])
    A1 = coo_matrix(
        (np.concatenate([vals, -coef, np.ones(len(active))]),
         (np.concatenate([rows, urow, J + T + np.arange(len(active))]),
          np.concatenate([cols, k, np.full(len(active), nv)]))),
        shape=(J + T + len(active), nv + 1),
    ).tocsr()
    c1 = np.zeros(nv + 1)
    c1[nv] = -1.0
    res = linprog(c1, A_ub=A1, b_ub=np.concatenate([b, np.zeros(len(active))]),
                  bounds=bounds + [(0, None)], method="highs")
    _check(res)
    z = float(res.x[nv]) * (1 - 1e-7)
    # stage 2: max Σ_j u_j (= Σ_c n_c u_c)  s.t.  u_c ≥ z (as -u_c ≤ -z)
    A2 = coo_matrix((np.concatenate([vals, -coef]), (np.concatenate([rows, urow]), np.concatenate([cols, k]))),
                    shape=(J + T + len(active), nv)).tocsr()
    res = linprog(-coef * n[jj], A_ub=A2, b_ub=np.concatenate([b, np.full(len(active), -z)]), bounds=bounds,
                  method="highs")
    _check(res)
    X[jj, tt] = np.clip(res.x, 0.0, n[jj])
    return X


def _check(res) -> None:
    if res.status != 0:  # pragma: no cover - the LPs are feasible (X = 0) and bounded (X ≤ 1)
        raise RuntimeError(f"allocation LP failed: {res.message}")


def _water_fill(g: np.ndarray, cap: float) -> np.ndarray:
    """X_j = min(1, z / g_j) with Σ min(g_j, z) = cap (all 1 when everything fits)."""
    if len(g) == 0:
        return g
    if g.sum() <= cap:
        return np.ones(len(g))
    s = np.sort(g)
    left, n = cap, len(s)
    z = 0.0
    for i, v in enumerate(s):
        share = left / (n - i)
        if v >= share:
            z = share
            break
        left -= v
    return np.minimum(1.0, z / g)


# ----------------------------------------------------------------------------- the policy
def _duration(v, positive: bool) -> float:
    """A parameter in seconds or a duration string; > 0 (``positive``) or >= 0."""
    try:
        x = parse_duration(v)
    except UnitError as e:
        raise ValueError(str(e)) from None
    if x < 0 or (positive and x == 0):
        raise ValueError(f"found {v!r}, expected a duration {'> 0' if positive else '>= 0'}")
    return x


class GavelConfig(PlacementConfig):
    round: float | None = Field(
        None,
        description="round length (s or a duration); null = scheduler.round, or 360 s (Gavel's 6-minute "
        "rounds) when that is not set",
    )

    @field_validator("round", mode="before")
    @classmethod
    def _parse_round(cls, v):
        return None if v is None else _duration(v, positive=True)


_AsType = OfType  # a job seen as requiring one GPU type (lepsim.policies.placement)


class _Gavel(Policy):
    family = "adaptive"
    reference = ("Narayanan et al., Heterogeneity-Aware Cluster Scheduling Policies for Deep Learning "
                 "Workloads (Gavel), OSDI'20")
    Config = GavelConfig
    objective = "max_min"

    def __init__(self, config=None):
        super().__init__(config)
        self._next_round = -math.inf
        self._tput: dict[int, np.ndarray] = {}        # job -> throughput per GPU type (its own GPU count, packed)
        self._alloc: dict[int, np.ndarray] = {}       # job -> X row of the last solve
        self._solved_for: tuple = ()
        self._banked: dict[int, np.ndarray] = {}      # job -> seconds held on each type, finished stints
        self._stint: dict[int, tuple] = {}            # job -> (start time, type index) of its current stint
        self._plan: list[tuple] = []                  # (job id, type) chosen at the last round, not yet started
        self.lp_solves = 0

    # --- bookkeeping of the time each job received on each type
    def _account(self, view, running, types) -> None:
        tix = {t: i for i, t in enumerate(types)}
        stint = self._stint
        for job in running:
            if job.gpus == 0:
                continue
            st = stint.get(job.job_id)
            if st is None or st[0] != job.last_start_time:
                if st is not None:
                    self._bank(job.job_id, st, job.last_stop_time)
                stint[job.job_id] = (job.last_start_time, tix[job.allocated_gpu_type])
        if len(stint) > len(running):  # stopped since the last call (preempted by others, or done)
            live = {j.job_id for j in running}
            for jid in [j for j in stint if j not in live]:
                job = view.job(jid)
                self._bank(jid, stint.pop(jid), job.last_stop_time)
                if job.state == "done":
                    for d in (self._banked, self._tput, self._alloc):
                        d.pop(jid, None)

    def _bank(self, jid, st, end) -> None:
        if end is None or end < st[0]:
            return
        b = self._banked.get(jid)
        if b is None:
            b = self._banked[jid] = np.zeros(len(self._types))
        b[st[1]] += end - st[0]

    def _received(self, jid, now) -> np.ndarray:
        r = self._banked.get(jid)
        r = np.zeros(len(self._types)) if r is None else r.copy()
        st = self._stint.get(jid)
        if st is not None:
            r[st[1]] += now - st[0]
        return r

    def _throughputs(self, view, job) -> np.ndarray:
        v = self._tput.get(job.job_id)
        if v is None:
            v = np.array([
                view.throughput(job, t) if (job.gpu_type is None or job.gpu_type == t) else 0.0 for t in self._types
            ])
            self._tput[job.job_id] = v
        return v

    # --- decisions
    def decide(self, view):
        now = view.now
        self._types = view.gpu_types
        if now >= self._next_round - 1e-9:
            length = self.config.round or view.round_length or DEFAULT_ROUND_S
            self._next_round = now + length
            running = view.running()
            self._account(view, running, self._types)
            actions = self._round(view, running)
        else:
            # between rounds only the jobs this policy starts begin stints (recorded at Start)
            actions = self._fill(view, None, {})
        if view.pending_count() or view.free_gpus() < view.capacity():
            actions.append(Wakeup(self._next_round))
        return actions

    def _round(self, view, running) -> list:
        now = view.now
        types = self._types
        pending = [j for j in view.pending()]
        actions: list = []
        if not pending and (view.free_gpus() == 0 or len(types) == 1):
            self._plan = []
            return actions  # nobody waits and no job could move to a better type
        jobs = [j for j in running if j.gpus > 0] + [j for j in pending if j.gpus > 0]
        key = tuple(sorted(j.job_id for j in jobs))
        if key != self._solved_for:
            T = np.array([self._throughputs(view, j) for j in jobs]).reshape(len(jobs), len(types))
            X = solve_allocation(T, [j.gpus for j in jobs], [view.capacity(t) for t in types], self.objective)
            self.lp_solves += 1
            self._alloc = {j.job_id: X[i] for i, j in enumerate(jobs)}
            self._solved_for = key
        # priority of (job, type) = allocation / fraction of its time in the system received there
        cands = []
        for j in jobs:
            x = self._alloc[j.job_id]
            tp = self._tput[j.job_id]
            age = max(now - j.submit_time, 1e-9)
            rec = self._received(j.job_id, now) / age
            cur = types.index(j.allocated_gpu_type) if j.allocated_gpus else -1
            for ti in range(len(types)):
                if tp[ti] <= 0 or j.gpus > view.capacity(types[ti]):
                    continue
                xv = x[ti]
                prio = 0.0 if xv <= 1e-9 else (math.inf if rec[ti] <= 0 else xv / rec[ti])
                cands.append((-prio, -xv, ti != cur, j.job_id, ti, j))
        cands.sort(key=lambda c: c[:5])
        free = {t: view.free_gpus(t) for t in types}
        held = {t: 0 for t in types}
        for j in running:
            if j.gpus:
                held[j.allocated_gpu_type] += j.gpus
        room = {t: free[t] + held[t] for t in types}  # GPUs not checkpointing
        chosen: dict[int, int] = {}
        for c in cands:
            j, ti = c[5], c[4]
            t = types[ti]
            if j.job_id in chosen or room[t] < j.gpus:
                continue
            chosen[j.job_id] = ti
            room[t] -= j.gpus
        ckpt, _ = view.preemption_costs()
        fm = view.free_map()
        draining: dict[str, int] = {}
        for j in running:
            if j.gpus == 0:
                continue
            ti = chosen.get(j.job_id)
            if ti is not None and types[ti] == j.allocated_gpu_type:
                continue
            actions.append(Preempt(j.job_id))
            st = self._stint.pop(j.job_id, None)
            if st is not None:
                self._bank(j.job_id, st, now)
            if ckpt == 0:
                fm.release(j, view.node_of)
            else:
                draining[j.allocated_gpu_type] = draining.get(j.allocated_gpu_type, 0) + j.gpus
        running_ids = {j.job_id for j in running}
        self._plan = [(c[3], types[chosen[c[3]]]) for c in cands
                      if chosen.get(c[3]) == c[4] and c[3] not in running_ids]
        actions.extend(self._fill(view, fm, draining, preempted={a.job_id for a in actions}))
        return actions

    def _fill(self, view, fm, draining: dict, preempted=frozenset()) -> list:
        """Start the round's chosen jobs that fit now; then, work-conserving, other pending
        jobs (in id order) on their fastest type, on GPUs the chosen ones do not wait for."""
        out: list = []
        if view.pending_count() == 0:
            self._plan = []
            return out
        if fm is None:
            if view.free_gpus() == 0:
                return out  # (a 0-GPU job waits for the next call with a GPU free)
            fm = view.free_map()
        cfg = self.config
        strategy = cfg.placement  # a FreeMap strategy name (first_fit, best_fit, pack, ...)
        types = self._types
        tix = {t: i for i, t in enumerate(types)}
        now = view.now
        waiting: dict[str, int] = {}
        plan_ids = set()
        still = []
        for jid, t in self._plan:
            job = view.job(jid)
            if job.state != "pending":
                continue
            plan_ids.add(jid)
            placed = fm.first_fit(_AsType(job, t), cfg.consolidate, strategy) if fm.free_gpus(t) >= job.gpus else None
            if placed is None:
                waiting[t] = waiting.get(t, 0) + job.gpus
                still.append((jid, t))
            else:
                out.append(Start(jid, placed))
                self._stint[jid] = (now, tix[t])
        self._plan = still
        spare = {t: fm.free_gpus(t) - max(0, w - draining.get(t, 0)) for t, w in waiting.items()}
        for t in types:
            spare.setdefault(t, fm.free_gpus(t))
        left = sum(max(v, 0) for v in spare.values())
        for job in view.pending():
            if left <= 0:
                break  # (a 0-GPU job behind this point waits for the next call with a GPU free)
            jid = job.job_id
            if jid in plan_ids or jid in preempted:
                continue
            g = job.gpus
            if g == 0:
                placed = fm.first_fit(job, cfg.consolidate, strategy)
                if placed is not None:
                    out.append(Start(jid, (), node=placed[1]))
                continue
            if g > left:
                continue
            tp = self._throughputs(view, job)
            # fastest type first (ties: type order)
            for ti in sorted(range(len(types)), key=lambda i: (-tp[i], i)):
                t = types[ti]
                if tp[ti] <= 0 or spare[t] < g:
                    continue
                placed = fm.first_fit(_AsType(job, t), cfg.consolidate, strategy)
                if placed is not None:
                    out.append(Start(jid, placed))
                    self._stint[jid] = (now, ti)
                    spare[t] -= g
                    left -= g
                    break
        return out


@register
class Gavel(_Gavel):
    """Heterogeneity-aware max-min fairness (Gavel, OSDI'20), realised in rounds.

    Every round (``round``, else ``scheduler.round``, else 6 minutes as in Gavel) the
    policy takes the jobs that are pending or hold GPUs, reads each job's throughput on
    every GPU type from the cost model (``view.throughput``: its own GPU count, packed) and
    solves for the allocation X[j, t], the fraction of time job j should spend on type t,
    that maximises the minimum over jobs of their normalised throughput (see
    :func:`solve_allocation`; an LP solved with scipy's HiGHS, re-solved only when the set
    of jobs changed).  It realises X as Gavel does: the priority of (job, type) is X[j,t]
    divided by the fraction of the job's time in the system it has received on that type
    (infinite before it ever ran there); pairs are taken in priority order, one type per
    job, while the type's GPUs (not counting GPUs still checkpointing) suffice.  A job that
    runs on its chosen type keeps its GPUs; any other running job is preempted (at the
    scenario's checkpoint/restore cost); chosen jobs start on free GPUs of their type as
    soon as they fit.  Between rounds, freed GPUs go first to the round's chosen jobs, then
    to other pending jobs in submit order on their fastest type (work-conserving).

    ```yaml
    scheduler:
      policy: gavel
      params: {round: 6min}
      preemption: {checkpoint: 30s, restore: 60s}
    ```
    """

    name = "gavel"
    objective = "max_min"


@register
class GavelThroughput(_Gavel):
    """Gavel's max-total-throughput variant: the allocation maximises the sum of the jobs'
    normalised throughputs (each job's throughput relative to its equal-share throughput,
    times its GPUs); otherwise as ``gavel`` (rounds, priorities, preemption).  Jobs that
    the optimum leaves out still get GPUs nobody else can use.

    ```yaml
    scheduler:
      policy: gavel-throughput
      params: {round: 6min}
    ```
    """

    name = "gavel-throughput"
    objective = "max_throughput"


# ----------------------------------------------------------------------------- cloud autoscaling
class AutoscalerConfig(QueueConfig):
    scale_down_after: float = Field(
        600.0, description="remove a cloud node once it has been idle this long (s or a duration) and no job waits"
    )

    @field_validator("scale_down_after", mode="before")
    @classmethod
    def _parse_after(cls, v):
        return _duration(v, positive=False)


@register
class CloudAutoscaler(Policy):
    """FIFO placement on a cluster whose cloud pools grow with the queue and shrink when idle.

    Jobs start in submit order as ``fifo`` does (same parameters).  Then, for the pending
    jobs that did not start, in submit order, the policy books GPUs on the first
    autoscaling pool (``cluster.pools[].autoscale``, in scenario order) of a type the job
    may use, counting first the GPUs of nodes already being provisioned, and asks for
    ``AddNodes`` for the rest (whole nodes, up to the pool's ``count``).  A job wider than
    one node books whole nodes.  When no job waits, a cloud node that has been idle for
    ``scale_down_after`` is given back with ``RemoveNodes`` (never below ``autoscale.min``);
    the policy asks to be woken when the next idle node is due.  Nodes are billed from
    ``AddNodes`` to ``RemoveNodes`` (``cost_usd``, ``node_hours``).

    ```yaml
    cluster:
      pools:
        - {name: cloud, count: 16, template: dgx1-v100, price_per_hour: 24.48,
           autoscale: {min: 2, provisioning_delay: 3min}}
    scheduler:
      policy: cloud-autoscaler
      params: {scale_down_after: 10min}
    ```
    """

    name = "cloud-autoscaler"
    family = "adaptive"
    reference = ("cluster-autoscaler style scale-up on unschedulable jobs and scale-down of idle nodes "
                 "(Kubernetes cluster-autoscaler); prices per node-hour as cloud providers bill")
    Config = AutoscalerConfig

    def __init__(self, config=None):
        super().__init__(config)
        self._idle_since: dict[int, float] = {}

    def decide(self, view):
        now = view.now
        actions: list = []
        started: set[int] = set()
        if view.pending_count():
            actions = _place_in_order(view, view.pending(), self.config)
            started = {a.job_id for a in actions}
        pools = [p for p in view.pools() if p.autoscale_min is not None and p.gpus_per_node > 0]
        waiting = [j for j in view.pending() if j.job_id not in started and j.gpus > 0] if view.pending_count() else []
        # scale up: book the waiting jobs' GPUs on nodes being provisioned, then on new nodes
        spare = {p.name: p.provisioning * p.gpus_per_node for p in pools}
        add = {p.name: 0 for p in pools}
        room = {p.name: p.max_nodes - p.provisioned for p in pools}
        for job in waiting:
            for p in pools:
                if job.gpu_type is not None and job.gpu_type != p.gpu_type:
                    continue
                if spare[p.name] >= job.gpus:
                    spare[p.name] -= job.gpus
                    break
                need = -(-(job.gpus - spare[p.name]) // p.gpus_per_node)
                if need <= room[p.name]:
                    room[p.name] -= need
                    add[p.name] += need
                    spare[p.name] += need * p.gpus_per_node - job.gpus
                    break
        for p in pools:
            if add[p.name]:
                actions.append(AddNodes(p.name, add[p.name]))
        # scale down: idle cloud nodes, only while nobody waits
        nodes = view.nodes
        wake = math.inf
        remove: list[int] = []
        for p in pools:
            keep = p.provisioned
            for ni in p.nodes:
                n = nodes[ni]
                if not n.idle:
                    self._idle_since.pop(ni, None)
                    continue
                since = self._idle_since.setdefault(ni, now)
                due = since + self.config.scale_down_after
                if waiting or keep <= p.autoscale_min:
                    continue
                if now >= due - 1e-9:
                    remove.append(ni)
                    keep -= 1
                    self._idle_since.pop(ni, None)
                else:
                    wake = min(wake, due)
        if remove:
            actions.append(RemoveNodes(tuple(remove)))
        if math.isfinite(wake):
            actions.append(Wakeup(wake))
        return actions
