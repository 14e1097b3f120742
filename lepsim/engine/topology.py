"""The cluster's network topology: a networkx graph of endpoints, switches and links.

Built from the scenario's optional ``cluster.network`` section (docs/scenario.md):

* every node ``i`` has two vertices: ``node:<i>`` (its host and NIC) and ``gpus:<i>`` (its
  GPUs), joined by the host link (PCIe: ``gpus x host_link_bandwidth / 2`` each way, the
  catalog quoting PCIe both ways).  The GPU-to-GPU interconnect inside a node (NVLink,
  NVSwitch, PCIe, from the pool's ``intra_node_link`` and the catalog's
  ``scaleup_bandwidth``) is kept as attributes of ``gpus:<i>`` and drawn; no flow crosses it,
  because intra-node collectives are costed by the cost model's fitted NCCL tiers;
* **leaf-spine**: ``node:<i>`` -- ``tor:<r>`` by the node's NIC (rack ``r = i //
  nodes_per_rack``, or by the node label ``rack``, else one rack per pool: see
  :func:`rack_indices`), ``tor:<r>`` -- ``spine`` by the rack's uplink (the rack's NIC total
  over ``oversubscription``, or ``uplink_bandwidth``).  The spine layer is one aggregate
  switch: the uplink stands for all of a ToR's links to all spines, so ECMP across spines is
  folded into one link of their summed capacity;
* **edges**: the scenario's explicit cables between ``node:<i>``, ``storage`` and switches;
* ``storage`` hangs off the spine (or ``rack:<r>``'s ToR) by a link of the storage
  section's bandwidth (unlimited by default);
* with no ``cluster.network`` every node and ``storage`` hang off one ``core`` switch by
  unlimited links: transfers are unconstrained.

Every cable is full duplex: two directed links (``"a>b"`` and ``"b>a"``) with the capacity
each way.  A path is a shortest path by hop count (``networkx.shortest_path``, a
bidirectional breadth-first search); among equally short paths the one it returns depends
only on the order the graph was built in (the order above, or the edge list's order), so
paths are deterministic, and single: no ECMP splitting over equal paths.  A leaf-spine has
exactly one shortest path between two endpoints; an edge list may have several.
"""
from __future__ import annotations

import math
from typing import Sequence

import networkx as nx

__all__ = ["Topology", "build_topology", "UNCONSTRAINED"]

UNCONSTRAINED = math.inf


