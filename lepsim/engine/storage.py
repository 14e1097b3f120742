"""Shared storage, node-local caches and the transfers they serve (engine side, simpy).

Opt-in with a scenario's ``storage`` section; without one the engine keeps the fixed
``scheduler.preemption`` checkpoint/restore times and nothing here is built.

Model (docs/engine.md, "Storage, checkpoints and failures"):

* The storage service is one resource of ``storage.bandwidth`` bytes/s shared **max-min**
  by every transfer and stream on it (progressive filling: flows whose demand is below the
  equal share keep their demand, the rest split what is left equally).  Rates are
  recomputed whenever a flow starts or ends or the capacity changes (an outage), and the
  one pending completion event is rescheduled.
* Finite transfers: a job's **load** (its dataset, read at every start), **restore** (its
  checkpoint, read when it resumes) and **checkpoint** writes (periodic, and on preemption).
  A phase lasts what its bytes over the rate it actually gets say.
* Streams: after the load, a job whose dataset is read more than once (epochs > 1) keeps a
  sustained read at ``demand = bytes per work unit x compute rate``; from its node-local
  cache (one resource per node, ``storage.cache.bandwidth``) when the dataset fits there,
  else from the storage service.  A stream granted less than its demand slows the job: it
  progresses at ``compute rate x granted / demand`` and the rest of its time is a **data
  stall** (accounted in the engine, not in the cost model's ``data_stall`` hook, because it
  depends on the other flows of the moment).

**With a network** (a scenario's ``cluster.network``), the storage service is the fabric's
``storage`` endpoint instead: its cables carry at most ``storage.bandwidth`` in each
direction (full duplex: reads and writes do not compete), every transfer is one flow per
node of the job (its share of the bytes, in proportion to its GPUs there) through
``sim.network.transfer``, and every stream a one-way sustained flow (``sim.network.flow``),
all shared max-min with the other traffic on the links they cross (a job's all-reduce, say).
The node-local caches stay per-node resources off the network.
"""
from __future__ import annotations

import math
from typing import Callable

EPS_BYTES = 1e-6  # a transfer with fewer bytes left than this (relative to its size) is done


class _Flow:
    __slots__ = ("fid", "size", "remaining", "demand", "rate", "on_done", "on_rate", "write")

    def __init__(self, fid, size, demand, on_done, on_rate, write=False):
        self.fid = fid
        self.size = size
        self.remaining = size
        self.demand = demand
        self.rate = 0.0
        self.on_done = on_done
        self.on_rate = on_rate
        self.write = write


class SharedLink:
    """One resource of ``capacity`` bytes/s shared max-min by finite transfers and
    demand-capped streams.  ``priority`` is the simpy priority of its completion events."""

    def __init__(self, sim, capacity: float, name: str, priority: int = 0):
        self.sim = sim
        self.name = name
        self.nominal = float(capacity)
        self.capacity = float(capacity)
        self._priority = priority
        self._flows: dict[int, _Flow] = {}
        self._next_id = 0
        self._t = 0.0
        self._version = 0
        self.moved = 0.0              # bytes moved in all, for utilization
        self.record: list[tuple] = []  # (time, read bytes/s, write bytes/s, capacity bytes/s)

    # --- flows
    def transfer(self, nbytes: float, on_done: Callable[[], None], write: bool = False) -> int:
        """A finite transfer of ``nbytes``; ``on_done()`` when its last byte has moved."""
        return self._add(_Flow(self._id(), float(nbytes), math.inf, on_done, None, write))

    def stream(self, demand: float, on_rate: Callable[[float], None]) -> int:
        """A sustained flow wanting ``demand`` bytes/s; ``on_rate(rate)`` whenever its rate changes."""
        return self._add(_Flow(self._id(), math.inf, float(demand), None, on_rate))

    def cancel(self, fid: int) -> float:
        """Remove a flow; returns the bytes it had moved."""
        self._advance()
        f = self._flows.pop(fid, None)
        if f is None:
            return 0.0
        self._reshare()
        return (f.size - f.remaining) if math.isfinite(f.size) else 0.0

    def set_capacity(self, capacity: float) -> None:
        self._advance()
        self.capacity = float(capacity)
        self._reshare()

    def rate(self, fid: int) -> float:
        f = self._flows.get(fid)
        return f.rate if f is not None else 0.0

    # --- internals
    def _id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _add(self, f: _Flow) -> int:
        self._advance()
        if f.size <= 0:
            self.sim._at(0.0, self._priority, f.on_done)
            return f.fid
        self._flows[f.fid] = f
        self._reshare()
        return f.fid

    def _advance(self) -> None:
        now = self.sim.env.now
        dt = now - self._t
        if dt > 0:
            for f in self._flows.values():
                moved = f.rate * dt
                self.moved += moved
                if math.isfinite(f.size):
                    f.remaining -= moved
        self._t = now

    def _reshare(self) -> None:
        """Max-min (progressive filling on one resource), then reschedule the next completion
        and tell streams whose rate changed."""
        flows = sorted(self._flows.values(), key=lambda f: (f.demand, f.fid))
        left, n = self.capacity, len(flows)
        changed = []
        for f in flows:
            r = min(f.demand, left / n) if n else 0.0
            r = max(r, 0.0)
            left -= r
            n -= 1
            if f.on_rate is not None and r != f.rate:
                changed.append(f)
            f.rate = r
        written = sum(f.rate for f in flows if f.write)
        rec = (self.sim.env.now, sum(f.rate for f in flows) - written, written, self.capacity)
        if self.record and self.record[-1][0] == rec[0]:
            self.record[-1] = rec
        else:
            self.record.append(rec)
        self._version += 1
        nxt = math.inf
        for f in flows:
            if math.isfinite(f.size) and f.rate > 0:
                nxt = min(nxt, max(f.remaining, 0.0) / f.rate)
        if math.isfinite(nxt):
            self.sim._at(nxt, self._priority, self._due, self._version)
        for f in changed:
            f.on_rate(f.rate)

    def _due(self, version: int) -> None:
        if version != self._version:
            return
        self._advance()
        done = [f for f in self._flows.values()
                if math.isfinite(f.size) and f.remaining <= EPS_BYTES * max(f.size, 1.0)]
        for f in done:
            self.moved += max(f.remaining, 0.0)
            f.remaining = 0.0
            del self._flows[f.fid]
        self._reshare()
        for f in sorted(done, key=lambda f: f.fid):
            f.on_done()


