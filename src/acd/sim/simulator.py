"""Discrete-event simulation of a contact centre, driving the real :class:`acd.Engine`.

The simulator owns the world outside the engine: callers arriving, phones
ringing, conversations lasting, callers losing patience, agents logging in,
pausing and leaving.  Every routing decision comes from the compiled engine,
fed through its public commands exactly as a telephony adapter would feed it
(``enqueue``, ``answer``, ``complete``, ``abandon``, ``login``, ``pause``,
``ready``, ``logout``, ``advance``); the engine's own time events (routing
steps, overflows, max-wait exits, wrap-up ends) are processed by calling
``advance`` at ``next_deadline()``.

Speed: every random quantity is drawn up front as numpy arrays and turned
into Python lists; arrivals are a sorted list merged with one ``heapq`` of
``(time, kind, index)`` tuples; the loop binds everything to locals (about
5 us per call on M/M/n+M, of which the engine takes about 1.5 us).

Call-back (virtual hold), two modes (``callback_mode``):

* ``"engine"`` (default when the core has it): the scenario's call-back
  settings become the queues' ``callback_threshold`` / ``callback_attempts``
  / ``callback_retry_delay``; the engine estimates the wait and emits
  ``OfferCallback``; the simulator plays the caller (hook
  :meth:`CallbackPolicy.on_wait_announcement`, then acceptance with the
  scenario's probability, ``accept_callback``) and the dial-back on
  ``DialBack`` (reached: ``callback_answered``, else ``callback_failed``;
  the engine retries or gives up with ``Exit(..., "callback_failed")``).
* ``"simulator"``: the simulator estimates the wait (callers ahead x mean
  handle time / agents logged in for the queue), makes the offer; an
  accepted call stays enqueued as an ordinary call (its patience removed)
  and is dialled back on its ``Assign``; a failed dial-back is an
  ``abandon`` in the engine, and a retry a new ``enqueue`` later.

Agents due for a pause or a log-out finish their call first; the engine
has no "pause after this call", so an offer that reaches such an agent the
instant it frees up is declined (``ring_no_answer`` at the same instant:
the call keeps its place in line) before the pause or log-out.

Call records follow :data:`acd.kpi.CALL_RECORD`: ``queue`` and ``priority``
are those the call entered with; ``answered`` is when the caller was
connected (for a call-back, when the dialled caller picked up); ``agent``
only for answered calls.
"""

from __future__ import annotations

import dataclasses
import math
import time as _time
from dataclasses import dataclass, field
from heapq import heappop, heappush
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from .._core import Assign, Engine, Exit, Overflow
from ..errors import InvalidInput
from .records import agent_interval_array, call_record_array
from .scenario import Callback, Scenario

__all__ = ("simulate", "SimResult", "CallbackPolicy", "VirtualHold", "CALLBACK_MODES", "engine_has_callbacks")

# call-back decisions, when the compiled core has them (see CALLBACK_MODES)
_OfferCallback = getattr(_core, "OfferCallback", None)
_DialBack = getattr(_core, "DialBack", None)
_Announce = getattr(_core, "Announce", None)

#: ``"engine"``: the engine offers call-backs and dials back (``OfferCallback``, ``DialBack``);
#: ``"simulator"``: the simulator offers them and plays the dial-back on a plain ``Assign``
CALLBACK_MODES = ("auto", "engine", "simulator")


def _no_callbacks(*args: Any) -> list:
    raise InvalidInput("this engine has no call-back commands")


def engine_has_callbacks() -> bool:
    """True when the compiled engine offers call-backs itself."""
    return _OfferCallback is not None and hasattr(Engine, "accept_callback")


# event kinds; at equal times the lower kind runs first
_LOGIN, _END, _ANSWER, _CB_ANSWER, _CB_FAIL, _ABANDON, _RETRY, _PAUSE, _UNPAUSE, _LOGOUT, _SAMPLE = range(11)

# call states (simulator side)
_C_NEW, _C_WAIT, _C_OFFER, _C_TALK, _C_DONE, _C_RETRY = range(6)

