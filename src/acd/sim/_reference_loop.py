"""The simulator's event loop in plain Python: the oracle of the compiled loop (``_loop.pyx``).

Same inputs, same outputs, same semantics, event for event; the tests run
both on the same scenarios and compare their records byte for byte.  It is
the loop the simulator ran before the loop was compiled, kept in its own
style (locals and closures, Python lists, heapq), so that a change to the
compiled loop is checked against an independently written text.  Change
both together.
"""

from __future__ import annotations

import math
from heapq import heappop, heappush
from typing import Any, Dict, List, Tuple

import numpy as np

from .._core import Announce as _Announce, Assign, DialBack as _DialBack, Engine, Exit, \
    OfferCallback as _OfferCallback, Overflow
from ..errors import InvalidInput
from .records import agent_interval_array

# the codes of simulator.py (event kinds, call / agent states, outcomes, pending agent actions)
from .simulator import (_A_BUSY, _A_IDLE, _A_OUT, _A_PAUSE, _A_RING, _A_WRAP, _ABANDON, _ANSWER, _C_DONE,
                        _C_NEW, _C_OFFER, _C_RETRY, _C_TALK, _C_WAIT, _CB_ANSWER, _CB_FAIL, _END, _LOGIN,
                        _LOGOUT, _O_ABANDONED, _O_ANSWERED, _O_CB_FAILED, _O_EXITED, _P_LOGOUT, _P_NONE,
                        _P_PAUSE, _PAUSE, _RETRY, _SAMPLE, _TRANSFER, _UNPAUSE)


