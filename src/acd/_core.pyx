"""Compiled engine: the hot path of acd.

Layout of the state (the semantics are in docs/engine.md, mirrored line for
line by the plain-Python oracle in _reference.py):

* Agents with the same profile (skill levels + queues served) form a *group*.
  A group keeps its idle agents in a heap ordered by the strategy's key.
* Waiting calls with the same (queue, routing step, priority, own
  requirements) form a *bucket*: a heap ordered by (entry time, enqueue seq).
  All calls of a bucket share requirements, so eligibility is a property of
  (bucket, group), stored as bitsets both ways (_b2g rows, _g2b rows).
* A call looking for an agent ANDs its bucket's row with the bitset of groups
  that have an idle agent and compares group heads; an agent looking for a
  call ANDs its group's row with the bitset of non-empty buckets and compares
  bucket heads.  The cost of one event grows with the number of distinct
  profiles and buckets, and with log(calls in one bucket) for heap moves.
* Within a bucket every call shares the step offsets, so the bucket head is
  also its next deadline: a heap of buckets keyed by the head's deadline gives
  the engine's next call deadline without per-call timers.
* Call-backs (virtual hold) sit in buckets of their own (no max-wait exit, no
  announcements) with the rank they had: they reach agents like live calls,
  as ``DialBack`` instead of ``Assign``.  Retries and scheduled slots are
  per-call timers; periodic announcements are per-queue timers, on the heap
  only while a live caller waits in the queue (so that no deadline re-arms
  itself with nothing to do, and ``advance`` costs nothing per second skipped).
"""

cimport cython
from cpython.object cimport Py_EQ, PyObject_Hash, PyObject_RichCompareBool
from cpython.ref cimport PyObject, Py_INCREF, Py_DECREF
from libc.math cimport INFINITY, floor, isfinite, log, nextafter
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
from libc.string cimport memcpy, memset

from . import errors as _errors
from ._validate import (agent_queues as _agent_queues, agent_skills as _agent_skills,
                        call_requirements as _call_requirements, check_at as _check_at,
                        check_call_choice as _check_call_choice, check_id as _check_id,
                        check_now as _check_now, check_reason as _check_reason, check_window as _check_window,
                        check_preferred as _check_preferred, check_preferred_for as _check_preferred_for,
                        engine_options as _engine_options, merge_requirements as _merge, MAX_TIME as _MAX_TIME)
from .errors import InvalidInput, DuplicateId
from .ewt import WaitEstimate as _WaitEstimate, abandon_probability as _abandon_probability
from .patience import exponential_mle as _exponential_mle
from .policy import (Queue as _QueuePolicy, check_name as _check_name, check_priority as _check_priority,
                     check_targets as _check_targets, check_join_targets_before as _check_join_targets_before)

cdef extern from *:
    int __builtin_ctzll(unsigned long long) nogil


# ---------------------------------------------------------------- decisions
# Immutable values holding only str/int/float (ids are checked to be str or
# int), so they cannot be part of a reference cycle: no_gc keeps them out of
# the cyclic collector, which otherwise runs often at peak decision rates.

cdef class _Decision:
    """Base of the decisions: value semantics (equality, hash, repr, pickling) from ``_values``."""

    cdef tuple _values(self):
        raise NotImplementedError

    def __eq__(self, other):
        if type(other) is not type(self):
            return NotImplemented
        return self._values() == (<_Decision>other)._values()

    def __hash__(self):
        return hash((type(self),) + self._values())

    def __repr__(self):
        fields = ", ".join(f"{k}={v!r}" for k, v in zip(type(self).__match_args__, self._values()))
        return f"{type(self).__name__}({fields})"

    def __reduce__(self):
        return (type(self), self._values())


@cython.no_gc
@cython.final
cdef class Assign(_Decision):
    """Ring ``agent`` for ``call`` (from ``queue``); ``wait`` is seconds since the call first arrived."""
    __match_args__ = ('call', 'agent', 'queue', 'wait',)

    def __init__(self, call, agent, str queue, double wait):
        self.call = call
        self.agent = agent
        self.queue = queue
        self.wait = wait

    cdef tuple _values(self):
        return (self.call, self.agent, self.queue, self.wait,)


@cython.no_gc
@cython.final
cdef class Overflow(_Decision):
    """The call left ``from_queue`` for ``to_queue`` (a routing step's overflow)."""
    __match_args__ = ('call', 'from_queue', 'to_queue',)

    def __init__(self, call, str from_queue, str to_queue):
        self.call = call
        self.from_queue = from_queue
        self.to_queue = to_queue

    cdef tuple _values(self):
        return (self.call, self.from_queue, self.to_queue,)


@cython.no_gc
@cython.final
cdef class Exit(_Decision):
    """The call leaves unanswered (``reason``: ``"max_wait"`` or ``"callback_failed"``); the dialplan decides what follows."""
    __match_args__ = ('call', 'queue', 'reason',)

    def __init__(self, call, str queue, str reason):
        self.call = call
        self.queue = queue
        self.reason = reason

    cdef tuple _values(self):
        return (self.call, self.queue, self.reason,)


@cython.no_gc
@cython.final
cdef class Announce(_Decision):
    """Tell the caller their ``position`` in ``queue`` and the estimated wait ``ewt`` (seconds, may be inf)."""
    __match_args__ = ('call', 'queue', 'position', 'ewt',)

    def __init__(self, call, str queue, long position, double ewt):
        self.call = call
        self.queue = queue
        self.position = position
        self.ewt = ewt

    cdef tuple _values(self):
        return (self.call, self.queue, self.position, self.ewt,)


@cython.no_gc
@cython.final
cdef class OfferCallback(_Decision):
    """Offer the caller a call-back (virtual hold): their estimated wait ``ewt`` is long."""
    __match_args__ = ('call', 'queue', 'ewt',)

    def __init__(self, call, str queue, double ewt):
        self.call = call
        self.queue = queue
        self.ewt = ewt

    cdef tuple _values(self):
        return (self.call, self.queue, self.ewt,)


@cython.no_gc
@cython.final
cdef class DialBack(_Decision):
    """The call-back's turn came: ``agent`` is reserved; dial the caller back (``attempt`` from 1)."""
    __match_args__ = ('call', 'agent', 'queue', 'attempt',)

    def __init__(self, call, agent, str queue, long attempt):
        self.call = call
        self.agent = agent
        self.queue = queue
        self.attempt = attempt

    cdef tuple _values(self):
        return (self.call, self.agent, self.queue, self.attempt,)


# ---------------------------------------------------------------- constants

cdef enum:
    NPRIO = 10   # priorities 0..9: bucket look-up table width
    DIRECT_TERMS = 63   # ewt.ql_sum: terms summed one by one before the digamma tail

# agent states
cdef enum:
    A_OUT = 0
    A_AVAILABLE = 1
    A_RESERVED = 2
    A_BUSY = 3
    A_WRAP = 4
    A_PAUSED = 5

# an agent's request deferred until its call ends (pause or log-out asked while ringing or talking)
cdef enum:
    AFTER_NONE = 0
    AFTER_PAUSE = 1
    AFTER_LOGOUT = 2

_AFTER_CALL_NAMES = (None, "pause", "logout")

# call states
cdef enum:
    C_FREE = 0
    C_WAITING = 1
    C_OFFERED = 2
    C_CONNECTED = 3
    C_CB_PENDING = 4     # call-back in line
    C_DIALING = 5        # call-back: agent reserved, dialling the caller
    C_CB_RETRY = 6       # call-back: waiting to retry after a failed dial
    C_SCHEDULED = 7      # call-back: waiting for its time slot

# agent strategies (order of policy.AGENT_STRATEGIES)
cdef enum:
    S_LONGEST_IDLE = 0
    S_LEAST_OCCUPIED = 1
    S_HIGHEST_LEVEL = 2
    S_ROUND_ROBIN = 3
    S_FEWEST_CALLS = 4
    S_RANDOM = 5

# call choice (order of policy.CALL_CHOICES)
cdef enum:
    CC_PRIORITY_FIFO = 0
    CC_SERVICE_LEVEL = 1
    CC_CMU_THETA = 2

# queue-state rules: join_when_no_agents, if_wait_over["then"]
cdef enum:
    J_ACCEPT = 0
    J_REFUSE = 1
    J_OVERFLOW = 2
    W_NONE = 0
    W_OFFER = 1
    W_EXIT = 2
    W_OVERFLOW = 3

# call-back counters in QueueRec.cb
cdef enum:
    CB_OFFERED = 0
    CB_ACCEPTED = 1
    CB_SCHEDULED = 2
    CB_DIALLED = 3
    CB_REACHED = 4
    CB_FAILED = 5
    CB_CANCELLED = 6
    CB_GAVE_UP = 7
    N_CB = 8

_AGENT_STATE_NAMES = ("logged_out", "available", "reserved", "busy", "wrap_up", "paused")
_CALL_STATE_NAMES = ("ended", "waiting", "offered", "connected", "callback_pending", "dialing_back",
                     "callback_retry", "scheduled")
_CB_NAMES = ("offered", "accepted", "scheduled", "dialled", "reached", "failed", "cancelled", "gave_up")
_STRATEGY_CODES = {"longest_idle": S_LONGEST_IDLE, "least_occupied": S_LEAST_OCCUPIED,
                   "highest_level": S_HIGHEST_LEVEL, "round_robin": S_ROUND_ROBIN,
                   "fewest_calls": S_FEWEST_CALLS, "random": S_RANDOM}
_CHOICE_CODES = {"priority_fifo": CC_PRIORITY_FIFO, "service_level": CC_SERVICE_LEVEL, "cmu_theta": CC_CMU_THETA}
_OPS = {"enqueue": 0, "answer": 1, "complete": 2, "abandon": 3, "ring_no_answer": 4, "reject": 5,
        "login": 6, "logout": 7, "ready": 8, "pause": 9, "advance": 10, "accept_callback": 11,
        "callback_answered": 12, "callback_failed": 13, "schedule_callback": 14, "withdraw": 15,
        "set_agent": 16, "update_queue": 17, "remove_queue": 18}

# the latest time accepted as ``now`` (see _validate.MAX_TIME)
cdef double MAX_TIME = _MAX_TIME


# ---------------------------------------------------------------- small helpers

cdef void* _grow(void* p, Py_ssize_t n_bytes) except NULL:
    cdef void* q = realloc(p, n_bytes if n_bytes > 0 else 1)
    if q == NULL:
        raise MemoryError()
    return q


cdef inline bint _less(const Entry* x, const Entry* y) noexcept nogil:
    return x.t < y.t or (x.t == y.t and x.seq < y.seq)


cdef inline void _sift_up(Heap* h, int32_t i, int32_t* pos) noexcept nogil:
    cdef Entry e = h.a[i]
    cdef int32_t p
    while i > 0:
        p = (i - 1) >> 1
        if not _less(&e, &h.a[p]):
            break
        h.a[i] = h.a[p]
        pos[h.a[i].idx] = i
        i = p
    h.a[i] = e
    pos[e.idx] = i


cdef inline void _sift_down(Heap* h, int32_t i, int32_t* pos) noexcept nogil:
    cdef Entry e = h.a[i]
    cdef int32_t n = h.n, c
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        if c + 1 < n and _less(&h.a[c + 1], &h.a[c]):
            c += 1
        if not _less(&h.a[c], &e):
            break
        h.a[i] = h.a[c]
        pos[h.a[i].idx] = i
        i = c
    h.a[i] = e
    pos[e.idx] = i


cdef int _heap_push(Heap* h, double t, uint64_t seq, int32_t idx, int32_t* pos) except -1:
    if h.n == h.cap:
        h.cap = 8 if h.cap == 0 else h.cap * 2
        h.a = <Entry*>_grow(h.a, h.cap * sizeof(Entry))
    h.a[h.n].t = t
    h.a[h.n].seq = seq
    h.a[h.n].idx = idx
    h.n += 1
    _sift_up(h, h.n - 1, pos)
    return 0


cdef inline void _heap_remove(Heap* h, int32_t i, int32_t* pos) noexcept nogil:
    """Remove entry i; its slot's position becomes -1."""
    pos[h.a[i].idx] = -1
    h.n -= 1
    if i == h.n:
        return
    h.a[i] = h.a[h.n]
    pos[h.a[i].idx] = i
    if i > 0 and _less(&h.a[i], &h.a[(i - 1) >> 1]):
        _sift_up(h, i, pos)
    else:
        _sift_down(h, i, pos)


cdef inline void _heap_update(Heap* h, int32_t i, double t, uint64_t seq, int32_t* pos) noexcept nogil:
    h.a[i].t = t
    h.a[i].seq = seq
    if i > 0 and _less(&h.a[i], &h.a[(i - 1) >> 1]):
        _sift_up(h, i, pos)
    else:
        _sift_down(h, i, pos)


cdef inline void _heap_free(Heap* h) noexcept nogil:
    free(h.a)
    h.a = NULL
    h.n = 0
    h.cap = 0


cdef inline void _bit_set(uint64_t* words, int32_t i) noexcept nogil:
    words[i >> 6] |= (<uint64_t>1) << (i & 63)


cdef inline void _bit_clear(uint64_t* words, int32_t i) noexcept nogil:
    words[i >> 6] &= ~((<uint64_t>1) << (i & 63))


cdef inline bint _bit_get(const uint64_t* words, int32_t i) noexcept nogil:
    return (words[i >> 6] >> (i & 63)) & 1


