"""Read-only views of the engine's state that policies receive.

Views read through to live state (no copies per decision), expose no setters, and return
tuples; :meth:`ClusterView.free_map` gives a policy a private scratch copy to plan on.
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING, Iterator

from lepsim.policies.placement import FreeMap

if TYPE_CHECKING:  # pragma: no cover
    from lepsim.engine.simulation import Simulation, _Job

PENDING, RESTORING, RUNNING, CHECKPOINTING, DONE = "pending", "restoring", "running", "checkpointing", "done"
# with a storage or failures section (lepsim.engine.storage, lepsim.engine.failures)
LOADING, SAVING, FAILED = "loading", "saving", "failed"


class JobView:
    """What a policy may know about a job.  Times in seconds, service in GPU-seconds.

    The request's fields are plain attributes (read often, never changing); the state is
    read through to the engine on each access.  Changing a view changes nothing in the engine.
    """

    __slots__ = ("_j", "_sim", "job_id", "name", "tenant", "model", "gpus", "cpus", "memory_bytes", "gpu_type",
                 "submit_time", "request", "priority", "kind",
                 "node_selector", "isolated", "gpu_fraction")

    def __init__(self, job: "_Job", sim: "Simulation"):
        self._j = job
        self._sim = sim
        r = job.req
        self.request = r
        self.job_id = r.job_id
        self.name = r.name
        self.tenant = r.tenant
        self.model = r.model
        self.gpus = r.gpus
        self.cpus = r.cpus
        self.memory_bytes = r.memory_bytes
        self.gpu_type = r.gpu_type  # required GPU type (None = any)
        self.submit_time = r.submit_time
        self.priority = r.priority  # higher = more important; service replicas carry their service's
        self.kind = r.kind          # "training" or "inference-replica"
        self.node_selector = r.node_selector  # ((label, value), ...) a node must have
        self.isolated = r.isolated  # its tenant never shares a node with another tenant
        self.gpu_fraction = r.gpu_fraction  # share of one GPU (< 1: shares a GPU with others)

    # --- the state
    state = property(lambda self: self._j.state)
    allocated_gpus = property(lambda self: self._j.gpus, doc="global GPU ids held now (empty when pending)")
    allocated_gpu_type = property(lambda self: self._j.alloc_type)
    allocated_nodes = property(lambda self: self._j.node_shares, doc="((node index, GPUs used there), ...) held now")
    preemptions = property(lambda self: self._j.preemptions)
    last_start_time = property(lambda self: self._j.last_start, doc="when it last got GPUs (None: never)")
    last_stop_time = property(lambda self: self._j.last_stop, doc="when it was last preempted (None: never)")

    @property
    def executed_time(self) -> float:
        """Seconds it has spent making progress (running), up to now."""
        j = self._j
        extra = self._sim.env.now - j.run_since if j.state == RUNNING else 0.0
        return j.executed + extra

    @property
    def attained_service(self) -> float:
        """GPU-seconds of progress so far (executed time × GPUs), as Tiresias' LAS counts it."""
        return self.executed_time * max(self._j.req.gpus, 1)

    @property
    def isolated_runtime(self) -> float:
        """Oracle: runtime alone on its best GPU type, packed (used by SJF/SRTF)."""
        return self._j.isolated_runtime

    @property
    def remaining_time(self) -> float:
        """Oracle: remaining runtime at its current rate (isolated rate when not running)."""
        j = self._j
        done = j.work_done
        if j.state == RUNNING:
            done += j.rate * (self._sim.env.now - j.run_since)
        rate = j.rate if j.state == RUNNING else (j.work_total / j.isolated_runtime if j.isolated_runtime > 0 else 0.0)
        remaining = max(j.work_total - done, 0.0)
        if remaining == 0.0:
            return 0.0
        return remaining / rate if rate > 0 else math.inf

    def __repr__(self) -> str:
        return f"JobView(id={self.job_id}, name={self.name!r}, gpus={self.gpus}, state={self.state})"


