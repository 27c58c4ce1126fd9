"""Compiled event loop of the simulator.

:func:`acd.sim.simulate` prepares every random draw and the agents' plan,
then hands them to :class:`Loop`, which plays the world outside the engine
(arrivals, ringing, talk, patience, shifts, pauses, call-backs) and calls
the engine's C methods directly (``_enqueue``, ``_answer``, ``_complete``,
``_abandon``, ``_advance_to``): no Python call, no float boxing, no list per
command on the hot path.  Rare commands (log-in, pause, call-back steps) go
through the engine's public methods.

The semantics are those of the plain-Python loop in ``_reference_loop.py``,
event for event: the tests run both on the same scenarios and compare the
records byte for byte.  Change both together.
"""

cimport cython
from libc.math cimport INFINITY
from libc.stdint cimport int8_t, int32_t, int64_t, uint8_t, uint32_t
from libc.stdlib cimport free, realloc
from cpython.object cimport PyObject
from cpython.ref cimport Py_XDECREF
from cython.view cimport array as cvarray

from acd._core cimport Assign, DialBack, Engine, Exit, Announce, OfferCallback, Overflow

from ..errors import InvalidInput

# event kinds; at equal times the lower kind runs first (arrivals, -1, come after heap events)
cdef enum:
    K_ARRIVAL = -1
    K_LOGIN = 0
    K_END = 1
    K_ANSWER = 2
    K_CB_ANSWER = 3
    K_CB_FAIL = 4
    K_ABANDON = 5
    K_RETRY = 6
    K_PAUSE = 7
    K_UNPAUSE = 8
    K_LOGOUT = 9
    K_SAMPLE = 10
    K_TRANSFER = 11

# call states (simulator side)
cdef enum:
    C_NEW = 0
    C_WAIT = 1
    C_OFFER = 2
    C_TALK = 3
    C_DONE = 4
    C_RETRY = 5

# agent states (kpi.AGENT_STATES codes)
cdef enum:
    A_OUT = -1
    A_IDLE = 0
    A_RING = 1
    A_BUSY = 2
    A_WRAP = 3
    A_PAUSE = 4

# outcomes (kpi.CALL_RECORD)
cdef enum:
    O_ANSWERED = 0
    O_ABANDONED = 1
    O_EXITED = 2
    O_CB_FAILED = 3

# pending agent actions
cdef enum:
    P_NONE = 0
    P_PAUSE = 1
    P_LOGOUT = 2


# one row of kpi.AGENT_INTERVAL (a packed numpy dtype: i4, i1, f8, f8)
ctypedef packed struct Interval:
    int32_t agent
    int8_t state
    double start
    double end


ctypedef struct Event:
    double t
    int64_t key       # kind << 32 | x: at equal times, ordered as the Python loop's (time, kind, x) tuples


cdef inline bint _before(const Event* a, const Event* b) noexcept nogil:
    return a.t < b.t or (a.t == b.t and a.key < b.key)


cdef extern from "Python.h":
    PyObject** PySequence_Fast_ITEMS(object)
    void Py_SET_SIZE(object, Py_ssize_t)


cdef inline void _empty(list ds) noexcept:
    """Empty a list but keep its storage (``del ds[:]`` frees it, and the next append allocates again)."""
    cdef Py_ssize_t i, n = len(ds)
    cdef PyObject** items = PySequence_Fast_ITEMS(ds)
    Py_SET_SIZE(ds, 0)
    for i in range(n):
        Py_XDECREF(items[i])