cdef inline uint64_t _splitmix(uint64_t* state) noexcept nogil:
    state[0] += <uint64_t>0x9E3779B97F4A7C15ULL
    cdef uint64_t z = state[0]
    z = (z ^ (z >> 30)) * <uint64_t>0xBF58476D1CE4E5B9ULL
    z = (z ^ (z >> 27)) * <uint64_t>0x94D049BB133111EBULL
    return z ^ (z >> 31)


cdef inline double _digamma_large(double x) noexcept nogil:
    # same operations as acd.ewt._digamma_large (bit-identical results)
    cdef double inv = 1.0 / x
    cdef double inv2 = inv * inv
    return log(x) - 0.5 * inv - inv2 * (1.0 / 12.0 - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0)))


cdef double _next_tick(double t0, double every, double t, bint inclusive) noexcept nogil:
    """First announcement time t0 + k*every (k >= 1) after t, or at t when inclusive: the same
    float operations as acd._reference.next_tick (bit-identical grid points)."""
    cdef double x = (t - t0) / every, k, g
    cdef int i
    if x < 4503599627370496.0:          # 2**52: k + 1.0 is exact
        k = floor(x) if x >= 1.0 else 1.0
        for i in range(4):              # the quotient's rounding: one step, two at most
            g = t0 + k * every
            if g > t or (inclusive and g == t):
                return g
            k += 1.0
    # every is below the float resolution at t: the next representable time
    return t if inclusive else nextafter(t, INFINITY)


cdef double _ql_sum(double a, double theta, int64_t k) noexcept nogil:
    """sum_{j=0..k} 1/(a + j*theta); the C twin of acd.ewt.ql_sum."""
    cdef double total = 0.0, r
    cdef int64_t n = k if k < DIRECT_TERMS else DIRECT_TERMS, j
    for j in range(n + 1):
        total += 1.0 / (a + <double>j * theta)
    if k > DIRECT_TERMS:
        r = a / theta
        total += (_digamma_large(r + <double>k + 1.0) - _digamma_large(r + <double>DIRECT_TERMS + 1.0)) / theta
    return total


# ---------------------------------------------------------------- the engine