class Storage:
    """The storage service, the node-local caches, and what jobs keep there."""

    def __init__(self, sim, spec, nodes, priority: int = 0):
        self.sim = sim
        self.spec = spec
        self.nominal = spec.bandwidth
        self._priority = priority
        self.cache_links: dict[int, SharedLink] = {}
        self.cache_free = [spec.cache.size for _ in nodes] if spec.cache is not None else None
        self.capacity = spec.capacity if spec.capacity is not None else math.inf
        self.stored: dict[int, float] = {}  # job id -> bytes of its kept checkpoint
        self.used = 0.0
        self.used_record: list[tuple] = [(0.0, 0.0)]
        net = getattr(sim, "network", None)
        self.net = net if net is not None and net.constrained else None
        self.link = None
        if self.net is None:
            self.link = SharedLink(sim, spec.bandwidth, "storage", priority)
        else:
            topo = self.net.topology
            self._out = [i for i in topo.links_at("storage") if topo.link_names[i].startswith("storage>")]
            self._in = [i for i in topo.links_at("storage") if topo.link_names[i].endswith(">storage")]
            self._cable = {i: float(topo.capacities[i]) for i in self._out + self._in}

    def start(self) -> None:
        """At the start of the run: cap the storage cables at the service's bandwidth."""
        if self.net is not None:
            self.set_bandwidth(self.nominal)

    def set_bandwidth(self, bw: float) -> None:
        """The service's bandwidth now (an outage lowers it; ``nominal`` is the scenario's)."""
        if self.net is None:
            self.link.set_capacity(bw)
        else:
            for i, cable in self._cable.items():
                self.net.set_capacity(i, min(cable, bw))

    # --- the one place transfers and streams go through
    def transfer(self, nbytes: float, on_done: Callable[[], None], shares=(), write: bool = False) -> tuple:
        """Move ``nbytes`` between the storage and the job's nodes ``shares`` ((node, GPUs
        there), ...); ``on_done()`` when every byte has moved.  Returns a handle for cancel."""
        if self.net is None or not shares:
            return ("link", self.link.transfer(nbytes, on_done, write))
        total = sum(k for _, k in shares)
        parts = [(ni, nbytes * k / total if total else nbytes / len(shares)) for ni, k in shares]
        left = [len(parts)]

        def one() -> None:
            left[0] -= 1
            if left[0] == 0:
                on_done()

        net = self.net
        return ("net", [net.transfer(f"node:{ni}", "storage", b, one) if write else
                        net.transfer("storage", f"node:{ni}", b, one) for ni, b in parts])

    def cancel(self, handle) -> float:
        kind, h = handle
        if kind == "link":
            return self.link.cancel(h)
        return sum(self.net.cancel(t) for t in h)

    def streams(self, shares, demand: float, on_change: Callable[[], None]) -> list:
        """Sustained reads of ``demand`` bytes/s in all from the storage to the job's nodes:
        [(rate(), stop(), demand of that part), ...]; ``on_change()`` when a rate changes."""
        if self.net is None or not shares:
            link = self.link
            fid = link.stream(demand, lambda _r: on_change())
            return [(lambda: link.rate(fid), lambda: link.cancel(fid), demand)]
        total = sum(k for _, k in shares)
        out = []
        for ni, k in shares:
            d = demand * k / total if total else demand / len(shares)
            h = self.net.flow("storage", f"node:{ni}", d, on_rate=lambda _r: on_change())
            out.append((lambda h=h: h.rate, lambda h=h: self.net.stop(h), d))
        return out

    # --- checkpoints kept in storage (one per job: a new one replaces the old)
    def fits(self, jid: int, nbytes: float) -> bool:
        return self.used - self.stored.get(jid, 0.0) + nbytes <= self.capacity * (1 + 1e-12)

    def keep(self, jid: int, nbytes: float) -> None:
        self.used += nbytes - self.stored.get(jid, 0.0)
        self.stored[jid] = nbytes
        self._mark_used()

    def drop(self, jid: int) -> None:
        if jid in self.stored:
            self.used -= self.stored.pop(jid)
            self._mark_used()

    def _mark_used(self) -> None:
        rec = (self.sim.env.now, self.used)
        if self.used_record[-1][0] == rec[0]:
            self.used_record[-1] = rec
        else:
            self.used_record.append(rec)

    # --- node-local caches
    def cache_reserve(self, shares: dict[int, float]) -> bool:
        """Reserve ``bytes`` on each node's cache; False (nothing reserved) when one lacks room."""
        if self.cache_free is None or any(self.cache_free[n] < b * (1 - 1e-12) for n, b in shares.items()):
            return False
        for n, b in shares.items():
            self.cache_free[n] -= b
        return True

    def cache_release(self, shares: dict[int, float]) -> None:
        for n, b in shares.items():
            self.cache_free[n] += b

    def cache_link(self, node: int) -> SharedLink:
        link = self.cache_links.get(node)
        if link is None:
            link = self.cache_links[node] = SharedLink(self.sim, self.spec.cache.bandwidth, f"cache:{node}", self._priority)
        return link

    # --- per job: the data model
    @staticmethod
    def stream_bytes_per_work(req, work_total: float, batch: int | None) -> float:
        """Bytes a job re-reads per work unit (iteration) after its load.

        epochs E = iterations x batch x gpus / dataset_samples; the load reads the dataset
        once, so the remaining (E - 1) x dataset bytes are spread evenly over the work.
        0 when the epochs are unknown (no samples, no batch, a duration job) or E <= 1.
        """
        D, S = req.dataset_bytes, req.dataset_samples
        if not D or not S or req.iterations is None or not batch or req.gpus <= 0 or work_total <= 0:
            return 0.0
        epochs = work_total * batch * req.gpus / S
        return max(epochs - 1.0, 0.0) * D / work_total

    def rows(self, end: float) -> list[tuple]:
        """(time, read bytes/s, write bytes/s, bandwidth bytes/s now, checkpoint bytes stored,
        utilization): a row per change up to ``end``.  Utilization: (read + write) / nominal
        bandwidth on the shared service; the busier direction / nominal over the network."""
        if self.net is None:
            self.link._advance()
            steps = [(t, r, w, c) for t, r, w, c in self.link.record]
        else:
            steps = self._network_steps()
        out = []
        used = self.used_record
        k = 0
        cur_used = 0.0
        for t, r, w, cap in steps:
            if t > end:
                break
            while k < len(used) and used[k][0] <= t:
                cur_used = used[k][1]
                k += 1
            util = (r + w) / self.nominal if self.net is None else max(r, w) / self.nominal
            out.append((t, r, w, cap, cur_used, util))
        return out

    def _network_steps(self) -> list[tuple]:
        """Read/write load and bandwidth of the storage cables from the network's link records."""
        names = self.net.topology.link_names
        out_names = {names[i] for i in self._out}
        in_names = {names[i] for i in self._in}
        load: dict[str, float] = {}
        cap: dict[str, float] = {}
        steps: list[tuple] = []
        for t, name, _kind, c, ld in self.net.utilization_records():
            if name not in out_names and name not in in_names:
                continue
            load[name], cap[name] = ld, c
            row = (t, sum(load.get(n, 0.0) for n in out_names), sum(load.get(n, 0.0) for n in in_names),
                   sum(cap.get(n, 0.0) for n in out_names))
            if steps and steps[-1][0] == t:
                steps[-1] = row
            else:
                steps.append(row)
        return steps