class Topology:
    """A graph with numbered directed links, shortest paths and rings between endpoints."""

    def __init__(self, graph: nx.Graph, num_nodes: int, *, kind: str, racks: Sequence[int] | None = None):
        self.graph = graph
        self.kind = kind                      # "leaf-spine", "edges" or "unconstrained"
        self.num_nodes = num_nodes
        self.racks = tuple(racks) if racks is not None else None
        self.link_names: list[str] = []
        self.capacities: list[float] = []
        self.link_kind: list[str] = []
        self._link: dict[tuple[str, str], int] = {}
        for u, v, d in graph.edges(data=True):
            for a, b in ((u, v), (v, u)):
                self._link[(a, b)] = len(self.link_names)
                self.link_names.append(f"{a}>{b}")
                self.capacities.append(float(d["capacity"]))
                self.link_kind.append(d.get("kind", "edge"))
        self._paths: dict[tuple[str, str], tuple[int, ...]] = {}

    # ------------------------------------------------------------------ queries
    @property
    def constrained(self) -> bool:
        return self.kind != "unconstrained"

    def has_endpoint(self, name: str) -> bool:
        return name in self.graph

    def link(self, a: str, b: str) -> int:
        """The directed link from vertex ``a`` to its neighbour ``b``."""
        return self._link[(a, b)]

    def links_at(self, vertex: str) -> list[int]:
        """The directed links into and out of ``vertex`` (both directions of its cables)."""
        out = []
        for nb in self.graph.neighbors(vertex):
            out += [self._link[(vertex, nb)], self._link[(nb, vertex)]]
        return out

    def has_cable(self, a: str, b: str) -> bool:
        """Whether ``a`` -- ``b`` is a cable that flows cross (not a node's host link, which
        none does: intra-node traffic is costed by the cost model)."""
        return self.graph.has_edge(a, b) and self.graph.edges[a, b].get("kind") != "host"

    def cable(self, a: str, b: str) -> tuple[int, int]:
        """The two directed links of the cable ``a`` -- ``b``: (``a>b``, ``b>a``)."""
        return self._link[(a, b)], self._link[(b, a)]

    @staticmethod
    def cable_ends(a: str, b: str) -> tuple[str, str]:
        """The cable's ends in a fixed order, whichever way they are given: the end nearer
        the nodes first (``node:<i>``, then switches, then ``spine``/``core``, then
        ``storage``; ties: by name)."""
        def rank(v: str) -> tuple:
            return (0 if v.startswith("node:") else 3 if v == "storage" else 2 if v in ("spine", "core") else 1, v)
        return (a, b) if rank(a) <= rank(b) else (b, a)

    def describe_cables(self) -> str:
        """The cables flows cross, briefly: per kind, how many and the first two."""
        by_kind: dict[str, list[str]] = {}
        for u, v, d in self.graph.edges(data=True):
            if d.get("kind") != "host":
                u, v = self.cable_ends(u, v)
                by_kind.setdefault(d.get("kind", "edge"), []).append(f"[{u}, {v}]")
        parts = []
        for kind, cables in by_kind.items():
            shown = ", ".join(cables[:2]) + (", ..." if len(cables) > 2 else "")
            parts.append(f"{len(cables)} {kind} ({shown})")
        return "; ".join(parts)

    def rack_of(self, node: int) -> int | None:
        return self.racks[node] if self.racks is not None else None

    def path(self, src: str, dst: str) -> tuple[int, ...]:
        """Directed links of the (deterministic) shortest path from ``src`` to ``dst``."""
        key = (src, dst)
        p = self._paths.get(key)
        if p is None:
            for e in (src, dst):
                if e not in self.graph:
                    raise KeyError(f"no endpoint {e!r} in the topology")
            verts = nx.shortest_path(self.graph, src, dst)
            p = tuple(self._link[(a, b)] for a, b in zip(verts, verts[1:]))
            self._paths[key] = p
        return p

    def ring_order(self, endpoints: Sequence[str]) -> list[str]:
        """Endpoints in ring order: by rack, then node index (a rack's uplink is crossed
        once each way, as NCCL's topology-aware rings do), other names last by name."""
        def key(e: str):
            if e.startswith("node:"):
                i = int(e[5:])
                r = self.rack_of(i)
                return (0, -1 if r is None else r, i, e)
            return (1, 0, 0, e)
        return sorted(dict.fromkeys(endpoints), key=key)

    def ring(self, endpoints: Sequence[str]) -> list[int]:
        """Directed links used by a ring over ``endpoints`` (each hop's path; a link used by
        two hops appears twice).  Empty for fewer than two endpoints."""
        order = self.ring_order(endpoints)
        if len(order) < 2:
            return []
        links: list[int] = []
        for a, b in zip(order, order[1:] + order[:1]):
            links.extend(self.path(a, b))
        return links

    # ------------------------------------------------------------------ drawing
    def positions(self) -> dict[str, tuple[float, float]]:
        g = self.graph
        if self.kind == "edges":
            return {k: (float(x), float(y)) for k, (x, y) in nx.spring_layout(g, seed=0).items()}
        pos: dict[str, tuple[float, float]] = {}
        n = max(self.num_nodes, 1)
        for i in range(self.num_nodes):
            pos[f"node:{i}"] = (i / n, 0.3)
            pos[f"gpus:{i}"] = (i / n, 0.0)
        mids: dict[str, list[float]] = {}
        for v in g:
            if v.startswith("tor:"):
                xs = [pos[u][0] for u in g.neighbors(v) if u.startswith("node:")]
                pos[v] = (sum(xs) / len(xs) if xs else 0.5, 0.65)
                mids.setdefault("top", []).append(pos[v][0])
        top = "spine" if "spine" in g else ("core" if "core" in g else None)
        if top is not None:
            pos[top] = (0.5 * (1 - 1 / n), 1.0)
        if "storage" in g:
            pos["storage"] = (1.0, 1.0)
        for v in g:
            pos.setdefault(v, (0.5, 0.85))
        return pos

    def draw(self, ax, *, utilization: dict[str, float] | None = None, labels: bool | None = None):
        """Draw the topology on a matplotlib ``ax``: vertices by kind, cable widths by
        capacity (log scale), colours by ``utilization`` (link name -> fraction) if given."""
        import matplotlib as mpl

        g = self.graph
        pos = self.positions()
        finite = [c for c in self.capacities if math.isfinite(c) and c > 0]
        lo, hi = (min(finite), max(finite)) if finite else (1.0, 1.0)
        cmap = mpl.colormaps["viridis"]
        for u, v, d in g.edges(data=True):
            c = d["capacity"]
            w = 1.0 if not math.isfinite(c) or hi == lo else 0.8 + 3.2 * math.log(c / lo) / math.log(hi / lo)
            colour = "0.6"
            if utilization is not None:
                util = max(utilization.get(f"{u}>{v}", 0.0), utilization.get(f"{v}>{u}", 0.0))
                colour = cmap(min(max(util, 0.0), 1.0))
            (x0, y0), (x1, y1) = pos[u], pos[v]
            ax.plot([x0, x1], [y0, y1], color=colour, lw=w, zorder=1,
                    ls="-" if d.get("kind") != "host" else ":")
        style = {"node": ("s", "tab:blue"), "gpus": ("o", "tab:green"), "tor": ("^", "tab:orange"),
                 "spine": ("D", "tab:red"), "core": ("D", "tab:red"), "storage": ("h", "tab:purple")}
        for v in g:
            marker, colour = style.get(v.split(":")[0], ("^", "tab:orange"))
            x, y = pos[v]
            ax.scatter([x], [y], marker=marker, color=colour, s=30, zorder=2)
        show = labels if labels is not None else len(g) <= 40
        if show:
            for v in g:
                if not v.startswith("gpus:"):
                    x, y = pos[v]
                    ax.annotate(v, (x, y), fontsize=6, xytext=(2, 3), textcoords="offset points")
        ax.set_title(f"{self.kind} topology: {self.num_nodes} nodes, {g.number_of_edges()} cables")
        ax.set_axis_off()
        return ax


