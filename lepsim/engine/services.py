"""Request-level simulation of inference services inside the engine.

Replicas are jobs on the shared cluster (``JobRequest.kind == "inference-replica"``): the
scheduling policy places them, the engine charges their cold start and may preempt them.
While a replica serves, this module simulates its requests.  It must be fast (a million
requests in seconds), so requests and tokens are not simpy events:

* each service's arrivals are pre-generated arrays (:mod:`lepsim.inference.workload`);
* a replica advances in *segments*: one prefill iteration, or a run of ``k`` decode
  iterations with the same batch (``k`` = iterations until the next request finishes);
  a segment is cut short at the next iteration boundary when a new request could join;
* :meth:`Services.advance_to` processes, in time order, every segment end and arrival up
  to a time; the engine calls it before anything that reads or changes service state (a
  policy invocation, a replica start, preemption or retirement) and at the end.  Nothing
  here changes the cluster on its own, so advancing lazily is exact.

Ties at one instant: segment ends (completions) first, then arrivals (in time order,
services in file order), then idle replicas that received requests start their next
iteration (so requests arriving together share it).  Times per iteration come from
:class:`IterationTimes`.
"""
from __future__ import annotations

import heapq
import math
from bisect import bisect_left
from collections import deque

import numpy as np

from lepsim.rng import Streams
from lepsim.scenario.spec import ContinuousBatching

REPLICA = "inference-replica"
# request status codes (records): the order is the one docs/metrics.md lists
PENDING, COMPLETED, REJECTED, TIMEOUT = 0, 1, 2, 3
STATUS_NAMES = ("unfinished", "completed", "rejected", "timeout")
GRID_PER_OCTAVE = 8   # iteration-time grid: 8 points per doubling of tokens / context


class IterationTimes:
    """Prefill and decode iteration times of one service's replicas, from the cost model.

    The cost model is asked at grid points (token counts and contexts at ratio 2^(1/8),
    exact batch sizes) and the time in between is interpolated linearly in log(tokens):
    an LLM iteration time is smooth in its token counts, and the grid bounds the number
    of cost-model calls whatever the number of requests.  Values on grid points (powers
    of two among them) are the cost model's exactly.
    """

    __slots__ = ("_cost", "_model", "_gpu", "_tp", "_pmax", "_cmax", "_pre", "_dec", "calls")

    def __init__(self, cost, model: str, gpu: str, tp: int, max_prefill_tokens: float, max_context: float):
        self._cost, self._model, self._gpu, self._tp = cost, model, gpu, tp
        self._pmax = float(max(max_prefill_tokens, 1))
        self._cmax = float(max(max_context, 1))
        self._pre: dict = {}
        self._dec: dict = {}
        self.calls = 0

    @staticmethod
    def _node(i: int, cap: float) -> float:
        return min(2.0 ** (i / GRID_PER_OCTAVE), cap)

    def _interp(self, table: dict, key0, x: float, cap: float, fn) -> float:
        lx = math.log2(x) * GRID_PER_OCTAVE
        i = int(lx)
        if i == lx or 2.0 ** (i / GRID_PER_OCTAVE) >= cap:
            xa = self._node(i, cap)
            k = (key0, i)
            v = table.get(k)
            if v is None:
                self.calls += 1
                v = table[k] = fn(xa)
            if x == xa or xa >= cap:
                return v
        ka, kb = (key0, i), (key0, i + 1)
        va = table.get(ka)
        if va is None:
            self.calls += 1
            va = table[ka] = fn(self._node(i, cap))
        vb = table.get(kb)
        if vb is None:
            self.calls += 1
            vb = table[kb] = fn(self._node(i + 1, cap))
        xa, xb = self._node(i, cap), self._node(i + 1, cap)
        if xb <= xa:
            return va
        f = (math.log(x) - math.log(xa)) / (math.log(xb) - math.log(xa))
        return va + (vb - va) * f

    def prefill(self, tokens: int, batch: int) -> float:
        """Seconds of one prefill iteration of ``tokens`` prompt tokens over ``batch`` prompts."""
        c, m, g, tp = self._cost, self._model, self._gpu, self._tp
        return self._interp(self._pre, batch, float(tokens), max(self._pmax, float(tokens)),
                            lambda x: c.prefill_time(m, g, x, tp=tp, batch_size=batch))

    def decode(self, batch: int, context: float) -> float:
        """Seconds of one decode iteration of ``batch`` requests of mean context ``context``."""
        c, m, g, tp = self._cost, self._model, self._gpu, self._tp
        return self._interp(self._dec, batch, max(float(context), 1.0), self._cmax,
                            lambda x: c.decode_time(m, g, batch, x, tp=tp))


