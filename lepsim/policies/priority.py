"""Incremental machinery shared by the preemptive priority policies (LAS and the dynamic family).

A preemptive priority policy ranks every active job (running or pending) by a sort key and
admits jobs in that order while the GPUs of their type suffice; running jobs left out are
preempted and admitted pending jobs are started.  Done naively that costs O(running +
pending) attribute reads per decision.  The pieces here keep the ranked sets across
decisions instead:

* :class:`JobSets` follows the engine's event log (:meth:`ClusterView.events`) and tells
  the policy which jobs entered or left the running and pending sets since its last call.
  Jobs a policy preempted are watched until their checkpoint ends (no event marks that).
  An unknown event kind, or counts that disagree with the view, trigger a full resync
  (the view's ``running()`` and ``pending()``), so a policy stays correct whatever other
  parts of the engine do.
* :class:`RankedRunning` keeps running jobs sorted by key in blocks that carry per-GPU-type
  prefix sums, so the admission walk keeps any run of running jobs in O(GPU types) when
  the budget covers it and looks at single jobs only where a type's budget runs out.
* :func:`admit` is the walk: keys ascending, running jobs kept while their type's budget
  covers them, pending jobs admitted on a type with room (a type whose GPUs are idle right
  now first).  The budget of a type is its *capacity*: admitted jobs that cannot be placed
  now wait for preempted jobs' checkpoints to end.
"""
from __future__ import annotations

import bisect

from bisect import bisect_left
from itertools import accumulate

from lepsim.engine.view import CHECKPOINTING, PENDING

_KNOWN = frozenset(("arrive", "start", "complete", "preempt", "migrate", "retire", "scale"))
# kinds that change neither set (a periodic checkpoint keeps its job in view.running())
_NEUTRAL = frozenset(("checkpoint", "checkpoint_refused", "storage_outage", "storage_restored"))


class JobSets:
    """Running and pending job ids kept in step with the engine through its event log.

    After :meth:`sync`, ``entered_running``/``left_running``/``entered_pending``/
    ``left_pending`` list what changed since the previous sync (job ids, in log order), or
    ``resynced`` is True and the policy must rebuild from ``running`` and ``pending``.
    """

    __slots__ = ("cursor", "running", "pending", "leaving", "entered_running", "left_running",
                 "entered_pending", "left_pending", "completed", "resynced", "types")

    def __init__(self):
        self.cursor = 0
        self.running: set[int] = set()
        self.pending: set[int] = set()
        self.leaving: set[int] = set()   # preempted here, checkpoint not yet over
        self.entered_running: list[int] = []
        self.left_running: list[int] = []
        self.entered_pending: list[int] = []
        self.left_pending: list[int] = []
        self.completed: list[int] = []   # the part of left_running that completed
        self.resynced = False
        self.types: dict | None = None   # GPU type -> index, in view.gpu_types order

    def update(self, view) -> None:
        """:meth:`sync`, or a full resync the first time and whenever the GPU types change."""
        types = view.gpu_types
        if self.types is None or tuple(self.types) != types:
            self.types = {t: i for i, t in enumerate(types)}
            self.resync(view)
        else:
            self.sync(view)

    def sync(self, view) -> None:
        er, lr, ep, lp, done = [], [], [], [], []
        self.entered_running, self.left_running, self.entered_pending, self.left_pending = er, lr, ep, lp
        self.completed = done
        self.resynced = False
        log = view.events(self.cursor)
        self.cursor += len(log)
        running, pending, leaving = self.running, self.pending, self.leaving
        for _t, kind, jid, _d in log:
            if kind == "arrive":
                pending.add(jid)
                ep.append(jid)
            elif kind == "start":
                pending.discard(jid)
                lp.append(jid)
                running.add(jid)
                er.append(jid)
            elif kind == "complete":
                running.discard(jid)
                lr.append(jid)
                done.append(jid)
            elif kind == "preempt":
                running.discard(jid)
                lr.append(jid)
                leaving.add(jid)
            elif kind == "migrate":  # checkpoints on its old GPUs; its "start" comes at the end
                running.discard(jid)
                lr.append(jid)
            elif kind == "retire":  # a service replica taken out of service for good
                if jid in running:
                    running.discard(jid)
                    lr.append(jid)
                elif jid in pending:
                    pending.discard(jid)
                    lp.append(jid)
            elif kind not in _KNOWN and kind not in _NEUTRAL:
                return self.resync(view)
        if leaving:
            for jid in sorted(leaving):
                st = view.job(jid).state
                if st == PENDING:
                    leaving.discard(jid)
                    pending.add(jid)
                    ep.append(jid)
                elif st != CHECKPOINTING:
                    return self.resync(view)
        if len(running) != view.running_count() or len(pending) != view.pending_count():
            return self.resync(view)

    def resync(self, view) -> None:
        self.completed = [e[2] for e in view.events(self.cursor) if e[1] == "complete"]
        self.cursor = len(view.events(0))
        self.running = {j.job_id for j in view.running()}
        self.pending = {j.job_id for j in view.pending()}
        self.leaving = set()
        self.resynced = True


