"""The simpy side of the fabric: transfers and sustained flows with fluid progress.

A :class:`Network` owns a :class:`~lepsim.engine.topology.Topology` and a
:class:`~lepsim.engine.fabric.Fabric` over its directed links.

* :meth:`Network.transfer` moves ``nbytes`` from one endpoint to another along the path;
  ``on_done()`` is called when the last byte arrives.  Progress is fluid: bytes moved
  grow at the flow's current max-min rate; the completion is one event, rescheduled
  (versioned, stale events ignored) whenever the rate changes.
* :meth:`Network.sustain` holds a ring of flows between endpoints (a training job's
  gradient all-reduce) at up to ``demand`` bytes/s, until :meth:`Network.stop`;
  ``on_rate(rate)`` is called whenever its rate changes.  The ring is one fabric flow over
  the links of all its hops (all hops of a ring step move together).
  :meth:`Network.flow` holds one such flow along the path from one endpoint to another
  (a storage read stream).

Rates are recomputed once per simulated instant at which something changed (a flow started
or ended, a capacity or demand changed): changes mark the fabric dirty and schedule one
*settle* event at the same time, after the scheduling pass (priority ``settle_priority``).
No time passes between a change and its settle, so the fluid accounting is exact; the
settle then calls back every flow whose rate changed.

Link utilization is recorded as a step function: a row ``(time_s, link, kind,
capacity_bytes_per_s, load_bytes_per_s)`` whenever a finite-capacity link's load (the sum
of the rates of the flows crossing it) or capacity changes (an unlimited link is followed
from the first time it has a finite capacity: an outage).

Link outages (:meth:`Network.link_down`, :meth:`Network.link_up`) take a cable's two
directed links to capacity 0 and back: every flow crossing it gets rate 0 (transfers
schedule no completion, sustained flows report rate 0) until it is up again.  Paths are not
recomputed: a flow keeps its single shortest path (no rerouting around a down cable).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import simpy

from lepsim.engine.fabric import Fabric
from lepsim.engine.topology import Topology

__all__ = ["Network", "Transfer", "Sustained"]


class Transfer:
    """A finite transfer in flight (a handle: read ``rate``, ``moved``, ``done``)."""

    __slots__ = ("src", "dst", "nbytes", "on_done", "fid", "rate", "_moved", "_since", "version", "done", "_net")

    def __init__(self, net, src, dst, nbytes, on_done):
        self._net = net
        self.src, self.dst, self.nbytes, self.on_done = src, dst, float(nbytes), on_done
        self.fid = -1
        self.rate = 0.0
        self._moved = 0.0
        self._since = net.env.now
        self.version = 0
        self.done = False

    @property
    def moved(self) -> float:
        """Bytes delivered so far (now)."""
        if self.done:
            return self._moved
        dt = self._net.env.now - self._since
        return min(self.nbytes, self._moved + (self.rate * dt if dt > 0 else 0.0))

    def __repr__(self) -> str:
        return f"Transfer({self.src}->{self.dst}, {self.nbytes:g} B, rate {self.rate:g} B/s)"


class Sustained:
    """A sustained ring of flows between endpoints (a handle: read ``rate``)."""

    __slots__ = ("endpoints", "demand", "on_rate", "fid", "rate", "active")

    def __init__(self, endpoints, demand, on_rate):
        self.endpoints = tuple(endpoints)
        self.demand = float(demand)
        self.on_rate = on_rate
        self.fid = -1
        self.rate = math.nan   # until the first settle
        self.active = True

    def __repr__(self) -> str:
        return f"Sustained({','.join(self.endpoints)}, demand {self.demand:g} B/s, rate {self.rate:g} B/s)"


class Network:
    """Transfers and sustained flows over a topology, rates max-min fair (see module doc)."""

    def __init__(
        self,
        env: simpy.Environment,
        topology: Topology,
        *,
        at: Callable | None = None,
        done_priority: int = 0,
        settle_priority: int = 5,
    ):
        self.env = env
        self.topology = topology
        self.fabric = Fabric(topology.capacities)
        self._at = at or self._schedule
        self._done_priority = done_priority
        self._settle_priority = settle_priority
        self._by_fid: dict[int, Transfer | Sustained] = {}
        self._settle_pending = False
        nl = len(topology.capacities)
        self._load = np.zeros(nl)
        self._cap_seen = np.asarray(topology.capacities, dtype=float).copy()
        self._shown = np.isfinite(self._cap_seen)   # links the records follow (finite at some time)
        self._up_capacity = self._cap_seen.copy()   # each link's capacity when it is not down
        self._outages = np.zeros(nl, dtype=np.int64)  # outages holding each link down now
        self._records: list[tuple] = []
        self.settles = 0

    @property
    def constrained(self) -> bool:
        """False when the scenario has no ``cluster.network`` (every link unlimited)."""
        return self.topology.constrained

    # ------------------------------------------------------------------ scheduling
    def _schedule(self, delay, priority, fn, *args) -> None:
        ev = simpy.Event(self.env)
        ev._ok = True
        ev._value = None
        ev.callbacks.append(lambda _e: fn(*args))
        self.env.schedule(ev, priority, delay)

    def _changed(self) -> None:
        if not self._settle_pending:
            self._settle_pending = True
            self._at(0.0, self._settle_priority, self.settle)

    # ------------------------------------------------------------------ transfers
    def transfer(self, src: str, dst: str, nbytes: float, on_done: Callable[[], None]) -> Transfer:
        """Move ``nbytes`` from endpoint ``src`` to ``dst``; ``on_done()`` when delivered."""
        if not (nbytes >= 0 and math.isfinite(nbytes)):
            raise ValueError(f"transfer of {nbytes!r} bytes: expected a finite size >= 0")
        links = self.topology.path(src, dst)
        tr = Transfer(self, src, dst, nbytes, on_done)
        if nbytes == 0:
            tr.version += 1
            self._at(0.0, self._done_priority, self._finish, tr, tr.version)
            tr.fid = -1
            return tr
        tr.fid = self.fabric.add(links)
        self._by_fid[tr.fid] = tr
        self._changed()
        return tr

    def cancel(self, tr: Transfer) -> float:
        """Stop a transfer; returns the bytes it moved.  A finished one returns its size."""
        if tr.done:
            return tr._moved
        moved = tr.moved
        tr._moved, tr._since = moved, self.env.now
        tr.done = True
        tr.version += 1
        if tr.fid >= 0:
            self.fabric.remove(tr.fid)
            del self._by_fid[tr.fid]
            self._changed()
        return moved

    def _finish(self, tr: Transfer, version: int) -> None:
        if tr.version != version or tr.done:
            return
        tr._moved = tr.nbytes
        tr._since = self.env.now
        tr.done = True
        if tr.fid >= 0:
            self.fabric.remove(tr.fid)
            del self._by_fid[tr.fid]
            self._changed()
        tr.on_done()

    def _retime(self, tr: Transfer, rate: float) -> None:
        now = self.env.now
        tr._moved = tr.moved
        tr._since = now
        tr.rate = rate
        tr.version += 1
        left = tr.nbytes - tr._moved
        if rate > 0:
            delay = 0.0 if left <= 0 or rate == math.inf else left / rate
            self._at(delay, self._done_priority, self._finish, tr, tr.version)
        # rate 0 (an outage): no completion until a capacity change gives it a rate again

    # ------------------------------------------------------------------ sustained flows
    def sustain(
        self,
        endpoints: Sequence[str],
        demand_bytes_per_s: float,
        on_rate: Callable[[float], None] | None = None,
    ) -> Sustained:
        """A ring of flows over ``endpoints`` at up to ``demand_bytes_per_s`` (see module doc)."""
        return self._hold(endpoints, self.topology.ring(endpoints), demand_bytes_per_s, on_rate)

    def flow(self, src: str, dst: str, demand_bytes_per_s: float,
             on_rate: Callable[[float], None] | None = None) -> Sustained:
        """A sustained one-way flow from ``src`` to ``dst`` at up to ``demand_bytes_per_s``
        (a storage read stream, say) until :meth:`stop`; ``on_rate(rate)`` at every change."""
        return self._hold((src, dst), self.topology.path(src, dst), demand_bytes_per_s, on_rate)

    def _hold(self, endpoints, links, demand_bytes_per_s, on_rate) -> Sustained:
        d = float(demand_bytes_per_s)
        if math.isnan(d) or d < 0:
            raise ValueError(f"sustained demand {demand_bytes_per_s!r}: expected >= 0 bytes/s")
        s = Sustained(endpoints, d, on_rate)
        s.fid = self.fabric.add(links, demand=d)
        self._by_fid[s.fid] = s
        self._changed()
        return s

    def set_demand(self, s: Sustained, demand_bytes_per_s: float) -> None:
        s.demand = float(demand_bytes_per_s)
        self.fabric.set_demand(s.fid, s.demand)
        self._changed()

    def stop(self, s: Sustained) -> None:
        if not s.active:
            return
        s.active = False
        self.fabric.remove(s.fid)
        del self._by_fid[s.fid]
        self._changed()

    # ------------------------------------------------------------------ capacities
    def link_index(self, name: str) -> int:
        try:
            return self.topology.link_names.index(name)
        except ValueError:
            raise KeyError(f"no link {name!r} in the topology") from None

    def set_capacity(self, link: int | str, bytes_per_s: float) -> None:
        """Change one directed link's capacity and re-share at once.  On a link that is down
        (:meth:`link_down`) it is the capacity the link gets back when it comes up."""
        i = self.link_index(link) if isinstance(link, str) else int(link)
        c = float(bytes_per_s)
        if math.isnan(c) or c < 0:
            raise ValueError(f"link capacity must be >= 0, got {bytes_per_s}")
        self._up_capacity[i] = c
        if not self._outages[i]:
            self.fabric.set_capacity(i, c)
        self._changed()

    # ------------------------------------------------------------------ link outages
    def link_down(self, a: str, b: str) -> bool:
        """Take the cable ``a`` -- ``b`` down: both its directed links get capacity 0 (every
        flow crossing it gets rate 0) until as many :meth:`link_up` calls as there were
        downs.  True when the cable was up before."""
        links = self.topology.cable(a, b)
        was_up = not self._outages[links[0]]
        for i in links:
            self._outages[i] += 1
            self.fabric.set_capacity(i, 0.0)
        self._changed()
        return was_up

    def link_up(self, a: str, b: str) -> bool:
        """End one outage of the cable ``a`` -- ``b``; when it was the last, the links get
        back their capacity (the topology's, or the last :meth:`set_capacity`).  True when
        the cable is up now."""
        links = self.topology.cable(a, b)
        for i in links:
            if not self._outages[i]:
                raise ValueError(f"link {self.topology.link_names[i]} is not down")
            self._outages[i] -= 1
            if not self._outages[i]:
                self.fabric.set_capacity(i, self._up_capacity[i])
        self._changed()
        return not self._outages[links[0]]

    def is_down(self, link: int | str) -> bool:
        """Whether a directed link is held down by an outage now."""
        i = self.link_index(link) if isinstance(link, str) else int(link)
        return bool(self._outages[i])

    def flow_links(self, handle: Transfer | Sustained) -> np.ndarray:
        """The directed links a transfer or sustained flow in progress crosses."""
        return self.fabric.links_of(handle.fid)

    def flows(self) -> list[Transfer | Sustained]:
        """The transfers and sustained flows in progress."""
        return list(self._by_fid.values())

    def set_endpoint_capacity(self, endpoint: str, bytes_per_s: float) -> None:
        """Set both directions of every cable at ``endpoint`` (e.g. ``"storage"``)."""
        for i in self.topology.links_at(endpoint):
            self.set_capacity(i, bytes_per_s)

    # ------------------------------------------------------------------ re-sharing
    def settle(self) -> None:
        """Recompute the max-min rates and call back every flow whose rate changed."""
        self._settle_pending = False
        self.settles += 1
        rates = self.fabric.rates()
        changed: list[tuple[Transfer | Sustained, float]] = []
        for fid, r in rates.items():
            h = self._by_fid[fid]
            if r != h.rate:
                changed.append((h, r))
        self._record()
        for h, r in changed:
            if isinstance(h, Transfer):
                self._retime(h, r)
            else:
                h.rate = r
                if h.on_rate is not None:
                    h.on_rate(r)

    def flush(self) -> None:
        """Settle now if a change is pending (the engine calls it when a run ends)."""
        if self._settle_pending:
            self.settle()

    def _record(self) -> None:
        load = self.fabric.link_loads()
        cap = self.fabric.capacities
        self._shown |= np.isfinite(cap)   # an unlimited link taken down (capacity 0) is followed from then on
        diff = np.flatnonzero(((load != self._load) | (cap != self._cap_seen)) & self._shown)
        if diff.size:
            now = self.env.now
            names, kinds = self.topology.link_names, self.topology.link_kind
            for i in diff.tolist():
                self._records.append((now, names[i], kinds[i], float(cap[i]), float(load[i])))
        self._load = load
        self._cap_seen = cap.copy()

    def utilization_records(self, end_time: float | None = None) -> list[tuple]:
        """``(time_s, link, kind, capacity_bytes_per_s, load_bytes_per_s)`` rows, in time
        order; each row holds until the next row of the same link."""
        return list(self._records)
