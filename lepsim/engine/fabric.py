"""Max-min fair bandwidth sharing of flows over links (pure: no simpy, no topology).

A :class:`Fabric` holds link capacities (bytes/s, ``inf`` allowed) and flows; a flow crosses
a sequence of links and may cap its rate at a ``demand``.  :meth:`Fabric.rates` returns the
max-min fair allocation, computed by *progressive filling* (Bertsekas & Gallager, Data
Networks, 6.5.2): every unfrozen flow's rate rises at the same pace (one "water level");
when a link fills up, the flows crossing it are frozen at the level (the link is their
bottleneck); when the level reaches a flow's demand, that flow is frozen at its demand.
Each step freezes at least one link or flow, so it ends after at most
``flows + links`` steps (in practice: the number of distinct bottleneck levels).

A link may appear several times in one flow's list: the flow then uses it that many times
(it carries ``k x rate`` there).  The network uses this for a ring all-reduce whose hops
cross the same link.  A flow with no links is limited by its demand only (``inf`` when it
has none).

Vectorised with numpy over a flows x links incidence list (one entry per (flow, link)
use), rebuilt when flows change, so that one recomputation costs a few array passes per
bottleneck level (benchmarks/bench_fabric.py).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np

__all__ = ["Fabric"]

_TOL = 1e-12  # relative: links whose fair share is within this of the step's level fill up together


class Fabric:
    """Links with capacities and the flows over them; max-min fair rates on demand."""

    def __init__(self, capacities: Sequence[float]):
        cap = np.asarray(capacities, dtype=float).reshape(-1)
        if np.any(np.isnan(cap)) or np.any(cap < 0):
            raise ValueError("link capacities must be >= 0 (inf allowed)")
        self._cap = cap.copy()
        self._flows: dict[int, tuple[np.ndarray, float]] = {}
        self._next = 0
        self._rates: dict[int, float] = {}
        self._dirty = False
        self._built: tuple | None = None  # (fids, owner, idx, demand) of the current flow set

    # ------------------------------------------------------------------ changes
    @property
    def num_links(self) -> int:
        return len(self._cap)

    def capacity(self, link: int) -> float:
        return float(self._cap[link])

    @property
    def capacities(self) -> np.ndarray:
        """Capacities per link (a read-only view)."""
        v = self._cap.view()
        v.flags.writeable = False
        return v

    def add(self, links: Sequence[int], demand: float = math.inf) -> int:
        """A new flow over ``links`` (indices, repeats allowed) capped at ``demand`` bytes/s."""
        arr = np.asarray(links, dtype=np.int64).reshape(-1)
        if arr.size and (arr.min() < 0 or arr.max() >= len(self._cap)):
            raise IndexError(f"flow over unknown link(s) {arr.tolist()} (fabric has {len(self._cap)} links)")
        d = float(demand)
        if math.isnan(d) or d < 0:
            raise ValueError(f"flow demand must be >= 0, got {demand}")
        fid = self._next
        self._next += 1
        self._flows[fid] = (arr, d)
        self._dirty = True
        self._built = None
        return fid

    def remove(self, fid: int) -> None:
        del self._flows[fid]
        self._rates.pop(fid, None)
        self._dirty = True
        self._built = None

    def set_demand(self, fid: int, demand: float) -> None:
        links, _ = self._flows[fid]
        self._flows[fid] = (links, float(demand))
        self._dirty = True
        self._built = None

    def set_capacity(self, link: int, cap: float) -> None:
        c = float(cap)
        if math.isnan(c) or c < 0:
            raise ValueError(f"link capacity must be >= 0, got {cap}")
        self._cap[link] = c
        self._dirty = True

    def __len__(self) -> int:
        return len(self._flows)

    def __contains__(self, fid: int) -> bool:
        return fid in self._flows

    def links_of(self, fid: int) -> np.ndarray:
        return self._flows[fid][0]

    # ------------------------------------------------------------------ rates
    def rates(self) -> dict[int, float]:
        """Flow id -> max-min fair rate (bytes/s); recomputed only after a change."""
        if self._dirty:
            self._rates = self._compute()
            self._dirty = False
        return self._rates

    def link_loads(self) -> np.ndarray:
        """Bytes/s carried per link under the current rates (a flow using a link k times counts k times)."""
        rates = self.rates()
        fids, owner, idx, _ = self._arrays()
        if not len(idx):
            return np.zeros(len(self._cap))
        r = np.fromiter((rates[f] for f in fids), dtype=float, count=len(fids))
        return np.bincount(idx, weights=r[owner], minlength=len(self._cap))

    def _arrays(self):
        if self._built is None:
            fids = list(self._flows)
            if fids:
                lens = np.fromiter((len(self._flows[f][0]) for f in fids), dtype=np.int64, count=len(fids))
                idx = np.concatenate([self._flows[f][0] for f in fids]) if lens.sum() else np.zeros(0, np.int64)
                owner = np.repeat(np.arange(len(fids)), lens)
                demand = np.fromiter((self._flows[f][1] for f in fids), dtype=float, count=len(fids))
            else:
                idx = owner = np.zeros(0, np.int64)
                demand = np.zeros(0)
            self._built = (fids, owner, idx, demand)
        return self._built

    def _compute(self) -> dict[int, float]:
        fids, owner, idx, demand = self._arrays()
        nflows = len(fids)
        if nflows == 0:
            return {}
        rate = progressive_filling(self._cap, owner, idx, demand)
        return dict(zip(fids, rate.tolist()))


def _gather(ptr: np.ndarray, sel: np.ndarray) -> np.ndarray:
    """Concatenated ranges ``ptr[s]:ptr[s+1]`` for ``s`` in ``sel`` (CSR rows), vectorised."""
    starts = ptr[sel]
    lens = ptr[sel + 1] - starts
    total = int(lens.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    offs = np.cumsum(lens) - lens
    return np.repeat(starts - offs, lens) + np.arange(total)


def progressive_filling(cap: np.ndarray, owner: np.ndarray, idx: np.ndarray, demand: np.ndarray) -> np.ndarray:
    """Max-min fair rates of flows ``0..len(demand)-1``; flow ``owner[e]`` uses link ``idx[e]``
    (``owner`` ascending: each flow's entries are contiguous).

    All unfrozen flows share one level; each step raises it to the next link fill-up or
    demand, and freezes the flows that hit either.  Incremental: per step the work is the
    still-open links plus the entries of the flows frozen in that step (flows by link and
    links by flow are indexed once, CSR), so the whole run costs
    O(entries + steps x open links).
    """
    nflows = len(demand)
    nlinks = len(cap)
    rate = np.zeros(nflows)
    if nflows == 0:
        return rate
    left = cap.astype(float, copy=True)
    # links of each flow (CSR over owner) and flows of each link (CSR over idx)
    fptr = np.zeros(nflows + 1, dtype=np.int64)
    np.cumsum(np.bincount(owner, minlength=nflows), out=fptr[1:])
    n = np.bincount(idx, minlength=nlinks).astype(float)   # open flows per link
    lptr = np.zeros(nlinks + 1, dtype=np.int64)
    np.cumsum(n.astype(np.int64), out=lptr[1:])
    lflow = owner[np.argsort(idx, kind="stable")]
    open_links = np.flatnonzero(n)
    active = np.ones(nflows, dtype=bool)
    left_flows = nflows
    by_demand = np.argsort(demand, kind="stable")
    dk = 0                                                  # next flow by demand that may still be active
    level = 0.0
    while left_flows:
        while dk < nflows and not active[by_demand[dk]]:
            dk += 1
        inc_dem = (demand[by_demand[dk]] - level) if dk < nflows else math.inf
        if open_links.size:
            nn = n[open_links]
            share = left[open_links] / nn
            inc_link = float(share.min())
        else:
            inc_link = math.inf
        inc = min(inc_link, inc_dem)
        if inc == math.inf:               # nothing limits the rest: unconstrained flows
            rate[active] = math.inf
            break
        inc = max(inc, 0.0)
        level += inc
        frozen_parts = []
        if open_links.size:
            left[open_links] -= inc * nn
            full = share <= inc * (1.0 + _TOL)
            if full.any():
                sat = open_links[full]
                left[sat] = 0.0
                cand = lflow[_gather(lptr, sat)]
                cand = cand[active[cand]]
                if cand.size:
                    cand = np.unique(cand)
                    rate[cand] = level
                    active[cand] = False
                    frozen_parts.append(cand)
                n[sat] = 0.0
        # flows reaching their demand (in demand order)
        thresh = level * (1.0 + _TOL)
        hit = []
        while dk < nflows and demand[by_demand[dk]] <= thresh:
            f = by_demand[dk]
            if active[f]:
                rate[f] = demand[f]
                active[f] = False
                hit.append(f)
            dk += 1
        if hit:
            frozen_parts.append(np.asarray(hit, dtype=np.int64))
        if frozen_parts:
            fr = np.concatenate(frozen_parts) if len(frozen_parts) > 1 else frozen_parts[0]
            left_flows -= fr.size
            used = idx[_gather(fptr, fr)]
            if used.size:
                n -= np.bincount(used, minlength=nlinks)
        if open_links.size:
            open_links = open_links[n[open_links] > 0]
    # flows still active when the loop ended by "inf" got inf above; the rest are frozen
    return rate