class PoolView:
    """One node pool now.  ``autoscale_min`` is None for a fixed pool."""

    __slots__ = ("name", "gpu_type", "gpus_per_node", "nodes", "autoscale_min", "max_nodes", "provisioning_delay",
                 "price_per_hour", "provisioned", "provisioning")

    def __init__(self, sim, name: str, idx: list[int]):
        info = sim._nodes[idx[0]].info
        self.name = name
        self.gpu_type = info.gpu_type
        self.gpus_per_node = info.gpus
        self.nodes = tuple(idx)                      # node indices, up or not
        self.autoscale_min = info.autoscale_min
        self.max_nodes = len(idx)
        self.provisioning_delay = info.provisioning_delay
        self.price_per_hour = info.price_per_hour
        self.provisioned = sum(1 for i in idx if i not in sim._unprov or i in sim._provisioning)  # up or being set up
        self.provisioning = sum(1 for i in idx if i in sim._provisioning)              # added, not yet up

    def __repr__(self) -> str:
        return f"PoolView({self.name!r}, provisioned={self.provisioned}/{self.max_nodes})"


class NodeView:
    __slots__ = ("_n",)

    def __init__(self, node):
        self._n = node

    index = property(lambda self: self._n.info.index)
    name = property(lambda self: self._n.info.name)
    pool = property(lambda self: self._n.info.pool)
    gpu_type = property(lambda self: self._n.info.gpu_type)
    gpu_ids = property(lambda self: self._n.gpu_ids)
    labels = property(lambda self: dict(self._n.info.labels))
    free_gpus = property(lambda self: tuple(self._n.free), doc="wholly free GPU ids")
    free_shares = property(
        lambda self: {g: (1.0 - self._n.used[g] if g in self._n.used else (1.0 if g in self._n.free else 0.0))
                      for g in self._n.gpu_ids},
        doc="free share (0..1) of each of its GPUs")
    tenants = property(lambda self: dict(self._n.tenants), doc="tenant -> jobs holding resources here")
    isolated_tenants = property(lambda self: tuple(sorted(self._n.iso)), doc="isolated tenants with jobs here")
    fragmented_gpus = property(lambda self: self._n.frag, doc="GPU capacity a job of the workload mix could not use")
    free_cpus = property(lambda self: self._n.free_cpus)
    free_memory = property(lambda self: self._n.free_mem)
    info = property(lambda self: self._n.info)

    @property
    def idle(self) -> bool:
        """Up, and no job holds any of its GPUs, CPUs or memory."""
        n = self._n
        return (not n.down and len(n.free) == n.info.gpus and not n.used and n.free_cpus >= n.info.cpus
                and n.free_mem >= n.info.memory_bytes)
    down = property(lambda self: self._n.down, doc="failed and not yet repaired, or a cloud node not provisioned: "
                    "none of its GPUs is free")