class ReferenceLoop:
    """Same interface as ``acd.sim._loop.Loop``."""

    def __init__(self, eng: Engine, calls: Dict[str, Any], queues: Dict[str, Any], agents: Dict[str, Any],
                 settings: Dict[str, Any], events: List[Tuple[float, int, int]]):
        self.eng = eng
        self.calls = calls
        self.queues = queues
        self.agents = agents
        self.settings = settings
        self.heap = list(events)
        self.events = 0
        self.announcements = 0
        self.in_system = 0
        self.t_last = settings["start"]
        self.sample_t: List[float] = []
        self.sample_w: List[List[int]] = []
        self.sample_logged: List[int] = []
        self.sample_working: List[int] = []

    def intervals(self) -> np.ndarray:
        return agent_interval_array(*self._iv)

    def close_agents(self, t_last: float) -> None:
        self._close(t_last)

    def run(self) -> int:
        eng = self.eng
        C, Q, A, S = self.calls, self.queues, self.agents, self.settings
        n = C["first_legs"]             # the sorted arrivals; transfer legs come after them
        transfer_leg = C["transfer_leg"].tolist()
        c_transferred = C["transferred"].tolist()
        arr_l = C["arrival"].tolist()
        service_l = C["service"].tolist()
        abandon_at = C["abandon_at"].tolist()
        ring_l = C["ring"].tolist()
        c_q0 = C["queue"].tolist()
        pick = C["mix"].tolist()
        c_prio = [C["mix_priority"][k] for k in pick]
        c_req = [C["mix_requirements"][k] for k in pick]
        u_accept = C["u_accept"].tolist()
        u_reach = C["u_reach"].tolist()
        dial = C["dial"].tolist()
        c_state = C["state"].tolist()
        c_queue = C["queue_now"].tolist()
        c_agent = C["agent"].tolist()
        c_ans = C["answered"].tolist()
        c_end = C["ended"].tolist()
        c_out = C["outcome"].tolist()
        c_wrap = C["wrap"].tolist()
        c_over = bytearray(C["overflowed"].tobytes())
        c_vhold = bytearray(C["cb_accepted"].tobytes())
        c_cb_off = bytearray(C["cb_offered"].tobytes())
        c_cb_dial = bytearray(C["cb_dialled"].tobytes())
        c_cb_reach = bytearray(C["cb_reached"].tobytes())
        c_att = C["attempts"].tolist()
        qnames = Q["names"]
        qindex = Q["index"]
        wrap_q = Q["wrap"].tolist()
        aht_q = Q["aht"].tolist()
        cb_queue = Q["callback"].tolist()
        waiting_q = Q["waiting"].tolist()
        cbline_q = Q["cbline"].tolist()
        staffed_q = Q["staffed"].tolist()
        na = len(A["group"])
        a_group = A["group"].tolist()
        g_skills = A["group_skills"]
        g_queues = A["group_queues"]
        g_serves = A["group_serves"]
        a_state = A["state"].tolist()
        a_since = A["since"].tolist()
        a_wrap_until = A["wrap_until"].tolist()
        a_pending = A["pending"].tolist()
        a_pend_end = A["pending_end"].tolist()
        a_pause_end = A["pause_end"].tolist()
        pause_list = A["pauses"]
        ring_zero = S["ring_zero"]
        native = S["native"]
        record_agents = S["record_agents"]
        n_att = S["attempts"]
        cb_accept = S["cb_accept"]
        cb_reach = S["cb_reach"]
        cb_no_answer = S["cb_no_answer"]
        cb_retries = S["cb_retries"]
        cb_retry_delay = S["cb_retry_delay"]
        offer_hook = S["offer_hook"]
        progress = S["progress"]
        sample_every = S["sample_every"]
        span = S["span"]

        class sc:   # the scenario's span, as the loop reads it
            start = S["start"]
            end = S["end"]

        iv_agent: List[int] = []
        iv_state: List[int] = []
        iv_start: List[float] = []
        iv_end: List[float] = []
        counts = [0, 0]   # logged in, working (ringing, talking, wrap-up)
        heap = self.heap
        sample_t = self.sample_t
        sample_w = self.sample_w
        sample_logged = self.sample_logged
        sample_working = self.sample_working

        e_enqueue = eng.enqueue
        e_answer = eng.answer
        e_complete = eng.complete
        e_abandon = eng.abandon
        e_advance = eng.advance
        e_next = eng.next_deadline
        e_login = eng.login
        e_logout = eng.logout
        e_pause = eng.pause
        e_ready = eng.ready
        e_accept_cb = eng.accept_callback
        e_cb_answered = eng.callback_answered
        e_cb_failed = eng.callback_failed
        announcements = [0]
        push = heappush
        pop = heappop
        inf = math.inf
        heap.sort()
        in_system = 0                 # calls arrived and not ended

        def set_agent(a: int, new: int, t: float) -> None:
            """Agent a changes state at t; close the previous interval (wrap-up then idle)."""
            old = a_state[a]
            since = a_since[a]
            if old == _A_WRAP:
                wu = a_wrap_until[a]
                if t > wu:
                    if record_agents:
                        iv_agent.append(a); iv_state.append(_A_WRAP); iv_start.append(since); iv_end.append(wu)
                    counts[1] -= 1              # the wrap-up ended (engine timer) and the agent idled
                    old = _A_IDLE
                    since = wu
                elif new == _A_PAUSE or new == _A_OUT:
                    # a pause or log-out taken in wrap-up starts when the wrap-up would have ended
                    t = wu
            if old != _A_OUT:
                if record_agents and t > since:
                    iv_agent.append(a); iv_state.append(old); iv_start.append(since); iv_end.append(t)
                if old == _A_RING or old == _A_BUSY or old == _A_WRAP:
                    counts[1] -= 1
            else:
                counts[0] += 1
            if new == _A_OUT:
                counts[0] -= 1
            elif new == _A_RING or new == _A_BUSY or new == _A_WRAP:
                counts[1] += 1
            a_state[a] = new
            a_since[a] = t

        def answer(c: int, t: float) -> None:
            if c_vhold[c] and native:
                e_cb_answered(c, t)
            else:
                e_answer(c, t)
            c_state[c] = _C_TALK
            c_ans[c] = t
            set_agent(c_agent[c], _A_BUSY, t)
            push(heap, (t + service_l[c], _END, c))

        def dial_back(c: int, a: int, t: float) -> None:
            """Agent a calls the caller back: reached after the dial ring, or not."""
            k = min(c_att[c], n_att - 1)
            c_state[c] = _C_OFFER
            c_agent[c] = a
            c_cb_dial[c] = 1
            set_agent(a, _A_RING, t)
            if u_reach[c][k] < cb_reach:
                push(heap, (t + dial[c][k], _CB_ANSWER, c))
            else:
                push(heap, (t + cb_no_answer, _CB_FAIL, c))

        def decide(ds: list, t: float) -> None:
            """Act on the engine's decisions, taken at time t."""
            nonlocal in_system
            for d in ds:
                tp = type(d)
                if tp is Assign:
                    c = d.call
                    a = d.agent
                    if a_pending[a]:
                        raise RuntimeError(f"the engine offered call {c} to agent {a}, due for a pause or log-out")
                    if c_vhold[c]:                    # simulator-side call-back: this agent dials back
                        cbline_q[c_queue[c]] -= 1
                        dial_back(c, a, t)
                        continue
                    if c_state[c] == _C_WAIT:
                        waiting_q[c_queue[c]] -= 1
                    c_agent[c] = a
                    if ring_zero:
                        # hot path: idle agent picks up at once (no ring interval to record)
                        e_answer(c, t)
                        c_state[c] = _C_TALK
                        c_ans[c] = t
                        if a_state[a] == _A_IDLE:
                            if record_agents and t > a_since[a]:
                                iv_agent.append(a); iv_state.append(_A_IDLE); iv_start.append(a_since[a])
                                iv_end.append(t)
                            counts[1] += 1
                            a_state[a] = _A_BUSY
                            a_since[a] = t
                        else:
                            set_agent(a, _A_BUSY, t)
                        push(heap, (t + service_l[c], _END, c))
                    else:
                        c_state[c] = _C_OFFER
                        set_agent(a, _A_RING, t)
                        r = ring_l[c]
                        if r > 0.0:
                            push(heap, (t + r, _ANSWER, c))
                        else:
                            answer(c, t)
                elif tp is Overflow:
                    c = d.call
                    qf = qindex[d.from_queue]
                    qt = qindex[d.to_queue]
                    line = cbline_q if c_vhold[c] else waiting_q
                    line[qf] -= 1
                    line[qt] += 1
                    c_queue[c] = qt
                    c_over[c] = 1
                elif tp is Exit:
                    c = d.call
                    if c_vhold[c]:
                        if not native:
                            cbline_q[c_queue[c]] -= 1
                        c_out[c] = _O_CB_FAILED if d.reason == "callback_failed" else _O_EXITED
                    else:
                        waiting_q[c_queue[c]] -= 1
                        c_out[c] = _O_EXITED
                    c_state[c] = _C_DONE
                    c_end[c] = t
                    in_system -= 1
                elif tp is _DialBack:
                    if a_pending[d.agent]:
                        raise RuntimeError(f"the engine offered call {d.call} to agent {d.agent}, due for a pause")
                    dial_back(d.call, d.agent, t)
                elif tp is _OfferCallback:
                    c = d.call
                    q = c_queue[c]
                    if c_state[c] == _C_WAIT and not c_vhold[c] and \
                            offer_hook(t, d.queue, waiting_q[q], staffed_q[q], d.ewt):
                        c_cb_off[c] = 1
                        if u_accept[c] < cb_accept:
                            c_vhold[c] = 1
                            waiting_q[q] -= 1
                            ds2 = e_accept_cb(c, t)
                            if ds2:
                                decide(ds2, t)
                elif tp is _Announce:
                    announcements[0] += 1
                else:  # a decision this simulator does not know yet
                    raise InvalidInput(f"unexpected engine decision {d!r}")

        def settle(a: int, t: float) -> None:
            """The call ended: the engine carries out the pause or log-out asked during it
            (at once, or at the wrap-up's end); mirror it."""
            p = a_pending[a]
            st = a_state[a]
            if p == _P_NONE or st == _A_RING or st == _A_BUSY:
                return
            a_pending[a] = _P_NONE
            if p == _P_LOGOUT:
                if st == _A_WRAP:
                    e_logout(a, t)        # now: a next shift may log the agent in before the wrap-up ends
                set_agent(a, _A_OUT, t)
                for q in g_serves[a_group[a]]:
                    staffed_q[q] -= 1
            else:
                set_agent(a, _A_PAUSE, t)     # from the wrap-up's end; the unpause queued at the request ends it
                a_pause_end[a] = a_pend_end[a]

        def logout(a: int, t: float) -> None:
            e_logout(a, t)
            set_agent(a, _A_OUT, t)
            for q in g_serves[a_group[a]]:
                staffed_q[q] -= 1

        def start_pause(a: int, t: float, until: float, reason: str) -> None:
            e_pause(a, t, reason)
            set_agent(a, _A_PAUSE, t)
            a_pause_end[a] = until
            push(heap, (max(until, a_since[a]), _UNPAUSE, a))

        # ---- the loop
        j = 0
        next_arr = arr_l[0] if n else inf
        events = 0
        t = sc.start
        span = max(sc.end - sc.start, 1e-9)
        while True:
            th = heap[0][0] if heap else inf
            # engine time events (routing steps, exits, wrap-up ends) due before the next event run first,
            # each at its own time: what they decide may schedule events earlier than the next one
            nd = e_next()
            if nd is not None and nd <= th and nd <= next_arr:
                t = nd
                ds = e_advance(nd)
                if ds:
                    decide(ds, nd)
                continue
            if th <= next_arr:
                if th == inf:
                    break
                t, kind, x = pop(heap)
            else:
                t = next_arr
                kind = -1
                x = j
                j += 1
                next_arr = arr_l[j] if j < n else inf
            events += 1

            if kind == -1 or kind == _TRANSFER:             # arrival (or a transfer leg)
                c = x
                in_system += 1
                waiting_q[c_q0[c]] += 1
                c_state[c] = _C_WAIT
                ds = e_enqueue(c, qnames[c_q0[c]], t, c_prio[c], c_req[c])
                if ds:
                    decide(ds, t)
                st = c_state[c]
                if st == _C_WAIT and not c_vhold[c]:
                    q = c_queue[c]
                    if cb_queue[q]:                   # simulator-side call-back offer
                        pos = waiting_q[q] + cbline_q[q]
                        staffed = staffed_q[q]
                        ewt = pos * aht_q[q] / staffed if staffed > 0 else inf
                        if offer_hook(t, qnames[q], pos, staffed, ewt):
                            c_cb_off[c] = 1
                            if u_accept[c] < cb_accept:
                                c_vhold[c] = 1
                                waiting_q[q] -= 1
                                cbline_q[q] += 1
                                continue
                    ab = abandon_at[c]
                    if ab != inf:
                        push(heap, (ab, _ABANDON, c))
                elif st == _C_OFFER and not ring_zero:
                    ab = abandon_at[c]
                    if ab != inf:
                        push(heap, (ab, _ABANDON, c))
            elif kind == _END:
                c = x
                ds = e_complete(c, t)
                c_state[c] = _C_DONE
                c_end[c] = t
                c_out[c] = _O_ANSWERED
                in_system -= 1
                a = c_agent[c]
                w = wrap_q[c_queue[c]]
                c_wrap[c] = w
                if w > 0.0:
                    set_agent(a, _A_WRAP, t)
                    a_wrap_until[a] = t + w
                elif a_state[a] == _A_BUSY:             # hot path: straight back to idle
                    if record_agents:
                        iv_agent.append(a); iv_state.append(_A_BUSY); iv_start.append(a_since[a]); iv_end.append(t)
                    counts[1] -= 1
                    a_state[a] = _A_IDLE
                    a_since[a] = t
                else:
                    set_agent(a, _A_IDLE, t)
                if ds:
                    decide(ds, t)
                if a_pending[a]:
                    settle(a, t)
                leg = transfer_leg[c]
                if leg >= 0:                                 # its transfer leg enters its line now
                    c_transferred[c] = 1
                    arr_l[leg] = t
                    abandon_at[leg] += t
                    push(heap, (t, _TRANSFER, leg))
            elif kind == _ANSWER:
                if c_state[x] == _C_OFFER:
                    answer(x, t)
            elif kind == _ABANDON:
                c = x
                st = c_state[c]
                if (st == _C_WAIT or st == _C_OFFER) and not c_vhold[c]:
                    ds = e_abandon(c, t)
                    c_state[c] = _C_DONE
                    c_end[c] = t
                    c_out[c] = _O_ABANDONED
                    in_system -= 1
                    if st == _C_WAIT:
                        waiting_q[c_queue[c]] -= 1
                        if ds:
                            decide(ds, t)
                    else:
                        a = c_agent[c]
                        set_agent(a, _A_IDLE, t)
                        if ds:
                            decide(ds, t)
                        if a_pending[a]:
                            settle(a, t)
            elif kind == _CB_ANSWER:
                if c_state[x] == _C_OFFER:
                    c_cb_reach[x] = 1
                    answer(x, t)
            elif kind == _CB_FAIL:
                c = x
                if c_state[c] == _C_OFFER:
                    a = c_agent[c]
                    c_att[c] += 1
                    if native:
                        # the engine retries (or gives up with Exit "callback_failed")
                        c_state[c] = _C_RETRY
                        set_agent(a, _A_IDLE, t)
                        ds = e_cb_failed(c, t)
                    else:
                        ds = e_abandon(c, t)
                        set_agent(a, _A_IDLE, t)
                        if c_att[c] <= cb_retries:
                            c_state[c] = _C_RETRY
                            push(heap, (t + cb_retry_delay, _RETRY, c))
                        else:
                            c_state[c] = _C_DONE
                            c_end[c] = t
                            c_out[c] = _O_CB_FAILED
                            in_system -= 1
                    if ds:
                        decide(ds, t)
                    if a_pending[a]:
                        settle(a, t)
            elif kind == _RETRY:                      # simulator-side call-back: back in line
                c = x
                c_queue[c] = c_q0[c]
                cbline_q[c_q0[c]] += 1
                c_state[c] = _C_WAIT
                ds = e_enqueue(c, qnames[c_q0[c]], t, c_prio[c], c_req[c])
                if ds:
                    decide(ds, t)
            elif kind == _SAMPLE:
                sample_t.append(t)
                sample_w.append(list(waiting_q))
                sample_logged.append(counts[0])
                # agents whose wrap-up ended on an engine timer are idle already
                sample_working.append(counts[1] - sum(1 for a in range(na)
                                                      if a_state[a] == _A_WRAP and a_wrap_until[a] <= t))
                if t < sc.end or (in_system > 0 and (heap or j < n)):
                    push(heap, (t + sample_every, _SAMPLE, x + 1))
                if progress is not None:
                    progress(min(1.0, (t - sc.start) / span))
            elif kind == _LOGIN:
                a = x
                if a_state[a] != _A_OUT:
                    if a_pending[a] == _P_LOGOUT:     # back-to-back shifts: withdraw the deferred log-out
                        a_pending[a] = _P_NONE
                        e_ready(a, t)
                    continue
                gi = a_group[a]
                ds = e_login(a, g_skills[gi], t, g_queues[gi])
                set_agent(a, _A_IDLE, t)
                for q in g_serves[gi]:
                    staffed_q[q] += 1
                if ds:
                    decide(ds, t)
            elif kind == _LOGOUT:
                a = x
                st = a_state[a]
                if st == _A_OUT:
                    continue
                if st == _A_RING or st == _A_BUSY:
                    e_logout(a, t)              # the engine defers it to the end of the call
                    a_pending[a] = _P_LOGOUT
                else:
                    logout(a, t)
            elif kind == _PAUSE:
                a, until, reason = pause_list[x]
                st = a_state[a]
                if st == _A_IDLE or st == _A_WRAP:
                    start_pause(a, t, until, reason)
                elif (st == _A_RING or st == _A_BUSY) and a_pending[a] != _P_LOGOUT:
                    e_pause(a, t, reason)       # the engine defers it to the end of the call
                    a_pending[a] = _P_PAUSE
                    a_pend_end[a] = until
                    push(heap, (until, _UNPAUSE, a))
            elif kind == _UNPAUSE:
                a = x
                if a_pending[a] == _P_PAUSE and a_pend_end[a] <= t:
                    a_pending[a] = _P_NONE      # over before the call: withdrawn
                    e_ready(a, t)
                elif a_state[a] == _A_PAUSE and a_pause_end[a] <= t:
                    if a_since[a] > t:          # it starts when the wrap-up ends
                        push(heap, (a_since[a], _UNPAUSE, a))
                        continue
                    ds = e_ready(a, t)
                    set_agent(a, _A_IDLE, t)
                    if ds:
                        decide(ds, t)


        # ---- hand the state back
        self.t_last = t
        self.events = events
        self.announcements = announcements[0]
        self.in_system = in_system
        C["arrival"][:] = arr_l
        for name, values in (("transferred", c_transferred), ("state", c_state), ("queue_now", c_queue), ("agent", c_agent),
                             ("answered", c_ans), ("ended", c_end), ("outcome", c_out), ("wrap", c_wrap),
                             ("overflowed", list(c_over)), ("cb_accepted", list(c_vhold)),
                             ("cb_offered", list(c_cb_off)), ("cb_dialled", list(c_cb_dial)),
                             ("cb_reached", list(c_cb_reach)), ("attempts", c_att)):
            C[name][:] = values
        for name, values in (("waiting", waiting_q), ("cbline", cbline_q), ("staffed", staffed_q)):
            Q[name][:] = values
        A["state"][:] = a_state
        A["since"][:] = a_since

        def close(t_last: float) -> None:
            for a in range(na):
                if a_state[a] != _A_OUT:
                    set_agent(a, _A_OUT, max(t_last, a_since[a]))
            A["state"][:] = a_state

        self._close = close
        self._iv = (iv_agent, iv_state, iv_start, iv_end)
        return events