class RankedRunning:
    """Running jobs sorted by key, in blocks with per-GPU-type prefix sums of their GPUs.

    Entries are key tuples with the job id last; ``gpus`` and the GPU type index ``ti``
    (-1 for a job without GPUs) come with each.  The walk (:meth:`consume`) keeps any run
    of consecutive entries in O(GPU types) when the budget covers it, and looks at single
    entries only in the block where a type's budget runs out.
    """

    BLOCK = 64

    __slots__ = ("ntypes", "keys", "gs", "ts", "pre", "maxes", "where", "_cur_b", "_cur_i")

    def __init__(self, ntypes: int):
        self.ntypes = ntypes
        self.keys: list[list] = []    # per block: sorted keys
        self.gs: list[list] = []      # per block: GPUs per entry
        self.ts: list[list] = []      # per block: type index per entry
        self.pre: list = []           # per block: per type, prefix sums of GPUs (None: stale)
        self.maxes: list = []         # per block: its last key
        self.where: dict[int, tuple] = {}  # job id -> its key
        self._cur_b = self._cur_i = 0

    def __len__(self) -> int:
        return len(self.where)

    def __contains__(self, jid) -> bool:
        return jid in self.where

    def key_of(self, jid):
        return self.where.get(jid)

    def add(self, key: tuple, gpus: int, ti: int) -> None:
        self.where[key[-1]] = key
        maxes = self.maxes
        if not maxes:
            self.keys.append([key])
            self.gs.append([gpus])
            self.ts.append([ti])
            self.pre.append(None)
            maxes.append(key)
            return
        b = bisect_left(maxes, key)
        if b == len(maxes):
            b -= 1
        ks = self.keys[b]
        i = bisect_left(ks, key)
        ks.insert(i, key)
        self.gs[b].insert(i, gpus)
        self.ts[b].insert(i, ti)
        self.pre[b] = None
        maxes[b] = ks[-1]
        if len(ks) > 2 * self.BLOCK:
            h = len(ks) // 2
            for lst in (self.keys, self.gs, self.ts):
                blk = lst[b]
                lst[b:b + 1] = [blk[:h], blk[h:]]
            self.pre[b:b + 1] = [None, None]
            maxes[b:b + 1] = [self.keys[b][-1], self.keys[b + 1][-1]]

    def remove(self, jid: int) -> tuple | None:
        key = self.where.pop(jid, None)
        if key is None:
            return None
        b = bisect_left(self.maxes, key)
        ks = self.keys[b]
        i = bisect_left(ks, key)
        del ks[i]
        del self.gs[b][i]
        del self.ts[b][i]
        self.pre[b] = None
        if ks:
            self.maxes[b] = ks[-1]
        else:
            for lst in (self.keys, self.gs, self.ts, self.pre, self.maxes):
                del lst[b]
        return key

    def ids(self):
        """Job ids in key order."""
        for ks in self.keys:
            for k in ks:
                yield k[-1]

    def _prefix(self, b: int) -> list:
        gs = self.gs[b]
        if self.ntypes == 1:  # entries without GPUs have g = 0: they add nothing
            out = [list(accumulate(gs, initial=0))]
        else:
            ts = self.ts[b]
            out = [list(accumulate((g if tt == t else 0 for g, tt in zip(gs, ts)), initial=0))
                   for t in range(self.ntypes)]
        self.pre[b] = out
        return out

    # ------------------------------------------------------------------ the walk
    def rewind(self) -> None:
        self._cur_b = self._cur_i = 0

    def peek(self):
        """The key at the walk's cursor (None at the end)."""
        b, i = self._cur_b, self._cur_i
        keys = self.keys
        if b < len(keys):
            ks = keys[b]
            if i < len(ks):
                return ks[i]
            if b + 1 < len(keys):
                return keys[b + 1][0]
        return None

    def consume(self, upto, room: list, drop: list) -> int:
        """Keep (or drop) running entries from the cursor up to key ``upto`` (exclusive;
        None: to the end) against the per-type budget ``room`` (changed in place): an entry
        is kept when its type's budget still covers it.  Appends dropped job ids to
        ``drop``; returns the GPUs kept."""
        keys, pres = self.keys, self.pre
        nb = len(keys)
        b, i = self._cur_b, self._cur_i
        kept = 0
        nt = self.ntypes
        while b < nb:
            ks = keys[b]
            if upto is not None and not (ks[-1] < upto):
                j = bisect_left(ks, upto, i)
                last = True
            else:
                j = len(ks)
                last = False
            if i < j:
                pre = pres[b] or self._prefix(b)
                ok = True
                for t in range(nt):
                    p = pre[t]
                    if p[j] - p[i] > room[t]:
                        ok = False
                        break
                if ok:
                    for t in range(nt):
                        p = pre[t]
                        n = p[j] - p[i]
                        room[t] -= n
                        kept += n
                else:
                    bg, bt = self.gs[b], self.ts[b]
                    for k in range(i, j):
                        g = bg[k]
                        if g == 0:
                            continue
                        t = bt[k]
                        if room[t] >= g:
                            room[t] -= g
                            kept += g
                        else:
                            drop.append(ks[k][-1])
            if last:
                self._cur_b, self._cur_i = b, j
                return kept
            b += 1
            i = 0
        self._cur_b, self._cur_i = b, 0
        return kept