class ClusterView:
    """The state a policy decides on, at ``now``."""

    __slots__ = ("_sim",)

    def __init__(self, sim: "Simulation"):
        self._sim = sim

    @property
    def now(self) -> float:
        return self._sim.env.now

    @property
    def nodes(self) -> tuple[NodeView, ...]:
        return self._sim._node_views

    @property
    def gpu_types(self) -> tuple[str, ...]:
        return tuple(t for t in self._sim._nodes_by_type if t is not None)

    def capacity(self, gpu_type: str | None = None) -> int:
        """GPUs installed on nodes that are up (of one type, or all): a failed node's GPUs
        count again when it is repaired."""
        s = self._sim
        if not s._down_gpus:
            return s._capacity_total if gpu_type is None else s._capacity.get(gpu_type, 0)
        return s.up_capacity(gpu_type)

    def free_gpus(self, gpu_type: str | None = None) -> int:
        s = self._sim
        return s._free_total if gpu_type is None else s._free_by_type.get(gpu_type, 0)

    def node_of(self, gpu_id: int) -> int:
        return self._sim._gpu_node[gpu_id]

    def free_share(self, gpu_id: int) -> float:
        """Free share (0..1) of one GPU: 1 when free, 0 when held by a whole-GPU job."""
        s = self._sim
        n = s._nodes[s._gpu_node[gpu_id]]
        if gpu_id in n.used:
            return 1.0 - n.used[gpu_id]
        return 1.0 if s._owner[gpu_id] == -1 else 0.0

    def rack_of(self, node: int) -> str:
        """The rack of a node, as topology-aware placement groups nodes: ``net:<r>`` from a
        leaf-spine ``cluster.network``, else ``label:<v>`` from its label ``rack``, else
        ``pool:<pool>``."""
        return self._sim._racks[node]

    def fragmented_gpus(self) -> float:
        """The cluster's GPU fragmentation now (docs/metrics.md), in GPUs."""
        return max(self._sim._frag_total, 0.0)

    def workload_mix(self) -> tuple:
        """The job shapes of the workload with their frequencies: ((p, GPUs, fraction, GPU type), ...)."""
        return self._sim._mix

    def job(self, job_id: int) -> JobView:
        return self._sim._jobs[job_id].view

    def pending(self) -> Iterator[JobView]:
        """Queued jobs in submit order (ties by job id), lazily."""
        jobs = self._sim._jobs
        for jid in self._sim._pending:  # actions are applied after decide() returns: no change meanwhile
            yield jobs[jid].view

    def pending_count(self) -> int:
        return len(self._sim._pending)

    def running_count(self) -> int:
        """Number of jobs holding resources and not leaving them (``len(running())``, in O(1))."""
        return len(self._sim._active)

    def events(self, since: int = 0) -> list[tuple]:
        """The engine's event records from position ``since`` on: ``(time_s, kind, job_id,
        detail)`` with kind ``arrive``, ``start``, ``complete``, ``preempt`` (and any kind
        other parts of the engine add).  The log only grows, so a policy that keeps state
        across calls reads what is new with ``since += len(returned)``."""
        ev = self._sim._events
        return ev[since:] if since < len(ev) else []

    def running(self) -> tuple[JobView, ...]:
        """Jobs holding GPUs and not leaving them (restoring, loading, running or saving), by job id."""
        jobs = self._sim._jobs
        return tuple(jobs[j].view for j in sorted(self._sim._active))

    @property
    def round_length(self) -> float | None:
        """``scheduler.round`` in seconds (None: no periodic rounds)."""
        return self._sim._round

    def gpus_per_node(self, gpu_type: str) -> int:
        """The most GPUs one node of ``gpu_type`` has (0: no such node)."""
        s = self._sim
        return max((s._gpn[i] for i in s._nodes_by_type.get(gpu_type, ())), default=0)

    def throughput(self, job: JobView, gpu_type: str, placement=None, batch_size: int | None = None) -> float:
        """Work units per second ``job`` would make on ``gpu_type``, from the cost model.

        ``placement``: GPUs used on each node (a tuple), or a GPU count packed on as few
        nodes of that type as possible; None = the job's own GPU count, packed.
        ``batch_size``: per-GPU batch (None = the job's).  Work units are iterations for an
        iteration job (so the answer differs by GPU type) and reference seconds for a
        duration job (1.0 everywhere).  0.0 when the cost model cannot cost the job there
        (no profile, a batch beyond the measured range) or no node of the type is large
        enough for the packed count.  Read-only: nothing in the engine changes.
        """
        s = self._sim
        req = job.request
        if req.iterations is None:
            return 1.0
        if placement is None or isinstance(placement, int):
            n = req.gpus if placement is None else int(placement)
            gpn = self.gpus_per_node(gpu_type)
            if n <= 0 or gpn == 0 or n > s._capacity.get(gpu_type, 0):
                return 0.0
            full, rest = divmod(n, gpn)
            placement = tuple([gpn] * full + ([rest] if rest else []))
        try:
            return 1.0 / s.cost.iteration_time(req.model, gpu_type, tuple(placement),
                                               req.batch_size if batch_size is None else batch_size)
        except LookupError:
            return 0.0

    def batch_size(self, job: JobView) -> int:
        """The job's per-GPU batch now: its own, else the cost model's default for its model
        (1 when neither is known, e.g. a duration job)."""
        b = job.request.batch_size
        if b is None and job.model is not None:
            default = getattr(self._sim.cost, "default_batch", None)
            try:
                b = default(job.model) if default is not None else None
            except LookupError:
                b = None
        return int(b) if b else 1

    def preemption_costs(self, job: JobView | None = None) -> tuple[float, float]:
        """(checkpoint seconds, restore seconds) the engine charges per preemption.

        Without a storage section: ``scheduler.preemption``'s fixed times.  With one, for a
        ``job`` whose checkpoint size is known: its size over the storage bandwidth (an
        estimate: the transfer shares the bandwidth with whatever else moves then); without
        a job, the largest such estimate over all jobs (a conservative figure)."""
        s = self._sim
        p = s.scenario.scheduler.preemption
        if s.storage is None:
            return p.checkpoint, p.restore
        bw = s.storage.nominal
        if job is not None:
            b = s._jobs[job.job_id].ckpt_bytes
            return (b / bw, b / bw) if b is not None else (p.checkpoint, p.restore)
        return s.max_checkpoint_s, s.max_checkpoint_s

    def services(self) -> tuple["ServiceView", ...]:
        """The inference services (``workload.services``), in file order."""
        s = self._sim.services
        if s is None:
            return ()
        return tuple(ServiceView(x, s) for x in s.svcs)

    def pools(self) -> tuple["PoolView", ...]:
        """Every node pool, in scenario order, with what autoscaling needs to know."""
        s = self._sim
        return tuple(PoolView(s, name, idx) for name, idx in s._pools.items())

    def free_map(self) -> FreeMap:
        """A private, mutable copy of the free resources to plan placements on."""
        s = self._sim
        return FreeMap(
            [list(n.free) for n in s._nodes],
            [n.free_cpus for n in s._nodes],
            [n.free_mem for n in s._nodes],
            s._node_type,
            s._nodes_by_type,
            s._gpn,
            labels=[n.labels for n in s._nodes],  # read only by the map
            racks=s._racks,
            tenants=[n.tenants for n in s._nodes],  # the map copies a node's dicts before it writes
            iso=[n.iso for n in s._nodes],
            used=[n.used for n in s._nodes],
            mix=s._mix,
        )


