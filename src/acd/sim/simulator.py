"""Discrete-event simulation of a contact centre, driving the real :class:`acd.Engine`.

The simulator owns the world outside the engine: callers arriving, phones
ringing, conversations lasting, callers losing patience, agents logging in,
pausing and leaving.  Every routing decision comes from the compiled engine,
fed through its public commands exactly as a telephony adapter would feed it
(``enqueue``, ``answer``, ``complete``, ``abandon``, ``login``, ``pause``,
``ready``, ``logout``, ``advance``); the engine's own time events (routing
steps, overflows, max-wait exits, wrap-up ends) are processed by calling
``advance`` at ``next_deadline()``.

Speed: every random quantity is drawn up front as numpy arrays; the event
loop is compiled (``_loop.pyx``): it merges the sorted arrivals with a C heap
of timed events and calls the engine's C methods directly, so a simulated
call costs well under a microsecond on M/M/n+M.  ``_reference_loop.py`` is
the same loop in plain Python, the oracle the tests compare it with.

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

Agents due for a pause or a log-out while they ring or talk ask the engine
anyway: it defers the request to the end of the call and its wrap-up (no
further call is offered to them).  A pause whose planned end comes before
the call ends is withdrawn (``ready``) and skipped.

Call records follow :data:`acd.kpi.CALL_RECORD`: ``queue`` and ``priority``
are those the call entered with; ``answered`` is when the caller was
connected (for a call-back, when the dialled caller picked up); ``agent``
only for answered calls.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time as _time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import _core
from .._core import Assign, Engine, Exit, Overflow
from ..errors import InvalidInput
from ._loop import Loop
from .records import call_record_array
from .scenario import Callback, Scenario

__all__ = ("simulate", "SimResult", "estimate_memory", "check_memory", "available_memory", "CallbackPolicy", "VirtualHold", "CALLBACK_MODES", "engine_has_callbacks")

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
_LOGIN, _END, _ANSWER, _CB_ANSWER, _CB_FAIL, _ABANDON, _RETRY, _PAUSE, _UNPAUSE, _LOGOUT, _SAMPLE, _TRANSFER = range(12)

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
    # the default summary and per-interval tables, computed once (a report asks for each
    # several times: about a second each at a million calls); copies are handed out
    _kpi_cache: Dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def queue_names(self) -> Tuple[str, ...]:
        return self.scenario.queue_names

    def _cached(self, name: str, kw: Dict[str, Any], compute: Callable[[], Any]) -> Any:
        if kw:
            return compute()
        if name not in self._kpi_cache:
            self._kpi_cache[name] = compute()
        return copy.deepcopy(self._kpi_cache[name])

    def summary(self, **kw: Any) -> Any:
        """:func:`acd.kpi.summary` of this run with the scenario's targets."""
        return self._cached("summary", kw, lambda: self._summary(dict(kw)))

    def _summary(self, kw: Dict[str, Any]) -> Any:
        from .. import kpi
        t = self.scenario.targets
        kw.setdefault("sl_threshold", t.service_level[1])
        kw.setdefault("short_abandon", t.short_abandon)
        kw.setdefault("agent_intervals", self.agent_intervals)
        return kpi.summary(self.records, list(self.queue_names), **kw)

    def per_interval(self, **kw: Any) -> Any:
        """:func:`acd.kpi.per_interval` of this run on the scenario's intervals."""
        return self._cached("per_interval", kw, lambda: self._per_interval(dict(kw)))

    def _per_interval(self, kw: Dict[str, Any]) -> Any:
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
        part = out[k:k + n]       # drawn, scaled and sorted in place: no temporary of the day's size
        rng.random(n, out=part)
        part *= sc.interval
        part += t0
        part.sort()
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


# ------------------------------------------------------------------ memory

#: bytes one call costs during a run: its CALL_RECORD row (81), the up-front draws and the loop's state
BYTES_PER_CALL = 512
#: bytes one agent costs (engine, loop, agent-interval rows)
BYTES_PER_AGENT = 4096
#: fixed overhead of a run (engine, tables) in bytes
BYTES_BASE = 16 * 2 ** 20


def estimate_memory(scenario: Scenario, sample_every: float = 60.0) -> int:
    """Bytes a run of ``scenario`` needs, roughly: calls x :data:`BYTES_PER_CALL` (expected calls plus six
    standard deviations, transfer legs included), agents x :data:`BYTES_PER_AGENT`, the waiting-call
    samples and the per-interval tables."""
    sc = scenario
    lam = sc.expected_calls
    legs = max((ct.transfer.share for ct in sc.call_types if ct.transfer is not None), default=0.0)
    calls = (lam + 6 * math.sqrt(lam) + 10) * (1 + legs)
    agents = sum(g.size for g in sc.agents)
    samples = (sc.end - sc.start) / sample_every + 2
    nq = len(sc.queues)
    return int(BYTES_BASE + calls * BYTES_PER_CALL + agents * BYTES_PER_AGENT + samples * (nq + 3) * 8
               + sc.n_intervals * (nq + 1) * 1024)


