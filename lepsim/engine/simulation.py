"""The simulation engine: simpy clock and events, runtime cluster state, job lifecycle.

Event order at one timestamp (documented tie-breaks; simpy orders by time, then the
priority below, then scheduling order):

0. phase ends: a checkpoint finishes (GPUs released) or a restore finishes (job runs);
   storage transfers finish; node failures and repairs, storage and link outages
1. job completions and periodic checkpoints
2. job arrivals (in job-id order)
3. policy wake-ups and scheduling rounds
4. the scheduling pass: the policy is invoked once for everything that happened at this
   timestamp (arrivals and completions are coalesced), and its actions are applied in the
   order returned.
5. the network settle: flows started or ended at this timestamp are re-shared once
   (max-min fair, :mod:`lepsim.engine.network`); network transfers complete at priority 0.

Training progress is fluid: a running job makes ``rate`` work units per second (reference
seconds or iterations, from the cost model) and its completion is one event, rescheduled
only when its rate changes (preemption, a data stream's share).  Stale events are
recognised by a per-job version.

With a ``storage`` section (lepsim.engine.storage) checkpoints, restores and dataset loads
are transfers whose length follows from their bytes and the bandwidth they get; with a
``failures`` section (lepsim.engine.failures) nodes go down and up.  A job's phases while it
holds GPUs: ``restoring`` (checkpoint read) → ``loading`` (dataset read) → ``running`` ⇄
``saving`` (periodic checkpoint) and, when preempted, ``checkpointing`` (then pending).
"""
from __future__ import annotations

import bisect
import functools
import math
import dataclasses
from dataclasses import dataclass
from typing import Callable

import simpy

from lepsim.costs.base import CostModel
from lepsim.costs.collectives import ring_factor
from lepsim.engine.network import Network
from lepsim.engine.services import REPLICA
from lepsim.engine.topology import build_topology
from lepsim.engine.view import (
    CHECKPOINTING,
    DONE,
    FAILED,
    LOADING,
    PENDING,
    RESTORING,
    RUNNING,
    SAVING,
    ClusterView,
    JobView,
    NodeView,
)
from lepsim.errors import PolicyError
from lepsim.policies.actions import AddNodes, Migrate, Preempt, RemoveNodes, Resize, ScaleService, Start, Wakeup
from lepsim.policies.placement import SHARE_EPS, covers, node_fragmentation
from lepsim.scenario.resolve import NodeInfo
from lepsim.workload.jobs import JobRequest

P_PHASE, P_COMPLETE, P_ARRIVAL, P_WAKEUP, P_PASS, P_SETTLE = 0, 1, 2, 3, 4, 5
MAX_DECISIONS_PER_INSTANT = 10_000  # more policy invocations at one simulated instant = a livelock


class _Node:
    __slots__ = ("info", "gpu_ids", "free", "free_cpus", "free_mem", "labels", "tenants", "iso", "used", "frag", "down")

    def __init__(self, info: NodeInfo, first_gpu: int):
        self.info = info
        self.gpu_ids = tuple(range(first_gpu, first_gpu + info.gpus))
        self.free = list(self.gpu_ids)      # wholly free GPUs, ascending
        self.free_cpus = float(info.cpus)
        self.free_mem = float(info.memory_bytes)
        self.labels = dict(info.labels)
        self.tenants: dict[str, int] = {}   # tenant -> jobs holding resources here
        self.iso: dict[str, int] = {}       # isolated tenant -> jobs holding resources here
        self.used: dict[int, float] = {}    # GPU shared by fractional jobs -> share in use (0 < u <= 1)
        self.frag = 0.0                     # fragmented GPUs (node_fragmentation against the workload mix)
        self.down = False                   # failed, not yet repaired (lepsim.engine.failures)

    def shares(self) -> list[float]:
        """Free share of each GPU with any free share."""
        return [1.0] * len(self.free) + [1.0 - u for u in self.used.values() if u < 1.0 - SHARE_EPS]


class _Job:
    __slots__ = (
        "req", "state", "gpus", "node_shares", "alloc_type", "work_total", "work_done", "rate", "run_since",
        "executed", "version", "first_start", "last_start", "last_stop", "end", "preemptions", "wait_since",
        "wait_total", "isolated_runtime", "view", "phase_since", "gpu_seconds", "migrations", "moving",
        "moving_since", "flow", "comm_model", "comm_frac", "comm_s",
        # storage, checkpoints, failures
        "rate0", "stall_frac", "stall_s", "phase_stall", "seg", "sflow", "streams", "cache_shares", "ckpt_work",
        "ckpt_exec", "ckpt_count", "ckpt_pending", "failures", "lost_s", "lost_gpu_s", "phase_time", "ckpt_bytes",
        "req0", "resizing", "scale",
    )

    def __init__(self, req: JobRequest):
        self.req = req                # the request now (a Resize replaces gpus, cpus, memory, batch size)
        self.req0 = req               # the request as submitted (what the job records show)
        self.resizing = False         # checkpointing for a Resize (then it restores on its new GPUs)
        self.scale = 1.0              # samples per iteration now / per iteration as submitted (a Resize)
        self.state = "future"
        self.gpus: tuple[int, ...] = ()
        self.node_shares: tuple[tuple[int, int], ...] = ()  # (node, GPUs used there)
        self.alloc_type: str | None = None
        self.work_total = 0.0
        self.work_done = 0.0
        self.rate = 0.0
        self.run_since = 0.0
        self.executed = 0.0
        self.version = 0
        self.first_start: float | None = None
        self.last_start: float | None = None
        self.last_stop: float | None = None
        self.end: float | None = None
        self.preemptions = 0
        self.wait_since = 0.0
        self.wait_total = 0.0
        self.isolated_runtime = math.nan
        self.phase_since = 0.0
        self.gpu_seconds = 0.0
        self.migrations = 0
        self.moving = None  # (gpus, node shares, GPU type) reserved by a Migrate until the checkpoint ends
        self.moving_since = 0.0
        self.flow = None              # its sustained all-reduce ring on the network, while running
        self.comm_model = None        # (compute s, profiled comm s, ring bytes per iteration) on the fabric
        self.comm_frac = math.nan     # share of its running time spent communicating, now
        self.comm_s = 0.0 if req.iterations is not None else math.nan  # time spent communicating
        self.rate0 = 0.0             # compute rate (work units/s) on the allocation, before data stalls
        self.stall_frac = 0.0        # share of running time stalled on data now
        self.stall_s = 0.0
        self.phase_stall = 0.0
        self.seg = 0                 # running-segment counter (periodic checkpoint timers)
        self.sflow = None            # the storage transfer of the current phase
        self.streams: list = []      # (rate(), stop(), demand) of the per-epoch reads while running
        self.cache_shares: dict = {}
        self.ckpt_work = 0.0         # work saved by the last committed checkpoint
        self.ckpt_exec = 0.0         # executed seconds when that checkpoint's state was taken
        self.ckpt_count = 0
        self.ckpt_pending = (0.0, 0.0)
        self.failures = 0
        self.lost_s = 0.0
        self.lost_gpu_s = 0.0
        self.phase_time: dict[str, float] = {}
        self.ckpt_bytes: float | None = None

    def stop_running(self, t: float) -> None:
        """Account the progress made since ``run_since`` up to time ``t`` (fluid rate)."""
        dt = t - self.run_since
        self.executed += dt
        self.comm_s += dt * self.comm_frac
        stall = dt * self.stall_frac
        self.stall_s += stall
        self.phase_stall += stall
        self.work_done = min(self.work_total, self.work_done + self.rate * dt)
        self.run_since = t


@dataclass(frozen=True)
class RawRecords:
    """What the engine hands to metrics: plain lists, one source of truth."""

    jobs: list            # the _Job objects, final state
    intervals: list       # (job_id, phase, start, end, gpus, gpu_type, nodes "i,j", gpu_ids "a b c", data stall s)
    timeline: list        # (time, allocated_gpus, running_jobs, pending_jobs, fragmented_gpus, down_gpus, *allocated per type)
    events: list          # (time, kind, job_id, detail)
    end_time: float
    gpu_types: tuple
    capacity: dict
    stats: dict
    links: list = ()      # (time, link, kind, capacity bytes/s, load bytes/s): network link load steps
    services: object = None   # lepsim.engine.services.Services, when the scenario has services
    storage: list = ()    # (time, storage bytes/s, storage capacity bytes/s, checkpoint bytes stored); () without storage
    storage_bandwidth: float = math.nan  # nominal storage bandwidth (bytes/s)
    billing: list = ()    # (node, pool, start, end, dollars per node-hour or None): provisioned node intervals