@cython.final
cdef class Engine:
    """Skills-based call distribution engine (compiled core).

    Every command takes ``now`` (seconds, never decreasing) and returns the
    list of decisions it caused (:class:`Assign`, :class:`Overflow`,
    :class:`Exit`, :class:`Announce`, :class:`OfferCallback`,
    :class:`DialBack`), including those of deadlines that fell due before
    ``now``.  A command that raises changes nothing but time: deadlines that
    fell due are processed, and their decisions come with the next command's.
    See ``docs/engine.md`` for the full semantics.
    """

    def __cinit__(self):
        self._pending = []
        self._dropped = []
        self._skills = {}
        self._queue_ids = {}
        self._queue_names = []
        self._queue_policies = []
        self._req_ids = {(): 0}
        self._req_tuples = [()]
        self._group_ids = {}
        self._group_profiles = []
        self._extra_buckets = {}
        self._bucket_free = []
        self._ctab_mask = 1023
        self._ctab_shift = 54
        self._ctab = <int32_t*>_grow(NULL, 1024 * sizeof(int32_t))
        memset(self._ctab, 0xff, 1024 * sizeof(int32_t))
        self._agent_slots = {}
        self._agent_ids = []
        self._agent_reasons = []
        self._after_call_reasons = {}
        self._level_stride = 16
        self._words_b = 1
        self._words_g = 1
        self._buckets_cap = 64
        self._groups_cap = 64
        self._buckets = <Bucket*>_grow(NULL, self._buckets_cap * sizeof(Bucket))
        self._bucket_dl_pos = <int32_t*>_grow(NULL, self._buckets_cap * sizeof(int32_t))
        self._nonempty = <uint64_t*>_grow(NULL, self._words_b * sizeof(uint64_t))
        self._groups = <Heap*>_grow(NULL, self._groups_cap * sizeof(Heap))
        self._group_staffed = <int32_t*>_grow(NULL, self._groups_cap * sizeof(int32_t))
        self._idle_groups = <uint64_t*>_grow(NULL, self._words_g * sizeof(uint64_t))
        self._levels = <uint8_t*>_grow(NULL, self._groups_cap * self._level_stride)
        self._b2g = <uint64_t*>_grow(NULL, self._buckets_cap * self._words_g * sizeof(uint64_t))
        self._g2b = <uint64_t*>_grow(NULL, self._groups_cap * self._words_b * sizeof(uint64_t))
        memset(self._nonempty, 0, self._words_b * sizeof(uint64_t))
        memset(self._idle_groups, 0, self._words_g * sizeof(uint64_t))
        memset(self._b2g, 0, self._buckets_cap * self._words_g * sizeof(uint64_t))
        memset(self._g2b, 0, self._groups_cap * self._words_b * sizeof(uint64_t))

    def __init__(self, *, agent_strategy="longest_idle", seed=0, ring_no_answer="pause",
                 no_answer_delay=0.0, reject_delay=0.0, call_choice="priority_fifo", patience_window=4096):
        (strategy, seed, rna, nad, rjd) = _engine_options(agent_strategy, seed, ring_no_answer,
                                                         no_answer_delay, reject_delay)
        self.call_choice = _check_call_choice(call_choice)
        self.patience_window = _check_window(patience_window)
        self._choice = _CHOICE_CODES[self.call_choice]
        self.agent_strategy = strategy
        self._strategy = _STRATEGY_CODES[strategy]
        self.seed = seed
        self._rng = <uint64_t>seed
        self.rna_action = rna
        self._rna_ready = rna == "ready"
        self.no_answer_delay = nad
        self.reject_delay = rjd

    def __dealloc__(self):
        cdef int32_t i
        cdef int64_t k
        if self._ctab != NULL:
            for k in range(self._ctab_mask + 1):
                if self._ctab[k] >= 0:
                    Py_DECREF(<object>self._calls[self._ctab[k]].key)
            free(self._ctab)
        for i in range(self._nbuckets):
            _heap_free(&self._buckets[i].heap)
        for i in range(self._ngroups):
            _heap_free(&self._groups[i])
        for i in range(self._nqueues):
            free(self._queues[i].ring_w)
            free(self._queues[i].ring_a)
        _heap_free(&self._timers)
        _heap_free(&self._deadlines)
        _heap_free(&self._call_timers)
        _heap_free(&self._ticks)
        free(self._calls); free(self._call_pos); free(self._call_timer_pos); free(self._call_free)
        if self._pref != NULL:
            for i in range(self._agents_used):
                _heap_free(&self._pref[i])
        free(self._agents); free(self._agent_idle_pos); free(self._agent_timer_pos); free(self._agent_free)
        free(self._pref); free(self._pref_pos)
        free(self._queues); free(self._tick_pos)
        free(self._step_overflow); free(self._step_boost); free(self._bucket_lut)
        free(self._buckets); free(self._bucket_dl_pos); free(self._nonempty); free(self._req_skills)
        free(self._groups); free(self._group_staffed); free(self._idle_groups); free(self._levels)
        free(self._b2g); free(self._g2b)

    # ------------------------------------------------------------ configuration

    @property
    def now(self):
        """The engine's current time (the latest ``now`` it was given)."""
        return self._now

    @property
    def skills(self):
        return tuple(self._skills)

    @property
    def queues(self):
        return tuple(n for n in self._queue_names if n is not None)   # None: a removed queue's slot

    def add_skill(self, name):
        """Declare a skill (agents and calls may only name declared skills)."""
        _check_name("skill name", name)
        if name not in self._skills:
            self._skills[name] = len(self._skills)
            self._ensure_level_stride(len(self._skills))

    def add_queue(self, queue):
        """Configure a service line (an :class:`acd.Queue`); overflow targets must exist already."""
        if not isinstance(queue, _QueuePolicy):
            raise InvalidInput(f"queue must be an acd.Queue, got {queue!r}")
        if queue.name in self._queue_ids:
            raise DuplicateId(f"queue {queue.name!r} is already configured")
        _check_targets(queue, self._queue_ids)
        for s in queue.skills:
            self.add_skill(s)
        cdef int32_t q = self._nqueues
        if q == self._queues_cap:
            self._queues_cap = 8 if self._queues_cap == 0 else self._queues_cap * 2
            self._queues = <QueueRec*>_grow(self._queues, self._queues_cap * sizeof(QueueRec))
            self._tick_pos = <int32_t*>_grow(self._tick_pos, self._queues_cap * sizeof(int32_t))
        cdef QueueRec* qr = &self._queues[q]
        memset(qr, 0, sizeof(QueueRec))
        if self.patience_window > 0:
            qr.ring_w = <double*>_grow(NULL, self.patience_window * sizeof(double))
            qr.ring_a = <uint8_t*>_grow(NULL, self.patience_window * sizeof(uint8_t))
        self._queue_ids[queue.name] = q
        self._queue_names.append(queue.name)
        self._queue_policies.append(queue)
        self._set_queue_policy(q, queue)
        self._tick_pos[q] = -1
        self._nqueues += 1
        # the first tick is armed (put on the heap) when a live caller waits: see _arm_tick
        qr.tick_t0 = self._now
        if qr.announce_every > 0:
            qr.tick_next = _next_tick(self._now, qr.announce_every, self._now, False)

    def update_queue(self, queue, now):
        """Replace the policy of a configured queue (an :class:`acd.Queue` of the same name) and apply
        it to the calls already in it; each keeps its rank (entry, seq), priority and step index (see
        docs/reload.md).  Cost: linear in the calls of the queue."""
        cdef double t = self._begin(now)
        if not isinstance(queue, _QueuePolicy):
            raise InvalidInput(f"queue must be an acd.Queue, got {queue!r}")
        cdef int32_t q = self._queue_slot(queue.name), b, i, c, last
        _check_targets(queue, self._queue_ids)
        _check_join_targets_before(queue, q, self._queue_names)
        for s in queue.skills:
            self.add_skill(s)
        # every call in line leaves its bucket (rank kept in the call record)
        cdef QueueRec* qr = &self._queues[q]
        cdef Bucket* bk
        cdef CallRec* cr
        line = []
        for b in range(self._nbuckets):
            bk = &self._buckets[b]
            if bk.queue != q:
                continue
            for i in range(bk.heap.n):
                c = bk.heap.a[i].idx
                self._call_pos[c] = -1
                line.append(c)
                if not self._calls[c].virtual:
                    qr.waiting -= 1
                    self._waiting -= 1
            bk.heap.n = 0
        for c in range(self._calls_used):
            if self._calls[c].state == C_WAITING and self._calls[c].held and self._calls[c].queue == q:
                self._unhold(c)   # its hold ends: it takes its place in the line with the others
                line.append(c)
        if self._tick_pos[q] >= 0:
            _heap_remove(&self._ticks, self._tick_pos[q], self._tick_pos)
        self._retire_buckets(q)
        self._set_queue_policy(q, queue)
        qr = &self._queues[q]
        # a step index past the new steps (or now an overflow step): the last step a call can be at
        last = qr.n_steps - 1 - (1 if self._step_overflow[qr.step_base + qr.n_steps - 1] >= 0 else 0)
        for c in range(self._calls_used):
            cr = &self._calls[c]
            if cr.state != C_FREE and cr.queue == q and cr.step > last:
                cr.step = <int16_t>last
        if qr.announce_every > 0:
            qr.tick_next = _next_tick(qr.tick_t0, qr.announce_every, t, False)
        # back in line in line order, each as after a ring-no-answer: deadlines already passed under
        # the new steps apply at once, then it looks for an agent
        keyed = []
        for c in line:
            cr = &self._calls[c]
            keyed.append((-self._eff_priority(q, cr.entry, cr.priority, t), cr.entry, cr.seq, c))
        keyed.sort()
        for item in keyed:
            self._requeue(<int32_t>item[3], t)
        return self._finish()

    def remove_queue(self, queue, now):
        """Remove a queue that nothing uses: no call in it (in any state), no queue overflowing to it,
        no logged-in agent naming it among its queues; else InvalidState, and nothing changes."""
        cdef double t = self._begin(now)
        cdef int32_t q = self._queue_slot(queue), c, n = 0
        name = self._queue_names[q]
        for c in range(self._calls_used):
            if self._calls[c].state != C_FREE and self._calls[c].queue == q:
                n += 1
        if n:
            raise _errors.queue_in_use(name, f"{n} call(s) are in it (waiting, ringing, connected or call-backs)")
        for k, other in enumerate(self._queue_policies):
            if other is not None and name in other.overflow_targets:
                raise _errors.queue_in_use(name, f"queue {self._queue_names[k]!r} overflows to it")
        for ident, slot in self._agent_slots.items():
            served = self._group_profiles[self._agents[<int32_t>slot].group][1]
            if served is not None and name in served:
                raise _errors.queue_in_use(name, f"logged-in agent {ident!r} serves it (change its queues first)")
        self._retire_buckets(q)
        cdef QueueRec* qr = &self._queues[q]
        free(qr.ring_w)
        free(qr.ring_a)
        qr.ring_w = NULL
        qr.ring_a = NULL
        del self._queue_ids[name]
        self._queue_names[q] = None
        self._queue_policies[q] = None
        return self._finish()

    cdef int _set_queue_policy(self, int32_t q, object queue) except -1:
        """Copy a validated policy into queue slot q: its settings, its routing steps and an empty
        bucket look-up table (the step and table regions are reused when the new steps fit)."""
        cdef QueueRec* qr = &self._queues[q]
        cdef int32_t n_steps = len(queue.steps), k, n_lut = 2 * n_steps * NPRIO
        if n_steps > qr.n_steps:
            if self._steps_used + n_steps > self._steps_cap:
                self._steps_cap = max(2 * self._steps_cap, self._steps_used + n_steps, 16)
                self._step_overflow = <int32_t*>_grow(self._step_overflow, self._steps_cap * sizeof(int32_t))
                self._step_boost = <int32_t*>_grow(self._step_boost, self._steps_cap * sizeof(int32_t))
            if self._lut_used + n_lut > self._lut_cap:
                self._lut_cap = max(2 * self._lut_cap, self._lut_used + n_lut, 64)
                self._bucket_lut = <int32_t*>_grow(self._bucket_lut, self._lut_cap * sizeof(int32_t))
            qr.step_base = self._steps_used
            qr.lut_base = self._lut_used
            self._steps_used += n_steps
            self._lut_used += n_lut
        qr.n_steps = n_steps
        qr.ageing = 0.0 if queue.ageing is None else queue.ageing
        qr.wrap_up = queue.wrap_up
        qr.sl_seconds = queue.service_level[1]
        qr.cost = queue.cost
        qr.prior_aht = queue.expected_handle_time
        qr.prior_patience = queue.expected_patience
        qr.cb_threshold = -1.0 if queue.callback_threshold is None else queue.callback_threshold
        qr.cb_risk = -1.0 if queue.callback_risk is None else queue.callback_risk
        qr.retry_delay = queue.callback_retry_delay
        qr.announce_every = 0.0 if queue.announce_every is None else queue.announce_every
        qr.announce_on_join = queue.announce_on_join
        qr.cb_attempts = queue.callback_attempts
        qr.sched_boost = queue.scheduled_boost
        qr.max_length = -1 if queue.max_length is None else queue.max_length
        qr.join_rule = J_ACCEPT      # reset: update_queue may drop a rule
        qr.wait_rule = W_NONE
        if queue.join_when_no_agents == "refuse":
            qr.join_rule = J_REFUSE
        elif queue.join_overflow is not None:
            qr.join_rule = J_OVERFLOW
            qr.join_target = self._queue_ids[queue.join_overflow]
        if queue.if_wait_over is not None:
            qr.wait_over = queue.if_wait_over["seconds"]
            if queue.if_wait_over["then"] == "offer_callback":
                qr.wait_rule = W_OFFER
            elif queue.if_wait_over["then"] == "exit":
                qr.wait_rule = W_EXIT
            else:
                qr.wait_rule = W_OVERFLOW
                qr.wait_target = self._queue_ids[queue.wait_overflow]
        qr.admission = qr.max_length >= 0 or qr.join_rule != J_ACCEPT or qr.wait_rule >= W_EXIT
        if qr.leave_empty:
            self._n_leave -= 1
        qr.leave_empty = queue.leave_when_no_agents
        if qr.leave_empty:
            self._n_leave += 1
        for k in range(n_steps):
            step = queue.steps[k]
            self._step_overflow[qr.step_base + k] = -1 if step.overflow is None else self._queue_ids[step.overflow]
            self._step_boost[qr.step_base + k] = step.priority_boost
        for k in range(n_lut):
            self._bucket_lut[qr.lut_base + k] = -1
        self._queue_policies[q] = queue
        return 0

    cdef int _retire_buckets(self, int32_t q) except -1:
        """Every bucket of queue q (all empty) leaves the look-up tables; its slot is kept for reuse."""
        cdef int32_t b, g
        cdef Bucket* bk
        for b in range(self._nbuckets):
            bk = &self._buckets[b]
            if bk.queue != q:
                continue
            if self._bucket_dl_pos[b] >= 0:
                _heap_remove(&self._deadlines, self._bucket_dl_pos[b], self._bucket_dl_pos)
            _heap_free(&bk.heap)
            _bit_clear(self._nonempty, b)
            memset(self._b2g + b * self._words_g, 0, self._words_g * sizeof(uint64_t))
            for g in range(self._ngroups):
                _bit_clear(self._g2b + g * self._words_b, b)
            bk.queue = -1
            self._bucket_free.append(b)
        for key in [k for k in self._extra_buckets if k[0] == q]:
            del self._extra_buckets[key]
        return 0

    cdef void _ensure_level_stride(self, int32_t n_skills) except *:
        """Group level rows have one byte per declared skill."""
        if n_skills <= self._level_stride:
            return
        cdef int32_t new_stride = self._level_stride
        while new_stride < n_skills:
            new_stride *= 2
        cdef uint8_t* lv = <uint8_t*>_grow(NULL, self._groups_cap * new_stride)
        memset(lv, 0, self._groups_cap * new_stride)
        cdef int32_t g
        for g in range(self._ngroups):
            memcpy(lv + g * new_stride, self._levels + g * self._level_stride, self._level_stride)
        free(self._levels)
        self._levels = lv
        self._level_stride = new_stride

    # ------------------------------------------------------------ interning

    cdef int32_t _req_id(self, tuple req) except -1:
        rid = self._req_ids.get(req)
        if rid is None:
            rid = len(self._req_tuples)
            self._req_ids[req] = rid
            self._req_tuples.append(req)
        return rid

    cdef bint _eligible(self, int32_t b, int32_t g) except -1:
        """Python-level check, used only when a bucket or a group is created."""
        cdef Bucket* bk = &self._buckets[b]
        profile = self._group_profiles[g]
        served = profile[1]
        if served is not None and self._queue_names[bk.queue] not in served:
            return False
        cdef uint8_t* lv = self._levels + g * self._level_stride
        for name, level in self._req_tuples[bk.req]:
            if lv[<int32_t>self._skills[name]] < <int>level:
                return False
        return True

    cdef int32_t _new_bucket(self, int32_t q, int32_t step, int32_t prio, int32_t extra, int8_t virtual) except -1:
        cdef int32_t b, g, k
        cdef bint reused = len(self._bucket_free) > 0
        if reused:
            b = self._bucket_free.pop()
        else:
            b = self._nbuckets
            if b == self._buckets_cap:
                self._grow_buckets()
        policy = self._queue_policies[q]
        steps = policy.steps
        req = _merge(steps[step].requirement_tuple, self._req_tuples[extra])
        cdef Bucket* bk = &self._buckets[b]
        memset(bk, 0, sizeof(Bucket))
        bk.queue = q
        bk.step = step
        bk.priority = prio
        bk.extra = extra
        bk.virtual = virtual
        bk.req = self._req_id(req)
        # next time event: the next step, unless max wait comes first (same rule as the oracle);
        # call-backs do not exit at max wait: nobody is on the line
        step_off = steps[step + 1].after if step + 1 < len(steps) else None
        mw = None if virtual else policy.max_wait
        if mw is not None and (step_off is None or mw <= step_off):
            bk.offset = mw
            bk.exit_next = True
        elif step_off is not None:
            bk.offset = step_off
            bk.exit_next = False
        else:
            bk.offset = INFINITY
            bk.exit_next = False
        # required skills, for highest-level scoring
        bk.req_len = len(req)
        if self._req_skills_used + bk.req_len > self._req_skills_cap:
            self._req_skills_cap = max(2 * self._req_skills_cap, self._req_skills_used + bk.req_len, 64)
            self._req_skills = <int32_t*>_grow(self._req_skills, self._req_skills_cap * sizeof(int32_t))
        bk.req_off = self._req_skills_used
        for k, (name, _level) in enumerate(req):
            self._req_skills[bk.req_off + k] = self._skills[name]
        self._req_skills_used += bk.req_len
        self._bucket_dl_pos[b] = -1
        if not reused:
            self._nbuckets += 1
        for g in range(self._ngroups):
            if self._eligible(b, g):
                _bit_set(self._b2g + b * self._words_g, g)
                _bit_set(self._g2b + g * self._words_b, b)
        return b

    cdef void _grow_buckets(self) except *:
        cdef int32_t old_words = self._words_b, new_cap = self._buckets_cap * 2
        cdef int32_t new_words = new_cap >> 6, g
        self._buckets = <Bucket*>_grow(self._buckets, new_cap * sizeof(Bucket))
        self._bucket_dl_pos = <int32_t*>_grow(self._bucket_dl_pos, new_cap * sizeof(int32_t))
        self._b2g = <uint64_t*>_grow(self._b2g, new_cap * self._words_g * sizeof(uint64_t))
        memset(self._b2g + self._buckets_cap * self._words_g, 0,
               (new_cap - self._buckets_cap) * self._words_g * sizeof(uint64_t))
        cdef uint64_t* g2b = <uint64_t*>_grow(NULL, self._groups_cap * new_words * sizeof(uint64_t))
        memset(g2b, 0, self._groups_cap * new_words * sizeof(uint64_t))
        for g in range(self._ngroups):
            memcpy(g2b + g * new_words, self._g2b + g * old_words, old_words * sizeof(uint64_t))
        free(self._g2b)
        self._g2b = g2b
        self._nonempty = <uint64_t*>_grow(self._nonempty, new_words * sizeof(uint64_t))
        memset(self._nonempty + old_words, 0, (new_words - old_words) * sizeof(uint64_t))
        self._words_b = new_words
        self._buckets_cap = new_cap

    cdef void _grow_groups(self) except *:
        cdef int32_t old_words = self._words_g, new_cap = self._groups_cap * 2
        cdef int32_t new_words = new_cap >> 6, b
        self._groups = <Heap*>_grow(self._groups, new_cap * sizeof(Heap))
        self._group_staffed = <int32_t*>_grow(self._group_staffed, new_cap * sizeof(int32_t))
        self._levels = <uint8_t*>_grow(self._levels, new_cap * self._level_stride)
        self._g2b = <uint64_t*>_grow(self._g2b, new_cap * self._words_b * sizeof(uint64_t))
        memset(self._g2b + self._groups_cap * self._words_b, 0,
               (new_cap - self._groups_cap) * self._words_b * sizeof(uint64_t))
        cdef uint64_t* b2g = <uint64_t*>_grow(NULL, self._buckets_cap * new_words * sizeof(uint64_t))
        memset(b2g, 0, self._buckets_cap * new_words * sizeof(uint64_t))
        for b in range(self._nbuckets):
            memcpy(b2g + b * new_words, self._b2g + b * old_words, old_words * sizeof(uint64_t))
        free(self._b2g)
        self._b2g = b2g
        self._idle_groups = <uint64_t*>_grow(self._idle_groups, new_words * sizeof(uint64_t))
        memset(self._idle_groups + old_words, 0, (new_words - old_words) * sizeof(uint64_t))
        self._words_g = new_words
        self._groups_cap = new_cap

    cdef int32_t _group_for(self, tuple skills, object queues) except -1:
        key = (skills, queues)
        gid = self._group_ids.get(key)
        if gid is not None:
            return gid
        cdef int32_t g = self._ngroups, b
        if g == self._groups_cap:
            self._grow_groups()
        memset(&self._groups[g], 0, sizeof(Heap))
        self._group_staffed[g] = 0
        cdef uint8_t* lv = self._levels + g * self._level_stride
        memset(lv, 0, self._level_stride)
        for name, level in skills:
            lv[<int32_t>self._skills[name]] = <uint8_t>level
        self._group_ids[key] = g
        self._group_profiles.append(key)
        self._ngroups += 1
        for b in range(self._nbuckets):
            if self._buckets[b].queue >= 0 and self._eligible(b, g):   # retired buckets: queue -1
                _bit_set(self._b2g + b * self._words_g, g)
                _bit_set(self._g2b + g * self._words_b, b)
        return g

    cdef int32_t _bucket_for(self, int32_t q, int32_t step, int32_t prio, int32_t extra,
                             int8_t virtual) except -1:
        cdef int32_t b, i
        if extra == 0:
            i = self._queues[q].lut_base + (virtual * self._queues[q].n_steps + step) * NPRIO + prio
            b = self._bucket_lut[i]
            if b < 0:
                b = self._new_bucket(q, step, prio, 0, virtual)
                self._bucket_lut[i] = b
            return b
        key = (q, step, prio, extra, virtual)
        bid = self._extra_buckets.get(key)
        if bid is None:
            b = self._new_bucket(q, step, prio, extra, virtual)
            self._extra_buckets[key] = b
            return b
        return bid

    # ------------------------------------------------------------ slots

    cdef int32_t _new_call_slot(self, object ident, int64_t h) except -1:
        cdef int32_t c, new_cap
        if self._call_nfree > 0:
            self._call_nfree -= 1
            c = self._call_free[self._call_nfree]
        else:
            if self._calls_used == self._calls_cap:
                new_cap = 1024 if self._calls_cap == 0 else self._calls_cap * 2
                self._calls = <CallRec*>_grow(self._calls, new_cap * sizeof(CallRec))
                self._call_pos = <int32_t*>_grow(self._call_pos, new_cap * sizeof(int32_t))
                self._call_timer_pos = <int32_t*>_grow(self._call_timer_pos, new_cap * sizeof(int32_t))
                self._pref_pos = <int32_t*>_grow(self._pref_pos, new_cap * sizeof(int32_t))
                self._call_free = <int32_t*>_grow(self._call_free, new_cap * sizeof(int32_t))
                self._calls_cap = new_cap
            c = self._calls_used
            self._calls_used += 1
        self._call_pos[c] = -1
        self._call_timer_pos[c] = -1
        memset(&self._calls[c], 0, sizeof(CallRec))
        Py_INCREF(ident)
        self._calls[c].key = <void*>ident
        self._calls[c].hash = h
        self._ctab_insert(c)
        return c

    cdef inline object _call_id(self, int32_t c):
        return <object>self._calls[c].key

    cdef inline int64_t _home(self, int64_t h) noexcept:
        # Fibonacci hashing: sequential int ids (common) would otherwise fill one long run of
        # slots, and linear probing and backward-shift deletion would walk all of it
        return <int64_t>((<uint64_t>h * <uint64_t>0x9E3779B97F4A7C15ULL) >> self._ctab_shift)

    cdef int32_t _call_find(self, object key) except -2:
        """Slot of the live call with this id, or -1 (also for unhashable keys)."""
        cdef int64_t h
        try:
            h = PyObject_Hash(key)
        except TypeError:
            return -1
        cdef int64_t i = self._home(h)
        cdef int32_t s
        cdef CallRec* cr
        while True:
            s = self._ctab[i]
            if s < 0:
                return -1
            cr = &self._calls[s]
            if cr.hash == h and (cr.key == <void*>key or PyObject_RichCompareBool(key, <object>cr.key, Py_EQ)):
                return s
            i = (i + 1) & self._ctab_mask

    cdef int _ctab_insert(self, int32_t c) except -1:
        cdef int64_t i, k, cap
        cdef int32_t* old
        cdef int64_t old_cap
        if (self._ncalls + 1) * 2 > self._ctab_mask + 1:
            old = self._ctab
            old_cap = self._ctab_mask + 1
            cap = old_cap * 2
            self._ctab = <int32_t*>_grow(NULL, cap * sizeof(int32_t))
            memset(self._ctab, 0xff, cap * sizeof(int32_t))
            self._ctab_mask = cap - 1
            self._ctab_shift -= 1
            for k in range(old_cap):
                if old[k] >= 0:
                    i = self._home(self._calls[old[k]].hash)
                    while self._ctab[i] >= 0:
                        i = (i + 1) & self._ctab_mask
                    self._ctab[i] = old[k]
            free(old)
        i = self._home(self._calls[c].hash)
        while self._ctab[i] >= 0:
            i = (i + 1) & self._ctab_mask
        self._ctab[i] = c
        self._ncalls += 1
        return 0

    cdef void _ctab_delete(self, int32_t c) noexcept:
        """Remove slot c; backward-shift deletion keeps every probe chain unbroken."""
        cdef int64_t mask = self._ctab_mask
        cdef int64_t i = self._home(self._calls[c].hash), j, k
        while self._ctab[i] != c:
            i = (i + 1) & mask
        j = i
        while True:
            j = (j + 1) & mask
            if self._ctab[j] < 0:
                break
            k = self._home(self._calls[self._ctab[j]].hash)
            # entry j may move to the hole at i unless its home k lies cyclically in (i, j]
            if (i <= j and i < k <= j) or (i > j and (k > i or k <= j)):
                continue
            self._ctab[i] = self._ctab[j]
            i = j
        self._ctab[i] = -1
        self._ncalls -= 1

    cdef void _free_call(self, int32_t c) except *:
        cdef CallRec* cr = &self._calls[c]
        if cr.virtual and cr.state != C_CONNECTED:
            self._queues[cr.queue].cb_pending -= 1
        if self._call_timer_pos[c] >= 0:
            _heap_remove(&self._call_timers, self._call_timer_pos[c], self._call_timer_pos)
        self._ctab_delete(c)
        Py_DECREF(<object>cr.key)
        cr.key = NULL
        cr.state = C_FREE
        self._call_free[self._call_nfree] = c
        self._call_nfree += 1

    cdef int32_t _new_agent_slot(self, object ident) except -1:
        cdef int32_t a, new_cap
        if self._agent_nfree > 0:
            self._agent_nfree -= 1
            a = self._agent_free[self._agent_nfree]
            self._agent_ids[a] = ident
            self._agent_reasons[a] = ""
        else:
            if self._agents_used == self._agents_cap:
                new_cap = 64 if self._agents_cap == 0 else self._agents_cap * 2
                self._agents = <AgentRec*>_grow(self._agents, new_cap * sizeof(AgentRec))
                self._agent_idle_pos = <int32_t*>_grow(self._agent_idle_pos, new_cap * sizeof(int32_t))
                self._agent_timer_pos = <int32_t*>_grow(self._agent_timer_pos, new_cap * sizeof(int32_t))
                self._agent_free = <int32_t*>_grow(self._agent_free, new_cap * sizeof(int32_t))
                self._pref = <Heap*>_grow(self._pref, new_cap * sizeof(Heap))
                memset(self._pref + self._agents_cap, 0, (new_cap - self._agents_cap) * sizeof(Heap))
                self._agents_cap = new_cap
            a = self._agents_used
            self._agents_used += 1
            self._agent_ids.append(ident)
            self._agent_reasons.append("")
        memset(&self._agents[a], 0, sizeof(AgentRec))
        self._agent_idle_pos[a] = -1
        self._agent_timer_pos[a] = -1
        return a

    # ------------------------------------------------------------ bucket bookkeeping

    cdef int _bucket_touch(self, int32_t b) except -1:
        """The head of bucket b changed: refresh its entry in the deadline heap."""
        cdef Bucket* bk = &self._buckets[b]
        cdef int32_t i = self._bucket_dl_pos[b]
        if bk.heap.n == 0 or not isfinite(bk.offset):
            if i >= 0:
                _heap_remove(&self._deadlines, i, self._bucket_dl_pos)
            return 0
        cdef double t = bk.heap.a[0].t + bk.offset
        if i >= 0:
            _heap_update(&self._deadlines, i, t, bk.heap.a[0].seq, self._bucket_dl_pos)
        else:
            _heap_push(&self._deadlines, t, bk.heap.a[0].seq, b, self._bucket_dl_pos)
        return 0

    cdef int _bucket_insert(self, int32_t c) except -1:
        cdef CallRec* cr = &self._calls[c]
        cdef int32_t b = cr.bucket
        cdef Bucket* bk = &self._buckets[b]
        _heap_push(&bk.heap, cr.entry, cr.seq, c, self._call_pos)
        if bk.heap.n == 1:
            _bit_set(self._nonempty, b)
        if self._call_pos[c] == 0:
            self._bucket_touch(b)
        if cr.virtual:
            cr.state = C_CB_PENDING
        else:
            cr.state = C_WAITING
            self._queues[cr.queue].waiting += 1
            self._waiting += 1
        return 0

    cdef int _bucket_take(self, int32_t c) except -1:
        """Remove call c (in line) from its bucket."""
        cdef CallRec* cr = &self._calls[c]
        cdef int32_t b = cr.bucket
        cdef Bucket* bk = &self._buckets[b]
        cdef int32_t i = self._call_pos[c]
        _heap_remove(&bk.heap, i, self._call_pos)
        if bk.heap.n == 0:
            _bit_clear(self._nonempty, b)
            if bk.heap.cap > 4096:  # give memory back after a peak
                _heap_free(&bk.heap)
        if i == 0:
            self._bucket_touch(b)
        if not cr.virtual:
            self._queues[cr.queue].waiting -= 1
            self._waiting -= 1
            if self._queues[cr.queue].waiting == 0 and self._tick_pos[cr.queue] >= 0:
                # nobody left to announce to: the tick leaves the heap (tick_next is kept)
                _heap_remove(&self._ticks, self._tick_pos[cr.queue], self._tick_pos)
        return 0

    # ------------------------------------------------------------ agent bookkeeping

    cdef int _set_state(self, int32_t a, int8_t state, double now) except -1:
        cdef AgentRec* ar = &self._agents[a]
        cdef int32_t i
        cdef bint was_staffed = ar.state != A_OUT and ar.state != A_PAUSED
        cdef bint staffed = state != A_OUT and state != A_PAUSED
        if ar.state == A_RESERVED or ar.state == A_BUSY or ar.state == A_WRAP:
            ar.busy_time += now - ar.since
        i = self._agent_idle_pos[a]
        if i >= 0:
            _heap_remove(&self._groups[ar.group], i, self._agent_idle_pos)
            if self._groups[ar.group].n == 0:
                _bit_clear(self._idle_groups, ar.group)
        i = self._agent_timer_pos[a]
        if i >= 0:
            _heap_remove(&self._timers, i, self._agent_timer_pos)
        if ar.state == A_PAUSED:
            self._agent_reasons[a] = ""   # only a pause carries a reason
        if staffed != was_staffed:
            self._group_staffed[ar.group] += 1 if staffed else -1
            if not staffed and self._n_leave > 0 and self._group_staffed[ar.group] == 0:
                self._dropped.append(ar.group)   # leave_when_no_agents: see _leave_check
        ar.state = state
        ar.since = now
        return 0

    cdef inline double _idle_key(self, AgentRec* ar, double now) noexcept:
        cdef double logged
        if self._strategy == S_LEAST_OCCUPIED:
            logged = now - ar.login
            return ar.busy_time / logged if logged > 0 else 0.0
        if self._strategy == S_ROUND_ROBIN:
            return <double>ar.last_offered
        if self._strategy == S_FEWEST_CALLS:
            return <double>ar.answered
        if self._strategy == S_RANDOM:
            return (_splitmix(&self._rng) >> 11) * (1.0 / 9007199254740992.0)
        return now

    cdef inline int _eff_priority(self, int32_t q, double entry, int32_t prio, double now) noexcept:
        cdef double ageing = self._queues[q].ageing
        cdef double steps
        if ageing <= 0:
            return prio
        steps = floor((now - entry) / ageing)
        if steps >= 9:
            return 9
        return min(9, prio + <int>steps)

    cdef int _assign(self, int32_t c, int32_t a, double now) except -1:
        cdef CallRec* cr = &self._calls[c]
        cdef AgentRec* ar = &self._agents[a]
        cdef QueueRec* qr = &self._queues[cr.queue]
        cdef Assign d
        cdef DialBack db
        self._set_state(a, A_RESERVED, now)
        self._offers += 1
        ar.last_offered = self._offers
        ar.call = c
        cr.agent = a
        cr.bucket = -1
        qr.les = now - cr.entry
        if cr.virtual:
            cr.state = C_DIALING
            cr.attempts += 1
            qr.cb[CB_DIALLED] += 1
            db = DialBack.__new__(DialBack)
            db.call = self._call_id(c)
            db.agent = self._agent_ids[a]
            db.queue = self._queue_names[cr.queue]
            db.attempt = cr.attempts
            self._pending.append(db)
        else:
            cr.state = C_OFFERED
            d = Assign.__new__(Assign)
            d.call = self._call_id(c)
            d.agent = self._agent_ids[a]
            d.queue = self._queue_names[cr.queue]
            d.wait = now - cr.arrival
            self._pending.append(d)
        return 0

    cdef int _dispatch_call(self, int32_t c, double now) except -1:
        """Call c in line (bucket set, not in the heap): best idle eligible agent, or wait."""
        cdef CallRec* cr = &self._calls[c]
        cdef int32_t b = cr.bucket, w, g, best_g = -1, score, best_score = -1, k
        cdef uint64_t m
        cdef uint64_t* row = self._b2g + b * self._words_g
        cdef Bucket* bk = &self._buckets[b]
        cdef Entry* head
        cdef Entry* best = NULL
        cdef uint8_t* lv
        for w in range(self._words_g):
            m = row[w] & self._idle_groups[w]
            while m:
                g = (w << 6) + __builtin_ctzll(m)
                m &= m - 1
                head = &self._groups[g].a[0]
                if self._strategy == S_HIGHEST_LEVEL:
                    lv = self._levels + g * self._level_stride
                    score = 0
                    for k in range(bk.req_len):
                        score += lv[self._req_skills[bk.req_off + k]]
                    if best == NULL or score > best_score or (score == best_score and _less(head, best)):
                        best, best_g, best_score = head, g, score
                elif best == NULL or _less(head, best):
                    best, best_g = head, g
        if best == NULL:
            self._bucket_insert(c)
            if not cr.virtual and self._queues[cr.queue].waiting == 1 and self._queues[cr.queue].announce_every > 0:
                self._arm_tick(cr.queue, now)   # the first live caller in line: announcements resume
            return 0
        self._assign(c, best.idx, now)   # _set_state pops the agent from its group heap
        return 0

    cdef inline double _theta(self, QueueRec* qr, int32_t prio) noexcept:
        """Abandonment rate of a class (prio >= 0) or of the queue (prio < 0), with the prior."""
        cdef int64_t ab = 0
        cdef double ex = 0.0
        cdef int p
        if prio >= 0:
            return (qr.ab[prio] + 1) / (qr.exposure[prio] + qr.prior_patience)
        for p in range(NPRIO):
            ab += qr.ab[p]
            ex += qr.exposure[p]
        return (ab + 1) / (ex + qr.prior_patience)

    cdef inline double _mu(self, QueueRec* qr) noexcept:
        return (qr.n_talk + 1) / (qr.talk_sum + qr.prior_aht)

    cdef int _make_available(self, int32_t a, double now) except -1:
        """Agent a becomes free: best eligible call in line, or it idles in its group;
        a pause or log-out it asked for during its call is carried out instead."""
        cdef AgentRec* ar = &self._agents[a]
        if ar.after_call != AFTER_NONE:
            return self._carry_out_after_call(a, now)
        self._set_state(a, A_AVAILABLE, now)
        ar.call = -1
        ar.key = self._idle_key(ar, now)
        cdef int32_t c
        if self._pref[a].n > 0:
            # a call waiting for this agent comes before the general line, first come first served
            c = self._take_preferred(a)
            if c >= 0:
                self._unhold(c)
                self._assign(c, a, now)
                return 0
        c = self._best_call(a, now)
        if c < 0:
            _heap_push(&self._groups[ar.group], ar.key, ar.seq, a, self._agent_idle_pos)
            _bit_set(self._idle_groups, ar.group)
            return 0
        self._bucket_take(c)
        self._assign(c, a, now)
        return 0

    cdef int32_t _best_call(self, int32_t a, double now) noexcept:
        """The call in line that available agent a takes (by the call choice), or -1."""
        cdef int32_t g = self._agents[a].group, w, b, p, best_p = -1
        cdef uint64_t m
        cdef uint64_t* row = self._g2b + g * self._words_b
        cdef Entry* head
        cdef Entry* best = NULL
        cdef Bucket* bk
        cdef CallRec* hc
        cdef QueueRec* qr
        cdef double v = 0.0, best_v = 0.0
        cdef bint better
        for w in range(self._words_b):
            m = row[w] & self._nonempty[w]
            while m:
                b = (w << 6) + __builtin_ctzll(m)
                m &= m - 1
                bk = &self._buckets[b]
                head = &bk.heap.a[0]
                hc = &self._calls[head.idx]
                p = self._eff_priority(bk.queue, hc.entry, bk.priority, now)
                if self._choice == CC_PRIORITY_FIFO:
                    better = best == NULL or p > best_p or (p == best_p and _less(head, best))
                elif self._choice == CC_SERVICE_LEVEL:
                    # within a priority: the call furthest into its queue's service-level target
                    v = (now - hc.entry) / self._queues[bk.queue].sl_seconds
                    better = best == NULL or p > best_p or (p == best_p and (
                        v > best_v or (v == best_v and head.seq < best.seq)))
                else:
                    # c*mu/theta index of the class (queue, priority), then FIFO
                    qr = &self._queues[bk.queue]
                    v = qr.cost * (p + 1) * self._mu(qr) / self._theta(qr, hc.priority)
                    better = best == NULL or v > best_v or (v == best_v and _less(head, best))
                if better:
                    best, best_p, best_v = head, p, v
        return -1 if best == NULL else best.idx

    cdef int _set_timer(self, int32_t a, double t) except -1:
        _heap_push(&self._timers, t, self._agents[a].seq, a, self._agent_timer_pos)
        return 0

    cdef int _set_call_timer(self, int32_t c, double t) except -1:
        _heap_push(&self._call_timers, t, self._calls[c].seq, c, self._call_timer_pos)
        return 0

    # ------------------------------------------------------------ patience and estimates

    cdef int _observe(self, int32_t c, double now, bint abandoned) except -1:
        """A wait in queue ends: an abandonment, or a censored patience observation."""
        cdef CallRec* cr = &self._calls[c]
        if cr.virtual:
            return 0
        cdef QueueRec* qr = &self._queues[cr.queue]
        cdef double w = now - cr.entry
        cdef int32_t i
        if abandoned:
            qr.ab[cr.priority] += 1
        qr.exposure[cr.priority] += w
        qr.obs[cr.priority] += 1
        if self.patience_window > 0:
            i = (qr.ring_head + qr.ring_n) % self.patience_window
            qr.ring_w[i] = w
            qr.ring_a[i] = abandoned
            if qr.ring_n < self.patience_window:
                qr.ring_n += 1
            else:
                qr.ring_head = (qr.ring_head + 1) % self.patience_window
        return 0

    cdef int32_t _staffed_eligible(self, int32_t b) noexcept:
        cdef int32_t w, g, s = 0
        cdef uint64_t m
        cdef uint64_t* row = self._b2g + b * self._words_g
        for w in range(self._words_g):
            m = row[w]
            while m:
                g = (w << 6) + __builtin_ctzll(m)
                m &= m - 1
                s += self._group_staffed[g]
        return s

    cdef int64_t _ahead_of_new(self, int32_t q, int32_t prio, double now, int32_t exclude) noexcept:
        """Callers in line in queue q whose (aged) priority is at least prio, excluding call slot `exclude`."""
        cdef int64_t k = 0
        cdef int32_t b, i
        cdef Bucket* bk
        cdef bint ageing = self._queues[q].ageing > 0
        for b in range(self._nbuckets):
            bk = &self._buckets[b]
            if bk.queue != q or bk.heap.n == 0:
                continue
            if not ageing:
                if bk.priority >= prio:
                    k += bk.heap.n
            else:
                for i in range(bk.heap.n):
                    if self._eff_priority(q, bk.heap.a[i].t, bk.priority, now) >= prio:
                        k += 1
            if exclude >= 0 and self._calls[exclude].bucket == b and \
                    self._eff_priority(q, self._calls[exclude].entry, bk.priority, now) >= prio:
                k -= 1
        return k

    cdef double _hol(self, int32_t q, double now) noexcept:
        cdef double hol = 0.0
        cdef int32_t b
        cdef Bucket* bk
        for b in range(self._nbuckets):
            bk = &self._buckets[b]
            if bk.queue == q and bk.heap.n > 0 and now - bk.heap.a[0].t > hol:
                hol = now - bk.heap.a[0].t
        return hol

    cdef object _estimate(self, int32_t q, int64_t k, int32_t b, double now):
        cdef QueueRec* qr = &self._queues[q]
        cdef int32_t s = self._staffed_eligible(b)
        cdef double mu = self._mu(qr), theta = self._theta(qr, -1)
        cdef double ewt = _ql_sum(s * mu, theta, k) if s > 0 else INFINITY
        return _WaitEstimate(ewt, k + 1, s, mu, theta, self._hol(q, now), qr.les)

    def estimate_wait(self, queue, priority=None, requirements=None):
        """Predicted wait (:class:`acd.ewt.WaitEstimate`) for a caller who would join ``queue`` now."""
        cdef int32_t q = self._queue_slot(queue), prio, extra = 0
        prio = self._queue_policies[q].priority if priority is None else _check_priority(priority)
        extra = self._req_id(_call_requirements(requirements, self._skills))
        cdef int32_t b = self._bucket_for(q, 0, prio, extra, 0)
        return self._estimate(q, self._ahead_of_new(q, prio, self._now, -1), b, self._now)

    def call_wait(self, call):
        """Predicted remaining wait of a call in line (its place counted in priority-then-FIFO order)."""
        cdef int32_t c = self._call_slot(call)
        cdef CallRec* cr = &self._calls[c]
        if cr.state != C_WAITING and cr.state != C_CB_PENDING:
            raise _errors.bad_state("call", call, _CALL_STATE_NAMES[cr.state], "estimate the wait of")
        cdef double now = self._now
        cdef int32_t q = cr.queue, b, i, p
        cdef int pc = self._eff_priority(q, cr.entry, cr.priority, now)
        cdef int64_t k = 0
        cdef Bucket* bk
        cdef Entry* e
        for b in range(self._nbuckets):
            bk = &self._buckets[b]
            if bk.queue != q:
                continue
            for i in range(bk.heap.n):
                e = &bk.heap.a[i]
                p = self._eff_priority(q, e.t, bk.priority, now)
                if p > pc or (p == pc and (e.t < cr.entry or (e.t == cr.entry and e.seq < cr.seq))):
                    k += 1
        return self._estimate(q, k, cr.bucket, now)

    def patience(self, queue, priority=None):
        """Patience estimate (:class:`acd.patience.PatienceEstimate`) of a queue, or of one priority class."""
        cdef QueueRec* qr = &self._queues[self._queue_slot(queue)]
        cdef int64_t ab = 0, ob = 0
        cdef double ex = 0.0
        cdef int p
        if priority is None:
            for p in range(NPRIO):
                ab += qr.ab[p]
                ob += qr.obs[p]
                ex += qr.exposure[p]
        else:
            p = _check_priority(priority)
            ab, ob, ex = qr.ab[p], qr.obs[p], qr.exposure[p]
        return _exponential_mle(ab, ob, ex, qr.prior_patience)

    def patience_samples(self, queue):
        """The recent (wait, abandoned) pairs of a queue, oldest first (for Kaplan–Meier)."""
        cdef QueueRec* qr = &self._queues[self._queue_slot(queue)]
        cdef int32_t i, j
        out = []
        for i in range(qr.ring_n):
            j = (qr.ring_head + i) % self.patience_window
            out.append((qr.ring_w[j], qr.ring_a[j] != 0))
        return out

    cdef int _on_join(self, int32_t c, double now) except -1:
        """A caller joined and waits: announce its place, offer a call-back if the wait is long."""
        cdef CallRec* cr = &self._calls[c]
        cdef QueueRec* qr = &self._queues[cr.queue]
        cdef Announce an
        cdef OfferCallback oc
        if not (qr.announce_on_join or qr.cb_threshold >= 0 or qr.cb_risk >= 0 or qr.wait_rule != W_NONE):
            return 0
        # a held call is not in its bucket's heap: nothing of it to exclude from the count
        est = self._estimate(cr.queue, self._ahead_of_new(cr.queue, cr.priority, now, -1 if cr.held else c),
                             cr.bucket, now)
        cdef double ewt = est.ewt
        if qr.announce_on_join:
            an = Announce.__new__(Announce)
            an.call = self._call_id(c)
            an.queue = self._queue_names[cr.queue]
            an.position = est.position
            an.ewt = ewt
            self._pending.append(an)
        if (qr.cb_threshold >= 0 and ewt > qr.cb_threshold) or \
                (qr.cb_risk >= 0 and _abandon_probability(est.abandon_rate, ewt) > qr.cb_risk) or \
                (qr.wait_rule == W_OFFER and ewt > qr.wait_over):
            qr.cb[CB_OFFERED] += 1
            oc = OfferCallback.__new__(OfferCallback)
            oc.call = self._call_id(c)
            oc.queue = self._queue_names[cr.queue]
            oc.ewt = ewt
            self._pending.append(oc)
        return 0

    # ------------------------------------------------------------ queue-state rules

    cdef int _join(self, int32_t c, double t, tuple preferred, double hold) except -1:
        """Live call c (not in line) joins its queue: the admission rules (max_length,
        join_when_no_agents, if_wait_over), then the line; an overflow at join starts over there."""
        cdef CallRec* cr = &self._calls[c]
        cdef QueueRec* qr
        cdef int32_t q
        while True:
            q = cr.queue
            qr = &self._queues[q]
            cr.bucket = self._bucket_for(q, 0, cr.priority, cr.extra, 0)
            qr.entered += 1
            if qr.admission:
                if qr.max_length >= 0 and qr.waiting + qr.held >= qr.max_length:
                    return self._refuse(c, "full")
                if qr.join_rule != J_ACCEPT and self._staffed_eligible(cr.bucket) == 0:
                    if qr.join_rule == J_REFUSE:
                        return self._refuse(c, "no_agents")
                    self._overflow_at_join(c, qr.join_target, t)
                    continue
            if preferred:    # preferred agents, in the queue the call finally joins
                self._place(c, preferred, hold, t)
            else:
                self._dispatch_call(c, t)
            if cr.state != C_WAITING:
                return 0
            if qr.wait_rule >= W_EXIT:
                est = self._estimate(q, self._ahead_of_new(q, cr.priority, t, -1 if cr.held else c),
                                     cr.bucket, t)
                if est.ewt > qr.wait_over:
                    if cr.held:
                        self._unhold(c)
                    else:
                        self._bucket_take(c)
                    if qr.wait_rule == W_EXIT:
                        return self._refuse(c, "wait_too_long")
                    self._overflow_at_join(c, qr.wait_target, t)
                    continue
            self._on_join(c, t)
            return 0

    cdef int _refuse(self, int32_t c, str reason) except -1:
        """Joining call c (not in line) is turned away: counted entered and refused, no patience observation."""
        cdef CallRec* cr = &self._calls[c]
        cdef Exit ex = Exit.__new__(Exit)
        self._queues[cr.queue].refused += 1
        ex.call = self._call_id(c)
        ex.queue = self._queue_names[cr.queue]
        ex.reason = reason
        cr.bucket = -1
        self._free_call(c)
        self._pending.append(ex)
        return 0

    cdef int _overflow_at_join(self, int32_t c, int32_t target, double t) except -1:
        cdef CallRec* cr = &self._calls[c]
        cdef Overflow ov = Overflow.__new__(Overflow)
        self._queues[cr.queue].overflowed += 1
        ov.call = self._call_id(c)
        ov.from_queue = self._queue_names[cr.queue]
        ov.to_queue = self._queue_names[target]
        cr.queue = target
        cr.entry = t
        cr.step = 0
        cr.bucket = -1
        self._pending.append(ov)
        return 0

    cdef int _leave_check(self, double t) except -1:
        """leave_when_no_agents: groups whose staffed count fell to 0; the live callers of the buckets
        they were eligible for, in a queue with the rule, whose bucket has no staffed agent left, leave
        (Exit "no_agents", enqueue order).  Only the buckets of those groups are looked at."""
        cdef list dropped = self._dropped
        self._dropped = []
        cdef int32_t g, w, b, i, c
        cdef uint64_t m
        cdef uint64_t* row
        cdef Bucket* bk
        cdef CallRec* cr
        cdef Exit ex
        leaving = []
        seen = set()
        for gobj in dropped:
            g = gobj
            if self._group_staffed[g] != 0:
                continue
            row = self._g2b + g * self._words_b
            for w in range(self._words_b):
                m = row[w] & self._nonempty[w]
                while m:
                    b = (w << 6) + __builtin_ctzll(m)
                    m &= m - 1
                    bk = &self._buckets[b]
                    if bk.virtual or not self._queues[bk.queue].leave_empty or b in seen:
                        continue
                    seen.add(b)
                    if self._staffed_eligible(b) != 0:
                        continue
                    for i in range(bk.heap.n):
                        leaving.append((bk.heap.a[i].seq, bk.heap.a[i].idx))
        leaving.sort()
        for item in leaving:
            c = item[1]
            cr = &self._calls[c]
            self._bucket_take(c)
            self._observe(c, t, False)
            self._queues[cr.queue].exited += 1
            ex = Exit.__new__(Exit)
            ex.call = self._call_id(c)
            ex.queue = self._queue_names[cr.queue]
            ex.reason = "no_agents"
            cr.bucket = -1
            self._free_call(c)
            self._pending.append(ex)
        return 0

    cdef int _tick(self, int32_t q, double t) except -1:
        """Periodic announcement: every live caller of queue q hears its place and wait."""
        cdef int32_t b, i, c
        cdef Bucket* bk
        cdef CallRec* cr
        cdef QueueRec* qr = &self._queues[q]
        cdef Announce an
        cdef double mu = self._mu(qr), theta = self._theta(qr, -1), a
        line = []
        for b in range(self._nbuckets):
            bk = &self._buckets[b]
            if bk.queue != q:
                continue
            for i in range(bk.heap.n):
                c = bk.heap.a[i].idx
                cr = &self._calls[c]
                line.append((-self._eff_priority(q, cr.entry, cr.priority, t), cr.entry, cr.seq, c))
        line.sort()
        staffed = {}
        for k, item in enumerate(line):
            c = item[3]
            cr = &self._calls[c]
            if cr.virtual:
                continue
            s = staffed.get(cr.bucket)
            if s is None:
                s = staffed[cr.bucket] = self._staffed_eligible(cr.bucket)
            an = Announce.__new__(Announce)
            an.call = self._call_id(c)
            an.queue = self._queue_names[q]
            an.position = k + 1
            a = <int32_t>s * mu
            an.ewt = _ql_sum(a, theta, k) if <int32_t>s > 0 else INFINITY
            self._pending.append(an)
        qr.tick_next = _next_tick(qr.tick_t0, qr.announce_every, t, False)
        _heap_update(&self._ticks, self._tick_pos[q], qr.tick_next, q, self._tick_pos)
        return 0

    cdef int _arm_tick(self, int32_t q, double t) except -1:
        """A live caller waits in idle queue q at t: its tick goes on the heap.  The grid point kept
        may have gone by while nobody waited: then the first one after t (at t itself while the
        deadlines at t run, since ticks come after them)."""
        cdef QueueRec* qr = &self._queues[q]
        if qr.tick_next < t or (qr.tick_next == t and not self._due):
            qr.tick_next = _next_tick(qr.tick_t0, qr.announce_every, t, self._due)
        _heap_push(&self._ticks, qr.tick_next, q, q, self._tick_pos)
        return 0

    # ------------------------------------------------------------ time

    cdef bint _apply_deadline(self, int32_t c, double t) except -1:
        """Apply the next time event of call c in line (out of its bucket); False if it left."""
        cdef CallRec* cr = &self._calls[c]
        cdef Bucket* bk = &self._buckets[cr.bucket]
        cdef int32_t q = cr.queue, target, prio
        cdef QueueRec* qr = &self._queues[q]
        cdef Exit ex
        cdef Overflow ov
        if bk.exit_next:
            self._observe(c, t, False)
            qr.exited += 1
            ex = Exit.__new__(Exit)
            ex.call = self._call_id(c)
            ex.queue = self._queue_names[q]
            ex.reason = "max_wait"
            cr.bucket = -1
            self._free_call(c)
            self._pending.append(ex)
            return False
        target = self._step_overflow[qr.step_base + cr.step + 1]
        if target >= 0:
            self._observe(c, t, False)
            qr.overflowed += 1
            prio = min(9, cr.priority + self._step_boost[qr.step_base + cr.step + 1])
            if cr.virtual:
                qr.cb_pending -= 1
                self._queues[target].cb_pending += 1
            cr.queue = target
            cr.entry = t
            cr.step = 0
            cr.priority = <int8_t>prio
            self._queues[target].entered += 1
            ov = Overflow.__new__(Overflow)
            ov.call = self._call_id(c)
            ov.from_queue = self._queue_names[q]
            ov.to_queue = self._queue_names[target]
            self._pending.append(ov)
        else:
            cr.step += 1
        cr.bucket = self._bucket_for(cr.queue, cr.step, cr.priority, cr.extra, cr.virtual)
        return True

    cdef int _run_due(self, double now) except -1:
        """Process every timed event up to now, in (time, kind, seq) order; kinds: agent timers,
        call deadlines, call timers (call-back retries and slots), announcement ticks."""
        cdef Heap* heaps[4]
        heaps[0] = &self._timers
        heaps[1] = &self._deadlines
        heaps[2] = &self._call_timers
        heaps[3] = &self._ticks
        self._due = True
        try:
            self._run_events(heaps, now)
        finally:
            self._due = False
        self._now = now
        return 0

    cdef int _run_events(self, Heap** heaps, double now) except -1:
        cdef Entry* e
        cdef Entry* best
        cdef int kind, best_kind
        cdef int32_t c
        cdef double t
        while True:
            best = NULL
            best_kind = -1
            for kind in range(4):
                if heaps[kind].n > 0:
                    e = &heaps[kind].a[0]
                    if e.t <= now and (best == NULL or e.t < best.t or (e.t == best.t and kind < best_kind)):
                        best, best_kind = e, kind
            if best == NULL:
                break
            t = best.t
            self._now = t
            if best_kind == 0:
                self._make_available(best.idx, t)   # removes the timer
            elif best_kind == 1:
                c = self._buckets[best.idx].heap.a[0].idx
                self._bucket_take(c)
                if self._apply_deadline(c, t):
                    self._dispatch_call(c, t)
            elif best_kind == 2:
                c = best.idx
                _heap_remove(&self._call_timers, 0, self._call_timer_pos)
                if self._calls[c].state == C_SCHEDULED:
                    self._enter_scheduled(c, t)
                elif self._calls[c].held:   # the hold for its preferred agents is over: the general line
                    self._unhold(c)
                    self._dispatch_call(c, t)
                else:
                    self._requeue(c, t)
            else:
                self._tick(best.idx, t)
            if len(self._dropped) != 0:
                self._leave_check(t)
        return 0

    cdef inline double _begin(self, object now) except? -1.0:
        cdef double t
        if type(now) is float:
            t = <double>now
            if not isfinite(t) or t > MAX_TIME:
                raise _errors.bad_now(now, MAX_TIME)
            if t < self._now:
                raise _errors.time_backwards(t, self._now)
        else:
            t = _check_now(now, self._now)
        self._advance_to(t)
        return t

    cdef inline int _advance_to(self, double t) except -1:
        """Run what fell due up to ``t`` (checked: finite, not before now) and move the clock there."""
        if (self._timers.n > 0 and self._timers.a[0].t <= t) or \
                (self._deadlines.n > 0 and self._deadlines.a[0].t <= t) or \
                (self._call_timers.n > 0 and self._call_timers.a[0].t <= t) or \
                (self._ticks.n > 0 and self._ticks.a[0].t <= t):
            self._run_due(t)
        self._now = t
        return 0

    cdef inline double _next_deadline(self) noexcept:
        cdef double t = INFINITY
        if self._timers.n > 0:
            t = self._timers.a[0].t
        if self._deadlines.n > 0 and self._deadlines.a[0].t < t:
            t = self._deadlines.a[0].t
        if self._call_timers.n > 0 and self._call_timers.a[0].t < t:
            t = self._call_timers.a[0].t
        if self._ticks.n > 0 and self._ticks.a[0].t < t:
            t = self._ticks.a[0].t
        return t

    cdef inline list _finish(self):
        if len(self._dropped) != 0:
            self._leave_check(self._now)
        cdef list out = self._pending
        self._pending = []
        return out

    def next_deadline(self):
        """Earliest time at which :meth:`advance` has work to do, or None."""
        cdef double t = self._next_deadline()
        return None if t == INFINITY else t

    def advance(self, now):
        """Process every deadline up to ``now`` (step changes, overflows, exits, timers, announcements)."""
        self._begin(now)
        return self._finish()

    # ------------------------------------------------------------ agents

    cdef inline int32_t _queue_slot(self, object queue) except -1:
        try:
            slot = self._queue_ids.get(queue)
        except TypeError:
            slot = None
        if slot is None:
            raise _errors.unknown_queue(queue)
        return slot

    cdef inline int32_t _agent_slot(self, object agent) except -1:
        try:
            slot = self._agent_slots.get(agent)
        except TypeError:
            slot = None
        if slot is None:
            raise _errors.unknown_agent(agent)
        return slot

    def login(self, agent, skills, now, queues=None, paused=None):
        """Log an agent in with ``skills`` ({skill: level 1..10}); available unless ``paused`` (a reason)."""
        cdef double t = self._begin(now)
        _check_id("agent", agent)
        pairs = _agent_skills(skills, self._skills)
        qs = _agent_queues(queues, self._queue_ids)
        if paused is not None:
            _check_reason(paused)
        if agent in self._agent_slots:
            raise _errors.duplicate_agent(agent)
        cdef int32_t g = self._group_for(pairs, qs)
        cdef int32_t a = self._new_agent_slot(agent)
        self._agent_slots[agent] = a
        cdef AgentRec* ar = &self._agents[a]
        self._agent_seq += 1
        ar.seq = self._agent_seq
        ar.group = g
        ar.login = t
        ar.since = t
        ar.call = -1
        ar.state = A_OUT
        if paused is not None:
            self._set_state(a, A_PAUSED, t)
            self._agent_reasons[a] = paused
        else:
            self._make_available(a, t)
        return self._finish()

    def logout(self, agent, now):
        """Log an agent out; while it rings or talks, once that call (and its wrap-up) is over."""
        cdef double t = self._begin(now)
        cdef int32_t a = self._agent_slot(agent)
        cdef int8_t st = self._agents[a].state
        if st == A_RESERVED or st == A_BUSY:
            self._defer(a, AFTER_LOGOUT, "")
        else:
            self._logout(a, t)
        return self._finish()

    cdef int _logout(self, int32_t a, double t) except -1:
        self._clear_after_call(a)
        self._set_state(a, A_OUT, t)
        del self._agent_slots[self._agent_ids[a]]
        self._agent_ids[a] = None
        self._agent_free[self._agent_nfree] = a
        self._agent_nfree += 1
        if self._pref[a].n > 0:
            self._release_holds(a, t)
        return 0

    cdef int _defer(self, int32_t a, int8_t what, str reason) except -1:
        """Remember a pause or log-out asked while the agent rings or talks (the latest request wins)."""
        self._agents[a].after_call = what
        if what == AFTER_PAUSE:
            self._after_call_reasons[a] = reason
        else:
            self._after_call_reasons.pop(a, None)
        return 0

    cdef int _clear_after_call(self, int32_t a) except -1:
        if self._agents[a].after_call != AFTER_NONE:
            self._agents[a].after_call = AFTER_NONE
            self._after_call_reasons.pop(a, None)
        return 0

    cdef int _carry_out_after_call(self, int32_t a, double t) except -1:
        """The agent's call is over: the pause or log-out it asked for meanwhile takes effect now."""
        cdef AgentRec* ar = &self._agents[a]
        cdef int8_t what = ar.after_call
        cdef str reason = self._after_call_reasons.pop(a, "")
        ar.after_call = AFTER_NONE
        ar.call = -1
        if what == AFTER_LOGOUT:
            self._logout(a, t)
        else:
            self._set_state(a, A_PAUSED, t)
            self._agent_reasons[a] = reason
        return 0

    def ready(self, agent, now):
        """Paused or in wrap-up → available (and dispatched)."""
        cdef double t = self._begin(now)
        self._ready(agent, t)
        return self._finish()

    cdef int _ready(self, object agent, double t) except -1:
        cdef int32_t a = self._agent_slot(agent)
        cdef int8_t st = self._agents[a].state
        if (st == A_RESERVED or st == A_BUSY) and self._agents[a].after_call != AFTER_NONE:
            self._clear_after_call(a)   # ringing or talking: withdraws the pause or log-out asked for
            return 0
        if st != A_PAUSED and st != A_WRAP:
            raise _errors.bad_state("agent", agent, _AGENT_STATE_NAMES[st], "make ready")
        self._clear_after_call(a)
        self._make_available(a, t)
        return 0

    def pause(self, agent, now, reason=""):
        """Available, in wrap-up or paused → paused with ``reason``; ringing or talking → paused
        once that call (and its wrap-up) is over."""
        cdef double t = self._begin(now)
        cdef int32_t a = self._agent_slot(agent)
        _check_reason(reason)
        cdef int8_t st = self._agents[a].state
        if st == A_RESERVED or st == A_BUSY:
            self._defer(a, AFTER_PAUSE, reason)
            return self._finish()
        self._clear_after_call(a)
        self._set_state(a, A_PAUSED, t)
        self._agent_reasons[a] = reason
        return self._finish()

    def set_agent(self, agent, skills, now, queues=None):
        """Change a logged-in agent's skills and served queues (None = all) in place: its state,
        idle rank, counters and current call are kept; available, it takes a call it can now serve."""
        cdef double t = self._begin(now)
        cdef int32_t a = self._agent_slot(agent)
        pairs = _agent_skills(skills, self._skills)
        qs = _agent_queues(queues, self._queue_ids)
        cdef int32_t g = self._group_for(pairs, qs)
        cdef AgentRec* ar = &self._agents[a]
        cdef int32_t old = ar.group, i, c
        if g != old:
            i = self._agent_idle_pos[a]
            if i >= 0:   # idle: same (key, seq) in the new group's heap, so the same place in idle order
                _heap_remove(&self._groups[old], i, self._agent_idle_pos)
                if self._groups[old].n == 0:
                    _bit_clear(self._idle_groups, old)
                _heap_push(&self._groups[g], ar.key, ar.seq, a, self._agent_idle_pos)
                _bit_set(self._idle_groups, g)
            if ar.state != A_OUT and ar.state != A_PAUSED:
                self._group_staffed[old] -= 1
                self._group_staffed[g] += 1
            ar.group = g
            if self._pref[a].n > 0:
                self._release_holds(a, t)   # its calls were held for the agent it was
        if ar.state == A_AVAILABLE:
            c = self._best_call(a, t)
            if c >= 0:
                self._bucket_take(c)
                self._assign(c, a, t)
        return self._finish()

    def agent_state(self, agent):
        """State name of an agent (``"logged_out"`` for any id not logged in)."""
        try:
            slot = self._agent_slots.get(agent)
        except TypeError:
            slot = None
        if slot is None:
            return "logged_out"
        return _AGENT_STATE_NAMES[self._agents[<int32_t>slot].state]

    # ------------------------------------------------------------ calls

    cdef inline int32_t _call_slot(self, object call) except -1:
        cdef int32_t c = self._call_find(call)
        if c < 0:
            raise _errors.unknown_call(call)
        return c

    cdef int32_t _new_call(self, object call, int32_t q, object priority, object requirements,
                           double t) except -1:
        """Validate and create a call record (not yet in line) in queue slot ``q`` (resolved by the caller,
        first: same checks as the oracle, same order)."""
        cdef int32_t prio, extra = 0
        if priority is None:
            prio = self._queue_policies[q].priority
        elif type(priority) is int and 0 <= priority <= 9:
            prio = priority
        else:
            raise _errors.bad_priority(priority)
        if requirements is not None:
            extra = self._req_id(_call_requirements(requirements, self._skills))
        if type(call) is not str and type(call) is not int:
            _check_id("call", call)
        elif type(call) is str and len(<str>call) == 0:
            _check_id("call", call)
        if self._call_find(call) >= 0:
            raise _errors.duplicate_call(call)
        cdef int32_t c = self._new_call_slot(call, PyObject_Hash(call))
        cdef CallRec* cr = &self._calls[c]
        self._call_seq += 1
        cr.seq = self._call_seq
        cr.entry = t
        cr.arrival = t
        cr.queue = q
        cr.bucket = -1
        cr.agent = -1
        cr.extra = extra
        cr.priority = <int8_t>prio
        return c

    def enqueue(self, call, queue, now, priority=None, requirements=None, preferred=None, preferred_for=None):
        """A call arrives in ``queue``; returns ``[Assign]`` if an agent is free, else ``[]``
        (plus ``Announce`` / ``OfferCallback`` when the queue asks for them).

        ``preferred`` (agent ids): for ``preferred_for`` seconds (default 60, never past the call's
        first routing step or maximum wait) the call is offered only to those of them who are logged
        in and eligible; then it joins the general line with its original rank."""
        cdef double t = self._begin(now)
        cdef int32_t q
        if preferred is None and preferred_for is None:
            self._enqueue(call, queue, priority, requirements, t)
        else:
            q = self._queue_slot(queue)
            pref = _check_preferred(preferred)
            hold = _check_preferred_for(preferred_for)
            self._enqueue_preferred(call, q, priority, requirements, pref, hold, t)
        return self._finish()

    cdef int _enqueue_preferred(self, object call, int32_t q, object priority, object requirements,
                                tuple preferred, double hold, double t) except -1:
        cdef int32_t c = self._new_call(call, q, priority, requirements, t)
        cdef CallRec* cr = &self._calls[c]
        if self._queues[q].admission:
            return self._join(c, t, preferred, hold)
        cr.bucket = self._bucket_for(cr.queue, 0, cr.priority, cr.extra, 0)
        self._queues[cr.queue].entered += 1
        self._place(c, preferred, hold, t)
        if cr.state == C_WAITING:
            self._on_join(c, t)
        return 0

    cdef int _place(self, int32_t c, tuple preferred, double hold, double t) except -1:
        """New call c (its bucket set, not in line): to the best free preferred agent, else held for
        them, or the general line when none of them is logged in and eligible."""
        cdef CallRec* cr = &self._calls[c]
        cdef uint64_t* row = self._b2g + cr.bucket * self._words_g
        cdef Bucket* bk = &self._buckets[cr.bucket]
        cdef list agents = []
        cdef int32_t a, best_a = -1, score = 0, best_score = -1, k
        cdef AgentRec* ar
        cdef Entry* e
        cdef Entry* best = NULL
        cdef uint8_t* lv
        for ident in preferred:
            slot = self._agent_slots.get(ident)
            if slot is not None and _bit_get(row, self._agents[<int32_t>slot].group):
                agents.append(slot)
        if not agents:
            return self._dispatch_call(c, t)
        # the best free one now (the engine's agent order), else the first of them to be free
        for slot in agents:
            a = slot
            ar = &self._agents[a]
            if ar.state != A_AVAILABLE:
                continue
            e = &self._groups[ar.group].a[self._agent_idle_pos[a]]
            if self._strategy == S_HIGHEST_LEVEL:
                lv = self._levels + ar.group * self._level_stride
                score = 0
                for k in range(bk.req_len):
                    score += lv[self._req_skills[bk.req_off + k]]
                if best == NULL or score > best_score or (score == best_score and _less(e, best)):
                    best, best_a, best_score = e, a, score
            elif best == NULL or _less(e, best):
                best, best_a = e, a
        if best != NULL:
            return self._assign(c, best_a, t)
        if bk.offset < hold:
            hold = bk.offset   # never past the first routing step: a wider step means go wider
        cr.held = 1
        cr.npref = <int8_t>len(agents)
        cr.state = C_WAITING
        self._queues[cr.queue].held += 1
        self._held += 1
        for slot in agents:
            self._pref_push(slot, c)
        self._set_call_timer(c, cr.entry + hold)
        return 0

    cdef inline bint _pref_live(self, Entry* e) noexcept:
        cdef CallRec* cr = &self._calls[e.idx]
        return cr.state == C_WAITING and cr.held and cr.seq == e.seq

    cdef int _pref_push(self, int32_t a, int32_t c) except -1:
        cdef Heap* h = &self._pref[a]
        cdef int32_t i, n = 0
        if h.n == h.cap and h.cap >= 32:
            # full of entries the agent never came back for? drop the stale ones before growing
            for i in range(h.n):
                if self._pref_live(&h.a[i]):
                    h.a[n] = h.a[i]
                    n += 1
            h.n = 0
            for i in range(n):
                h.n += 1
                _sift_up(h, i, self._pref_pos)
        _heap_push(h, self._calls[c].entry, self._calls[c].seq, c, self._pref_pos)
        return 0

    cdef int _unhold(self, int32_t c) except -1:
        """End the hold of call c (its entries in the agents' heaps go stale)."""
        cdef CallRec* cr = &self._calls[c]
        cr.held = 0
        self._queues[cr.queue].held -= 1
        self._held -= 1
        if self._call_timer_pos[c] >= 0:
            _heap_remove(&self._call_timers, self._call_timer_pos[c], self._call_timer_pos)
        return 0

    cdef int32_t _take_preferred(self, int32_t a) except -2:
        """The oldest call held for agent a, out of its heap (stale entries dropped), or -1."""
        cdef Heap* h = &self._pref[a]
        cdef int32_t c
        while h.n > 0:
            c = h.a[0].idx
            if self._pref_live(&h.a[0]):
                _heap_remove(h, 0, self._pref_pos)
                return c
            _heap_remove(h, 0, self._pref_pos)
        return -1

    cdef int _release_holds(self, int32_t a, double t) except -1:
        """Agent a logged out: a call held for it and no other logged-in agent joins the general line,
        oldest first."""
        cdef Heap* h = &self._pref[a]
        cdef int32_t i, c
        live = sorted([(h.a[i].t, h.a[i].seq, h.a[i].idx) for i in range(h.n) if self._pref_live(&h.a[i])])
        _heap_free(h)
        for _t, _seq, slot in live:
            c = slot
            self._calls[c].npref -= 1
            if self._calls[c].npref == 0:
                self._unhold(c)
                self._dispatch_call(c, t)
        return 0

    cdef int _enqueue(self, object call, object queue, object priority, object requirements, double t) except -1:
        return self._enqueue_in(call, self._queue_slot(queue), priority, requirements, t)

    cdef int _enqueue_in(self, object call, int32_t q, object priority, object requirements, double t) except -1:
        """:meth:`enqueue` with the queue already resolved to its slot (compiled drivers: the simulator)."""
        cdef int32_t c = self._new_call(call, q, priority, requirements, t)
        cdef CallRec* cr = &self._calls[c]
        cdef QueueRec* qr = &self._queues[q]
        if qr.admission:
            return self._join(c, t, (), 0.0)
        cr.bucket = self._bucket_for(q, 0, cr.priority, cr.extra, 0)
        qr.entered += 1
        self._dispatch_call(c, t)
        if cr.state == C_WAITING:
            self._on_join(c, t)
        return 0

    def schedule_callback(self, call, queue, at, now, priority=None, requirements=None):
        """A call-back booked for the time slot ``at``: the call enters ``queue``'s line then,
        with its priority raised by the queue's ``scheduled_boost``."""
        cdef double t = self._begin(now)
        self._schedule_callback(call, queue, at, priority, requirements, t)
        return self._finish()

    cdef int _schedule_callback(self, object call, object queue, object at, object priority,
                                object requirements, double t) except -1:
        cdef int32_t q = self._queue_slot(queue)   # the queue is checked before the time slot, as in the oracle
        cdef double at_t = _check_at(at, t)
        cdef int32_t c = self._new_call(call, q, priority, requirements, t)
        cdef CallRec* cr = &self._calls[c]
        cr.virtual = 1
        cr.state = C_SCHEDULED
        cdef QueueRec* qr = &self._queues[cr.queue]
        qr.cb[CB_SCHEDULED] += 1
        qr.cb_pending += 1
        if at_t <= t:
            self._enter_scheduled(c, t)
        else:
            self._set_call_timer(c, at_t)
        return 0

    cdef int _enter_scheduled(self, int32_t c, double t) except -1:
        cdef CallRec* cr = &self._calls[c]
        cdef QueueRec* qr = &self._queues[cr.queue]
        cr.entry = t
        cr.arrival = t
        cr.priority = <int8_t>min(9, cr.priority + qr.sched_boost)
        cr.bucket = self._bucket_for(cr.queue, 0, cr.priority, cr.extra, 1)
        qr.entered += 1
        self._dispatch_call(c, t)
        return 0

    def accept_callback(self, call, now):
        """The waiting caller accepted a call-back: they hang up and keep their place in line."""
        cdef double t = self._begin(now)
        self._accept_callback(call, t)
        return self._finish()

    cdef int _accept_callback(self, object call, double t) except -1:
        cdef int32_t c = self._call_slot(call)
        cdef CallRec* cr = &self._calls[c]
        if cr.state != C_WAITING:
            raise _errors.bad_state("call", call, _CALL_STATE_NAMES[cr.state], "accept a call-back for")
        self._observe(c, t, False)
        cdef bint held = cr.held
        if held:
            self._unhold(c)
        else:
            self._bucket_take(c)
        cr.virtual = 1
        cr.bucket = self._bucket_for(cr.queue, cr.step, cr.priority, cr.extra, 1)
        cdef QueueRec* qr = &self._queues[cr.queue]
        qr.cb[CB_ACCEPTED] += 1
        qr.cb_pending += 1
        if held:
            self._dispatch_call(c, t)   # the hold ends: a call-back in the general line
        else:
            self._bucket_insert(c)   # same (entry, seq): same rank
        return 0

    def answer(self, call, now):
        """The agent picked up: offered → connected."""
        cdef double t = self._begin(now)
        self._answer(call, t)
        return self._finish()

    cdef int _answer(self, object call, double t) except -1:
        cdef int32_t c = self._call_slot(call)
        cdef CallRec* cr = &self._calls[c]
        if cr.state != C_OFFERED:
            raise _errors.bad_state("call", call, _CALL_STATE_NAMES[cr.state], "answer")
        self._connect(c, t)
        self._observe(c, t, False)
        return 0

    cdef int _connect(self, int32_t c, double t) except -1:
        cdef CallRec* cr = &self._calls[c]
        cr.state = C_CONNECTED
        cr.arrival = t   # once answered, `arrival` holds the answer time (for handle-time estimates)
        self._set_state(cr.agent, A_BUSY, t)
        self._agents[cr.agent].answered += 1
        self._queues[cr.queue].answered += 1
        return 0

    def callback_answered(self, call, now):
        """The dialled-back caller answered: dialing_back → connected."""
        cdef double t = self._begin(now)
        self._callback_answered(call, t)
        return self._finish()

    cdef int _callback_answered(self, object call, double t) except -1:
        cdef int32_t c = self._call_slot(call)
        cdef CallRec* cr = &self._calls[c]
        if cr.state != C_DIALING:
            raise _errors.bad_state("call", call, _CALL_STATE_NAMES[cr.state], "report an answered call-back for")
        self._connect(c, t)
        cdef QueueRec* qr = &self._queues[cr.queue]
        qr.cb[CB_REACHED] += 1
        qr.cb_pending -= 1
        return 0

    def callback_failed(self, call, now):
        """Nobody answered the dial-back (no answer, busy): retry later, or give up after the last attempt."""
        cdef double t = self._begin(now)
        self._callback_failed(call, t)
        return self._finish()

    cdef int _callback_failed(self, object call, double t) except -1:
        cdef int32_t c = self._call_slot(call)
        cdef CallRec* cr = &self._calls[c]
        if cr.state != C_DIALING:
            raise _errors.bad_state("call", call, _CALL_STATE_NAMES[cr.state], "report a failed call-back for")
        cdef int32_t a = cr.agent
        cdef QueueRec* qr = &self._queues[cr.queue]
        cdef Exit ex
        qr.cb[CB_FAILED] += 1          # every dial-back that did not connect
        if cr.attempts >= qr.cb_attempts:
            qr.cb[CB_GAVE_UP] += 1
            ex = Exit.__new__(Exit)
            ex.call = self._call_id(c)
            ex.queue = self._queue_names[cr.queue]
            ex.reason = "callback_failed"
            self._free_call(c)
            self._pending.append(ex)
        else:
            cr.state = C_CB_RETRY
            cr.agent = -1
            self._set_call_timer(c, t + qr.retry_delay)
        self._make_available(a, t)
        return 0

    cdef int _requeue(self, int32_t c, double t) except -1:
        """Back to its line at its old rank; deadlines missed while out of line apply now."""
        cdef CallRec* cr = &self._calls[c]
        cr.agent = -1
        cr.bucket = self._bucket_for(cr.queue, cr.step, cr.priority, cr.extra, cr.virtual)
        while cr.entry + self._buckets[cr.bucket].offset <= t:
            if not self._apply_deadline(c, t):
                return 0
        self._dispatch_call(c, t)
        return 0

    cdef int _after_delay(self, int32_t a, double delay, double t) except -1:
        if delay > 0:
            self._set_timer(a, t + delay)
        else:
            self._make_available(a, t)
        return 0

    cdef int32_t _release_offer(self, object call, str action) except -1:
        cdef int32_t c = self._call_slot(call)
        cdef CallRec* cr = &self._calls[c]
        if cr.state != C_OFFERED and cr.state != C_DIALING:
            raise _errors.bad_state("call", call, _CALL_STATE_NAMES[cr.state], action)
        if cr.state == C_DIALING:
            cr.attempts -= 1   # the agent failed, the caller was not dialled
            self._queues[cr.queue].cb[CB_FAILED] += 1   # ... but the dial-back attempt did not connect
        return c

    def ring_no_answer(self, call, now):
        """The agent's phone rang out: the call goes back to its line; the agent is paused."""
        cdef double t = self._begin(now)
        cdef int32_t c = self._release_offer(call, "report ring-no-answer for")
        cdef int32_t a = self._calls[c].agent
        self._agents[a].call = -1
        if self._agents[a].after_call != AFTER_NONE:
            self._carry_out_after_call(a, t)   # the pause or log-out asked for replaces the engine's own
            self._requeue(c, t)
            return self._finish()
        self._set_state(a, A_PAUSED, t)
        self._agent_reasons[a] = "ring_no_answer"
        self._requeue(c, t)
        if self._rna_ready:
            self._after_delay(a, self.no_answer_delay, t)
        return self._finish()

    def reject(self, call, now):
        """The agent declined: the call goes back to its line; the agent is free after ``reject_delay``."""
        cdef double t = self._begin(now)
        cdef int32_t c = self._release_offer(call, "reject")
        cdef int32_t a = self._calls[c].agent
        self._agents[a].call = -1
        if self._agents[a].after_call != AFTER_NONE:
            self._carry_out_after_call(a, t)   # the pause or log-out asked for replaces the engine's own
            self._requeue(c, t)
            return self._finish()
        self._set_state(a, A_PAUSED, t)
        self._agent_reasons[a] = "rejected"
        self._requeue(c, t)
        self._after_delay(a, self.reject_delay, t)
        return self._finish()

    def abandon(self, call, now):
        """The caller hung up while waiting or ringing; for a call-back not yet dialled, it is cancelled."""
        cdef double t = self._begin(now)
        self._abandon(call, t)
        return self._finish()

    cdef int _abandon(self, object call, double t) except -1:
        cdef int32_t c = self._call_slot(call)
        cdef CallRec* cr = &self._calls[c]
        cdef int8_t st = cr.state
        if st != C_WAITING and st != C_OFFERED and st != C_CB_PENDING and st != C_CB_RETRY and st != C_SCHEDULED:
            raise _errors.bad_state("call", call, _CALL_STATE_NAMES[st], "abandon")
        cdef int32_t a = cr.agent
        if cr.virtual:
            self._queues[cr.queue].cb[CB_CANCELLED] += 1
        else:
            self._queues[cr.queue].abandoned += 1
            self._observe(c, t, True)
        if cr.held:
            self._unhold(c)
        elif st == C_WAITING or st == C_CB_PENDING:
            self._bucket_take(c)
        self._free_call(c)
        if st == C_OFFERED:
            self._make_available(a, t)   # may carry out a deferred pause or log-out
            if len(self._dropped) != 0:  # here, not only in _finish: replay and the simulator skip it
                self._leave_check(t)
        return 0

    def withdraw(self, call, now):
        """The call leaves for a reason that is not the caller's choice (its session died, a supervisor
        ended it, a drain): it ends without feeding the patience estimate; a ringing agent is freed."""
        cdef double t = self._begin(now)
        self._withdraw(call, t)
        return self._finish()

    cdef int _withdraw(self, object call, double t) except -1:
        cdef int32_t c = self._call_slot(call)
        cdef CallRec* cr = &self._calls[c]
        cdef int8_t st = cr.state
        if st == C_CONNECTED:
            raise _errors.bad_state("call", call, _CALL_STATE_NAMES[st], "withdraw")
        cdef int32_t a = cr.agent
        cdef QueueRec* qr = &self._queues[cr.queue]
        if st == C_DIALING:
            qr.cb[CB_FAILED] += 1      # the attempt did not connect ...
            qr.cb[CB_CANCELLED] += 1   # ... and the call-back ends
        elif cr.virtual:
            qr.cb[CB_CANCELLED] += 1
        else:
            qr.withdrawn += 1          # no patience observation: the caller did not choose to leave
        if cr.held:
            self._unhold(c)
        elif st == C_WAITING or st == C_CB_PENDING:
            self._bucket_take(c)
        self._free_call(c)
        if st == C_OFFERED or st == C_DIALING:
            self._make_available(a, t)
        return 0

    def complete(self, call, now):
        """The conversation ended: the agent goes to wrap-up (or straight to the next call)."""
        cdef double t = self._begin(now)
        self._complete(call, t)
        return self._finish()

    cdef int _complete(self, object call, double t) except -1:
        cdef int32_t c = self._call_slot(call)
        cdef CallRec* cr = &self._calls[c]
        if cr.state != C_CONNECTED:
            raise _errors.bad_state("call", call, _CALL_STATE_NAMES[cr.state], "complete")
        cdef int32_t a = cr.agent
        cdef QueueRec* qr = &self._queues[cr.queue]
        qr.n_talk += 1
        qr.talk_sum += t - cr.arrival
        cdef double wrap = qr.wrap_up
        self._free_call(c)
        if wrap > 0:
            self._set_state(a, A_WRAP, t)
            self._agents[a].call = -1
            self._set_timer(a, t + wrap)
        else:
            self._make_available(a, t)   # may carry out a deferred pause or log-out
            if len(self._dropped) != 0:  # here, not only in _finish: replay and the simulator skip it
                self._leave_check(t)
        return 0

    def call_state(self, call):
        """State name of a live call; ended calls are unknown."""
        return _CALL_STATE_NAMES[self._calls[self._call_slot(call)].state]

    def waiting_count(self):
        """Number of callers waiting on the line for an agent (call-backs not included; callers held
        for their preferred agents included)."""
        return self._waiting + self._held

    def calls(self):
        """Every live call and its state, ``{call: state}`` (e.g. to reconcile with the PBX after a restart)."""
        cdef int64_t k
        cdef int32_t c
        out = {}
        for k in range(self._ctab_mask + 1):
            c = self._ctab[k]
            if c >= 0:
                out[self._call_id(c)] = _CALL_STATE_NAMES[self._calls[c].state]
        return out

    # ------------------------------------------------------------ bulk replay

    def replay(self, commands):
        """Apply a sequence of ``(op, *args)`` tuples (a journal, a recorded stream); return all decisions.

        ``op`` is a command name (``"enqueue"``, ``"answer"``, …) and ``args``
        its positional arguments, as for the method of that name.  The hot
        commands skip the Python method call.  On a bad command its error is
        raised; the commands before it stay applied and their decisions come
        with the next command.
        """
        cdef tuple cmd
        cdef int op
        cdef Py_ssize_t n
        cdef double t
        for cmd in commands:
            op = _OPS[cmd[0]]
            n = len(cmd)
            if op == 0 and 4 <= n <= 6:
                t = self._begin(cmd[3])
                self._enqueue(cmd[1], cmd[2], cmd[4] if n > 4 else None, cmd[5] if n > 5 else None, t)
            elif op == 1 and n == 3:
                self._answer(cmd[1], self._begin(cmd[2]))
            elif op == 2 and n == 3:
                self._complete(cmd[1], self._begin(cmd[2]))
            elif op == 3 and n == 3:
                self._abandon(cmd[1], self._begin(cmd[2]))
            elif op == 8 and n == 3:
                self._ready(cmd[1], self._begin(cmd[2]))
            elif op == 10 and n == 2:
                self._begin(cmd[1])
            else:
                self._pending.extend(getattr(self, cmd[0])(*cmd[1:]))
        return self._finish()

    # ------------------------------------------------------------ snapshot

    def snapshot(self):
        """Per queue: waiting, oldest wait (in that queue), agents by state, counters, call-backs;
        per agent: state and counters."""
        cdef double now = self._now
        cdef int32_t q, b, a, k
        cdef Bucket* bk
        cdef AgentRec* ar
        cdef QueueRec* qr
        queues = {}
        oldest = [0.0] * self._nqueues
        for b in range(self._nbuckets):
            bk = &self._buckets[b]
            if bk.heap.n > 0 and not bk.virtual and now - bk.heap.a[0].t > oldest[bk.queue]:
                oldest[bk.queue] = now - bk.heap.a[0].t
        by_state = [dict(available=0, reserved=0, busy=0, wrap_up=0, paused=0) for q in range(self._nqueues)]
        agents = {}
        for ident, slot in self._agent_slots.items():
            a = slot
            ar = &self._agents[a]
            served = self._group_profiles[ar.group][1]
            name = _AGENT_STATE_NAMES[ar.state]
            for q in range(self._nqueues):
                if served is None or self._queue_names[q] in served:
                    by_state[q][name] += 1
            busy = ar.busy_time
            if ar.state == A_RESERVED or ar.state == A_BUSY or ar.state == A_WRAP:
                busy += now - ar.since
            agents[ident] = dict(state=name, reason=self._agent_reasons[a], answered=ar.answered,
                                 busy_time=busy, logged_in=now - ar.login,
                                 call=None if ar.call < 0 else self._call_id(ar.call),
                                 after_call=_AFTER_CALL_NAMES[ar.after_call])
        for q in range(self._nqueues):
            if self._queue_names[q] is None:
                continue   # removed
            qr = &self._queues[q]
            cb = {_CB_NAMES[k]: qr.cb[k] for k in range(N_CB)}
            cb["pending"] = qr.cb_pending
            queues[self._queue_names[q]] = dict(
                waiting=qr.waiting + qr.held, held=qr.held, oldest_wait=oldest[q], agents=by_state[q],
                callbacks=cb,
                entered=qr.entered, answered=qr.answered, abandoned=qr.abandoned,
                exited=qr.exited, overflowed=qr.overflowed, withdrawn=qr.withdrawn, refused=qr.refused)
        return dict(now=now, queues=queues, agents=agents)

    def memory_bytes(self):
        """Bytes held in C arrays (calls, agents, heaps, bitsets); excludes Python dicts and ids."""
        cdef Py_ssize_t total = 0
        cdef int32_t i
        total += self._calls_cap * (sizeof(CallRec) + 3 * sizeof(int32_t))
        total += (self._ctab_mask + 1) * sizeof(int32_t)
        total += self._agents_cap * (sizeof(AgentRec) + 4 * sizeof(int32_t))
        for i in range(self._nbuckets):
            total += self._buckets[i].heap.cap * sizeof(Entry)
        for i in range(self._ngroups):
            total += self._groups[i].cap * sizeof(Entry)
        for i in range(self._agents_used):
            total += self._pref[i].cap * sizeof(Entry)
        total += self._calls_cap * sizeof(int32_t)   # _pref_pos
        total += self._buckets_cap * (sizeof(Bucket) + sizeof(int32_t) + self._words_g * 8)
        total += self._groups_cap * (sizeof(Heap) + sizeof(int32_t) + self._level_stride + self._words_b * 8)
        total += (self._timers.cap + self._deadlines.cap + self._call_timers.cap + self._ticks.cap) * sizeof(Entry)
        total += self._nqueues * (sizeof(QueueRec) + self.patience_window * (sizeof(double) + 1))
        return total