# agent states (simulator side; the codes of kpi.AGENT_STATES)
_A_OUT = -1
_A_IDLE, _A_RING, _A_BUSY, _A_WRAP, _A_PAUSE = 0, 1, 2, 3, 4

# outcomes (kpi.CALL_RECORD)
_O_ANSWERED, _O_ABANDONED, _O_EXITED, _O_CB_FAILED = 0, 1, 2, 3

# pending agent actions
_P_NONE, _P_PAUSE, _P_LOGOUT = 0, 1, 2


class CallbackPolicy:
    """Hook deciding, for a caller who has to wait, whether to offer a call-back.

    Subclass and override :meth:`on_wait_announcement`; pass the instance to
    :func:`simulate` as ``callback_policy``.  Acceptance, dial-back reach
    and ring times follow the scenario's :class:`Callback` settings.
    """

    def __init__(self, config: Callback):
        self.config = config

    def on_wait_announcement(self, now: float, queue: str, position: int, staffed: int, ewt: float) -> bool:
        """Offer a call-back to the caller now ``position``-th in ``queue`` (``ewt`` seconds expected)?"""
        raise NotImplementedError


class VirtualHold(CallbackPolicy):
    """Offer a call-back when the expected wait exceeds ``config.threshold`` seconds."""

    def on_wait_announcement(self, now: float, queue: str, position: int, staffed: int, ewt: float) -> bool:
        return ewt > self.config.threshold


@dataclass
class SimResult:
    """What one run produced.

    ``records``: one :data:`acd.kpi.CALL_RECORD` row per call, in arrival
    order.  ``agent_intervals``: :data:`acd.kpi.AGENT_INTERVAL` rows.
    ``samples``: ``t`` (sample times), ``waiting`` (per queue, shape
    ``(len(t), n_queues)``), ``logged_in`` and ``working`` (agents ringing,
    talking or in wrap-up).  ``counters``: the engine's per-queue counters
    at the end (``entered``, ``answered``, ``abandoned``, ``exited``,
    ``overflowed``) plus ``events`` processed and ``unserved`` calls still
    in line when nothing else could happen.
    """

    scenario: Scenario
    seed: int
    records: np.ndarray
    agent_intervals: np.ndarray
    agent_names: List[str]
    samples: Dict[str, np.ndarray]
    counters: Dict[str, Any]
    wall_time: float = 0.0
    events: int = 0

    @property
    def queue_names(self) -> Tuple[str, ...]:
        return self.scenario.queue_names

    def summary(self, **kw: Any) -> Any:
        """:func:`acd.kpi.summary` of this run with the scenario's targets."""
        from .. import kpi
        t = self.scenario.targets
        kw.setdefault("sl_threshold", t.service_level[1])
        kw.setdefault("short_abandon", t.short_abandon)
        kw.setdefault("agent_intervals", self.agent_intervals)
        return kpi.summary(self.records, list(self.queue_names), **kw)

    def per_interval(self, **kw: Any) -> Any:
        """:func:`acd.kpi.per_interval` of this run on the scenario's intervals."""
        from .. import kpi
        t = self.scenario.targets
        kw.setdefault("sl_threshold", t.service_level[1])
        kw.setdefault("short_abandon", t.short_abandon)
        kw.setdefault("agent_intervals", self.agent_intervals)
        return kpi.per_interval(self.records, list(self.queue_names), start=self.scenario.start,
                                interval=self.scenario.interval, n_intervals=self.scenario.n_intervals, **kw)


# ------------------------------------------------------------------ set-up helpers

def _draw_arrivals(sc: Scenario, rng: np.random.Generator) -> np.ndarray:
    counts = rng.poisson(np.asarray(sc.arrivals, dtype=float))
    out = np.empty(int(counts.sum()))
    k = 0
    for i, n in enumerate(counts):
        t0 = sc.start + i * sc.interval
        out[k:k + n] = np.sort(t0 + sc.interval * rng.random(n))
        k += n
    return out