class Simulation:
    """One simulation: a scenario, a policy, a cost model, the jobs, one seed."""

    def __init__(
        self,
        scenario,
        nodes: list[NodeInfo],
        jobs: list[JobRequest],
        policy,
        cost_model: CostModel | None = None,
        progress: Callable[[float], None] | None = None,
        topology=None,
        services: list | None = None,
    ):
        self.scenario = scenario
        self.policy = policy
        self.cost = cost_model or CostModel()
        self.env = simpy.Environment()
        self._progress = progress
        sim = scenario.simulation
        self.horizon = sim.horizon if sim.horizon is not None else math.inf
        pre = scenario.scheduler.preemption
        self._checkpoint, self._restore = pre.checkpoint, pre.restore
        self._round = scenario.scheduler.round

        # --- runtime cluster
        self._nodes: list[_Node] = []
        self._gpu_node: list[int] = []
        for info in nodes:
            n = _Node(info, len(self._gpu_node))
            self._nodes.append(n)
            self._gpu_node.extend([info.index] * info.gpus)
        self._owner = [-1] * len(self._gpu_node)
        self._node_type = [n.info.gpu_type for n in self._nodes]
        self._gpn = [n.info.gpus for n in self._nodes]
        self._down_gpus = 0
        # cloud pools (cluster.pools[].autoscale): nodes not provisioned are offline and unbilled
        self._unprov: set[int] = set()
        self._provisioning: set[int] = set()
        self._billed_since: dict[int, float] = {}
        self._billing: list[tuple] = []
        self._pools: dict[str, list[int]] = {}
        for n in self._nodes:
            self._pools.setdefault(n.info.pool, []).append(n.info.index)
        self._nodes_by_type: dict[str | None, list[int]] = {}
        for n in self._nodes:
            self._nodes_by_type.setdefault(n.info.gpu_type, []).append(n.info.index)
        self._capacity = {t: sum(self._gpn[i] for i in idx) for t, idx in self._nodes_by_type.items() if t is not None}
        self._capacity_total = sum(self._capacity.values())
        self._free_by_type = dict(self._capacity)
        self._free_total = self._capacity_total
        self._type_order = tuple(self._capacity)
        self._alloc_by_type = dict.fromkeys(self._type_order, 0)
        self._node_views = tuple(NodeView(n) for n in self._nodes)

        # --- network (unconstrained when the scenario has no cluster.network)
        if topology is None:
            from lepsim.hardware import default_catalog

            topology, _ = build_topology(scenario.cluster.network, nodes, default_catalog())
        self.network = Network(self.env, topology, at=self._at, done_priority=P_PHASE, settle_priority=P_SETTLE)
        self._comm_cache: dict = {}
        # racks for topology-aware placement: the network's racks, else the node label
        # ``rack``, else the node's pool
        self._racks = [
            f"net:{topology.rack_of(n.info.index)}" if topology.rack_of(n.info.index) is not None
            else ("label:" + n.labels["rack"] if "rack" in n.labels else "pool:" + n.info.pool)
            for n in self._nodes
        ]


        # --- storage and failures (opt-in sections)
        from lepsim.engine.failures import Failures
        from lepsim.engine.storage import Storage

        st = getattr(scenario, "storage", None)
        self.storage = Storage(self, st, self._nodes, P_PHASE) if st is not None else None
        fl = getattr(scenario, "failures", None)
        self.failures = Failures(self, fl, nodes, scenario.simulation.seed, P_PHASE) if fl is not None else None
        self._max_retries = fl.max_retries if fl is not None else 0
        self._ckpt_interval_of = getattr(policy, "checkpoint_interval", None)
        if not callable(self._ckpt_interval_of):
            self._ckpt_interval_of = None

        # --- jobs
        self._jobs = [_Job(r) for r in jobs]
        self._mix = _workload_mix(jobs)
        self._frag_total = 0.0
        for n in self._nodes:
            self._refrag(n)
        for j in self._jobs:
            j.view = JobView(j, self)
            j.work_total = self.cost.work(j.req)
            j.isolated_runtime = self._isolated_runtime(j.req, j.work_total)
            j.ckpt_bytes = self._checkpoint_bytes(j.req)
        st_bw = self.storage.nominal if self.storage is not None else 1.0
        pre_s = max([j.ckpt_bytes / st_bw for j in self._jobs if j.ckpt_bytes is not None], default=0.0)
        self.max_checkpoint_s = max(pre_s, pre.checkpoint) if self.storage is not None else pre.checkpoint
        self._n_train = len(self._jobs)     # training jobs; service replicas get the ids after them
        self.services = None
        self._service_plans = list(services or ())
        if self._service_plans:
            from lepsim.engine.services import Services

            self.services = Services(self._service_plans, self.cost, scenario.simulation.seed)
            self.services.notify = lambda t: self._at(self._delay_to(t), P_PHASE, self._service_wake)
        self._pending: list[int] = []        # sorted job ids
        self._active: set[int] = set()       # restoring or running
        self._next_arrival = 0
        self._done = 0
        self._pass_pending = False
        self._wakeups: set[float] = set()
        self._pass_time, self._passes_now = -1.0, 0
        self._view = ClusterView(self)

        # --- records
        self._intervals: list[tuple] = []
        self._timeline: list[tuple] = []
        self._events: list[tuple] = []
        self._allocated = 0
        self._passes = 0
        self._actions = 0
        self._scheduled = 0

    # ------------------------------------------------------------------ scheduling helpers
    def _delay_to(self, t: float) -> float:
        """The delay that lands exactly on time ``t`` (now + delay == t in floating point)."""
        now = self.env.now
        d = max(t - now, 0.0)
        while now + d < t:
            d = math.nextafter(d, math.inf)
        while d > 0 and now + d > t:
            d = math.nextafter(d, 0.0)
        return d

    def _at(self, delay: float, priority: int, fn, *args) -> None:
        ev = simpy.Event(self.env)
        ev._ok = True
        ev._value = None
        ev.callbacks.append(lambda _e: fn(*args))
        self.env.schedule(ev, priority, delay)
        self._scheduled += 1

    def _request_pass(self) -> None:
        if not self._pass_pending:
            self._pass_pending = True
            self._at(0.0, P_PASS, self._pass)

    def _isolated_runtime(self, req: JobRequest, work: float) -> float:
        """Runtime alone on the fastest allowed GPU type, packed in as few nodes as possible."""
        if req.iterations is None:
            return work
        best = math.inf
        types = [req.gpu_type] if req.gpu_type else list(self._type_order)
        for t in types:
            gpn = max(self._gpn[i] for i in self._nodes_by_type.get(t, [])) if t in self._nodes_by_type else 0
            if gpn == 0 or req.gpus > self._capacity.get(t, 0):
                continue
            placement = _packed(req.gpus, gpn)
            try:
                best = min(best, work / self.cost.rate(req, t, placement))
            except LookupError:
                continue
        return best

    # ------------------------------------------------------------------ lifecycle
    def _schedule_next_arrival(self) -> None:
        k = self._next_arrival
        if k < self._n_train:
            t = self._jobs[k].req.submit_time
            if t <= self.horizon:
                self._at(self._delay_to(t), P_ARRIVAL, self._arrive, k)

    def _arrive(self, k: int) -> None:
        now = self.env.now
        # all jobs with this same submit time arrive in this one event (id order)
        jobs = self._jobs
        while k < self._n_train and jobs[k].req.submit_time <= now:
            j = jobs[k]
            j.state = PENDING
            j.wait_since = now
            if self._pending and self._pending[-1] > k:  # service replicas (larger ids) are pending
                bisect.insort(self._pending, k)
            else:
                self._pending.append(k)  # training ids arrive in increasing order
            self._events.append((now, "arrive", k, ""))
            k += 1
        self._next_arrival = k
        self._schedule_next_arrival()
        self._mark_timeline()
        self._request_pass()

    def _check_node(self, jid: int, req: JobRequest, ni: int, what: str) -> None:
        """The job's node labels and tenant isolation allow node ``ni``."""
        n = self._nodes[ni]
        for k, v in req.node_selector:
            if n.labels.get(k) != v:
                raise PolicyError(f"{self.policy.name}: job {jid} requires node label {k}={v}; {what} on node "
                                  f"{n.info.name} (labels: {', '.join(f'{a}={b}' for a, b in sorted(n.labels.items())) or 'none'})")
        if n.tenants:
            others = [t for t in n.tenants if t != req.tenant]
            if others and (req.isolated or any(t != req.tenant for t in n.iso)):
                who = f"isolated tenant {req.tenant!r}" if req.isolated else f"tenant {req.tenant!r}"
                raise PolicyError(f"{self.policy.name}: job {jid} of {who} on node {n.info.name}, which runs jobs of "
                                  f"{', '.join(repr(t) for t in sorted(others))} (tenant isolation)")

    def _tenant_on(self, n: _Node, req: JobRequest, d: int) -> None:
        for m in ((n.tenants, n.iso) if req.isolated else (n.tenants,)):
            c = m.get(req.tenant, 0) + d
            if c > 0:
                m[req.tenant] = c
            else:
                m.pop(req.tenant, None)

    def _refrag(self, n: _Node) -> None:
        if self._mix:
            shares = n.shares() if n.used else (1.0,) * len(n.free)
            f = node_fragmentation(shares, len(n.free), n.info.gpu_type, n.info.gpus, self._mix)
            self._frag_total += f - n.frag
            n.frag = f

    def _claim(self, jid: int, gpus: tuple[int, ...], node: int | None, what: str):
        """Check that job ``jid`` may take these GPUs (or, asking none, this node) now, and
        take them; returns (sorted GPU ids, ((node, GPUs there), ...), GPU type)."""
        name = self.policy.name
        req = self._jobs[jid].req
        if req.gpus == 0:
            if gpus or node is None or not (0 <= node < len(self._nodes)):
                raise PolicyError(f"{name}: job {jid} asks no GPUs; {what} must name a node and no GPUs")
            n = self._nodes[node]
            if not (covers(n.free_cpus, req.cpus) and covers(n.free_mem, req.memory_bytes)):
                raise PolicyError(f"{name}: job {jid} does not fit on node {n.info.name}")
            self._check_node(jid, req, node, what)
            n.free_cpus -= req.cpus
            n.free_mem -= req.memory_bytes
            self._tenant_on(n, req, 1)
            return (), ((node, 0),), None
        if len(gpus) != req.gpus or len(set(gpus)) != len(gpus):
            raise PolicyError(f"{name}: job {jid} asks {req.gpus} GPUs (gang), {what} gave {len(set(gpus))} distinct")
        frac = req.gpu_fraction
        per_node: dict[int, int] = {}
        gtype = None
        for g in gpus:
            if not (0 <= g < len(self._owner)):
                raise PolicyError(f"{name}: job {jid}: no GPU with id {g}")
            if self._owner[g] == -3:
                raise PolicyError(f"{name}: job {jid}: GPU {g} is on node {self._nodes[self._gpu_node[g]].info.name}, "
                                  "which is down")
            if self._owner[g] >= 0:
                raise PolicyError(f"{name}: job {jid}: GPU {g} is held by job {self._owner[g]} (over-allocation refused)")
            ni = self._gpu_node[g]
            if self._owner[g] == -2:
                left = 1.0 - self._nodes[ni].used[g]
                if frac == 1.0:
                    raise PolicyError(f"{name}: job {jid}: GPU {g} is shared by fractional jobs (over-allocation refused)")
                if not covers(left, frac):
                    raise PolicyError(f"{name}: job {jid} needs {frac:g} of GPU {g}, which has {left:.6g} free "
                                      "(over-allocation refused)")
            per_node[ni] = per_node.get(ni, 0) + 1
            t = self._node_type[ni]
            if gtype is None:
                gtype = t
            elif t != gtype:
                raise PolicyError(f"{name}: job {jid}: GPUs of mixed types {gtype} and {t}")
        if req.gpu_type is not None and gtype != req.gpu_type:
            raise PolicyError(f"{name}: job {jid} requires {req.gpu_type} GPUs, got {gtype}")
        cpg, mpg = req.cpus / req.gpus, req.memory_bytes / req.gpus
        for ni, k in per_node.items():
            n = self._nodes[ni]
            if not (covers(n.free_cpus, cpg * k) and covers(n.free_mem, mpg * k)):
                raise PolicyError(f"{name}: job {jid}: node {n.info.name} lacks CPU or memory for {k} GPUs' share")
            self._check_node(jid, req, ni, what)
        for ni, k in per_node.items():
            n = self._nodes[ni]
            n.free_cpus -= cpg * k
            n.free_mem -= mpg * k
            self._tenant_on(n, req, 1)
            if frac < 1.0:
                (g,) = gpus
                if self._owner[g] == -1:
                    n.free.remove(g)
                    self._owner[g] = -2
                    self._free_by_type[gtype] -= 1
                    self._free_total -= 1
                n.used[g] = n.used.get(g, 0.0) + frac
            else:
                taken = set(g for g in gpus if self._gpu_node[g] == ni)
                n.free = [g for g in n.free if g not in taken]
            self._refrag(n)
        if frac == 1.0:
            for g in gpus:
                self._owner[g] = jid
            self._free_by_type[gtype] -= len(gpus)
            self._free_total -= len(gpus)
        held = len(gpus) if frac == 1.0 else frac
        self._alloc_by_type[gtype] += held
        self._allocated += held
        return tuple(sorted(gpus)), tuple(sorted(per_node.items())), gtype

    def _unclaim(self, req: JobRequest, gpus: tuple[int, ...], shares, gtype) -> None:
        """Give back what :meth:`_claim` took."""
        if req.gpus == 0:
            node = self._nodes[shares[0][0]]
            node.free_cpus += req.cpus
            node.free_mem += req.memory_bytes
            self._tenant_on(node, req, -1)
            return
        cpg, mpg = req.cpus / req.gpus, req.memory_bytes / req.gpus
        frac = req.gpu_fraction
        for ni, k in shares:
            node = self._nodes[ni]
            node.free_cpus += cpg * k
            node.free_mem += mpg * k
            self._tenant_on(node, req, -1)
            if frac < 1.0:
                (g,) = gpus
                u = node.used[g] - frac
                if u <= SHARE_EPS:
                    del node.used[g]
                    bisect.insort(node.free, g)
                    self._owner[g] = -1
                    self._free_by_type[gtype] += 1
                    self._free_total += 1
                else:
                    node.used[g] = u
            else:
                node.free = sorted(node.free + [g for g in gpus if self._gpu_node[g] == ni])
            self._refrag(node)
        if frac == 1.0:
            for g in gpus:
                self._owner[g] = -1
            self._free_by_type[gtype] += len(gpus)
            self._free_total += len(gpus)
        held = len(gpus) if frac == 1.0 else frac
        self._alloc_by_type[gtype] -= held
        self._allocated -= held
        if frac != 1.0:  # sums of shares round: snap what should be whole back to it
            self._allocated = _snap(self._allocated)
            self._alloc_by_type[gtype] = _snap(self._alloc_by_type[gtype])

    def _apply_start(self, a: Start) -> None:
        now = self.env.now
        if not (0 <= a.job_id < len(self._jobs)):
            raise PolicyError(f"{self.policy.name}: Start of unknown job id {a.job_id}")
        j = self._jobs[a.job_id]
        if j.state != PENDING:
            raise PolicyError(f"{self.policy.name}: Start of job {a.job_id} ({j.req.name}) in state {j.state}, expected pending")
        req = j.req
        n = len(set(a.gpus))
        if req.min_gpus is not None and n != req.gpus and req.min_gpus <= n <= req.max_gpus:
            # an elastic job may start on any count within its bounds (no cost: nothing to restore)
            j.req = self._sized(req, n, None)
            try:
                j.gpus, j.node_shares, j.alloc_type = self._claim(a.job_id, tuple(a.gpus), a.node, "Start")
            except PolicyError:
                j.req = req
                raise
            self._adopt(j)
        else:
            j.gpus, j.node_shares, j.alloc_type = self._claim(a.job_id, tuple(a.gpus), a.node, "Start")
        self._remove_pending(a.job_id)
        self._active.add(a.job_id)
        j.wait_total += now - j.wait_since
        if j.first_start is None:
            j.first_start = now
        j.last_start = now
        j.phase_since = now
        self._events.append((now, "start", a.job_id, _nodes_str(j)))
        self._prepare(j)
        self._mark_timeline()

    def _checkpoint_bytes(self, req: JobRequest) -> float | None:
        """Bytes of one checkpoint with a storage section: the job's own figure, else the
        model's parameter count x storage.checkpoint_bytes_per_param; None: fixed times."""
        if self.storage is None:
            return None
        if req.checkpoint_bytes is not None:
            return req.checkpoint_bytes
        count = getattr(self.cost, "param_count", None)
        params = count(req.model) if (count is not None and req.model is not None) else None
        return params * self.storage.spec.checkpoint_bytes_per_param if params else None

    def _interval(self, j: _Job) -> float | None:
        """Running seconds between periodic checkpoints: the policy's choice, else the job's,
        else the storage default; None: no periodic checkpoints."""
        if self._ckpt_interval_of is not None:
            v = self._ckpt_interval_of(j.view)
            if v is not None:
                if not (v > 0):
                    raise PolicyError(f"{self.policy.name}: checkpoint_interval {v!r} for job {j.req.job_id}, "
                                      "expected seconds > 0 or None")
                return float(v)
        if j.req.checkpoint_interval is not None:
            return j.req.checkpoint_interval
        st = self.storage
        return st.spec.checkpoint_interval if st is not None else None

    def _enter(self, j: _Job, state: str) -> None:
        j.state = state
        j.phase_since = self.env.now
        j.version += 1

    def _prepare(self, j: _Job) -> None:
        """After a start: read the last checkpoint (if any), then the dataset, then run.  A
        service replica loads its weights (cold start, phase ``cold_start``) at every placement."""
        if j.req.kind == REPLICA:
            plan = self._service_plans[self._replica_service[j.req.job_id]]
            self._enter(j, RESTORING)
            if plan.cold_start_from_storage:  # the weights, read from storage at its shared bandwidth
                # (with a network: through the fabric to the replica's node, like a restore)
                j.sflow = self.storage.transfer(plan.weight_bytes, self._phase_done_cb(j), j.node_shares)
                return
            cold = plan.cold_start
            if cold > 0:
                self._at(cold, P_PHASE, self._phase_done, j.req.job_id, j.version)
            else:
                self._phase_done(j.req.job_id, j.version)
            return
        if j.ckpt_count > 0:
            if j.ckpt_bytes is not None:
                self._enter(j, RESTORING)
                j.sflow = self.storage.transfer(j.ckpt_bytes, self._phase_done_cb(j), j.node_shares)
                return
            if self._restore > 0:
                self._enter(j, RESTORING)
                self._at(self._restore, P_PHASE, self._phase_done, j.req.job_id, j.version)
                return
        self._load(j)

    def _load(self, j: _Job) -> None:
        if self.storage is not None and j.req.dataset_bytes:
            self._enter(j, LOADING)
            j.sflow = self.storage.transfer(j.req.dataset_bytes, self._phase_done_cb(j), j.node_shares)
        else:
            self._begin_run(j)

    def _phase_done_cb(self, j: _Job):
        jid, version = j.req.job_id, j.version
        return lambda: self._phase_done(jid, version)

    def _phase_done(self, jid: int, version: int) -> None:
        """The current phase's transfer or fixed time is over (stale calls: other version)."""
        j = self._jobs[jid]
        if j.version != version:
            return
        state = j.state
        j.sflow = None
        if state == RESTORING:
            if j.req.kind == REPLICA:
                self._close_phase(j, "cold_start")
                self._begin_run(j)
                return
            self._close_phase(j, "restore")
            self._load(j)
        elif state == LOADING:
            self._close_phase(j, "load")
            self._begin_run(j)
        elif state == SAVING:       # a periodic checkpoint is committed: run on
            self._commit_checkpoint(j)
            self._close_phase(j, "checkpoint")
            self._begin_run(j)
        elif state == CHECKPOINTING:  # the preemption (or migration) checkpoint is committed
            self._commit_checkpoint(j)
            if j.moving is not None:
                self._finish_migration(j)
                return
            if j.resizing:
                self._finish_resize(j)
                return
            self._close_phase(j, "checkpoint")
            self._requeue(j)
            self._request_pass()

    def _begin_run(self, j: _Job) -> None:
        now = self.env.now
        self._enter(j, RUNNING)
        j.run_since = now
        j.phase_stall = 0.0
        if j.req.kind == REPLICA:  # serves until preempted or retired
            j.rate = 0.0
            j.version += 1
            self.services.replica_up(j.req.job_id, now)
            self._mark_timeline()
            return
        placement = tuple(sorted((k for _, k in j.node_shares), reverse=True))
        j.rate0 = self.cost.rate(j.req, j.alloc_type, placement) * j.scale
        j.rate = j.rate0
        j.stall_frac = 0.0
        if j.req.iterations is not None:
            self._start_comm(j, placement)
        if self.storage is not None and j.req.dataset_bytes:
            self._open_streams(j)
        self._schedule_completion(j)
        interval = self._interval(j)
        j.seg += 1
        if interval is not None:
            self._at(interval, P_COMPLETE, self._periodic_checkpoint, j.req.job_id, j.seg)

    def _schedule_completion(self, j: _Job) -> None:
        j.version += 1
        if j.rate > 0:
            remaining = max(j.work_total - j.work_done, 0.0)
            self._at(remaining / j.rate, P_COMPLETE, self._complete, j.req.job_id, j.version)

    # ------------------------------------------------------------------ all-reduce on the fabric
    def _comm_split(self, j: _Job, placement: tuple[int, ...]) -> tuple[float, float, float]:
        """(iteration s, comm s, ring bytes per iteration): the cost model's iteration time at
        this placement, its modelled gradient all-reduce (at most the iteration), and the bytes
        each ring hop carries per iteration, ``2 (n-1)/n x gradient bytes`` (collectives.py)."""
        req = j.req
        key = (req.model, j.alloc_type, placement, req.batch_size)
        hit = self._comm_cache.get(key)
        if hit is None:
            t_iter = j.scale / j.rate
            try:
                comm = min(float(self.cost.comm_time(req.model, j.alloc_type, placement)), t_iter)
            except (LookupError, AttributeError):   # no gradient size or collective tier: not modelled
                comm = math.nan
            nbytes = 0.0
            if len(placement) > 1:
                grad = getattr(self.cost, "grad_bytes", lambda _m: None)(req.model)
                nbytes = ring_factor(sum(placement)) * grad if grad else 0.0
            hit = self._comm_cache[key] = (t_iter, comm, nbytes)
        return hit

    def _start_comm(self, j: _Job, placement: tuple[int, ...]) -> None:
        """Set the job's communication share; a job spanning nodes on a constrained network
        holds a sustained ring flow that asks the rate making its all-reduce take the
        profiled time (docs/engine.md#training-traffic-on-the-fabric)."""
        t_iter, comm, nbytes = self._comm_split(j, placement)
        j.comm_frac = comm / t_iter if t_iter > 0 else 0.0
        if self.network.constrained and len(j.node_shares) > 1 and nbytes > 0 and comm > 0:
            j.comm_model = (t_iter - comm, comm, nbytes, j.rate)
            j.flow = self.network.sustain([f"node:{ni}" for ni, _ in j.node_shares], nbytes / comm,
                                          on_rate=functools.partial(self._comm_rate, j.req.job_id))

    def _comm_rate(self, jid: int, rate: float) -> None:
        """The fabric changed a job's all-reduce rate: stretch (or restore) its comm part."""
        j = self._jobs[jid]
        if j.state != RUNNING or j.flow is None:
            return
        compute, comm, nbytes, profiled_rate = j.comm_model
        if rate >= j.flow.demand:          # the profiled speed, exactly
            new_rate, frac = profiled_rate, comm * profiled_rate
        elif rate > 0:
            t_comm = nbytes / rate
            new_rate, frac = j.scale / (compute + t_comm), t_comm / (compute + t_comm)
        else:                              # no bandwidth at all (an outage): stalled in its all-reduce
            new_rate, frac = 0.0, 1.0
        if new_rate == j.rate0:
            return
        now = self.env.now
        j.stop_running(now)
        j.run_since = now
        # rate0 is the rate without data stalls; a stalled job progresses at its unstalled share
        j.rate0, j.comm_frac = new_rate, frac
        j.rate = new_rate * (1.0 - j.stall_frac)
        self._schedule_completion(j)

    def _stop_comm(self, j: _Job) -> None:
        if j.flow is not None:
            self.network.stop(j.flow)
            j.flow = None
            j.comm_model = None

    # --- per-epoch reads while running (data stalls)
    def _open_streams(self, j: _Job) -> None:
        st = self.storage
        batch = j.req.batch_size
        if batch is None and j.req.model is not None and hasattr(self.cost, "default_batch"):
            batch = self.cost.default_batch(j.req.model)
        per_work = st.stream_bytes_per_work(j.req, j.work_total, batch)
        if per_work <= 0 or j.work_done >= j.work_total:
            return
        demand = per_work * j.rate0
        gpus = max(j.req.gpus, 1)
        shares = {ni: j.req.dataset_bytes * k / gpus for ni, k in j.node_shares}
        jid = j.req.job_id
        changed = functools.partial(self._stream_changed, jid)
        if st.cache_reserve(shares):
            j.cache_shares = shares
            for ni, k in j.node_shares:
                link = st.cache_link(ni)
                d = demand * k / gpus
                fid = link.stream(d, lambda _r: changed())
                j.streams.append((functools.partial(link.rate, fid), functools.partial(link.cancel, fid), d))
        else:
            j.streams = st.streams(j.node_shares, demand, changed)
        self._stream_changed(jid)

    def _stream_changed(self, jid: int) -> None:
        j = self._jobs[jid]
        if j.state != RUNNING or not j.streams:
            return
        rates = [(rate(), d) for rate, _stop, d in j.streams]
        if any(math.isnan(r) for r, _ in rates):
            return  # the network has not shared its rates yet (it settles at this same instant)
        f = min(min(r / d, 1.0) for r, d in rates)
        if 1.0 - f == j.stall_frac:
            return
        j.stop_running(self.env.now)
        j.stall_frac = 1.0 - f
        j.rate = j.rate0 * f
        self._schedule_completion(j)

    def _close_streams(self, j: _Job) -> None:
        streams, j.streams = j.streams, []
        j.stall_frac = 0.0
        for _rate, stop, _d in streams:
            stop()
        if j.cache_shares:
            self.storage.cache_release(j.cache_shares)
            j.cache_shares = {}

    def _stop_run(self, j: _Job) -> None:
        """Leave the running state now: account progress, close the run interval and streams."""
        if j.req.kind == REPLICA:  # its requests go back to the router now
            self.services.replica_down(j.req.job_id, self.env.now)
        j.stop_running(self.env.now)
        self._stop_comm(j)
        self._close_phase(j, "run")
        self._close_streams(j)
        j.seg += 1

    # --- checkpoints
    def _periodic_checkpoint(self, jid: int, seg: int) -> None:
        j = self._jobs[jid]
        if j.seg != seg or j.state != RUNNING:
            return
        j.stop_running(self.env.now)
        if j.work_total - j.work_done <= 1e-9 * max(j.work_total, 1.0):
            return  # it completes now: no checkpoint
        self._stop_run(j)
        self._enter(j, SAVING)
        self._events.append((self.env.now, "checkpoint", jid, ""))
        self._write_checkpoint(j)

    def _write_checkpoint(self, j: _Job) -> None:
        """Start writing a checkpoint of the job's state now (state SAVING or CHECKPOINTING)."""
        j.ckpt_pending = (j.work_done, j.executed)
        if j.ckpt_bytes is not None:
            if not self.storage.fits(j.req.job_id, j.ckpt_bytes):
                # the write takes its time and fails at the end: nothing is saved
                self._events.append((self.env.now, "checkpoint_refused", j.req.job_id, "storage full"))
                j.ckpt_pending = None
            j.sflow = self.storage.transfer(j.ckpt_bytes, self._phase_done_cb(j), j.node_shares, write=True)
        elif self._checkpoint > 0:
            self._at(self._checkpoint, P_PHASE, self._phase_done, j.req.job_id, j.version)
        else:
            self._phase_done(j.req.job_id, j.version)

    def _commit_checkpoint(self, j: _Job) -> None:
        if j.ckpt_pending is None:  # the write failed (storage full)
            if j.state == CHECKPOINTING:  # leaving: what it did since its last checkpoint is lost
                self._lose_unsaved(j)
            return
        j.ckpt_work, j.ckpt_exec = j.ckpt_pending
        j.ckpt_count += 1
        if j.ckpt_bytes is not None and j.ckpt_work > 0:
            self.storage.keep(j.req.job_id, j.ckpt_bytes)

    def _interrupt(self, j: _Job) -> None:
        """Stop whatever the job does while holding GPUs (not the bookkeeping of why)."""
        if j.state == RUNNING:
            self._stop_run(j)
        else:
            restore = "cold_start" if j.req.kind == REPLICA else "restore"
            self._close_phase(j, {RESTORING: restore, LOADING: "load"}.get(j.state, "checkpoint"))
            if j.sflow is not None:
                self.storage.cancel(j.sflow)
                j.sflow = None
        if j.moving is not None:  # a migration's reserved GPUs go back
            self._close_reserve(j, self.env.now)
            self._unclaim(j.req, *j.moving)
            j.moving = None
        j.resizing = False
        j.version += 1
        self._active.discard(j.req.job_id)

    def _complete(self, jid: int, version: int) -> None:
        j = self._jobs[jid]
        if j.version != version or j.state != RUNNING:
            return
        now = self.env.now
        self._stop_run(j)
        j.work_done = j.work_total  # exactly, whatever the float rounding of rate * time
        self._release(j)
        self._active.discard(jid)
        j.state = DONE
        j.end = now
        self._done += 1
        if self.storage is not None:
            self.storage.drop(jid)
        self._events.append((now, "complete", jid, ""))
        self._mark_timeline()
        self._request_pass()

    def _apply_preempt(self, a: Preempt) -> None:
        now = self.env.now
        if not (0 <= a.job_id < len(self._jobs)):
            raise PolicyError(f"{self.policy.name}: Preempt of unknown job id {a.job_id}")
        j = self._jobs[a.job_id]
        if j.state not in (RUNNING, RESTORING, LOADING, SAVING):
            raise PolicyError(f"{self.policy.name}: Preempt of job {a.job_id} in state {j.state}, expected running")
        j.preemptions += 1
        j.last_stop = now
        self._events.append((now, "preempt", a.job_id, ""))
        if j.state == SAVING:
            # the checkpoint being written becomes the preemption checkpoint: same write,
            # same version (its completion now releases the GPUs)
            self._active.discard(a.job_id)
            j.state = CHECKPOINTING
            self._mark_timeline()
            return
        was = j.state
        self._interrupt(j)
        if j.req.kind == REPLICA:  # a replica is stateless: it leaves at once
            self._requeue(j)
            self._request_pass()
            return
        # a preempted job always writes its checkpoint, as with the fixed times (also when
        # preempted while restoring or loading: a preemption never frees GPUs in zero time
        # behind the back of a policy told it costs a checkpoint)
        if j.ckpt_bytes is not None or self._checkpoint > 0:
            self._enter(j, CHECKPOINTING)
            self._write_checkpoint(j)
            self._mark_timeline()
        else:
            self._commit_checkpoint(j)
            self._requeue(j)
            self._request_pass()  # the job may fit elsewhere right away

    def _apply_migrate(self, a: Migrate) -> None:
        """Checkpoint on the old GPUs (new ones reserved meanwhile), then restore on the new."""
        now = self.env.now
        if not (0 <= a.job_id < len(self._jobs)):
            raise PolicyError(f"{self.policy.name}: Migrate of unknown job id {a.job_id}")
        j = self._jobs[a.job_id]
        if j.state not in (RUNNING, RESTORING, LOADING, SAVING):
            raise PolicyError(f"{self.policy.name}: Migrate of job {a.job_id} in state {j.state}, expected running")
        if set(a.gpus) & set(j.gpus):
            raise PolicyError(f"{self.policy.name}: Migrate of job {a.job_id} to GPUs it holds; expected other GPUs")
        if j.req.gpus == 0:
            raise PolicyError(f"{self.policy.name}: Migrate of job {a.job_id}, which holds no GPUs")
        self._interrupt(j)
        j.last_stop = now
        j.moving = self._claim(a.job_id, tuple(a.gpus), None, "Migrate")
        j.moving_since = now
        j.migrations += 1
        self._events.append((now, "migrate", a.job_id, ",".join(f"{ni}:{k}" for ni, k in j.moving[1])))
        self._enter(j, CHECKPOINTING)
        self._write_checkpoint(j)
        self._mark_timeline()

    def _finish_migration(self, j: _Job) -> None:
        now = self.env.now
        self._close_phase(j, "checkpoint")
        self._close_reserve(j, now)
        self._release(j)
        j.gpus, j.node_shares, j.alloc_type = j.moving
        j.moving = None
        self._resume(j)

    def _resume(self, j: _Job) -> None:
        """After a migration's or resize's checkpoint: restore (and run) where it now is."""
        now = self.env.now
        self._active.add(j.req.job_id)
        j.last_start = now
        j.phase_since = now
        self._events.append((now, "start", j.req.job_id, _nodes_str(j)))
        self._prepare(j)
        self._mark_timeline()

    def _apply_resize(self, a: Resize) -> None:
        """Grow or shrink an elastic job: its GPUs change hands now, it checkpoints (on the
        new set) and restores, then runs at the cost model's rate for the new placement."""
        name = self.policy.name
        if not (0 <= a.job_id < len(self._jobs)):
            raise PolicyError(f"{name}: Resize of unknown job id {a.job_id}")
        j = self._jobs[a.job_id]
        req = j.req
        if j.state not in (RUNNING, RESTORING, LOADING, SAVING):
            raise PolicyError(f"{name}: Resize of job {a.job_id} in state {j.state}, expected running")
        if req.min_gpus is None or req.max_gpus is None or req.gpus == 0 or req.gpu_fraction != 1.0:
            raise PolicyError(f"{name}: Resize of job {a.job_id}, which is not elastic (no min_gpus/max_gpus)")
        n = len(set(a.gpus))
        if n != len(a.gpus) or not (req.min_gpus <= n <= req.max_gpus):
            raise PolicyError(f"{name}: Resize of job {a.job_id} to {len(a.gpus)} GPUs ({n} distinct), "
                              f"expected {req.min_gpus}..{req.max_gpus} distinct GPUs")
        if a.batch_size is not None and not (isinstance(a.batch_size, int) and a.batch_size >= 1):
            raise PolicyError(f"{name}: Resize of job {a.job_id} with batch_size {a.batch_size!r}, expected an integer >= 1")
        new = self._sized(req, n, a.batch_size)
        old = (j.gpus, j.node_shares, j.alloc_type)
        self._unclaim(req, *old)       # the resource books only: the job's own fields stay
        j.req = new
        try:
            claim = self._claim(a.job_id, tuple(a.gpus), None, "Resize")
            if claim[2] != old[2]:
                self._unclaim(new, *claim)
                raise PolicyError(f"{name}: Resize of job {a.job_id} to {claim[2]} GPUs, expected {old[2]} "
                                  "(the type it runs on)")
            if new.iterations is not None:
                placement = tuple(sorted((k for _, k in claim[1]), reverse=True))
                try:
                    self.cost.rate(new, claim[2], placement)
                except LookupError as e:
                    self._unclaim(new, *claim)
                    raise PolicyError(f"{name}: Resize of job {a.job_id}: the cost model cannot cost it there ({e})")
        except PolicyError:
            j.req = req
            self._claim(a.job_id, old[0], None, "Resize")  # what it held a moment ago: fits
            raise
        self._interrupt(j)             # records the old allocation's phase up to now
        self._adopt(j)
        j.last_stop = self.env.now
        j.gpus, j.node_shares, j.alloc_type = claim
        j.resizing = True
        j.migrations += 1
        self._events.append((self.env.now, "resize", a.job_id, _nodes_str(j)))
        self._enter(j, CHECKPOINTING)
        self._write_checkpoint(j)
        self._mark_timeline()

    @staticmethod
    def _sized(req: JobRequest, n: int, batch_size: int | None) -> JobRequest:
        """The request on ``n`` GPUs (CPU and memory in proportion), with a new batch if given."""
        return dataclasses.replace(req, gpus=n, cpus=req.cpus / req.gpus * n, memory_bytes=req.memory_bytes / req.gpus * n,
                                   batch_size=req.batch_size if batch_size is None else batch_size)

    def _adopt(self, j: _Job) -> None:
        """``j.req`` was resized: the view follows, and so does the work scale (an iteration
        job's work stays in iterations of its submitted global batch)."""
        new = j.req
        if new.iterations is not None:
            j.scale = (new.gpus * self._batch(new)) / (j.req0.gpus * self._batch(j.req0))
        v = j.view
        if v is not None:
            v.request, v.gpus, v.cpus, v.memory_bytes = new, new.gpus, new.cpus, new.memory_bytes

    def _batch(self, req: JobRequest) -> float:
        """Per-GPU batch of an iteration job: its own, else the cost model's default."""
        if req.batch_size is not None:
            return float(req.batch_size)
        default = getattr(self.cost, "default_batch", None)
        b = default(req.model) if default is not None else None
        return float(b) if b else 1.0

    def _finish_resize(self, j: _Job) -> None:
        self._close_phase(j, "checkpoint")
        j.resizing = False
        self._resume(j)

    def _close_reserve(self, j: _Job, t1: float) -> None:
        """Record the time a migrating job held its new GPUs while it checkpointed on the old."""
        gpus, shares, gtype = j.moving
        if t1 > j.moving_since:
            n = len(gpus) if j.req.gpu_fraction == 1.0 else len(gpus) * j.req.gpu_fraction
            j.gpu_seconds += n * (t1 - j.moving_since)
            self._intervals.append((j.req.job_id, "reserve", j.moving_since, t1, n, gtype,
                                    ",".join(f"{ni}:{k}" for ni, k in shares), " ".join(map(str, gpus)), 0.0))

    def _requeue(self, j: _Job) -> None:
        if j.req.kind == REPLICA and j.req.job_id in self.services.retired:
            self._finish_retire(j)  # a draining replica preempted or failed: it is done
            return
        self._release(j)
        j.state = PENDING
        j.wait_since = self.env.now
        bisect.insort(self._pending, j.req.job_id)
        self._mark_timeline()

    # ------------------------------------------------------------------ failures
    def _node_down(self, ni: int) -> None:
        """A node fails: its jobs lose the work since their last checkpoint and are requeued
        (or fail after too many interruptions); its GPUs are neither free nor allocatable.
        A cloud node that is not provisioned (or a node already down) has nothing to lose."""
        if ni in self._unprov or self._nodes[ni].down:
            return
        now = self.env.now
        node = self._nodes[ni]
        self._events.append((now, "node_down", -1, f"{ni}:{' '.join(map(str, node.gpu_ids))}"))
        # every job holding something there (whole or fractional GPUs, CPUs, a migration's reserve)
        hit = [j.req.job_id for j in self._jobs
               if j.state not in ("future", PENDING, DONE, FAILED)
               and (any(n == ni for n, _ in j.node_shares)
                    or (j.moving is not None and any(n == ni for n, _ in j.moving[1])))]
        for jid in hit:
            j = self._jobs[jid]
            self._interrupt(j)  # a checkpoint being written is lost with the node
            if j.req.kind != REPLICA:
                self._lose_unsaved(j)
            j.failures += 1
            j.last_stop = now
            self._events.append((now, "interrupt", jid, f"node {ni}"))
            if j.failures > self._max_retries and j.req.kind != REPLICA:
                self._release(j)
                j.state = FAILED
                j.end = now
                self._done += 1
                if self.storage is not None:
                    self.storage.drop(jid)
                self._events.append((now, "fail", jid, f"{j.failures} interruptions"))
            else:
                self._requeue(j)
        self._offline(ni)  # all its jobs are gone: every GPU is wholly free now
        self._mark_timeline()
        self._request_pass()

    def _lose_unsaved(self, j: _Job) -> None:
        """Back to the last committed checkpoint: the running time since its state was taken
        is lost (``lost_s``, and times the GPUs held in ``lost_gpu_s``)."""
        lost = max(j.executed - j.ckpt_exec, 0.0)
        j.lost_s += lost
        j.lost_gpu_s += lost * (len(j.gpus) if j.req.gpu_fraction == 1.0 else j.req.gpu_fraction)
        j.work_done = j.ckpt_work
        j.ckpt_exec = j.executed  # what runs from here on is unsaved again

    def up_capacity(self, gpu_type: str | None = None) -> int:
        """GPUs on nodes that are up (of one type, or all)."""
        return sum(n.info.gpus for n in self._nodes if not n.down and n.info.gpu_type is not None
                   and (gpu_type is None or n.info.gpu_type == gpu_type))

    def _node_up(self, ni: int) -> None:
        if ni in self._unprov:
            return  # (a repair of a cloud node that is not provisioned)
        node = self._nodes[ni]
        node.down = False
        node.free = list(node.gpu_ids)
        for g in node.gpu_ids:
            self._owner[g] = -1
        t = node.info.gpu_type
        if t is not None:
            self._free_by_type[t] += node.info.gpus
            self._free_total += node.info.gpus
        self._down_gpus -= node.info.gpus
        node.free_cpus = float(node.info.cpus)
        node.free_mem = float(node.info.memory_bytes)
        self._refrag(node)
        self._events.append((self.env.now, "node_up", -1, f"{ni}:{' '.join(map(str, node.gpu_ids))}"))
        self._mark_timeline()
        self._request_pass()

    # ------------------------------------------------------------------ cloud pools
    def _start_cloud(self) -> None:
        """Bill every provisioned node from t = 0; take the nodes of an autoscaling pool
        beyond its ``autoscale.min`` offline (not provisioned, not billed)."""
        for pool, idx in self._pools.items():
            lo = self._nodes[idx[0]].info.autoscale_min
            for k, ni in enumerate(idx):
                if lo is not None and k >= lo:
                    self._unprov.add(ni)
                    self._offline(ni)
                else:
                    self._billed_since[ni] = 0.0

    def _offline(self, ni: int) -> None:
        """An idle node leaves the allocatable cluster (its GPUs neither free nor allocatable)."""
        node = self._nodes[ni]
        node.down = True
        k = len(node.free)
        node.free = []
        for g in node.gpu_ids:
            self._owner[g] = -3
        t = node.info.gpu_type
        if t is not None:
            self._free_by_type[t] -= k
            self._free_total -= k
        self._down_gpus += node.info.gpus
        node.free_cpus = node.free_mem = 0.0
        self._refrag(node)

    def _bill_end(self, ni: int, t: float) -> None:
        since = self._billed_since.pop(ni, None)
        if since is not None:
            info = self._nodes[ni].info
            self._billing.append((ni, info.pool, since, t, info.price_per_hour))

    def _apply_add_nodes(self, a: AddNodes) -> None:
        now = self.env.now
        idx = self._pools.get(a.pool)
        if idx is None or self._nodes[idx[0]].info.autoscale_min is None:
            cloud = sorted(p for p, ix in self._pools.items() if self._nodes[ix[0]].info.autoscale_min is not None)
            raise PolicyError(f"{self.policy.name}: AddNodes to pool {a.pool!r}; expected an autoscaling pool: "
                              f"{', '.join(cloud) or 'none in this cluster'}")
        spare = [ni for ni in idx if ni in self._unprov and ni not in self._provisioning]
        if not (1 <= a.count <= len(spare)):
            raise PolicyError(f"{self.policy.name}: AddNodes of {a.count} nodes to pool {a.pool!r}, which can add "
                              f"1..{len(spare)} now (count is its maximum)")
        delay = self._nodes[idx[0]].info.provisioning_delay
        for ni in spare[:a.count]:
            self._provisioning.add(ni)
            self._billed_since[ni] = now
            self._events.append((now, "node_add", -1, str(ni)))
            self._at(delay, P_PHASE, self._provisioned, ni)

    def _provisioned(self, ni: int) -> None:
        self._provisioning.discard(ni)
        self._unprov.discard(ni)
        self._node_up(ni)

    def _apply_remove_nodes(self, a: RemoveNodes) -> None:
        now = self.env.now
        nodes = tuple(a.nodes)
        if len(set(nodes)) != len(nodes):
            raise PolicyError(f"{self.policy.name}: RemoveNodes names a node twice: {nodes}")
        for ni in nodes:
            if not (0 <= ni < len(self._nodes)):
                raise PolicyError(f"{self.policy.name}: RemoveNodes of unknown node {ni}")
            node = self._nodes[ni]
            info = node.info
            if info.autoscale_min is None:
                raise PolicyError(f"{self.policy.name}: RemoveNodes of node {info.name}, whose pool does not autoscale")
            if ni in self._unprov or node.down:
                raise PolicyError(f"{self.policy.name}: RemoveNodes of node {info.name}, which is not up")
            if len(node.free) != info.gpus or node.used or not (node.free_cpus >= info.cpus and
                                                                 node.free_mem >= info.memory_bytes):
                raise PolicyError(f"{self.policy.name}: RemoveNodes of node {info.name}, which is not idle "
                                  "(only idle nodes are removed)")
        for pool in {self._nodes[ni].info.pool for ni in nodes}:
            idx = self._pools[pool]
            keep = sum(1 for ni in idx if ni not in self._unprov) - sum(1 for ni in nodes if self._nodes[ni].info.pool == pool)
            lo = self._nodes[idx[0]].info.autoscale_min
            if keep < lo:
                raise PolicyError(f"{self.policy.name}: RemoveNodes would leave pool {pool!r} with {keep} nodes, "
                                  f"below its autoscale.min {lo}")
        for ni in nodes:
            self._unprov.add(ni)
            self._offline(ni)
            self._bill_end(ni, now)
            self._events.append((now, "node_remove", -1, str(ni)))
        self._mark_timeline()

    def _release(self, j: _Job) -> None:
        self._unclaim(j.req, j.gpus, j.node_shares, j.alloc_type)
        j.gpus = ()
        j.node_shares = ()

    def _remove_pending(self, jid: int) -> None:
        i = bisect.bisect_left(self._pending, jid)
        if i < len(self._pending) and self._pending[i] == jid:
            del self._pending[i]

    # ------------------------------------------------------------------ records
    def _close_phase(self, j: _Job, phase: str, end: float | None = None) -> None:
        t1 = self.env.now if end is None else end
        if t1 > j.phase_since:
            n = len(j.gpus) if j.req.gpu_fraction == 1.0 else len(j.gpus) * j.req.gpu_fraction
            j.gpu_seconds += n * (t1 - j.phase_since)
            j.phase_time[phase] = j.phase_time.get(phase, 0.0) + (t1 - j.phase_since)
            stall = j.phase_stall if phase == "run" else 0.0
            self._intervals.append(
                (j.req.job_id, phase, j.phase_since, t1, n, j.alloc_type, _nodes_str(j), " ".join(map(str, j.gpus)),
                 stall)
            )
        j.phase_stall = 0.0

    def _mark_timeline(self) -> None:
        row = (self.env.now, self._allocated, len(self._active), len(self._pending), self._frag_total, self._down_gpus,
               *(self._alloc_by_type[t] for t in self._type_order))
        tl = self._timeline
        if tl and tl[-1][0] == row[0]:
            tl[-1] = row
        else:
            tl.append(row)

    # ------------------------------------------------------------------ policy
    def _pass(self) -> None:
        self._pass_pending = False
        self._passes += 1
        now = self.env.now
        if self.services is not None:
            self.services.advance_to(now)
        if now == self._pass_time:
            self._passes_now += 1
            if self._passes_now > MAX_DECISIONS_PER_INSTANT:
                raise PolicyError(
                    f"{self.policy.name}: invoked {self._passes_now} times at t={now:g} without time advancing "
                    "(a policy that keeps asking for Wakeup(now)?)"
                )
        else:
            self._pass_time, self._passes_now = now, 1
        actions = self.policy.decide(self._view)
        if not actions:
            return
        for a in actions:
            self._actions += 1
            if isinstance(a, Start):
                self._apply_start(a)
            elif isinstance(a, Preempt):
                self._apply_preempt(a)
            elif isinstance(a, Migrate):
                self._apply_migrate(a)
            elif isinstance(a, Resize):
                self._apply_resize(a)
            elif isinstance(a, ScaleService):
                self._apply_scale(a)
            elif isinstance(a, AddNodes):
                self._apply_add_nodes(a)
            elif isinstance(a, RemoveNodes):
                self._apply_remove_nodes(a)
            elif isinstance(a, Wakeup):
                if not math.isfinite(a.at) or a.at < self.env.now:
                    raise PolicyError(f"{self.policy.name}: Wakeup at {a.at} is in the past (now {self.env.now})")
                if a.at not in self._wakeups:  # one wake-up per distinct time
                    self._wakeups.add(a.at)
                    self._at(self._delay_to(a.at), P_WAKEUP, self._wake, a.at)
            else:
                raise PolicyError(f"{self.policy.name}: unknown action {a!r}; expected Start, Preempt, Migrate, Resize, ScaleService, AddNodes, RemoveNodes or Wakeup")

    # ------------------------------------------------------------------ inference replicas
    def _add_replica(self, sid: int) -> None:
        """A new pending replica job of service ``sid`` (ids after the training jobs)."""
        plan = self._service_plans[sid]
        s = plan.spec
        d = self.scenario.workload.defaults
        tp = s.tensor_parallel
        cpg = s.cpus_per_gpu if s.cpus_per_gpu is not None else d.cpus_per_gpu
        mpg = s.memory_per_gpu if s.memory_per_gpu is not None else d.memory_per_gpu
        now = self.env.now
        jid = len(self._jobs)
        k = self._replica_count[sid]
        self._replica_count[sid] = k + 1
        req = JobRequest(job_id=jid, name=f"{s.name}/{k}", submit_time=now, gpus=tp, cpus=tp * cpg,
                         memory_bytes=tp * mpg, tenant=s.tenant or s.name, model=s.model, gpu_type=plan.gpu_type,
                         duration=math.inf, iterations=None, batch_size=None, source=f"workload.services[{sid}]",
                         priority=s.priority, kind=REPLICA)
        j = _Job(req)
        j.view = JobView(j, self)
        j.work_total = math.inf
        j.isolated_runtime = math.inf
        self._jobs.append(j)
        self._replica_service[jid] = sid
        self.services.add_replica(jid, s.name)
        j.state = PENDING
        j.wait_since = now
        self._pending.append(jid)  # the largest id so far: the list stays sorted
        self._events.append((now, "arrive", jid, ""))

    def _retire_replica(self, jid: int) -> None:
        """Take a replica out of service for good (ScaleService down): a pending or loading
        one at once; a serving one drains (no new requests, it finishes those it holds) and
        releases its GPUs when it is empty."""
        now = self.env.now
        j = self._jobs[jid]
        self.services.retired.add(jid)
        self._events.append((now, "retire", jid, ""))
        if j.state == PENDING:
            self._remove_pending(jid)
            j.wait_total += now - j.wait_since
            j.version += 1
            j.state = DONE
            j.end = now
        elif j.state == RUNNING and self.services.start_drain(jid, now):
            return
        else:
            self._interrupt(j)
            self._finish_retire(j)

    def _finish_retire(self, j: _Job) -> None:
        """A retired replica that holds resources gives them back and is done."""
        self._release(j)
        self._active.discard(j.req.job_id)
        j.state = DONE
        j.end = self.env.now
        self._mark_timeline()

    def _service_wake(self) -> None:
        """A draining replica's event: release the replicas that finished draining."""
        sv = self.services
        sv.advance_to(self.env.now)
        while sv.drained:
            jid = sv.drained.pop(0)
            j = self._jobs[jid]
            if j.state == RUNNING:
                self._interrupt(j)
                self._finish_retire(j)
                self._request_pass()

    def _live_replicas(self, sid: int) -> list[int]:
        return [r.job_id for r in self.services.svcs[sid].replicas if r.job_id not in self.services.retired]

    def _apply_scale(self, a: ScaleService) -> None:
        svc = self.services.by_name.get(a.service) if self.services is not None else None
        if svc is None:
            names = ", ".join(s.name for s in self.services.svcs) if self.services is not None else "none"
            raise PolicyError(f"{self.policy.name}: ScaleService of unknown service {a.service!r} (services: {names})")
        spec = svc.spec
        if isinstance(spec.replicas, int):
            raise PolicyError(f"{self.policy.name}: ScaleService of {a.service!r}, whose replicas are fixed at "
                              f"{spec.replicas} (give replicas: {{min, max}} to autoscale it)")
        want = min(max(int(a.replicas), spec.replicas.min), spec.replicas.max)
        sid = svc.sid
        live = self._live_replicas(sid)
        if want > len(live):
            for _ in range(want - len(live)):
                self._add_replica(sid)
            self._events.append((self.env.now, "scale", -1, f"{a.service}={want}"))
            self._mark_timeline()
            self._request_pass()
        elif want < len(live):
            jobs = self._jobs
            order = {PENDING: 0, RESTORING: 1, RUNNING: 2}
            by_job = self.services.by_job
            victims = sorted(live, key=lambda jid: (order.get(jobs[jid].state, 3), by_job[jid].outstanding, -jid))
            for jid in victims[:len(live) - want]:
                self._retire_replica(jid)
            self._events.append((self.env.now, "scale", -1, f"{a.service}={want}"))
            self._mark_timeline()
            self._request_pass()
        svc.target = want

    def _wake(self, at: float) -> None:
        self._wakeups.discard(at)
        self._request_pass()

    def _tick(self) -> None:
        if self._done < len(self._jobs):
            self._request_pass()
            self._at(self._round, P_WAKEUP, self._tick)

    # ------------------------------------------------------------------ run
    def run(self) -> RawRecords:
        self._start_cloud()
        self._replica_service: dict[int, int] = {}
        self._replica_count = [0] * len(self._service_plans)
        for sid, plan in enumerate(self._service_plans):
            r = plan.spec.replicas
            n = r if isinstance(r, int) else (r.initial if r.initial is not None else r.min)
            for _ in range(n):
                self._add_replica(sid)
            self.services.svcs[sid].target = n
        if self._service_plans:
            self._request_pass()
        self._mark_timeline()
        self._schedule_next_arrival()
        if self._round:
            self._at(self._round, P_WAKEUP, self._tick)
        if self.storage is not None:
            self.storage.start()
        if self.failures is not None:
            self.failures.start()
        env = self.env
        n = self._n_train
        serving = self.services is not None  # then the run goes on until the horizon
        step = env.step
        peek = env.peek
        progress = self._progress
        next_report = 0.0
        report_every = (self.horizon / 200.0) if math.isfinite(self.horizon) else max(
            (self._jobs[-1].req.submit_time / 200.0) if n else 1.0, 1.0)
        while self._done < n or serving:
            t = peek()
            if t > self.horizon or t == math.inf:
                break
            step()
            if progress is not None and env.now >= next_report:
                progress(env.now)
                next_report = env.now + report_every
        # the last event's time when every job ended; else the horizon (or the last event
        # when nothing more could happen before it)
        end = self.horizon if (math.isfinite(self.horizon) and (self._done < n or serving)) else env.now
        if end == env.now:
            self.network.flush()  # flows that ended at the last instant: their links' loads drop now
        if serving:
            self.services.close(end)
        # close what is still open at the end
        for j in self._jobs:
            if j.state == RUNNING:
                j.stop_running(end)
                self._close_phase(j, "run", end)
            elif j.state in (RESTORING, LOADING, CHECKPOINTING, SAVING):
                restore = "cold_start" if j.req.kind == REPLICA else "restore"
                self._close_phase(j, {RESTORING: restore, LOADING: "load"}.get(j.state, "checkpoint"), end)
                if j.moving is not None:
                    self._close_reserve(j, end)
            if j.state == PENDING:
                j.wait_total += end - j.wait_since
        if progress is not None:
            progress(end)
        return RawRecords(
            jobs=self._jobs,
            intervals=self._intervals,
            timeline=self._timeline,
            events=self._events,
            end_time=end,
            gpu_types=self._type_order,
            capacity=dict(self._capacity),
            stats={"policy_invocations": self._passes, "actions": self._actions, "events": self._scheduled},
            links=self.network.utilization_records(),
            services=self.services,
            storage=self._storage_rows(end),
            storage_bandwidth=self.storage.nominal if self.storage is not None else math.nan,
            billing=self._close_billing(end),
        )

    def _close_billing(self, end: float) -> list:
        for ni in sorted(self._billed_since):
            self._bill_end(ni, end)
        return sorted(self._billing)

    def _storage_rows(self, end: float) -> list:
        return self.storage.rows(end) if self.storage is not None else []


def _packed(gpus: int, gpn: int) -> tuple[int, ...]:
    full, rest = divmod(gpus, gpn)
    return tuple([gpn] * full + ([rest] if rest else []))


def _nodes_str(j: _Job) -> str:
    return ",".join(f"{ni}:{k}" for ni, k in j.node_shares)


def _snap(x: float) -> float:
    """``x`` rounded to the nearest integer when within 1e-9 of it (sums of GPU shares)."""
    r = round(x)
    return float(r) if abs(x - r) < 1e-9 else x


def _workload_mix(jobs) -> tuple:
    """The workload's job shapes with their frequencies: ((p, GPUs, fraction, GPU type), ...),
    over the jobs that ask for GPUs, sorted; the target workload of the fragmentation measure."""
    counts: dict[tuple, int] = {}
    for r in jobs:
        if r.gpus > 0:
            key = (r.gpus, r.gpu_fraction, r.gpu_type)
            counts[key] = counts.get(key, 0) + 1
    total = sum(counts.values())
    return tuple((c / total, *k) for k, c in sorted(counts.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] or "")))
