"""Node failures and repairs, storage and link outages (engine side).

Opt-in with a scenario's ``failures`` section.  Each node alternates up and down: with
``mtbf``/``mttr`` it stays up for a draw of ``mtbf`` and down for a draw of ``mttr`` (its
own named random stream ``failures.node[<name>]``, so adding a node or a fault never shifts
another node's draws); each entry of ``faults`` brings one node down at ``at`` for
``repair``.  A fault on a node that is already down extends its repair when it would end
later.  What a failure does to the jobs on the node is the engine's business
(:meth:`lepsim.engine.simulation.Simulation._node_down`): they lose the work since their
last checkpoint and are requeued, or end as failed after ``max_retries`` interruptions.

``storage_outages`` set the storage service's bandwidth to ``bandwidth`` (0 stops every
transfer and stream) for ``duration``, then back to the nominal bandwidth.

``link_outages`` take a network cable down (:meth:`lepsim.engine.network.Network.link_down`:
capacity 0 both ways) from ``at`` to its end, with a ``link_down`` and a ``link_up`` event
(overlapping outages of one cable: down at the first start, up at the last end).  Flows
crossing it stall at rate 0 and are not rerouted: a transfer (a load, restore or
checkpoint) moves nothing, a job whose all-reduce ring crosses it makes no progress, until
the cable is back.
"""
from __future__ import annotations

from lepsim.rng import Streams
from lepsim.workload.distributions import sample


class Failures:
    def __init__(self, sim, spec, nodes, seed: int, priority: int):
        self.sim = sim
        self.spec = spec
        self._p = priority
        self._up_at = [0.0] * len(nodes)      # repair time of a down node
        self._repair_version = [0] * len(nodes)
        self._rngs = {}
        self._pending_random: set[int] = set()  # nodes whose random process resumes at their repair
        self._names = {n.name: n.index for n in nodes}
        if spec.mtbf is not None:
            streams = Streams(seed)
            self._rngs = {n.index: streams.get(f"failures.node[{n.name}]") for n in nodes}

    def start(self) -> None:
        sim = self.sim
        for f in self.spec.faults:
            sim._at(sim._delay_to(f.at), self._p, self._fail, self._names[f.node], f.repair, False)
        for ni in sorted(self._rngs):
            self._schedule_random(ni)
        for o in self.spec.storage_outages:
            sim._at(sim._delay_to(o.at), self._p, self._outage, o.bandwidth)
            sim._at(sim._delay_to(o.at + o.duration), self._p, self._outage, None)
        for o in self.spec.link_outages:
            sim._at(sim._delay_to(o.at), self._p, self._link, o.link, True)
            sim._at(sim._delay_to(o.end), self._p, self._link, o.link, False)

    def _draw(self, ni: int, dist) -> float:
        return float(sample(dist, self._rngs[ni], 1)[0])

    def _schedule_random(self, ni: int) -> None:
        up = self._draw(ni, self.spec.mtbf)
        self.sim._at(up, self._p, self._fail, ni, None, True)

    def _fail(self, ni: int, repair: float | None, random: bool) -> None:
        sim = self.sim
        now = sim.env.now
        if repair is None:
            repair = self._draw(ni, self.spec.mttr)
        until = now + repair
        if sim._nodes[ni].down:
            if until <= self._up_at[ni]:
                if random:  # this node's random process draws its next failure after the repair
                    self._chain_random(ni)
                return
        else:
            sim._node_down(ni)
        self._up_at[ni] = until
        self._repair_version[ni] += 1
        sim._at(sim._delay_to(until), self._p, self._repair, ni, self._repair_version[ni])
        if random:
            self._chain_random(ni)

    def _chain_random(self, ni: int) -> None:
        self._pending_random.add(ni)

    def _repair(self, ni: int, version: int) -> None:
        if version != self._repair_version[ni]:
            return
        self.sim._node_up(ni)
        if ni in self._pending_random:
            self._pending_random.discard(ni)
            self._schedule_random(ni)

    def _outage(self, bandwidth: float | None) -> None:
        st = self.sim.storage
        st.set_bandwidth(st.nominal if bandwidth is None else bandwidth)
        self.sim._events.append((self.sim.env.now, "storage_outage" if bandwidth is not None else "storage_restored",
                                 -1, "" if bandwidth is None else f"{bandwidth:g}"))

    def _link(self, link: tuple[str, str], down: bool) -> None:
        net = self.sim.network
        a, b = link
        changed = net.link_down(a, b) if down else net.link_up(a, b)
        if changed:  # the cable's two directed links, the same whichever way the spec names it
            u, v = net.topology.cable_ends(a, b)
            names = f"{u}>{v},{v}>{u}"
            self.sim._events.append((self.sim.env.now, "link_down" if down else "link_up", -1, names))