class PendingKeys:
    """Mixin: the sorted pending keys (``_pend``), each job's key (``_pkey``) and its
    (GPUs, candidate types) (``_pinfo``), with the count of pending jobs asking no GPUs (``_zero``)."""

    def _drop_pending(self, jid: int) -> None:
        key = self._pkey.pop(jid, None)
        if key is not None:
            del self._pend[bisect.bisect_left(self._pend, key)]
            if self._pinfo.pop(jid)[0] == 0:
                self._zero -= 1


def candidates(job, type_index: dict) -> tuple[int, ...]:
    """The GPU type indices a pending job may be admitted on (its required type, or all)."""
    if job.gpu_type is not None:
        ti = type_index.get(job.gpu_type)
        return () if ti is None else (ti,)
    return tuple(range(len(type_index)))


def book(room: list, idle: list, g: int, cand) -> bool:
    """Book ``g`` GPUs for a pending job on one of its candidate types: a type whose budget
    ``room`` and idle GPUs ``idle`` both cover it first, else one whose budget does."""
    pick = -1
    for ti in cand:
        if room[ti] >= g and idle[ti] >= g:
            pick = ti
            break
    if pick < 0:
        for ti in cand:
            if room[ti] >= g:
                pick = ti
                break
    if pick < 0:
        return False
    room[pick] -= g
    idle[pick] = max(idle[pick] - g, 0)
    return True


def admit(view, ranked: RankedRunning, pending_keys, pinfo: dict, type_index: dict, *, zero_pending: int = 0,
          preempt: bool = True):
    """The ordered admission walk.

    ``pending_keys``: the pending jobs' keys in ascending order (job id last); ``pinfo``:
    job id -> (GPUs, candidate type indices) (see :func:`candidates`).  Returns ``(drop,
    want)``: running job ids not kept (unordered) and the ids of the pending jobs admitted,
    in key order.  With ``preempt=False`` every running job is kept and pending jobs are
    admitted only on idle GPUs.  ``zero_pending``: how many pending jobs ask no GPUs (once
    the budget is spent only they can still be admitted).
    """
    types = list(type_index)
    free = view.free_gpus
    idle = [free(t) for t in types]
    room = [view.capacity(t) for t in types] if preempt else list(idle)
    any_room = sum(room)
    drop: list[int] = []
    want: list[int] = []
    ranked.rewind()
    # the key of the next running job not yet walked (None: none left)
    nxt = ranked.keys[0][0] if (preempt and ranked.keys) else None
    for pk in pending_keys:
        if nxt is not None and nxt < pk:
            any_room -= ranked.consume(pk, room, drop)
            nxt = ranked.peek()
        jid = pk[-1]
        g, cand = pinfo[jid]
        if g == 0:
            want.append(jid)
            zero_pending -= 1
            continue
        if g > any_room:
            if any_room <= 0 and zero_pending <= 0:
                break
            continue
        if book(room, idle, g, cand):
            any_room -= g
            want.append(jid)
    if nxt is not None:
        ranked.consume(None, room, drop)
    return drop, want


def place(view, want, drop, ckpt: float, consolidate, strategy):
    """Place admitted jobs (ids, in order) on a scratch map; yields (job, placement or None).

    The scratch map is built only once some job could fit by the free-GPU counts (a job of
    whole GPUs never fits when fewer GPUs than it asks are wholly free), so decisions whose admitted jobs
    all wait for checkpoints cost no copy of the cluster.  With no checkpoint time the
    GPUs of the jobs preempted now (``drop``) count as free.
    """
    job_of = view.job
    fm = None
    if drop and ckpt == 0:
        fm = view.free_map()
        for jid in sorted(drop):
            fm.release(job_of(jid), view.node_of)
    free = view.free_gpus
    for jid in want:
        job = job_of(jid)
        g = job.gpus
        if fm is None and g > 0 and job.gpu_fraction >= 1.0:  # a GPU share may fit a partly used GPU
            t = job.gpu_type
            if (free(t) if t is not None else free()) < g:
                yield job, None
                continue
            fm = view.free_map()
        elif fm is None:
            fm = view.free_map()
        yield job, fm.first_fit(job, consolidate, strategy)