def _agent_shifts(sc: Scenario) -> List[Tuple[str, int, float, float]]:
    """(name, group index, login time, logout time or inf) for every shift of every agent."""
    out = []
    for gi, g in enumerate(sc.agents):
        if g.staffing is None:
            s, e = g.shift if g.shift is not None else (sc.start, sc.end)
            for k in range(g.count):
                out.append((f"{g.name}-{k + 1}", gi, s, math.inf if e == sc.end else e))
            continue
        for k in range(g.size):
            on = [n > k for n in g.staffing]
            i = 0
            while i < len(on):
                if not on[i]:
                    i += 1
                    continue
                j = i
                while j < len(on) and on[j]:
                    j += 1
                s = sc.start + i * sc.interval
                e = sc.start + j * sc.interval
                out.append((f"{g.name}-{k + 1}", gi, s, math.inf if j == len(on) else e))
                i = j
    return out


def _serves(sc: Scenario, group_index: int) -> List[int]:
    """Queues whose loosest routing step the group's agents can take (for call-back EWT)."""
    g = sc.agents[group_index]
    out = []
    for qi, q in enumerate(sc.queues):
        if g.queues is not None and q.name not in g.queues:
            continue
        steps = [s for s in q.steps if s.overflow is None]
        if any(all(g.skills.get(k, 0) >= v for k, v in s.requirements.items()) for s in steps):
            out.append(qi)
    return out


# ------------------------------------------------------------------ the run