# ----------------------------------------------------------------------------- building
def rack_indices(nodes, nodes_per_rack: int | None) -> list[int]:
    """Each node's rack: ``index // nodes_per_rack`` when given; else by the node label
    ``rack``, a node without one being in its pool's rack (``pool:<name>``), as the
    placement helpers read racks; racks are numbered in order of first appearance."""
    if nodes_per_rack:
        return [n.index // nodes_per_rack for n in nodes]
    names: dict[str, int] = {}
    out = []
    for n in nodes:
        key = dict(n.labels).get("rack", "pool:" + n.pool)
        out.append(names.setdefault(key, len(names)))
    return out


def _host_link(node, catalog) -> tuple[float, str, float | None]:
    """(host link bytes/s each way, GPU interconnect kind, GPU interconnect bytes/s per GPU)."""
    if not node.gpus or node.gpu_type is None:
        return math.inf, node.intra_node_link, None
    try:
        spec = catalog.gpu(node.gpu_type)
    except (KeyError, AttributeError):
        return math.inf, node.intra_node_link, None
    host = spec.host_link_bandwidth * node.gpus / 2.0 if spec.host_link_bandwidth else math.inf
    return host, node.intra_node_link, spec.scaleup_bandwidth


def _add_node_vertices(g: nx.Graph, nodes, catalog, constrained: bool) -> None:
    for n in nodes:
        host, link, scaleup = _host_link(n, catalog)
        g.add_node(f"node:{n.index}", name=n.name)
        g.add_node(f"gpus:{n.index}", gpus=n.gpus, interconnect=link, interconnect_bandwidth=scaleup)
        g.add_edge(f"node:{n.index}", f"gpus:{n.index}", capacity=host if constrained else math.inf, kind="host")


def build_topology(spec, nodes, catalog=None) -> tuple[Topology, list[tuple[str, str]]]:
    """The topology of ``spec`` (a NetworkSpec or None) over resolved ``nodes``; problems
    are ``(field path, message)`` pairs (the topology is unconstrained when there are any)."""
    problems: list[tuple[str, str]] = []
    g = nx.Graph()
    if spec is None:
        _add_node_vertices(g, nodes, catalog, constrained=False)
        g.add_node("core")
        for n in nodes:
            g.add_edge(f"node:{n.index}", "core", capacity=math.inf, kind="nic")
        g.add_edge("storage", "core", capacity=math.inf, kind="storage")
        return Topology(g, len(nodes), kind="unconstrained"), problems

    path = "cluster.network"
    nic: list[float] = []
    no_nic: set[str] = set()
    for n in nodes:
        bw = spec.nic_bandwidth if spec.nic_bandwidth is not None else n.nic_bandwidth
        if not bw or bw <= 0:
            if n.pool not in no_nic:  # once per pool
                no_nic.add(n.pool)
                problems.append((path + ".nic_bandwidth",
                                 f"found no NIC bandwidth for the nodes of pool {n.pool} (no template with one), "
                                 "expected nic_bandwidth here"))
            bw = math.inf  # to go on checking the rest
        nic.append(float(bw))
    _add_node_vertices(g, nodes, catalog, constrained=True)
    storage_bw = spec.storage.bandwidth if spec.storage.bandwidth is not None else math.inf

    if spec.topology == "leaf-spine":
        racks = rack_indices(nodes, spec.nodes_per_rack)
        nracks = max(racks) + 1 if racks else 0
        g.add_node("spine")
        for n, bw in zip(nodes, nic):
            g.add_edge(f"node:{n.index}", f"tor:{racks[n.index]}", capacity=bw, kind="nic")
        for r in range(nracks):
            total = sum(bw for n, bw in zip(nodes, nic) if racks[n.index] == r)
            up = spec.uplink_bandwidth if spec.uplink_bandwidth is not None else total / spec.oversubscription
            g.add_edge(f"tor:{r}", "spine", capacity=float(up), kind="uplink")
        att = spec.storage.attach
        if att == "spine":
            g.add_edge("storage", "spine", capacity=storage_bw, kind="storage")
        elif att.startswith("rack:") and att[5:].isdigit() and int(att[5:]) < nracks:
            g.add_edge("storage", f"tor:{int(att[5:])}", capacity=storage_bw, kind="storage")
        else:
            problems.append((path + ".storage.attach",
                             f"found {att!r}, expected 'spine' or 'rack:<r>' with r < {nracks} (racks of this cluster)"))
        return Topology(g, len(nodes), kind="leaf-spine", racks=racks), problems

    # explicit edges
    for k, e in enumerate(spec.edges):
        bad = False
        for end in (e.a, e.b):
            if end.startswith("gpus:"):
                problems.append((f"{path}.edges[{k}]", f"found {end!r}, expected a node's NIC side 'node:<i>', "
                                                       "a switch or 'storage' (gpus:<i> is wired to node:<i>)"))
                bad = True
            elif end.startswith("node:"):
                i = end[5:]
                if not (i.isdigit() and int(i) < len(nodes)):
                    problems.append((f"{path}.edges[{k}]",
                                     f"found {end!r}, expected node:<i> with 0 <= i < {len(nodes)} (nodes of this cluster)"))
                    bad = True
        if bad:
            continue
        if g.has_edge(e.a, e.b):
            problems.append((f"{path}.edges[{k}]", f"found a second edge between {e.a} and {e.b}, expected one per pair"))
            continue
        g.add_edge(e.a, e.b, capacity=float(e.capacity), kind="edge")
    att = spec.storage.attach
    if "storage" not in g and att != "spine":
        if att in g:
            g.add_edge("storage", att, capacity=storage_bw, kind="storage")
        else:
            problems.append((path + ".storage.attach", f"found {att!r}, expected a vertex of the edge list"))
    elif "storage" in g and spec.storage.bandwidth is not None:
        problems.append((path + ".storage.bandwidth",
                         "found a storage bandwidth with storage wired by edges, expected the edges' capacities only"))
    if not problems and nodes:
        comp = nx.node_connected_component(g, "node:0")
        cut = [f"node:{n.index}" for n in nodes if f"node:{n.index}" not in comp]
        if cut:
            more = f" (and {len(cut) - 5} more)" if len(cut) > 5 else ""
            problems.append((path + ".edges", f"found {', '.join(cut[:5])}{more} not connected to node:0, "
                                              "expected every node reachable"))
    return Topology(g, len(nodes), kind="edges"), problems
