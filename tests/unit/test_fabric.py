"""Max-min fair sharing (lepsim.engine.fabric): the worked examples of the shared queueing
references (section "Max-min fair") and hand computations."""
import math

import pytest

from lepsim.engine.fabric import Fabric


def _rates(fab, ids):
    r = fab.rates()
    return {k: r[f] for k, f in ids.items()}


def approx(d):
    return pytest.approx(d, rel=1e-9, abs=1e-12)


# ----------------------------------------------------------------------------- shared references
def test_single_link_with_demands():
    # single link C=10, demands 2,4,10 -> a 2, b 4, c 4
    fab = Fabric([10.0])
    ids = {k: fab.add([0], demand=d) for k, d in (("a", 2), ("b", 4), ("c", 10))}
    assert _rates(fab, ids) == approx({"a": 2.0, "b": 4.0, "c": 4.0})


def test_two_links_in_series():
    # long flow A over both (cap 1 each), B on link 1, C on link 2 -> 0.5 each
    fab = Fabric([1.0, 1.0])
    ids = {"A": fab.add([0, 1]), "B": fab.add([0]), "C": fab.add([1])}
    assert _rates(fab, ids) == approx({"A": 0.5, "B": 0.5, "C": 0.5})


def test_bertsekas_gallager_style():
    # L1 cap 1 shared by f0,f1,f2; L2 cap 2 shared by f0,f3 -> 1/3, 1/3, 1/3, 5/3
    fab = Fabric([1.0, 2.0])
    ids = {"f0": fab.add([0, 1]), "f1": fab.add([0]), "f2": fab.add([0]), "f3": fab.add([1])}
    assert _rates(fab, ids) == approx({"f0": 1 / 3, "f1": 1 / 3, "f2": 1 / 3, "f3": 5 / 3})


def test_parking_lot():
    fab = Fabric([1.0, 1.0, 1.0])
    ids = {"long": fab.add([0, 1, 2]), "s1": fab.add([0]), "s2": fab.add([1]), "s3": fab.add([2])}
    assert _rates(fab, ids) == approx({"long": 0.5, "s1": 0.5, "s2": 0.5, "s3": 0.5})


def test_unequal_links():
    # L1 cap 10 (f1,f2,f3), L2 cap 4 (f3,f4) -> f3, f4 bottlenecked at 2 on L2; f1, f2 share 8
    fab = Fabric([10.0, 4.0])
    ids = {"f1": fab.add([0]), "f2": fab.add([0]), "f3": fab.add([0, 1]), "f4": fab.add([1])}
    assert _rates(fab, ids) == approx({"f1": 4.0, "f2": 4.0, "f3": 2.0, "f4": 2.0})


def test_storage_nic_with_a_disk_capped_reader():
    # NIC 25 Gb/s shared by 4 readers, one capped at 2 Gb/s -> 2, then 23/3 each
    fab = Fabric([25.0])
    ids = {"r1": fab.add([0], demand=2.0), **{f"r{k}": fab.add([0]) for k in (2, 3, 4)}}
    assert _rates(fab, ids) == approx({"r1": 2.0, "r2": 23 / 3, "r3": 23 / 3, "r4": 23 / 3})


# ----------------------------------------------------------------------------- hand computations
def test_equal_shares_and_recompute_on_remove():
    fab = Fabric([12.0])
    f = [fab.add([0]) for _ in range(4)]
    assert list(fab.rates().values()) == approx([3.0] * 4)
    fab.remove(f[0])
    assert list(fab.rates().values()) == approx([4.0] * 3)


def test_bottleneck_ordering():
    # link 0 cap 2 (a, b), link 1 cap 9 (b, c, d), link 2 cap 3 (d, e):
    # level 1: link 0 fills (a = b = 1); link 1 left 8 for c, d: link 2 would give d, e 1.5
    # -> level 1.5: link 2 fills (d = e = 1.5); c gets the rest of link 1: 9 - 1 - 1.5 = 6.5
    fab = Fabric([2.0, 9.0, 3.0])
    ids = {"a": fab.add([0]), "b": fab.add([0, 1]), "c": fab.add([1]), "d": fab.add([1, 2]), "e": fab.add([2])}
    assert _rates(fab, ids) == approx({"a": 1.0, "b": 1.0, "c": 6.5, "d": 1.5, "e": 1.5})


def test_oversubscribed_uplink():
    # two racks of 2 nodes, NIC 100 each way, uplink 100 (2:1 oversubscribed).  Links:
    # 0..3 NIC up of nodes 0..3, 4..7 NIC down, 8/9 rack 0 up/down, 10/11 rack 1 up/down.
    # Two cross-rack flows 0->2 and 1->3 share rack 0's uplink: 50 each; an in-rack flow
    # 0->1 shares node 0's NIC with 0->2: node 0's NIC gives 0->1 the other 50.
    cap = [100.0] * 8 + [100.0] * 4
    fab = Fabric(cap)
    x1 = fab.add([0, 8, 11, 6])
    x2 = fab.add([1, 8, 11, 7])
    local = fab.add([0, 5])
    r = fab.rates()
    assert (r[x1], r[x2], r[local]) == approx((50.0, 50.0, 50.0))
    fab.set_capacity(8, 200.0)  # rack 0's uplink widened: rack 1's downlink (11) still binds both
    r = fab.rates()
    assert (r[x1], r[x2], r[local]) == approx((50.0, 50.0, 50.0))
    fab.set_capacity(11, 200.0)  # non-blocking: the NICs bind, 0->2 and 0->1 split node 0's
    r = fab.rates()
    assert (r[x1], r[x2], r[local]) == approx((50.0, 100.0, 50.0))


def test_repeated_link_counts_twice():
    # a ring whose two hops cross one link of cap 10 carries 2 x rate there
    fab = Fabric([10.0])
    ring = fab.add([0, 0])
    other = fab.add([0])
    r = fab.rates()
    assert (r[ring], r[other]) == approx((10 / 3, 10 / 3))
    assert fab.link_loads()[0] == pytest.approx(10.0)


def test_unconstrained_and_zero_capacity():
    fab = Fabric([math.inf, 0.0, 5.0])
    free = fab.add([0])
    capped = fab.add([0], demand=7.0)
    dead = fab.add([1, 2])
    alive = fab.add([2])
    nolinks = fab.add([])
    r = fab.rates()
    assert r[free] == math.inf and r[capped] == 7.0 and r[nolinks] == math.inf
    assert r[dead] == 0.0 and r[alive] == 5.0


def test_bad_input():
    with pytest.raises(ValueError):
        Fabric([-1.0])
    fab = Fabric([1.0])
    with pytest.raises(IndexError):
        fab.add([3])
    with pytest.raises(ValueError):
        fab.add([0], demand=-1)
