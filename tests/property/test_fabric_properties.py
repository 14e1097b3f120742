"""Max-min fairness properties of the fabric on random flows (hypothesis).

For any links and flows (demands, repeated links, zero and unlimited capacities):

* feasibility: no link carries more than its capacity, no flow exceeds its demand;
* max-min optimality (every flow bottlenecked): each flow is at its demand, or crosses a
  full link on which no other flow has a higher rate (Bertsekas & Gallager, 6.5.2);
* the allocation is unique, so adding the same flows in another order gives the same rates.
"""
from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from lepsim.engine.fabric import Fabric

REL = 1e-9

caps = st.one_of(st.floats(0.0, 100.0), st.just(math.inf), st.sampled_from([1.0, 2.0, 10.0]))


@st.composite
def fabrics(draw):
    nlinks = draw(st.integers(1, 8))
    capacities = draw(st.lists(caps, min_size=nlinks, max_size=nlinks))
    flows = draw(st.lists(
        st.tuples(
            st.lists(st.integers(0, nlinks - 1), min_size=0, max_size=5),
            st.one_of(st.just(math.inf), st.floats(0.0, 50.0), st.sampled_from([1.0, 3.0])),
        ),
        min_size=1, max_size=12,
    ))
    return capacities, flows


def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= REL * max(abs(a), abs(b), 1.0)


@settings(max_examples=120, deadline=None)
@given(fabrics())
def test_feasible_and_every_flow_bottlenecked(fx):
    capacities, flows = fx
    fab = Fabric(capacities)
    ids = [fab.add(links, d) for links, d in flows]
    rates = fab.rates()
    loads = fab.link_loads()
    for l, c in enumerate(capacities):
        if math.isfinite(c):
            assert loads[l] <= c * (1 + REL) + 1e-12, f"link {l} over capacity"
    for fid, (links, d) in zip(ids, flows):
        r = rates[fid]
        assert 0.0 <= r <= d * (1 + REL) or r == d
        if _close(r, d):
            continue
        # bottlenecked: some link of its path is full, and no flow on it has a higher rate
        ok = False
        for l in set(links):
            c = capacities[l]
            if not math.isfinite(c) or not _close(loads[l], c):
                continue
            others = [rates[g] for g, (ls, _) in zip(ids, flows) if l in ls]
            if all(o <= r * (1 + REL) + 1e-12 for o in others):
                ok = True
                break
        assert ok, f"flow {fid} rate {r} (demand {d}) has no bottleneck link"


@settings(max_examples=50, deadline=None)
@given(fabrics(), st.randoms(use_true_random=False))
def test_order_independent(fx, rnd):
    capacities, flows = fx
    a = Fabric(capacities)
    ra = [a.add(links, d) for links, d in flows]
    order = list(range(len(flows)))
    rnd.shuffle(order)
    b = Fabric(capacities)
    rb = {k: b.add(flows[k][0], flows[k][1]) for k in order}
    x, y = a.rates(), b.rates()
    for k in range(len(flows)):
        assert _close(x[ra[k]], y[rb[k]])