def simulate(scenario: Scenario, seed: Optional[int] = None, *,
             callback_policy: Optional[CallbackPolicy] = None,
             callback_mode: str = "auto",
             progress: Optional[Callable[[float], None]] = None,
             sample_every: float = 60.0,
             record_agents: bool = True) -> SimResult:
    """Run ``scenario`` once through a fresh :class:`acd.Engine`; seeded, reproducible.

    ``seed`` (default: the scenario's) seeds every random draw and the
    engine.  ``callback_policy`` replaces the default :class:`VirtualHold`
    offer rule (used only when ``scenario.callback.enabled``).
    ``callback_mode``: ``"engine"`` lets the engine estimate the wait, offer
    call-backs (``OfferCallback``) and dial back (``DialBack``), the
    simulator playing the caller (acceptance, reach); ``"simulator"`` keeps
    the offer and the dial-back in the simulator (the call stays enqueued in
    the engine, dialled back on its ``Assign``); ``"auto"``: the engine's
    when the compiled core has it.  ``progress``
    is called now and then with the fraction of the scenario's span done.
    ``sample_every`` seconds the number of waiting calls is sampled.
    """
    sc = scenario
    if not isinstance(sc, Scenario):
        raise InvalidInput(f"scenario must be an acd.sim.Scenario, got {sc!r}")
    seed = sc.seed if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2 ** 63:
        raise InvalidInput(f"seed must be an int in 0..2**63-1, got {seed!r}")
    if isinstance(sample_every, bool) or not isinstance(sample_every, (int, float)) or not sample_every > 0:
        raise InvalidInput(f"sample_every must be a positive number of seconds, got {sample_every!r}")
    if callback_mode not in CALLBACK_MODES:
        raise InvalidInput(f"callback_mode must be one of {CALLBACK_MODES!r}, got {callback_mode!r}")
    if callback_mode == "engine" and not engine_has_callbacks():
        raise InvalidInput("callback_mode 'engine' needs an engine with call-back support (accept_callback)")
    if callback_policy is not None and not isinstance(callback_policy, CallbackPolicy):
        raise InvalidInput(f"callback_policy must be an acd.sim.CallbackPolicy, got {callback_policy!r}")
    cb = sc.callback
    # queues may configure the engine's own call-back offers (callback_threshold / callback_risk)
    q_offers = [getattr(q, "callback_threshold", None) is not None or getattr(q, "callback_risk", None) is not None
                for q in sc.queues]
    native = callback_mode != "simulator" and engine_has_callbacks() and (cb.enabled or any(q_offers))
    wall0 = _time.perf_counter()
    rng = np.random.default_rng(seed)

    # ---- engine
    eng = Engine(agent_strategy=sc.agent_strategy, seed=seed % 2 ** 64)
    for qcfg, offers in zip(sc.queues, q_offers):
        if native and cb.enabled and not offers and (cb.queues is None or qcfg.name in cb.queues):
            qcfg = dataclasses.replace(qcfg, callback_threshold=cb.threshold, callback_attempts=cb.retries + 1,
                                       callback_retry_delay=max(cb.retry_delay, 1e-9))
        elif not native and offers:       # the simulator makes the offers: the engine must not
            qcfg = dataclasses.replace(qcfg, callback_threshold=None, callback_risk=None)
        eng.add_queue(qcfg)
    for grp in sc.agents:
        for skill in grp.skills:
            eng.add_skill(skill)
    qnames = sc.queue_names
    qindex = {n: i for i, n in enumerate(qnames)}
    nq = len(qnames)
    wrap_q = [q.wrap_up for q in sc.queues]

    # ---- calls: arrivals, types, draws (order of draws fixed: reproducible,
    # and common to runs that differ only in call-back settings)
    arr = _draw_arrivals(sc, rng)
    n = len(arr)
    mix = sc.mix()
    pick = rng.choice(len(mix), size=n, p=np.array([w for _, _, w in mix]) / sum(w for _, _, w in mix))
    service = np.empty(n)
    patience = np.empty(n)
    for k, (ct, sg, _w) in enumerate(mix):
        m = pick == k
        nk = int(m.sum())
        service[m] = ct.service.scaled(sg.service_factor).sample(rng, nk)
        patience[m] = ct.patience.scaled(sg.patience_factor).sample(rng, nk)
    ring = sc.ring.sample(rng, n)
    n_att = cb.retries + 1
    u_accept = rng.random(n)
    u_reach_a = rng.random((n, n_att))
    dial_a = cb.dial_ring.sample(rng, n * n_att).reshape(n, n_att)
    u_reach = u_reach_a.tolist() if cb.enabled or native else []
    dial = dial_a.tolist() if cb.enabled or native else []
    # per mix entry: queue index, priority, requirements
    mq: List[int] = []
    mprio: List[int] = []
    mreq: List[Optional[Dict[str, int]]] = []
    for ct, sg, _w in mix:
        qcfg = sc.queues[qindex[ct.queue]]
        p = ct.priority if ct.priority is not None else qcfg.priority
        if sg.priority is not None:
            p = sg.priority
        p = min(9, p + sg.priority_boost)
        req = dict(ct.requirements)
        for k2, v in sg.requirements.items():
            req[k2] = max(v, req.get(k2, 0))
        mq.append(qindex[ct.queue])
        mprio.append(p)
        mreq.append(req or None)
    pick_l = pick.tolist()
    c_q0 = [mq[k] for k in pick_l]
    c_prio = [mprio[k] for k in pick_l]
    c_req = [mreq[k] for k in pick_l]
    arr_l = arr.tolist()
    service_l = service.tolist()
    abandon_at = (arr + patience).tolist()
    ring_zero = bool(np.all(ring == 0.0))
    ring_l = [] if ring_zero else ring.tolist()

    # ---- call state (lists: faster than numpy scalars in the loop)
    c_state = [_C_NEW] * n
    c_queue = list(c_q0)
    c_agent = [-1] * n
    c_ans = [math.nan] * n
    c_end = [math.nan] * n
    c_out = [_O_EXITED] * n
    c_wrap = [0.0] * n
    c_over = bytearray(n)
    c_vhold = bytearray(n)
    c_cb_off = bytearray(n)
    c_cb_dial = bytearray(n)
    c_cb_reach = bytearray(n)
    c_att = [0] * n
    waiting_q = [0] * nq       # callers on hold, per queue
    cbline_q = [0] * nq        # call-backs in line (simulator mode), per queue

    # call-back settings
    cb_on = cb.enabled
    policy = callback_policy if callback_policy is not None else VirtualHold(cb)
    offer_hook = policy.on_wait_announcement
    cb_queue = [cb_on and not native and (cb.queues is None or qn in cb.queues) for qn in qnames]
    loads = sc.queue_load()
    aht_q = [loads[qn][1] + wrap_q[i] for i, qn in enumerate(qnames)]
    cb_accept = cb.accept
    cb_reach = cb.reach
    cb_no_answer = cb.no_answer
    cb_retries = cb.retries
    cb_retry_delay = cb.retry_delay

    # ---- agents
    shifts = _agent_shifts(sc)
    names: List[str] = []
    aidx: Dict[str, int] = {}
    for nm, gi, _s, _e in shifts:
        if nm not in aidx:
            aidx[nm] = len(names)
            names.append(nm)
    na = len(names)
    a_group = [0] * na
    for nm, gi, _s, _e in shifts:
        a_group[aidx[nm]] = gi
    g_skills = [dict(g.skills) for g in sc.agents]
    g_queues = [None if g.queues is None else list(g.queues) for g in sc.agents]
    g_serves = [_serves(sc, gi) for gi in range(len(sc.agents))]
    staffed_q = [0] * nq
    a_state = [_A_OUT] * na
    a_since = [0.0] * na
    a_wrap_until = [0.0] * na
    a_pending = [_P_NONE] * na
    a_pend_end = [0.0] * na
    a_pend_reason = [""] * na
    a_pause_end = [0.0] * na
    iv_agent: List[int] = []
    iv_state: List[int] = []
    iv_start: List[float] = []
    iv_end: List[float] = []
    counts = [0, 0]   # logged in, working (ringing, talking, wrap-up)

    heap: List[Tuple[float, int, int]] = []
    for nm, gi, t_in, t_out in shifts:
        a = aidx[nm]
        heappush(heap, (t_in, _LOGIN, a))
        if t_out != math.inf:
            heappush(heap, (t_out, _LOGOUT, a))
    pause_list: List[Tuple[int, float, str]] = []   # (agent, end, reason)
    for gi, grp in enumerate(sc.agents):
        members = [aidx[nm] for nm in dict.fromkeys(nm for nm, gj, _, _ in shifts if gj == gi)]
        for pz in grp.pauses:
            for k, a in enumerate(members):
                st = pz.start + (pz.spread * k / len(members) if members else 0.0)
                pause_list.append((a, st + pz.duration, pz.reason))
                heappush(heap, (st, _PAUSE, len(pause_list) - 1))
    sample_t: List[float] = []
    sample_w: List[List[int]] = []
    sample_logged: List[int] = []
    sample_working: List[int] = []
    heappush(heap, (sc.start, _SAMPLE, 0))

    # ---- engine commands, bound once
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
    e_rna = eng.ring_no_answer
    _missing = _no_callbacks
    e_accept_cb: Callable[..., list] = getattr(eng, "accept_callback", _missing)
    e_cb_answered: Callable[..., list] = getattr(eng, "callback_answered", _missing)
    e_cb_failed: Callable[..., list] = getattr(eng, "callback_failed", _missing)
    announcements = [0]
    push = heappush
    pop = heappop
    nan = math.nan
    inf = math.inf

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
                    decline(c, a, t)
                    continue
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
                    decline(d.call, d.agent, t)
                else:
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

    def decline(c: int, a: int, t: float) -> None:
        """An agent due for a pause or log-out was offered a call the instant it became free.

        The engine has no "pause after this call"; the agent declines the
        offer (``ring_no_answer`` at the same instant: the call goes back to
        its place in line, the engine pauses the agent), then pauses or
        logs out as planned.
        """
        ds2 = e_rna(c, t)
        p = a_pending[a]
        a_pending[a] = _P_NONE
        if p == _P_LOGOUT:
            logout(a, t)
        elif t < a_pend_end[a]:
            start_pause(a, t, a_pend_end[a], a_pend_reason[a])
        else:
            ds2 = ds2 + e_ready(a, t)
        if ds2:
            decide(ds2, t)

    def settle(a: int, t: float) -> None:
        """Carry out a pause or log-out that waited for the agent's call to end."""
        p = a_pending[a]
        st = a_state[a]
        if p == _P_NONE or st == _A_RING or st == _A_BUSY:
            return
        a_pending[a] = _P_NONE
        if p == _P_LOGOUT:
            logout(a, t)
        elif t < a_pend_end[a]:
            start_pause(a, t, a_pend_end[a], a_pend_reason[a])

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

        if kind == -1:                                   # arrival
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
                a_pending[a] = _P_NONE      # back-to-back shifts: the deferred log-out is void
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
                a_pending[a] = _P_LOGOUT
            else:
                logout(a, t)
        elif kind == _PAUSE:
            a, until, reason = pause_list[x]
            st = a_state[a]
            if st == _A_IDLE or st == _A_WRAP:
                start_pause(a, t, until, reason)
            elif (st == _A_RING or st == _A_BUSY) and a_pending[a] != _P_LOGOUT:
                a_pending[a] = _P_PAUSE
                a_pend_end[a] = until
                a_pend_reason[a] = reason
        elif kind == _UNPAUSE:
            a = x
            if a_state[a] == _A_PAUSE and a_pause_end[a] <= t:
                ds = e_ready(a, t)
                set_agent(a, _A_IDLE, t)
                if ds:
                    decide(ds, t)
            elif a_pending[a] == _P_PAUSE and a_pend_end[a] <= t:
                a_pending[a] = _P_NONE

    # ---- close the books
    t_last = t
    unserved = 0
    for c in range(n):
        if c_state[c] != _C_DONE:
            unserved += 1
            c_end[c] = t_last
            c_out[c] = _O_CB_FAILED if c_vhold[c] else _O_EXITED
    for a in range(na):
        if a_state[a] != _A_OUT:
            set_agent(a, _A_OUT, max(t_last, a_since[a]))
    if progress is not None:
        progress(1.0)
    snap = eng.snapshot()
    counters: Dict[str, Any] = {q: {k: v for k, v in qs.items() if k not in ("agents", "waiting", "oldest_wait")}
                                for q, qs in snap["queues"].items()}
    counters["events"] = events
    counters["unserved"] = unserved
    counters["announcements"] = announcements[0]
    counters["callback_mode"] = "engine" if native else ("simulator" if cb.enabled else "off")

    talk = np.where(np.isnan(c_ans), 0.0, np.asarray(c_end) - np.asarray(c_ans))
    records = call_record_array(
        n,
        call=np.arange(n),
        queue=np.asarray(c_q0),
        priority=np.asarray(c_prio),
        arrival=arr,
        answered=np.asarray(c_ans),
        ended=np.asarray(c_end),
        outcome=np.asarray(c_out),
        agent=np.asarray(c_agent),
        talk=talk,
        wrap=np.asarray(c_wrap),
        overflowed=np.frombuffer(bytes(c_over), dtype=np.uint8),
        transferred=np.zeros(n, dtype=np.uint8),
        cb_offered=np.frombuffer(bytes(c_cb_off), dtype=np.uint8),
        cb_accepted=np.frombuffer(bytes(c_vhold), dtype=np.uint8),
        cb_dialled=np.frombuffer(bytes(c_cb_dial), dtype=np.uint8),
        cb_reached=np.frombuffer(bytes(c_cb_reach), dtype=np.uint8),
    )
    # an agent id is kept only for answered calls (a ringing agent of an abandoned call is not "its" agent)
    records["agent"][records["outcome"] != _O_ANSWERED] = -1
    intervals = agent_interval_array(iv_agent, iv_state, iv_start, iv_end)
    samples = {
        "t": np.asarray(sample_t),
        "waiting": np.asarray(sample_w, dtype=np.int64).reshape(len(sample_t), nq),
        "logged_in": np.asarray(sample_logged, dtype=np.int64),
        "working": np.asarray(sample_working, dtype=np.int64),
    }
    return SimResult(scenario=sc, seed=seed, records=records, agent_intervals=intervals, agent_names=names,
                     samples=samples, counters=counters, wall_time=_time.perf_counter() - wall0, events=events)