def available_memory() -> Optional[int]:
    """``MemAvailable`` of /proc/meminfo in bytes (None where there is none)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _mb(n: float) -> str:
    return f"{n / 2 ** 20:,.0f} MB" if n < 2 ** 30 else f"{n / 2 ** 30:,.1f} GB"


def check_memory(scenario: Scenario, max_memory: Optional[int] = None, sample_every: float = 60.0) -> int:
    """Refuse (:class:`InvalidInput`) a scenario whose :func:`estimate_memory` exceeds ``max_memory``
    bytes (default: the machine's available memory); return the estimate."""
    need = estimate_memory(scenario, sample_every)
    limit, what = (max_memory, "--max-memory") if max_memory is not None else (available_memory(), "available memory")
    if limit is not None and need > limit:
        raise InvalidInput(f"scenario {scenario.name!r} ({scenario.expected_calls:,.0f} expected calls, "
                           f"{sum(g.size for g in scenario.agents):,} agents) needs about {_mb(need)}, more than "
                           f"the {_mb(limit)} of {what}; use a smaller --scale or fewer calls")
    return need


# ------------------------------------------------------------------ the run

def simulate(scenario: Scenario, seed: Optional[int] = None, *,
             callback_policy: Optional[CallbackPolicy] = None,
             callback_mode: str = "auto",
             progress: Optional[Callable[[float], None]] = None,
             sample_every: float = 60.0,
             record_agents: bool = True,
             max_memory: Optional[int] = None) -> SimResult:
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
    Before anything is drawn, :func:`check_memory` refuses a scenario that
    would not fit in ``max_memory`` bytes (default: the available memory).
    """
    if isinstance(scenario, Scenario) and isinstance(sample_every, (int, float)) and sample_every > 0:
        check_memory(scenario, max_memory, sample_every)
    return _run(scenario, seed, callback_policy=callback_policy, callback_mode=callback_mode, progress=progress,
                sample_every=sample_every, record_agents=record_agents, loop=Loop)


def _run(scenario: Scenario, seed: Optional[int], *, callback_policy: Optional[CallbackPolicy],
         callback_mode: str, progress: Optional[Callable[[float], None]], sample_every: float,
         record_agents: bool, loop: Any) -> SimResult:
    """:func:`simulate` with the event loop's class: the compiled ``Loop`` or the ``ReferenceLoop`` oracle."""
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
    if len(mix) == 1:
        pick = np.zeros(n, dtype=np.int32)
    else:
        pick = rng.choice(len(mix), size=n, p=np.array([w for _, _, w in mix]) / sum(w for _, _, w in mix))
        pick = pick.astype(np.int32)
    if len(mix) == 1:
        ct, sg, _w = mix[0]
        service = ct.service.scaled(sg.service_factor).sample(rng, n)
        abandon_at = ct.patience.scaled(sg.patience_factor).sample(rng, n)   # patience, then + arrival
    else:
        service = np.empty(n)
        abandon_at = np.empty(n)
        for k, (ct, sg, _w) in enumerate(mix):
            m = pick == k
            nk = int(m.sum())
            service[m] = ct.service.scaled(sg.service_factor).sample(rng, nk)
            abandon_at[m] = ct.patience.scaled(sg.patience_factor).sample(rng, nk)
    abandon_at += arr
    ring_zero = sc.ring.kind == "fixed" and sc.ring.a == 0.0
    ring = np.zeros(0) if ring_zero else sc.ring.sample(rng, n)

    # transfers: a call picked here goes on to another line if it is answered; its second leg is
    # call n + k (drawn now: talk, patience, ring), entering when the first conversation ends
    leg_of = np.full(n, -1, dtype=np.int32)     # first leg -> its transfer leg, or -1
    tr_of_mix = [ct.transfer if ct.transfer is not None and ct.transfer.share > 0 else None for ct, _, _ in mix]
    n_legs = 0
    leg_mix = np.zeros(0, dtype=np.int32)       # a leg's mix entry: len(mix) + its parent's entry
    if any(tr is not None for tr in tr_of_mix):
        u_tr = rng.random(n)
        parents = np.flatnonzero(u_tr < np.asarray([tr.share if tr else 0.0 for tr in tr_of_mix])[pick])
        n_legs = len(parents)
        leg_of[parents] = n + np.arange(n_legs, dtype=np.int32)
        leg_mix = (len(mix) + pick[parents]).astype(np.int32)
        leg_service = np.empty(n_legs)
        leg_patience = np.empty(n_legs)
        for k, ((ct, sg, _w), tr) in enumerate(zip(mix, tr_of_mix)):
            if tr is None:
                continue
            m = leg_mix == len(mix) + k
            nk = int(m.sum())
            leg_service[m] = tr.service.scaled(sg.service_factor).sample(rng, nk)
            leg_patience[m] = ct.patience.scaled(sg.patience_factor).sample(rng, nk)
        arr = np.concatenate([arr, np.full(n_legs, math.nan)])       # set when the transfer happens
        service = np.concatenate([service, leg_service])
        abandon_at = np.concatenate([abandon_at, leg_patience])     # + arrival, when it happens
        pick = np.concatenate([pick, leg_mix])
        leg_of = np.concatenate([leg_of, np.full(n_legs, -1, dtype=np.int32)])
        if not ring_zero:
            ring = np.concatenate([ring, sc.ring.sample(rng, n_legs)])
    n_all = n + n_legs

    n_att = cb.retries + 1
    if cb.enabled or native:
        # the last draws: skipping them when nothing offers call-backs changes no other draw
        u_accept = rng.random(n_all)
        u_reach_a = rng.random((n_all, n_att))
        dial_a = cb.dial_ring.sample(rng, n_all * n_att).reshape(n_all, n_att)
    else:
        u_accept = np.zeros(0)
        u_reach_a = dial_a = np.zeros((0, n_att))
    # per mix entry (then per transfer leg of each entry): queue index, priority, requirements
    mq: List[int] = []
    mprio: List[int] = []
    mreq: List[Optional[Dict[str, int]]] = []
    for legs in (False, True):
        for (ct, sg, _w), tr in zip(mix, tr_of_mix):
            queue, prio, own = ct.queue, ct.priority, ct.requirements
            if legs:
                if tr is None:          # a placeholder keeps the indices aligned: never used
                    mq.append(0), mprio.append(0), mreq.append(None)
                    continue
                queue, prio, own = tr.queue, tr.priority, tr.requirements
            qcfg = sc.queues[qindex[queue]]
            p = prio if prio is not None else qcfg.priority
            if sg.priority is not None:
                p = sg.priority
            p = min(9, p + sg.priority_boost)
            req = dict(own)
            for k2, v in sg.requirements.items():
                req[k2] = max(v, req.get(k2, 0))
            mq.append(qindex[queue])
            mprio.append(p)
            mreq.append(req or None)
    c_q0 = np.asarray(mq, dtype=np.int32)[pick]
    # the loop writes its outputs straight into the call records' columns
    records = call_record_array(n_all, call=np.arange(n_all), queue=c_q0,
                                priority=np.asarray(mprio, dtype=np.int8)[pick],
                                answered=math.nan, ended=math.nan, outcome=_O_EXITED, agent=-1)
    calls = {
        # inputs
        "first_legs": n, "arrival": arr, "service": service, "abandon_at": abandon_at, "ring": ring,
        "queue": c_q0, "mix": pick, "transfer_leg": leg_of,
        "u_accept": u_accept, "u_reach": u_reach_a, "dial": dial_a,
        "mix_priority": mprio, "mix_requirements": mreq,
        # state, written by the loop
        "state": np.zeros(n_all, dtype=np.int8), "queue_now": c_q0.copy(),
        "attempts": np.zeros(n_all, dtype=np.int32),
    }
    for name in ("answered", "ended", "outcome", "agent", "wrap"):
        calls[name] = records[name]
    for name in ("overflowed", "transferred", "cb_accepted", "cb_offered", "cb_dialled", "cb_reached"):
        calls[name] = records[name].view(np.uint8)

    # ---- queues (call-back settings: the simulator's own offers, mode "simulator")
    policy = callback_policy if callback_policy is not None else VirtualHold(cb)
    loads = sc.queue_load()
    queues = {
        "names": list(qnames), "index": qindex,
        "wrap": np.asarray(wrap_q, dtype=float),
        "aht": np.asarray([loads[qn][1] + wrap_q[i] for i, qn in enumerate(qnames)], dtype=float),
        "callback": np.asarray([cb.enabled and not native and (cb.queues is None or qn in cb.queues)
                                for qn in qnames], dtype=np.uint8),
        "waiting": np.zeros(nq, dtype=np.int64),     # callers on hold
        "cbline": np.zeros(nq, dtype=np.int64),      # call-backs in line (simulator mode)
        "staffed": np.zeros(nq, dtype=np.int64),     # agents logged in who serve the queue
    }

    # ---- agents
    shifts = _agent_shifts(sc)
    names: List[str] = []
    aidx: Dict[str, int] = {}
    for nm, gi, _s, _e in shifts:
        if nm not in aidx:
            aidx[nm] = len(names)
            names.append(nm)
    na = len(names)
    a_group = np.zeros(na, dtype=np.int32)
    for nm, gi, _s, _e in shifts:
        a_group[aidx[nm]] = gi
    events: List[Tuple[float, int, int]] = []
    for nm, gi, t_in, t_out in shifts:
        a = aidx[nm]
        events.append((t_in, _LOGIN, a))
        if t_out != math.inf:
            events.append((t_out, _LOGOUT, a))
    pause_list: List[Tuple[int, float, str]] = []   # (agent, end, reason)
    for gi, grp in enumerate(sc.agents):
        members = [aidx[nm] for nm in dict.fromkeys(nm for nm, gj, _, _ in shifts if gj == gi)]
        for pz in grp.pauses:
            for k, a in enumerate(members):
                st = pz.start + (pz.spread * k / len(members) if members else 0.0)
                pause_list.append((a, st + pz.duration, pz.reason))
                events.append((st, _PAUSE, len(pause_list) - 1))
    events.append((sc.start, _SAMPLE, 0))
    agents = {
        "group": a_group,
        "group_skills": [dict(g.skills) for g in sc.agents],
        "group_queues": [None if g.queues is None else list(g.queues) for g in sc.agents],
        "group_serves": [_serves(sc, gi) for gi in range(len(sc.agents))],
        "state": np.full(na, _A_OUT, dtype=np.int8), "since": np.zeros(na), "wrap_until": np.zeros(na),
        "pending": np.zeros(na, dtype=np.int8), "pending_end": np.zeros(na),
        "pause_end": np.zeros(na), "pauses": pause_list,
    }
    settings = {
        "ring_zero": ring_zero, "native": native, "record_agents": bool(record_agents),
        "attempts": n_att, "cb_accept": cb.accept, "cb_reach": cb.reach, "cb_no_answer": cb.no_answer,
        "cb_retries": cb.retries, "cb_retry_delay": cb.retry_delay,
        "offer_hook": policy.on_wait_announcement, "progress": progress,
        "start": sc.start, "end": sc.end, "span": max(sc.end - sc.start, 1e-9), "sample_every": float(sample_every),
    }

    # ---- the loop
    run = loop(eng, calls, queues, agents, settings, events)
    n_events = run.run()

    # ---- close the books
    t_last = run.t_last
    c_state = calls["state"]
    records["arrival"] = arr
    open_calls = (c_state != _C_DONE) & (c_state != _C_NEW)
    unserved = int(open_calls.sum())
    calls["ended"][open_calls] = t_last
    calls["outcome"][open_calls] = np.where(calls["cb_accepted"][open_calls] != 0, _O_CB_FAILED, _O_EXITED)
    run.close_agents(t_last)
    if progress is not None:
        progress(1.0)
    snap = eng.snapshot()
    counters: Dict[str, Any] = {q: {k: v for k, v in qs.items() if k not in ("agents", "waiting", "oldest_wait")}
                                for q, qs in snap["queues"].items()}
    counters["events"] = n_events
    counters["unserved"] = unserved
    counters["announcements"] = run.announcements
    counters["callback_mode"] = "engine" if native else ("simulator" if cb.enabled else "off")

    talk = records["talk"]
    np.subtract(records["ended"], records["answered"], out=talk)
    talk[np.isnan(talk)] = 0.0          # never answered
    # an agent id is kept only for answered calls (a ringing agent of an abandoned call is not "its" agent)
    records["agent"][records["outcome"] != _O_ANSWERED] = -1
    if n_legs:
        # transfer legs of calls that were not transferred never existed; the others are numbered on
        records = records[c_state != _C_NEW]
        records["call"] = np.arange(len(records))
    intervals = run.intervals()
    sample_t = run.sample_t
    samples = {
        "t": np.asarray(sample_t, dtype=float),
        "waiting": np.asarray(run.sample_w, dtype=np.int64).reshape(len(sample_t), nq),
        "logged_in": np.asarray(run.sample_logged, dtype=np.int64),
        "working": np.asarray(run.sample_working, dtype=np.int64),
    }
    return SimResult(scenario=sc, seed=seed, records=records, agent_intervals=intervals, agent_names=names,
                     samples=samples, counters=counters, wall_time=_time.perf_counter() - wall0, events=n_events)