def _busy(r, t: float) -> None:
    """Account the replica's iterating time from ``busy_since`` to ``t`` (total and per window)."""
    a = r.busy_since
    if t <= a:
        return
    r.busy += t - a
    s = r.svc
    w = s.win
    bins = s.busy_bins
    k = int(a // w)
    while True:
        if k >= len(bins):
            bins.extend([0.0] * (k + 1 - len(bins)))
        hi = (k + 1) * w
        if t <= hi:
            bins[k] += t - a
            return
        bins[k] += hi - a
        a = hi
        k += 1


class _Replica:
    __slots__ = ("job_id", "svc", "pos", "ready", "queue", "heap", "it", "n_run", "s_base", "kv_used", "phase",
                 "t0", "d", "k", "t_end", "version", "batch", "busy", "busy_since", "outstanding", "up_since",
                 "serve_time", "draining")

    def __init__(self, job_id: int, svc: "_Service"):
        self.job_id = job_id
        self.svc = svc
        self.pos = 0
        self.ready = False
        self.queue: deque = deque()   # request indices waiting on this replica
        self.heap: list = []          # (finish iteration, request) of running requests (continuous batching)
        self.it = 0                   # decode iterations done
        self.n_run = 0
        self.s_base = 0               # sum over running of (prompt + 1 - admitted iteration)
        self.kv_used = 0
        self.phase = 0                # 0 idle, 1 prefill, 2 decode, 3 static batch, 4 batch timer, 5 start due
        self.t0 = 0.0
        self.d = 0.0
        self.k = 0
        self.t_end = math.inf
        self.version = 0
        self.batch: list = []         # requests of the prefill iteration / static batch in flight
        self.busy = 0.0               # seconds iterating while serving
        self.busy_since = 0.0
        self.outstanding = 0          # queued + in a batch
        self.up_since = 0.0
        self.serve_time = 0.0         # seconds serving (ready)
        self.draining = False         # retired: takes no new requests, finishes what it holds


class _Service:
    def __init__(self, plan, cost, streams: Streams, sid: int):
        s = plan.spec
        self.sid = sid
        self.plan = plan
        self.spec = s
        self.name = s.name
        n = len(plan.arrival)
        self.n = n
        self.arrival = plan.arrival.tolist()
        self.prompt = plan.prompt.tolist()
        self.output = plan.output.tolist()
        self.stime = plan.service_time.tolist() if plan.service_time is not None else None
        self.next = 0                 # next request to arrive
        # records
        self.first = np.full(n, np.nan)
        self.finish = np.full(n, np.nan)
        self.replica = np.full(n, -1, dtype=np.int64)
        self.status = np.zeros(n, dtype=np.int8)
        self.reroutes = np.zeros(n, dtype=np.int32)
        self.done_t: list = []        # finish times in completion order (for recent-window views)
        self.done_i: list = []
        # replicas and routing
        self.replicas: list[_Replica] = []   # every replica job of the service, by job id
        self.ready: list[_Replica] = []      # serving and taking requests, by job id
        self.draining: list[_Replica] = []   # serving what they hold, then retired
        self.squeue: deque = deque()         # service-level queue (no replica could take the request)
        self.waiting = 0                     # requests not yet in a batch (service queue + replica queues)
        self.rr = 0
        self.router = s.router
        self._pick = streams.get(f"workload.services[{plan.index}].router")
        self._u: list = []
        self.max_out = s.max_outstanding if s.max_outstanding is not None else math.inf
        self.limit = s.queue.limit if s.queue.limit is not None else math.inf
        self.timeout = s.queue.timeout if s.queue.timeout is not None else math.inf
        b = s.batching if s.batching is not None else ContinuousBatching(kind="continuous")
        self.static = s.service_time is not None or b.kind == "static"
        self.max_batch = 1 if s.service_time is not None else b.max_batch
        self.batch_timeout = 0.0 if (s.service_time is not None or b.kind != "static") else b.timeout
        self.kv = plan.kv_budget if plan.kv_budget is not None else math.inf
        self.max_prefill = b.max_prefill_tokens if b.kind == "continuous" else math.inf
        self.times = None
        if s.model is not None:
            maxp = max(self.prompt) if n else 1
            maxc = max(p + o for p, o in zip(self.prompt, self.output)) if n else 2
            pmax = maxp * self.max_batch if self.static else max(maxp, b.max_prefill_tokens)
            self.times = IterationTimes(cost, s.model, plan.gpu_type, s.tensor_parallel, pmax, maxc)
        self.target = 0   # replicas wanted (set by the engine from the spec and ScaleService)
        self.win = float(s.metrics_window)
        self.busy_bins: list = []   # replica-seconds spent iterating, per metrics window

    def uniform(self) -> float:
        u = self._u
        if not u:
            u.extend(self._pick.random(4096).tolist()[::-1])
        return u.pop()


class Services:
    """Every service of one simulation; the engine owns it as ``sim.services``."""

    def __init__(self, plans, cost, seed: int):
        streams = Streams(seed)
        self.svcs = [_Service(p, cost, streams, k) for k, p in enumerate(plans)]
        self.by_name = {s.name: s for s in self.svcs}
        self.by_job: dict[int, _Replica] = {}
        self.retired: set[int] = set()
        self.drained: list[int] = []   # job ids of draining replicas that became empty
        self.notify = None             # engine callback(t): be woken at t (draining replicas' events)
        self.now = 0.0
        self._heap: list = []     # (time, rank, seq, replica, version): rank 0 segment ends and timers, 2 starts
        self._seq = 0
        self._arr: list = []      # (time, service index) of each service's next arrival
        for s in self.svcs:
            if s.n:
                self._arr.append((s.arrival[0], s.sid))
        heapq.heapify(self._arr)

    # ------------------------------------------------------------------ replica lifecycle (engine calls)
    def add_replica(self, job_id: int, service: str) -> None:
        s = self.by_name[service]
        r = _Replica(job_id, s)
        s.replicas.append(r)
        self.by_job[job_id] = r

    def replica_up(self, job_id: int, now: float) -> None:
        """The replica finished its cold start and serves from ``now``."""
        self.advance_to(now)
        r = self.by_job[job_id]
        s = r.svc
        r.ready = True
        r.up_since = now
        r.phase = 0
        s.ready.append(r)
        s.ready.sort(key=lambda x: x.job_id)
        for k, x in enumerate(s.ready):
            x.pos = k
        self._drain_service_queue(s, now)

    def replica_down(self, job_id: int, now: float) -> int:
        """The replica stops serving at ``now`` (preempted or retired): its queued and
        in-flight requests go back to the router (in arrival order).  Returns how many."""
        self.advance_to(now)
        r = self.by_job[job_id]
        if not r.ready:
            return 0
        s = r.svc
        r.ready = False
        was_draining = r.draining
        r.draining = False
        r.serve_time += now - r.up_since
        if r.phase in (1, 2, 3):
            _busy(r, now)
        r.version += 1
        back = list(r.queue) + list(r.batch) + [i for _, i in r.heap]
        inflight = len(back) - len(r.queue)
        s.waiting -= len(r.queue)
        r.queue.clear()
        r.batch = []
        r.heap = []
        r.n_run = r.s_base = r.kv_used = 0
        r.outstanding = 0
        r.phase = 0
        if was_draining:
            s.draining.remove(r)
        else:
            s.ready.remove(r)
        for k, x in enumerate(s.ready):
            x.pos = k
        back.sort()
        for i in back:
            s.reroutes[i] += 1
            s.replica[i] = -1
            self._route(s, i, now, readmit=True)
        return inflight

    def start_drain(self, job_id: int, now: float) -> bool:
        """Retire a serving replica gracefully: no new requests; it finishes those it holds,
        then its job id appears in :attr:`drained` (the engine is notified at each of its
        events).  False when it holds nothing (the engine retires it at once)."""
        self.advance_to(now)
        r = self.by_job[job_id]
        if not r.ready or r.outstanding == 0:
            return False
        s = r.svc
        r.draining = True
        s.ready.remove(r)
        for k, x in enumerate(s.ready):
            x.pos = k
        s.draining.append(r)
        self.notify(r.t_end if r.phase in (1, 2, 3, 4) else now)
        return True

    # ------------------------------------------------------------------ the loop
    def advance_to(self, t_stop: float) -> None:
        """Process every segment end and arrival at times <= ``t_stop``."""
        heap, arr = self._heap, self._arr
        svcs = self.svcs
        pop, push = heapq.heappop, heapq.heappush
        while True:
            t_rep = heap[0][0] if heap else math.inf
            t_arr = arr[0][0] if arr else math.inf
            if t_rep < t_arr or (heap and t_rep == t_arr and heap[0][1] == 0):
                if t_rep > t_stop:
                    break
                t, _, _, r, version = pop(heap)
                if version != r.version:
                    continue
                self.now = t
                self._segment_end(r, t)
            else:
                if t_arr > t_stop:
                    break
                t, sid = arr[0]
                s = svcs[sid]
                i = s.next
                s.next = i + 1
                if s.next < s.n:
                    heapq.heapreplace(arr, (s.arrival[s.next], sid))
                else:
                    pop(arr)
                self.now = t
                self._arrive(s, i, t)
        if t_stop > self.now:
            self.now = t_stop

    def _push(self, r: _Replica, t: float, rank: int = 0) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (t, rank, self._seq, r, r.version))
        if r.draining:
            self.notify(t)

    def _kick(self, r: _Replica, t: float) -> None:
        """Start the idle replica's next iteration at ``t``, after this instant's arrivals."""
        r.phase = 5
        r.version += 1
        self._push(r, t, 2)

    # ------------------------------------------------------------------ arrivals and routing
    def _arrive(self, s: _Service, i: int, t: float) -> None:
        if s.waiting >= s.limit:
            s.status[i] = REJECTED
            s.finish[i] = t
            return
        self._route(s, i, t, readmit=False)

    def _choose(self, s: _Service):
        ready = s.ready
        n = len(ready)
        if n == 0:
            return None
        mo = s.max_out
        if s.router == "least-outstanding":
            best = None
            bo = math.inf
            for r in ready:
                o = r.outstanding
                if o < bo:
                    best, bo = r, o
            return best if bo < mo else None
        if s.router == "round-robin":
            for _ in range(n):
                r = ready[s.rr % n]
                s.rr += 1
                if r.outstanding < mo:
                    return r
            return None
        # power of two choices: two distinct replicas at random, the one with fewer outstanding
        if n == 1:
            r = ready[0]
            return r if r.outstanding < mo else None
        a = int(s.uniform() * n)
        b = int(s.uniform() * (n - 1))
        if b >= a:
            b += 1
        ra, rb = ready[a], ready[b]
        r = rb if rb.outstanding < ra.outstanding else ra
        if r.outstanding < mo:
            return r
        for r in ready:  # both full: any replica with room, else wait
            if r.outstanding < mo:
                return r
        return None

    def _route(self, s: _Service, i: int, t: float, readmit: bool) -> None:
        r = self._choose(s)
        s.waiting += 1
        if r is None:
            s.squeue.append(i)
            return
        self._enqueue(r, i, t)

    def _enqueue(self, r: _Replica, i: int, t: float) -> None:
        s = r.svc
        r.queue.append(i)
        r.outstanding += 1
        s.replica[i] = r.job_id
        ph = r.phase
        if ph == 0:
            self._kick(r, t)
        elif ph == 2 and len(r.queue) == 1:
            # a decode run: cut it at the next iteration boundary if the request can join then
            p, o = s.prompt[i], s.output[i]
            if r.n_run < s.max_batch and r.kv_used + p + o <= s.kv and t - s.arrival[i] <= s.timeout:
                j = max(1, math.ceil((t - r.t0) / r.d)) if r.d > 0 else 1
                if j < r.k:
                    te = r.t0 + j * r.d
                    if te < t:
                        j += 1
                        te = r.t0 + j * r.d
                    if j < r.k:
                        r.k = j
                        r.t_end = te
                        r.version += 1
                        self._push(r, te)
        elif ph == 4 and len(r.queue) >= s.max_batch:
            self._kick(r, t)

    def _drain_service_queue(self, s: _Service, t: float) -> None:
        q = s.squeue
        while q:
            r = self._choose(s)
            if r is None:
                return
            i = q.popleft()
            self._enqueue(r, i, t)

    # ------------------------------------------------------------------ replica progress
    def _step(self, r: _Replica, t: float) -> None:
        """Start the replica's next segment at ``t`` (it is idle now)."""
        s = r.svc
        q = r.queue
        if s.static:
            self._step_static(r, t)
            return
        # admission: FCFS while the batch, the KV budget and the prefill budget allow
        batch = []
        tokens = 0
        n_room = s.max_batch - r.n_run
        to = s.timeout
        arrival, prompt, output = s.arrival, s.prompt, s.output
        kv = s.kv
        while q and n_room > 0:
            i = q[0]
            if t - arrival[i] > to:
                q.popleft()
                s.status[i] = TIMEOUT
                s.finish[i] = arrival[i] + to
                s.waiting -= 1
                r.outstanding -= 1
                continue
            p = prompt[i]
            need = p + output[i]
            if r.kv_used + need > kv or (batch and tokens + p > s.max_prefill):
                break
            q.popleft()
            batch.append(i)
            tokens += p
            r.kv_used += need
            n_room -= 1
        if batch:
            s.waiting -= len(batch)
            r.batch = batch
            r.phase = 1
            r.t0 = r.busy_since = t
            r.t_end = t + s.times.prefill(tokens, len(batch))
            r.version += 1
            self._push(r, r.t_end)
        elif r.n_run:
            k = r.heap[0][0] - r.it
            n = r.n_run
            ctx = r.s_base / n + r.it + (k - 1) * 0.5
            d = s.times.decode(n, ctx)
            r.phase = 2
            r.t0 = r.busy_since = t
            r.d, r.k = d, k
            r.t_end = t + k * d
            r.version += 1
            self._push(r, r.t_end)
        else:
            r.phase = 0
            if q:  # the head waits for KV room it can never get from an empty replica: impossible by validation
                raise AssertionError("request larger than the KV budget reached a replica")  # pragma: no cover

    def _step_static(self, r: _Replica, t: float) -> None:
        s = r.svc
        q = r.queue
        to = s.timeout
        arrival = s.arrival
        while q and t - arrival[q[0]] > to:
            i = q.popleft()
            s.status[i] = TIMEOUT
            s.finish[i] = arrival[i] + to
            s.waiting -= 1
            r.outstanding -= 1
        if not q:
            r.phase = 0
            return
        if len(q) < s.max_batch:
            due = arrival[q[0]] + s.batch_timeout
            if due > t:
                r.phase = 4
                r.version += 1
                r.t_end = due
                self._push(r, due)
                return
        batch = [q.popleft() for _ in range(min(len(q), s.max_batch))]
        s.waiting -= len(batch)
        r.batch = batch
        r.phase = 3
        r.t0 = r.busy_since = t
        if s.stime is not None:
            dur = s.stime[batch[0]]
            r.d, r.k = 0.0, 0
        else:
            n = len(batch)
            ps = [s.prompt[i] for i in batch]
            os_ = [s.output[i] for i in batch]
            pf = s.times.prefill(sum(ps), n)
            k = max(os_) - 1
            d = s.times.decode(n, sum(ps) / n + 1 + (k - 1) * 0.5) if k > 0 else 0.0
            r.d, r.k = d, pf      # (k holds the prefill time for the records)
            dur = pf + k * d
        r.t_end = t + dur
        r.version += 1
        self._push(r, r.t_end)

    def _segment_end(self, r: _Replica, t: float) -> None:
        s = r.svc
        ph = r.phase
        if ph == 4 or ph == 5:   # a batch timer, or a start after arrivals
            r.phase = 0
            self._step(r, t)
            if r.draining and r.outstanding == 0:
                self.drained.append(r.job_id)
            return
        _busy(r, t)
        freed = 0
        if ph == 1:
            it = r.it
            out = s.output
            first = s.first
            for i in r.batch:
                if math.isnan(first[i]):
                    first[i] = t
                o = out[i]
                if o <= 1:
                    self._done(s, i, t)
                    r.kv_used -= s.prompt[i] + o
                    freed += 1
                else:
                    heapq.heappush(r.heap, (it + o - 1, i))
                    r.n_run += 1
                    r.s_base += s.prompt[i] + 1 - it
            r.batch = []
        elif ph == 2:
            it = r.it + r.k
            r.it = it
            h = r.heap
            while h and h[0][0] <= it:
                _, i = heapq.heappop(h)
                r.n_run -= 1
                r.s_base -= s.prompt[i] + 1 - (it - s.output[i] + 1)
                r.kv_used -= s.prompt[i] + s.output[i]
                self._done(s, i, t)
                freed += 1
        else:  # ph == 3: a static batch ends
            t0 = r.t0
            if s.stime is not None:
                for i in r.batch:
                    if math.isnan(s.first[i]):
                        s.first[i] = t
                    self._done(s, i, t)
            else:
                pf, d = r.k, r.d
                for i in r.batch:
                    if math.isnan(s.first[i]):
                        s.first[i] = t0 + pf
                    self._done(s, i, t0 + pf + (s.output[i] - 1) * d)
            freed = len(r.batch)
            r.batch = []
        r.phase = 0
        if freed:
            r.outstanding -= freed
            if s.squeue:
                self._drain_service_queue(s, t)
        if r.phase == 0:
            self._step(r, t)
        if r.draining and r.outstanding == 0:
            self.drained.append(r.job_id)

    def _done(self, s: _Service, i: int, t: float) -> None:
        s.finish[i] = t
        s.status[i] = COMPLETED
        s.done_t.append(t)
        s.done_i.append(i)

    # ------------------------------------------------------------------ end of run
    def close(self, end: float) -> None:
        """Advance to ``end`` and account the time of replicas still serving."""
        self.advance_to(end)
        for s in self.svcs:
            for r in s.ready + s.draining:
                r.serve_time += end - r.up_since
                r.up_since = end
                if r.phase in (1, 2, 3):
                    _busy(r, end)
                    r.busy_since = end
            # requests that finish after the end (a static batch recorded ahead) are unfinished
            late = (s.status == COMPLETED) & (s.finish > end)
            s.status[late] = PENDING
            s.finish[late] = np.nan

    # ------------------------------------------------------------------ what policies see
    def recent(self, s: _Service, window: float, now: float):
        """Indices of requests completed in (now - window, now]."""
        lo = bisect_left(s.done_t, now - window)
        k = len(s.done_t)
        while lo < k and s.done_t[lo] <= now - window:
            lo += 1
        return s.done_i[lo:]