class ServiceView:
    """What a policy may know about an inference service at ``now`` (read-only, no future).

    Counts read through to the request-level simulation, which the engine has advanced to
    ``now`` before invoking the policy.  Latencies in seconds.
    """

    __slots__ = ("_s", "_all")

    def __init__(self, svc, services):
        self._s = svc
        self._all = services

    name = property(lambda self: self._s.name)
    spec = property(lambda self: self._s.spec, doc="the ServiceSpec (SLOs, batching, replica bounds)")
    cold_start = property(lambda self: self._s.plan.cold_start, doc="seconds from placement to serving")
    target_replicas = property(lambda self: self._s.target, doc="replicas asked for (initial count, or the last ScaleService)")
    ready_replicas = property(lambda self: len(self._s.ready), doc="replicas serving now and taking requests")
    queued = property(lambda self: self._s.waiting, doc="requests waiting for a batch (service and replica queues)")

    @property
    def bounds(self) -> tuple[int, int]:
        """(min, max) replicas; equal for a fixed count."""
        r = self._s.spec.replicas
        return (r, r) if isinstance(r, int) else (r.min, r.max)

    @property
    def outstanding(self) -> int:
        """Requests arrived and not finished or dropped (waiting or in a batch)."""
        s = self._s
        return len(s.squeue) + sum(r.outstanding for r in s.ready) + sum(r.outstanding for r in s.draining)

    def replica_job_ids(self) -> tuple[int, ...]:
        """Job ids of the service's replicas that are not retired (any state)."""
        sim = self._all
        return tuple(r.job_id for r in self._s.replicas if r.job_id not in sim.retired)

    def arrivals_in(self, window: float) -> int:
        """Requests that arrived in (now - window, now]."""
        from bisect import bisect_right

        s = self._s
        now = self._all.now
        lo = bisect_right(s.arrival, now - window, 0, s.next)
        return s.next - lo

    def recent_latencies(self, window: float, what: str = "e2e") -> list[float]:
        """Latencies (``e2e``, ``ttft`` or ``tpot``) of the requests completed in (now - window, now]."""
        s = self._s
        idx = self._all.recent(s, window, self._all.now)
        if what == "e2e":
            return [s.finish[i] - s.arrival[i] for i in idx]
        if what == "ttft":
            return [s.first[i] - s.arrival[i] for i in idx]
        if what == "tpot":
            return [(s.finish[i] - s.first[i]) / (s.output[i] - 1) for i in idx if s.output[i] > 1]
        raise ValueError(f"found {what!r}, expected e2e, ttft or tpot")

    def __repr__(self) -> str:
        return f"ServiceView(name={self.name!r}, ready={self.ready_replicas}, queued={self.queued})"