@cython.final
cdef class Loop:
    """One run: the prepared inputs, the simulator-side state, the engine; :meth:`run` plays it."""

    cdef Engine eng
    # calls: inputs
    cdef int32_t n                     # first legs: the arrivals, sorted
    cdef double[::1] arr               # (transfer legs: set when the transfer happens)
    cdef const double[::1] service
    cdef double[::1] abandon_at        # (transfer legs: patience, + arrival when it happens)
    cdef const int32_t[::1] transfer_leg
    cdef int32_t n_all                 # first legs and transfer legs
    cdef const double[::1] ring
    cdef const int32_t[::1] q0
    cdef const int32_t[::1] pick
    cdef const double[::1] u_accept
    cdef const double[:, ::1] u_reach
    cdef const double[:, ::1] dial
    cdef list prio_obj          # per mix entry: the priority as a Python int
    cdef list req_obj           # per mix entry: requirements dict or None
    cdef list qnames
    # calls: state and outputs
    cdef int8_t[::1] c_state
    cdef int32_t[::1] c_queue
    # (fields of the call-record array, written in place: strided)
    cdef int32_t[:] c_agent
    cdef double[:] c_ans
    cdef double[:] c_end
    cdef int8_t[:] c_out
    cdef double[:] c_wrap
    cdef uint8_t[:] c_over
    cdef uint8_t[:] c_transferred
    cdef uint8_t[:] c_vhold
    cdef uint8_t[:] c_cb_off
    cdef uint8_t[:] c_cb_dial
    cdef uint8_t[:] c_cb_reach
    cdef int32_t[::1] c_att
    # queues
    cdef int32_t nq
    cdef const double[::1] wrap_q
    cdef const double[::1] aht_q
    cdef const uint8_t[::1] cb_queue
    cdef int64_t[::1] waiting_q
    cdef int64_t[::1] cbline_q
    cdef int64_t[::1] staffed_q
    # agents
    cdef int32_t na
    cdef const int32_t[::1] a_group
    cdef list g_skills
    cdef list g_queues
    cdef list g_serves
    cdef int8_t[::1] a_state
    cdef double[::1] a_since
    cdef double[::1] a_wrap_until
    cdef int8_t[::1] a_pending
    cdef double[::1] a_pend_end
    cdef double[::1] a_pause_end
    cdef list pause_list        # (agent, end, reason)
    cdef list agent_ids         # the engine's agent ids (Python ints), by agent index
    cdef list a_key             # by agent: the engine's id object of the call it holds (found by identity)
    cdef list spare             # emptied decision lists, for the engine to reuse
    # settings
    cdef bint ring_zero
    cdef bint native
    cdef bint record_agents
    cdef int32_t n_att
    cdef double cb_accept
    cdef double cb_reach
    cdef double cb_no_answer
    cdef int32_t cb_retries
    cdef double cb_retry_delay
    cdef object offer_hook
    cdef object progress
    cdef double start
    cdef double end
    cdef double span
    cdef double sample_every
    # agent intervals (grown as needed), rows of kpi.AGENT_INTERVAL
    cdef Interval* iv
    cdef Py_ssize_t iv_n
    cdef Py_ssize_t iv_cap
    # event heap
    cdef Event* heap
    cdef Py_ssize_t hn
    cdef Py_ssize_t hcap
    # results
    cdef public int64_t events
    cdef public int64_t announcements
    cdef public int64_t in_system
    cdef public double t_last
    cdef int64_t logged
    cdef int64_t working
    cdef public list sample_t
    cdef public list sample_w
    cdef public list sample_logged
    cdef public list sample_working

    def __cinit__(self):
        self.iv = NULL
        self.heap = NULL

    def __dealloc__(self):
        free(self.iv)
        free(self.heap)

    def __init__(self, Engine eng, dict calls, dict queues, dict agents, dict settings, list events):
        self.eng = eng
        self.arr = calls["arrival"]
        self.n = calls["first_legs"]
        self.n_all = <int32_t>self.arr.shape[0]
        self.transfer_leg = calls["transfer_leg"]
        self.c_transferred = calls["transferred"]
        self.service = calls["service"]
        self.abandon_at = calls["abandon_at"]
        self.ring = calls["ring"]
        self.q0 = calls["queue"]
        self.pick = calls["mix"]
        self.u_accept = calls["u_accept"]
        self.u_reach = calls["u_reach"]
        self.dial = calls["dial"]
        self.prio_obj = calls["mix_priority"]
        self.req_obj = calls["mix_requirements"]
        self.c_state = calls["state"]
        self.c_queue = calls["queue_now"]
        self.c_agent = calls["agent"]
        self.c_ans = calls["answered"]
        self.c_end = calls["ended"]
        self.c_out = calls["outcome"]
        self.c_wrap = calls["wrap"]
        self.c_over = calls["overflowed"]
        self.c_vhold = calls["cb_accepted"]
        self.c_cb_off = calls["cb_offered"]
        self.c_cb_dial = calls["cb_dialled"]
        self.c_cb_reach = calls["cb_reached"]
        self.c_att = calls["attempts"]
        self.qnames = queues["names"]
        self.nq = len(self.qnames)
        self.wrap_q = queues["wrap"]
        self.aht_q = queues["aht"]
        self.cb_queue = queues["callback"]
        self.waiting_q = queues["waiting"]
        self.cbline_q = queues["cbline"]
        self.staffed_q = queues["staffed"]
        self.a_group = agents["group"]
        self.na = <int32_t>self.a_group.shape[0]
        self.g_skills = agents["group_skills"]
        self.g_queues = agents["group_queues"]
        self.g_serves = agents["group_serves"]
        self.a_state = agents["state"]
        self.a_since = agents["since"]
        self.a_wrap_until = agents["wrap_until"]
        self.a_pending = agents["pending"]
        self.a_pend_end = agents["pending_end"]
        self.a_pause_end = agents["pause_end"]
        self.pause_list = agents["pauses"]
        self.agent_ids = list(range(self.na))
        self.a_key = [None] * self.na
        self.ring_zero = settings["ring_zero"]
        self.native = settings["native"]
        self.record_agents = settings["record_agents"]
        self.n_att = settings["attempts"]
        self.cb_accept = settings["cb_accept"]
        self.cb_reach = settings["cb_reach"]
        self.cb_no_answer = settings["cb_no_answer"]
        self.cb_retries = settings["cb_retries"]
        self.cb_retry_delay = settings["cb_retry_delay"]
        self.offer_hook = settings["offer_hook"]
        self.progress = settings["progress"]
        self.start = settings["start"]
        self.end = settings["end"]
        self.span = settings["span"]
        self.sample_every = settings["sample_every"]
        self.spare = []
        self.sample_t = []
        self.sample_w = []
        self.sample_logged = []
        self.sample_working = []
        self.t_last = self.start
        for t, kind, x in events:
            self.push(t, kind, x)

    # ------------------------------------------------------------ event heap

    cdef int push(self, double t, int32_t kind, int32_t x) except -1:
        cdef Py_ssize_t i, p
        cdef Event e
        cdef Event* grown
        if self.hn == self.hcap:
            self.hcap = 64 if self.hcap == 0 else 2 * self.hcap
            grown = <Event*>realloc(self.heap, self.hcap * sizeof(Event))
            if grown == NULL:
                raise MemoryError()
            self.heap = grown
        e.t = t
        e.key = (<int64_t>kind << 32) | <uint32_t>x
        i = self.hn
        self.hn += 1
        while i > 0:
            p = (i - 1) >> 1
            if not _before(&e, &self.heap[p]):
                break
            self.heap[i] = self.heap[p]
            i = p
        self.heap[i] = e
        return 0

    cdef Event pop(self) noexcept:
        cdef Event top = self.heap[0]
        cdef Event last
        cdef Py_ssize_t i = 0, c, n
        self.hn -= 1
        n = self.hn
        if n > 0:
            last = self.heap[n]
            while True:
                c = 2 * i + 1
                if c >= n:
                    break
                if c + 1 < n and _before(&self.heap[c + 1], &self.heap[c]):
                    c += 1
                if not _before(&self.heap[c], &last):
                    break
                self.heap[i] = self.heap[c]
                i = c
            self.heap[i] = last
        return top

    # ------------------------------------------------------------ agent intervals

    cdef int interval(self, int32_t a, int8_t state, double start, double end) except -1:
        cdef Py_ssize_t cap
        cdef Interval* row
        if self.iv_n == self.iv_cap:
            # first guess: two or three intervals per call (idle, ringing, busy, wrap-up) and a few per
            # agent; pages that stay untouched cost nothing, and growing a large buffer may copy it
            cap = 3 * <Py_ssize_t>self.n_all + 8 * <Py_ssize_t>self.na + 4096 if self.iv_cap == 0 else 2 * self.iv_cap
            self.iv = <Interval*>_grow(self.iv, cap * sizeof(Interval))
            self.iv_cap = cap
        row = &self.iv[self.iv_n]
        row.agent = a
        row.state = state
        row.start = start
        row.end = end
        self.iv_n += 1
        return 0

    def intervals(self):
        """The recorded agent intervals, a :data:`acd.kpi.AGENT_INTERVAL` array (takes over the rows, no copy)."""
        from ..kpi import AGENT_INTERVAL
        import numpy as np
        if AGENT_INTERVAL.itemsize != sizeof(Interval):
            raise AssertionError("kpi.AGENT_INTERVAL no longer matches the loop's Interval rows")
        cdef Py_ssize_t n = self.iv_n
        if n == 0:
            return np.zeros(0, dtype=AGENT_INTERVAL)
        cdef cvarray rows = cvarray(shape=(n * sizeof(Interval),), itemsize=1, format="B", mode="c",
                                    allocate_buffer=False)
        rows.data = <char*>_grow(self.iv, n * sizeof(Interval))    # shrink to fit; the array frees it
        rows.callback_free_data = free
        self.iv = NULL
        self.iv_n = self.iv_cap = 0
        return np.frombuffer(rows, dtype=AGENT_INTERVAL)

    # ------------------------------------------------------------ engine access

    cdef inline list take(self):
        """The decisions the last engine command produced, or None; hand the list back with :meth:`done`."""
        cdef list ds = self.eng._pending
        if len(ds) == 0:
            return None
        # the engine goes on with a recycled list: no allocation (nor GC count) per decision batch
        self.eng._pending = self.spare.pop() if self.spare else []
        return ds

    cdef inline int done(self, list ds) except -1:
        _empty(ds)
        self.spare.append(ds)
        return 0

    cdef inline int act(self, double t) except -1:
        """Act on what the last engine command decided."""
        cdef list ds = self.take()
        if ds is not None:
            self.decide(ds, t)
            self.done(ds)
        return 0

    cdef inline int at(self, double t) except -1:
        if t < self.eng._now:
            raise InvalidInput(f"simulator time went backwards: {t!r} < {self.eng._now!r}")
        self.eng._advance_to(t)
        return 0

    # ------------------------------------------------------------ agents

    cdef int set_agent(self, int32_t a, int8_t new, double t) except -1:
        """Agent a changes state at t; close the previous interval (wrap-up then idle)."""
        cdef int8_t old = self.a_state[a]
        cdef double since = self.a_since[a], wu
        if old == A_WRAP:
            wu = self.a_wrap_until[a]
            if t > wu:
                if self.record_agents:
                    self.interval(a, A_WRAP, since, wu)
                self.working -= 1            # the wrap-up ended (engine timer) and the agent idled
                old = A_IDLE
                since = wu
            elif new == A_PAUSE or new == A_OUT:
                # a pause or log-out taken in wrap-up starts when the wrap-up would have ended
                t = wu
        if old != A_OUT:
            if self.record_agents and t > since:
                self.interval(a, old, since, t)
            if old == A_RING or old == A_BUSY or old == A_WRAP:
                self.working -= 1
        else:
            self.logged += 1
        if new == A_OUT:
            self.logged -= 1
        elif new == A_RING or new == A_BUSY or new == A_WRAP:
            self.working += 1
        self.a_state[a] = new
        self.a_since[a] = t
        return 0

    cdef int logout(self, int32_t a, double t) except -1:
        self.eng.logout(self.agent_ids[a], t)
        self.set_agent(a, A_OUT, t)
        for q in self.g_serves[self.a_group[a]]:
            self.staffed_q[<int32_t>q] -= 1
        return 0

    cdef int start_pause(self, int32_t a, double t, double until, str reason) except -1:
        self.eng.pause(self.agent_ids[a], t, reason)
        self.set_agent(a, A_PAUSE, t)
        self.a_pause_end[a] = until
        self.push(max(until, self.a_since[a]), K_UNPAUSE, a)
        return 0

    cdef int settle(self, int32_t a, double t) except -1:
        """The agent's call ended: the engine carries out the pause or log-out asked during it
        (at once, or when the wrap-up ends); mirror it here."""
        cdef int8_t p = self.a_pending[a], st = self.a_state[a]
        if p == P_NONE or st == A_RING or st == A_BUSY:
            return 0
        self.a_pending[a] = P_NONE
        if p == P_LOGOUT:
            if st == A_WRAP:
                self.eng.logout(self.agent_ids[a], t)   # now, not at the wrap-up's end: a next shift may log in
            self.set_agent(a, A_OUT, t)
            for q in self.g_serves[self.a_group[a]]:
                self.staffed_q[<int32_t>q] -= 1
        else:
            # from the wrap-up's end when in wrap-up (set_agent); the K_UNPAUSE queued at the
            # request ends it
            self.set_agent(a, A_PAUSE, t)
            self.a_pause_end[a] = self.a_pend_end[a]
        return 0

    # ------------------------------------------------------------ calls

    cdef int answer(self, int32_t c, double t) except -1:
        if self.c_vhold[c] and self.native:
            self.eng.callback_answered(c, t)
        else:
            self.eng._answer(self.a_key[self.c_agent[c]], t)
        self.c_state[c] = C_TALK
        self.c_ans[c] = t
        self.set_agent(self.c_agent[c], A_BUSY, t)
        self.push(t + self.service[c], K_END, c)
        return 0

    cdef int dial_back(self, int32_t c, int32_t a, double t) except -1:
        """Agent a calls the caller back: reached after the dial ring, or not."""
        cdef int32_t k = min(self.c_att[c], self.n_att - 1)
        self.c_state[c] = C_OFFER
        self.c_agent[c] = a
        self.c_cb_dial[c] = 1
        self.set_agent(a, A_RING, t)
        if self.u_reach[c, k] < self.cb_reach:
            self.push(t + self.dial[c, k], K_CB_ANSWER, c)
        else:
            self.push(t + self.cb_no_answer, K_CB_FAIL, c)
        return 0

    cdef int decide(self, list ds, double t) except -1:
        """Act on the engine's decisions, taken at time t."""
        cdef int32_t c, a, q, qf, qt
        cdef double r
        cdef object tp
        cdef list ds2
        for d in ds:
            tp = type(d)
            if tp is Assign:
                c = (<Assign>d).call
                a = (<Assign>d).agent
                self.a_key[a] = (<Assign>d).call
                if self.a_pending[a]:
                    raise RuntimeError(f"the engine offered call {c} to agent {a}, due for a pause or log-out")
                if self.c_vhold[c]:                    # simulator-side call-back: this agent dials back
                    self.cbline_q[self.c_queue[c]] -= 1
                    self.dial_back(c, a, t)
                    continue
                if self.c_state[c] == C_WAIT:
                    self.waiting_q[self.c_queue[c]] -= 1
                self.c_agent[c] = a
                if self.ring_zero:
                    # hot path: idle agent picks up at once (no ring interval to record)
                    self.eng._answer((<Assign>d).call, t)
                    self.c_state[c] = C_TALK
                    self.c_ans[c] = t
                    if self.a_state[a] == A_IDLE:
                        if self.record_agents and t > self.a_since[a]:
                            self.interval(a, A_IDLE, self.a_since[a], t)
                        self.working += 1
                        self.a_state[a] = A_BUSY
                        self.a_since[a] = t
                    else:
                        self.set_agent(a, A_BUSY, t)
                    self.push(t + self.service[c], K_END, c)
                else:
                    self.c_state[c] = C_OFFER
                    self.set_agent(a, A_RING, t)
                    r = self.ring[c]
                    if r > 0.0:
                        self.push(t + r, K_ANSWER, c)
                    else:
                        self.answer(c, t)
            elif tp is Overflow:
                c = (<Overflow>d).call
                qf = self.eng._queue_slot((<Overflow>d).from_queue)
                qt = self.eng._queue_slot((<Overflow>d).to_queue)
                if self.c_vhold[c]:
                    self.cbline_q[qf] -= 1
                    self.cbline_q[qt] += 1
                else:
                    self.waiting_q[qf] -= 1
                    self.waiting_q[qt] += 1
                self.c_queue[c] = qt
                self.c_over[c] = 1
            elif tp is Exit:
                c = (<Exit>d).call
                if self.c_vhold[c]:
                    if not self.native:
                        self.cbline_q[self.c_queue[c]] -= 1
                    self.c_out[c] = O_CB_FAILED if (<Exit>d).reason == "callback_failed" else O_EXITED
                else:
                    self.waiting_q[self.c_queue[c]] -= 1
                    self.c_out[c] = O_EXITED
                self.c_state[c] = C_DONE
                self.c_end[c] = t
                self.in_system -= 1
            elif tp is DialBack:
                c = (<DialBack>d).call
                a = (<DialBack>d).agent
                self.a_key[a] = (<DialBack>d).call
                if self.a_pending[a]:
                    raise RuntimeError(f"the engine offered call {c} to agent {a}, due for a pause or log-out")
                self.dial_back(c, a, t)
            elif tp is OfferCallback:
                c = (<OfferCallback>d).call
                q = self.c_queue[c]
                if self.c_state[c] == C_WAIT and not self.c_vhold[c] and \
                        self.offer_hook(t, (<OfferCallback>d).queue, self.waiting_q[q], self.staffed_q[q],
                                        (<OfferCallback>d).ewt):
                    self.c_cb_off[c] = 1
                    if self.u_accept[c] < self.cb_accept:
                        self.c_vhold[c] = 1
                        self.waiting_q[q] -= 1
                        ds2 = self.eng.accept_callback(c, t)
                        if ds2:
                            self.decide(ds2, t)
            elif tp is Announce:
                self.announcements += 1
            else:  # a decision this simulator does not know yet
                raise InvalidInput(f"unexpected engine decision {d!r}")
        return 0

    cdef int arrive(self, int32_t c, double t) except -1:
        """Call c (a new caller, or the transfer leg of an answered one) enters its queue at t."""
        cdef int32_t q = self.q0[c], pos, staffed
        cdef double ab, ewt
        cdef int8_t st
        self.in_system += 1
        self.waiting_q[q] += 1
        self.c_state[c] = C_WAIT
        self.at(t)
        self.eng._enqueue_in(c, q, self.prio_obj[self.pick[c]], self.req_obj[self.pick[c]], t)
        self.act(t)
        st = self.c_state[c]
        if st == C_WAIT and not self.c_vhold[c]:
            q = self.c_queue[c]
            if self.cb_queue[q]:                   # simulator-side call-back offer
                pos = <int32_t>(self.waiting_q[q] + self.cbline_q[q])
                staffed = <int32_t>self.staffed_q[q]
                ewt = pos * self.aht_q[q] / staffed if staffed > 0 else INFINITY
                if self.offer_hook(t, self.qnames[q], pos, staffed, ewt):
                    self.c_cb_off[c] = 1
                    if self.u_accept[c] < self.cb_accept:
                        self.c_vhold[c] = 1
                        self.waiting_q[q] -= 1
                        self.cbline_q[q] += 1
                        return 0
            ab = self.abandon_at[c]
            if ab != INFINITY:
                self.push(ab, K_ABANDON, c)
        elif st == C_OFFER and not self.ring_zero:
            ab = self.abandon_at[c]
            if ab != INFINITY:
                self.push(ab, K_ABANDON, c)
        return 0

    cdef int transfer(self, int32_t c, double t) except -1:
        """Call c's first conversation ended at t: its transfer leg, if it has one, enters its line."""
        cdef int32_t leg = self.transfer_leg[c]
        if leg < 0:
            return 0
        self.c_transferred[c] = 1
        self.arr[leg] = t
        self.abandon_at[leg] += t
        self.push(t, K_TRANSFER, leg)
        return 0

    # ------------------------------------------------------------ the loop

    def run(self):
        """Play every event; returns the number of events processed."""
        cdef Engine eng = self.eng
        cdef int32_t j = 0, c, a, x, kind, q, gi, pos, staffed
        cdef int8_t st
        cdef double t = self.start, th, nd, next_arr, ab, w, ewt
        cdef Event ev
        cdef list ds
        cdef Py_ssize_t k
        next_arr = self.arr[0] if self.n else INFINITY
        while True:
            th = self.heap[0].t if self.hn else INFINITY
            # engine time events (routing steps, exits, wrap-up ends) due before the next event run first,
            # each at its own time: what they decide may schedule events earlier than the next one
            nd = eng._next_deadline()
            if nd != INFINITY and nd <= th and nd <= next_arr:
                t = nd
                self.at(nd)
                self.act(nd)
                continue
            if th <= next_arr:
                if th == INFINITY:
                    break
                ev = self.pop()
                t = ev.t
                kind = <int32_t>(ev.key >> 32)
                x = <int32_t><uint32_t>ev.key
            else:
                t = next_arr
                kind = K_ARRIVAL
                x = j
                j += 1
                next_arr = self.arr[j] if j < self.n else INFINITY
            self.events += 1

            if kind == K_ARRIVAL or kind == K_TRANSFER:
                self.arrive(x, t)
            elif kind == K_END:
                c = x
                a = self.c_agent[c]
                self.at(t)
                eng._complete(self.a_key[a], t)     # its decisions wait in the engine's list until act()
                self.a_key[a] = None
                self.c_state[c] = C_DONE
                self.c_end[c] = t
                self.c_out[c] = O_ANSWERED
                self.in_system -= 1
                w = self.wrap_q[self.c_queue[c]]
                self.c_wrap[c] = w
                if w > 0.0:
                    self.set_agent(a, A_WRAP, t)
                    self.a_wrap_until[a] = t + w
                elif self.a_state[a] == A_BUSY:             # hot path: straight back to idle
                    if self.record_agents:
                        self.interval(a, A_BUSY, self.a_since[a], t)
                    self.working -= 1
                    self.a_state[a] = A_IDLE
                    self.a_since[a] = t
                else:
                    self.set_agent(a, A_IDLE, t)
                self.act(t)
                if self.a_pending[a]:
                    self.settle(a, t)
                self.transfer(c, t)
            elif kind == K_ANSWER:
                if self.c_state[x] == C_OFFER:
                    self.at(t)
                    self.answer(x, t)
            elif kind == K_ABANDON:
                c = x
                st = self.c_state[c]
                if (st == C_WAIT or st == C_OFFER) and not self.c_vhold[c]:
                    self.at(t)
                    eng._abandon(c, t)
                    self.c_state[c] = C_DONE
                    self.c_end[c] = t
                    self.c_out[c] = O_ABANDONED
                    self.in_system -= 1
                    if st == C_WAIT:
                        self.waiting_q[self.c_queue[c]] -= 1
                        self.act(t)
                    else:
                        a = self.c_agent[c]
                        self.set_agent(a, A_IDLE, t)
                        self.act(t)
                        if self.a_pending[a]:
                            self.settle(a, t)
            elif kind == K_CB_ANSWER:
                if self.c_state[x] == C_OFFER:
                    self.c_cb_reach[x] = 1
                    self.at(t)
                    self.answer(x, t)
            elif kind == K_CB_FAIL:
                c = x
                if self.c_state[c] == C_OFFER:
                    a = self.c_agent[c]
                    self.c_att[c] += 1
                    if self.native:
                        # the engine retries (or gives up with Exit "callback_failed")
                        self.c_state[c] = C_RETRY
                        self.set_agent(a, A_IDLE, t)
                        ds = eng.callback_failed(c, t)
                    else:
                        ds = eng.abandon(c, t)
                        self.set_agent(a, A_IDLE, t)
                        if self.c_att[c] <= self.cb_retries:
                            self.c_state[c] = C_RETRY
                            self.push(t + self.cb_retry_delay, K_RETRY, c)
                        else:
                            self.c_state[c] = C_DONE
                            self.c_end[c] = t
                            self.c_out[c] = O_CB_FAILED
                            self.in_system -= 1
                    if ds:
                        self.decide(ds, t)
                    if self.a_pending[a]:
                        self.settle(a, t)
            elif kind == K_RETRY:                      # simulator-side call-back: back in line
                c = x
                q = self.q0[c]
                self.c_queue[c] = q
                self.cbline_q[q] += 1
                self.c_state[c] = C_WAIT
                ds = eng.enqueue(c, self.qnames[q], t, self.prio_obj[self.pick[c]], self.req_obj[self.pick[c]])
                if ds:
                    self.decide(ds, t)
            elif kind == K_SAMPLE:
                self.sample(t, x, j)
            elif kind == K_LOGIN:
                a = x
                if self.a_state[a] != A_OUT:
                    if self.a_pending[a] == P_LOGOUT:   # back-to-back shifts: withdraw the deferred log-out
                        self.a_pending[a] = P_NONE
                        eng.ready(self.agent_ids[a], t)
                    continue
                gi = self.a_group[a]
                ds = eng.login(self.agent_ids[a], self.g_skills[gi], t, self.g_queues[gi])
                self.set_agent(a, A_IDLE, t)
                for qo in self.g_serves[gi]:
                    self.staffed_q[<int32_t>qo] += 1
                if ds:
                    self.decide(ds, t)
            elif kind == K_LOGOUT:
                a = x
                st = self.a_state[a]
                if st == A_OUT:
                    continue
                if st == A_RING or st == A_BUSY:
                    eng.logout(self.agent_ids[a], t)       # deferred by the engine to the end of the call
                    self.a_pending[a] = P_LOGOUT
                else:
                    self.logout(a, t)
            elif kind == K_PAUSE:
                a, until, reason = self.pause_list[x]
                st = self.a_state[a]
                if st == A_IDLE or st == A_WRAP:
                    self.start_pause(a, t, until, reason)
                elif (st == A_RING or st == A_BUSY) and self.a_pending[a] != P_LOGOUT:
                    eng.pause(self.agent_ids[a], t, reason)   # deferred by the engine to the end of the call
                    self.a_pending[a] = P_PAUSE
                    self.a_pend_end[a] = until
                    self.push(until, K_UNPAUSE, a)
            elif kind == K_UNPAUSE:
                a = x
                if self.a_pending[a] == P_PAUSE and self.a_pend_end[a] <= t:
                    # the pause would be over before the call: withdraw it
                    self.a_pending[a] = P_NONE
                    eng.ready(self.agent_ids[a], t)
                elif self.a_state[a] == A_PAUSE and self.a_pause_end[a] <= t:
                    if self.a_since[a] > t:           # it starts when the wrap-up ends
                        self.push(self.a_since[a], K_UNPAUSE, a)
                        continue
                    ds = eng.ready(self.agent_ids[a], t)
                    self.set_agent(a, A_IDLE, t)
                    if ds:
                        self.decide(ds, t)
        self.t_last = t
        return self.events

    cdef int sample(self, double t, int32_t x, int32_t j) except -1:
        cdef int32_t a
        cdef int64_t wrapped_up = 0
        self.sample_t.append(t)
        self.sample_w.append([self.waiting_q[q] for q in range(self.nq)])
        self.sample_logged.append(self.logged)
        # agents whose wrap-up ended on an engine timer are idle already
        for a in range(self.na):
            if self.a_state[a] == A_WRAP and self.a_wrap_until[a] <= t:
                wrapped_up += 1
        self.sample_working.append(self.working - wrapped_up)
        if t < self.end or (self.in_system > 0 and (self.hn > 0 or j < self.n)):
            self.push(t + self.sample_every, K_SAMPLE, x + 1)
        if self.progress is not None:
            self.progress(min(1.0, (t - self.start) / self.span))
        return 0

    def close_agents(self, double t_last):
        """Log every agent still in out of the books at the end of the run."""
        cdef int32_t a
        for a in range(self.na):
            if self.a_state[a] != A_OUT:
                self.set_agent(a, A_OUT, max(t_last, self.a_since[a]))


cdef void* _grow(void* p, size_t n_bytes) except NULL:
    cdef void* q = realloc(p, n_bytes)
    if q == NULL:
        raise MemoryError()
    return q
