"""Contact-centre indicators (KPIs) from call records, computed with numpy.

Inputs
======

:data:`CALL_RECORD` — one row per call (a numpy structured array):

``call`` (i8)         sequence number
``queue`` (i4)        index into the list of queue names passed alongside
``priority`` (i1)     priority the call entered with
``arrival`` (f8)      seconds
``answered`` (f8)     seconds, NaN if never answered
``ended`` (f8)        seconds, when the call ended (hang-up, end of talk, exit)
``outcome`` (i1)      0 answered, 1 abandoned, 2 exited (max wait / no agent),
                      3 callback_failed (see :data:`OUTCOMES`)
``agent`` (i4)        agent index, -1 if none
``talk`` (f8)         seconds connected (0 if none)
``wrap`` (f8)         seconds of wrap-up after the call
``overflowed``, ``transferred`` (bool)
``cb_offered``, ``cb_accepted``, ``cb_dialled``, ``cb_reached`` (bool)
                      a call-back was offered / accepted / dialled at least
                      once / reached the caller.
``surveyed`` (bool)   the caller was asked the post-call survey
``csat`` (f8)         their satisfaction score 1..5, NaN if none (not asked,
                      no answer); values outside 1..5 count as no answer
``solved`` (f8)       the survey's second question: 1.0 yes, 0.0 no, NaN if
                      none

:data:`AGENT_INTERVAL` — one row per stretch of time an agent spent in one
state while logged in: ``agent`` (i4), ``state`` (i1, see
:data:`AGENT_STATES`: 0 available, 1 reserved (ringing), 2 busy, 3 wrap_up,
4 paused), ``start``, ``end`` (f8 seconds).

Definitions
===========

With ``T`` = ``sl_threshold`` and ``S`` = ``short_abandon`` (seconds); the
*wait* of an answered call is ``answered - arrival``, of an abandoned call
``ended - arrival``:

* ``offered``: calls that arrived; ``answered``, ``abandoned``, ``exited``,
  ``callback_failed``: calls by outcome;
* ``short_abandons``: abandoned with a wait ``< S`` (caller hung up almost at
  once, usually not held against the service);
* ``answered_within``: answered with wait ``<= T``; ``abandoned_after``:
  abandoned with wait ``> T``;
* ``answer_rate`` (*taux de décroché*) = answered / offered;
* ``abandon_rate`` = abandoned / offered;
  ``abandon_rate_excl_short`` = (abandoned - short) / (offered - short);
* service level, four standard definitions:

  - ``sl_answered``           = answered_within / answered;
  - ``sl_offered``            = answered_within / offered (abandons, exits and
    failed call-backs all count as misses; Erlang A's ``service_level``);
  - ``sl_offered_excl_short`` = answered_within / (offered - short_abandons);
  - ``sl_abandon_neutral``    = answered_within / (answered + abandoned_after)
    (abandons within ``T`` are left out, exits too);

* ``asa`` = mean wait of answered calls; ``max_answer_wait`` its maximum;
  ``mean_abandon_wait`` = mean wait of abandoned calls;
* ``mean_talk`` = mean talk of answered calls; ``aht`` = mean talk + wrap-up
  of answered calls;
* call-back figures: ``cb_offered``, ``cb_accepted``, ``cb_dialled``,
  ``cb_reached`` (counts of calls); ``cb_offer_rate`` = cb_offered / offered,
  ``cb_accept_rate`` = cb_accepted / cb_offered, ``cb_reach_rate`` =
  cb_reached / cb_dialled;
* ``overflowed``, ``transferred``: counts of calls;
* survey figures (only calls with ``surveyed`` set count): ``surveys`` (calls
  asked), ``csat_responses`` (calls that gave a score 1..5),
  ``csat_response_rate`` = csat_responses / surveys, ``csat_mean`` = mean
  score, ``csat_share`` (CSAT) = responses scoring 4 or 5 / csat_responses,
  ``solved_responses`` (answers to the second question) and ``solved_rate`` =
  yes / solved_responses; per agent (the agent who answered) the same
  ``csat_responses``, ``csat_mean``, ``csat_share``;
* ``occupancy`` = (reserved + busy + wrap_up time) / (logged-in time minus
  paused time), from agent intervals; agents are not split by queue, so in
  :func:`summary` only ``"all"`` has it (queues get NaN).

A ratio whose denominator is zero is NaN (no call offered: no rate), never
an error.  Calls are counted in the queue they entered (``queue``).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from .errors import InvalidInput

__all__ = (
    "CALL_RECORD",
    "AGENT_INTERVAL",
    "OUTCOMES",
    "AGENT_STATES",
    "INDICATORS",
    "AGENT_INDICATORS",
    "INTERVAL_COLUMNS",
    "SURVEY_INDICATORS",
    "ANSWERED",
    "ABANDONED",
    "EXITED",
    "CALLBACK_FAILED",
    "AVAILABLE",
    "RESERVED",
    "BUSY",
    "WRAP_UP",
    "PAUSED",
    "summary",
    "per_interval",
    "per_agent",
    "format_table",
)

CALL_RECORD = np.dtype([
    ("call", "i8"),
    ("queue", "i4"),
    ("priority", "i1"),
    ("arrival", "f8"),
    ("answered", "f8"),
    ("ended", "f8"),
    ("outcome", "i1"),
    ("agent", "i4"),
    ("talk", "f8"),
    ("wrap", "f8"),
    ("overflowed", "?"),
    ("transferred", "?"),
    ("cb_offered", "?"),
    ("cb_accepted", "?"),
    ("cb_dialled", "?"),
    ("cb_reached", "?"),
    ("surveyed", "?"),
    ("csat", "f8"),
    ("solved", "f8"),
])

AGENT_INTERVAL = np.dtype([("agent", "i4"), ("state", "i1"), ("start", "f8"), ("end", "f8")])

#: ``outcome`` codes, by index
OUTCOMES = ("answered", "abandoned", "exited", "callback_failed")
ANSWERED, ABANDONED, EXITED, CALLBACK_FAILED = 0, 1, 2, 3

#: ``state`` codes of :data:`AGENT_INTERVAL`, by index
AGENT_STATES = ("available", "reserved", "busy", "wrap_up", "paused")
AVAILABLE, RESERVED, BUSY, WRAP_UP, PAUSED = 0, 1, 2, 3, 4
_WORKING = (RESERVED, BUSY, WRAP_UP)

#: every indicator, in table order: name -> (kind, short label); kind is "count", "rate" or "seconds"
INDICATORS: Dict[str, Tuple[str, str]] = {
    "offered": ("count", "offered"),
    "answered": ("count", "answered"),
    "abandoned": ("count", "abandoned"),
    "short_abandons": ("count", "short abandons"),
    "exited": ("count", "exited"),
    "callback_failed": ("count", "call-back failed"),
    "answer_rate": ("rate", "answer rate"),
    "abandon_rate": ("rate", "abandon rate"),
    "abandon_rate_excl_short": ("rate", "abandon rate excl. short"),
    "answered_within": ("count", "answered within T"),
    "abandoned_after": ("count", "abandoned after T"),
    "sl_answered": ("rate", "SL / answered"),
    "sl_offered": ("rate", "SL / offered"),
    "sl_offered_excl_short": ("rate", "SL / offered excl. short"),
    "sl_abandon_neutral": ("rate", "SL abandon-neutral"),
    "asa": ("seconds", "ASA s"),
    "max_answer_wait": ("seconds", "max answer wait s"),
    "mean_abandon_wait": ("seconds", "mean abandon wait s"),
    "mean_talk": ("seconds", "mean talk s"),
    "aht": ("seconds", "AHT s"),
    "cb_offered": ("count", "call-backs offered"),
    "cb_accepted": ("count", "call-backs accepted"),
    "cb_dialled": ("count", "call-backs dialled"),
    "cb_reached": ("count", "call-backs reached"),
    "cb_offer_rate": ("rate", "call-back offer rate"),
    "cb_accept_rate": ("rate", "call-back accept rate"),
    "cb_reach_rate": ("rate", "call-back reach rate"),
    "overflowed": ("count", "overflowed"),
    "transferred": ("count", "transferred"),
    "surveys": ("count", "surveys"),
    "csat_responses": ("count", "CSAT responses"),
    "csat_response_rate": ("rate", "CSAT response rate"),
    "csat_mean": ("score", "CSAT mean 1-5"),
    "csat_share": ("rate", "CSAT (4-5)"),
    "solved_responses": ("count", "solved responses"),
    "solved_rate": ("rate", "solved rate"),
    "occupancy": ("rate", "occupancy"),
}

#: per-agent indicators (:func:`per_agent`)
AGENT_INDICATORS: Dict[str, Tuple[str, str]] = {
    "agent": ("id", "agent"),
    "answered": ("count", "answered"),
    "talk": ("seconds", "talk s"),
    "wrap": ("seconds", "wrap-up s"),
    "aht": ("seconds", "AHT s"),
    "logged_in": ("seconds", "logged in s"),
    "paused": ("seconds", "paused s"),
    "working": ("seconds", "working s"),
    "occupancy": ("rate", "occupancy"),
    "csat_responses": ("count", "CSAT responses"),
    "csat_mean": ("score", "CSAT mean"),
    "csat_share": ("rate", "CSAT (4-5)"),
}

#: the survey's indicators, left out of a text table when no call was surveyed (a simulation)
SURVEY_INDICATORS = ("surveys", "csat_responses", "csat_response_rate", "csat_mean", "csat_share",
                     "solved_responses", "solved_rate")

_REQUIRED = ("queue", "arrival", "answered", "ended", "outcome", "agent", "talk", "wrap", "overflowed",
             "transferred", "cb_offered", "cb_accepted", "cb_dialled", "cb_reached")

# ---------------------------------------------------------------- validation


def _check_records(records: Any) -> np.ndarray:
    if not isinstance(records, np.ndarray) or records.dtype.names is None:
        raise InvalidInput(f"records must be a numpy structured array of CALL_RECORD, got {type(records).__name__!r}")
    missing = [f for f in _REQUIRED if f not in records.dtype.names]
    if missing:
        raise InvalidInput(f"records must have the CALL_RECORD fields, missing {missing!r}")
    r: np.ndarray = records.ravel()
    ans = r["outcome"] == ANSWERED
    bad = ans & ~np.isfinite(r["answered"])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInput(f"records[{i}] is answered but its answered time is {float(r['answered'][i])!r}")
    bad = ~np.isin(r["outcome"], (ANSWERED, ABANDONED, EXITED, CALLBACK_FAILED))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInput(f"records[{i}] outcome must be 0..3, got {int(r['outcome'][i])!r}")
    return r


def _check_queue_names(queue_names: Any, records: np.ndarray) -> List[str]:
    if isinstance(queue_names, str) or not isinstance(queue_names, (list, tuple)):
        raise InvalidInput(f"queue_names must be a list of str, got {queue_names!r}")
    names = list(queue_names)
    if not all(isinstance(q, str) for q in names):
        raise InvalidInput(f"queue_names must be a list of str, got {queue_names!r}")
    if len(set(names)) != len(names):
        raise InvalidInput(f"queue_names must be distinct, got {queue_names!r}")
    if "all" in names:
        raise InvalidInput(f"queue_names must not contain 'all' (the name of the total), got {queue_names!r}")
    q = records["queue"]
    bad = (q < 0) | (q >= len(names))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInput(f"records[{i}] queue must be an index into {len(names)} queue names, got {int(q[i])!r}")
    return names


def _check_intervals(agent_intervals: Any) -> Optional[np.ndarray]:
    if agent_intervals is None:
        return None
    iv = agent_intervals
    if not isinstance(iv, np.ndarray) or iv.dtype.names is None or \
            any(f not in iv.dtype.names for f in ("agent", "state", "start", "end")):
        raise InvalidInput(f"agent_intervals must be a numpy structured array of AGENT_INTERVAL, got {iv!r}")
    iv = iv.ravel()
    bad = ~(iv["end"] >= iv["start"])
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise InvalidInput(f"agent_intervals[{i}] must end at or after its start, got start {float(iv['start'][i])!r} "
                           f"and end {float(iv['end'][i])!r}")
    return iv


def _seconds(name: str, v: Any, *, positive: bool = False) -> float:
    ok = isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) \
        and math.isfinite(float(v)) and (float(v) > 0 if positive else float(v) >= 0)
    if not ok:
        raise InvalidInput(f"{name} must be a finite number of seconds {'> 0' if positive else '>= 0'}, got {v!r}")
    return float(v)


# ---------------------------------------------------------------- the computation


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    num = np.asarray(num, dtype=float)
    den = np.asarray(den, dtype=float)
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def _indicators(r: np.ndarray, group: np.ndarray, n: int, threshold: float, short: float) -> Dict[str, np.ndarray]:
    """Every call indicator (except occupancy) for ``n`` groups; call ``i`` is in group ``group[i]``."""
    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=mask.astype(float), minlength=n).round().astype(np.int64)

    def total(values: np.ndarray) -> np.ndarray:
        return np.bincount(group, weights=values, minlength=n)

    outcome = r["outcome"]
    ans = outcome == ANSWERED
    ab = outcome == ABANDONED
    arrival = r["arrival"]
    wait_ans = np.where(ans, r["answered"] - arrival, 0.0)
    wait_ab = np.where(ab, r["ended"] - arrival, 0.0)
    short_ab = ab & (wait_ab < short)
    within = ans & (wait_ans <= threshold)
    after = ab & (wait_ab > threshold)

    out: Dict[str, np.ndarray] = {}
    offered = np.bincount(group, minlength=n).astype(np.int64)
    out["offered"] = offered
    out["answered"] = count(ans)
    out["abandoned"] = count(ab)
    out["short_abandons"] = count(short_ab)
    out["exited"] = count(outcome == EXITED)
    out["callback_failed"] = count(outcome == CALLBACK_FAILED)
    out["answer_rate"] = _ratio(out["answered"], offered)
    out["abandon_rate"] = _ratio(out["abandoned"], offered)
    out["abandon_rate_excl_short"] = _ratio(out["abandoned"] - out["short_abandons"], offered - out["short_abandons"])
    out["answered_within"] = count(within)
    out["abandoned_after"] = count(after)
    out["sl_answered"] = _ratio(out["answered_within"], out["answered"])
    out["sl_offered"] = _ratio(out["answered_within"], offered)
    out["sl_offered_excl_short"] = _ratio(out["answered_within"], offered - out["short_abandons"])
    out["sl_abandon_neutral"] = _ratio(out["answered_within"], out["answered"] + out["abandoned_after"])
    out["asa"] = _ratio(total(wait_ans), out["answered"])
    mx = np.full(n, -np.inf)
    np.maximum.at(mx, group[ans], wait_ans[ans])
    out["max_answer_wait"] = np.where(out["answered"] > 0, mx, np.nan)
    out["mean_abandon_wait"] = _ratio(total(wait_ab), out["abandoned"])
    talk = np.where(ans, r["talk"], 0.0)
    out["mean_talk"] = _ratio(total(talk), out["answered"])
    out["aht"] = _ratio(total(talk + np.where(ans, r["wrap"], 0.0)), out["answered"])
    for f in ("cb_offered", "cb_accepted", "cb_dialled", "cb_reached"):
        out[f] = count(r[f].astype(bool))
    out["cb_offer_rate"] = _ratio(out["cb_offered"], offered)
    out["cb_accept_rate"] = _ratio(out["cb_accepted"], out["cb_offered"])
    out["cb_reach_rate"] = _ratio(out["cb_reached"], out["cb_dialled"])
    out["overflowed"] = count(r["overflowed"].astype(bool))
    out["transferred"] = count(r["transferred"].astype(bool))
    out.update(_survey(r, count, total))
    return out


def _scores(r: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(surveyed mask, score 1..5 or 0 for none); records without the survey columns have neither."""
    names = r.dtype.names or ()
    if "surveyed" not in names or "csat" not in names:
        return np.zeros(len(r), dtype=bool), np.zeros(len(r))
    surveyed = r["surveyed"].astype(bool)
    csat = r["csat"]
    with np.errstate(invalid="ignore"):      # NaN: no score
        valid = surveyed & (csat >= 1) & (csat <= 5)
    return surveyed, np.where(valid, csat, 0.0)


def _survey(r: np.ndarray, count: Callable[[np.ndarray], np.ndarray],
            total: Callable[[np.ndarray], np.ndarray]) -> Dict[str, np.ndarray]:
    surveyed, score = _scores(r)
    out: Dict[str, np.ndarray] = {"surveys": count(surveyed), "csat_responses": count(score > 0)}
    out["csat_response_rate"] = _ratio(out["csat_responses"], out["surveys"])
    out["csat_mean"] = _ratio(total(score), out["csat_responses"])
    out["csat_share"] = _ratio(count(score >= 4), out["csat_responses"])
    solved = r["solved"] if "solved" in (r.dtype.names or ()) else np.full(len(r), np.nan)
    answered = surveyed & ((solved == 0) | (solved == 1))
    out["solved_responses"] = count(answered)
    out["solved_rate"] = _ratio(count(answered & (solved == 1)), out["solved_responses"])
    return out


def _state_time(iv: np.ndarray, states: Sequence[int]) -> float:
    sel = np.isin(iv["state"], states)
    return float((iv["end"][sel] - iv["start"][sel]).sum())


def _occupancy(iv: Optional[np.ndarray]) -> float:
    if iv is None:
        return math.nan
    working = _state_time(iv, _WORKING)
    staffed = _state_time(iv, (AVAILABLE,) + _WORKING)
    return working / staffed if staffed > 0 else math.nan


def _scalar(v: Any) -> Union[int, float]:
    return int(v) if isinstance(v, (np.integer, int)) else float(v)


def summary(records: np.ndarray, queue_names: Sequence[str], *, sl_threshold: float = 60.0,
            short_abandon: float = 5.0, agent_intervals: Optional[np.ndarray] = None) -> Dict[str, Dict[str, Any]]:
    """Indicators of every queue and of all queues together (key ``"all"``); see the module docstring.

    Returns ``{queue_name: {indicator: value}, ..., "all": {...}}`` with
    ints for counts and floats (NaN when undefined) for rates and times,
    in the order of :data:`INDICATORS`.
    """
    r = _check_records(records)
    names = _check_queue_names(queue_names, r)
    t = _seconds("sl_threshold", sl_threshold)
    s = _seconds("short_abandon", short_abandon)
    iv = _check_intervals(agent_intervals)
    nq = len(names)
    per_q = _indicators(r, r["queue"].astype(np.int64), nq, t, s)
    tot = _indicators(r, np.zeros(len(r), dtype=np.int64), 1, t, s)
    out: Dict[str, Dict[str, Any]] = {}
    for i, q in enumerate(names):
        out[q] = {k: _scalar(v[i]) for k, v in per_q.items()}
        out[q]["occupancy"] = math.nan
    out["all"] = {k: _scalar(v[0]) for k, v in tot.items()}
    out["all"]["occupancy"] = _occupancy(iv)
    return out


def _time_per_bin(start: np.ndarray, end: np.ndarray, t0: float, step: float, n: int) -> np.ndarray:
    """Total overlap of the spans ``[start_i, end_i]`` with each bin ``[t0 + k step, t0 + (k+1) step)``, k < n.

    Each span adds its partial first and last bins directly and ``step`` to
    every bin in between (through a difference array): O(spans + bins).
    """
    out = np.zeros(n)
    if n == 0 or len(start) == 0:
        return out
    lo, hi = t0, t0 + n * step
    s = np.clip(start, lo, hi)
    e = np.clip(end, lo, hi)
    keep = e > s
    s, e = s[keep], e[keep]
    ks = np.minimum(np.floor((s - t0) / step).astype(np.int64), n - 1)
    ke = np.minimum(np.floor((e - t0) / step).astype(np.int64), n - 1)
    same = ks == ke
    np.add.at(out, ks[same], (e - s)[same])
    d = ~same
    ks, ke, s, e = ks[d], ke[d], s[d], e[d]
    np.add.at(out, ks, t0 + (ks + 1) * step - s)
    np.add.at(out, ke, e - (t0 + ke * step))
    full = np.zeros(n + 1)
    np.add.at(full, ks + 1, 1.0)
    np.add.at(full, ke, -1.0)
    return out + np.cumsum(full[:n]) * step


def per_interval(records: np.ndarray, queue_names: Sequence[str], interval: float = 1800.0,
                 start: Optional[float] = None, end: Optional[float] = None, *, n_intervals: Optional[int] = None,
                 queue: Optional[str] = None, sl_threshold: float = 60.0, short_abandon: float = 5.0,
                 agent_intervals: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """The :func:`summary` indicators per interval, calls bucketed by arrival time.

    Intervals are ``[start + k interval, start + (k+1) interval)`` for ``k``
    in ``range(n)``; ``n`` is ``n_intervals``, or enough to reach ``end``,
    or (neither given) enough to hold the last arrival.  ``start`` defaults
    to the first arrival rounded down to a multiple of ``interval``.  Calls
    arriving outside the intervals are left out.  ``queue``: only that
    queue's calls (default: every queue).

    Returns a dict of arrays of length ``n``: ``"start"``, ``"end"`` (interval
    bounds) and every indicator of :data:`INDICATORS`; ``occupancy`` is the
    agents' time in each interval (NaN without ``agent_intervals``).
    """
    r = _check_records(records)
    names = _check_queue_names(queue_names, r)
    step = _seconds("interval", interval, positive=True)
    t = _seconds("sl_threshold", sl_threshold)
    s = _seconds("short_abandon", short_abandon)
    iv = _check_intervals(agent_intervals)
    if queue is not None:
        if queue not in names:
            raise InvalidInput(f"queue must be one of {names!r} or None, got {queue!r}")
        r = r[r["queue"] == names.index(queue)]
    arrival = r["arrival"]
    if start is None:
        t0 = math.floor(float(arrival.min()) / step) * step if len(r) else 0.0
    else:
        if isinstance(start, bool) or not isinstance(start, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(start)):
            raise InvalidInput(f"start must be a finite number of seconds or None, got {start!r}")
        t0 = float(start)
    if n_intervals is not None and end is not None:
        raise InvalidInput(f"give end or n_intervals, not both: got end={end!r} and n_intervals={n_intervals!r}")
    if n_intervals is not None:
        if isinstance(n_intervals, bool) or not isinstance(n_intervals, (int, np.integer)) or n_intervals < 0:
            raise InvalidInput(f"n_intervals must be an int >= 0, got {n_intervals!r}")
        n = int(n_intervals)
    elif end is not None:
        if isinstance(end, bool) or not isinstance(end, (int, float, np.integer, np.floating)) \
                or not math.isfinite(float(end)) or float(end) < t0:
            raise InvalidInput(f"end must be a finite number of seconds >= start ({t0!r}), got {end!r}")
        n = math.ceil((float(end) - t0) / step)
    else:
        n = int(math.floor((float(arrival.max()) - t0) / step)) + 1 if len(r) and arrival.max() >= t0 else 0
    k = np.floor((arrival - t0) / step)
    keep = (k >= 0) & (k < n)
    r = r[keep]
    k = k[keep].astype(np.int64)
    out: Dict[str, np.ndarray] = {"start": t0 + step * np.arange(n, dtype=float)}
    out["end"] = out["start"] + step
    out.update(_indicators(r, k, n, t, s))
    if iv is None or n == 0:
        out["occupancy"] = np.full(n, np.nan)
    else:
        work = np.isin(iv["state"], _WORKING)
        staffed = work | (iv["state"] == AVAILABLE)
        out["occupancy"] = _ratio(_time_per_bin(iv["start"][work], iv["end"][work], t0, step, n),
                                  _time_per_bin(iv["start"][staffed], iv["end"][staffed], t0, step, n))
    return out


def per_agent(records: np.ndarray, agent_intervals: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Per agent: answered calls, total talk and wrap-up, AHT, logged-in, paused and working time, occupancy,
    and the survey scores of the calls they answered (``csat_responses``, ``csat_mean``, ``csat_share``).

    Rows are the agents (``agent``, sorted) seen in answered records or in
    ``agent_intervals``.  ``aht`` = (talk + wrap) / answered;
    ``working`` = reserved + busy + wrap-up time; ``occupancy`` = working /
    (logged in - paused).  Times are NaN-free zeros without intervals,
    occupancy NaN.
    """
    r = _check_records(records)
    iv = _check_intervals(agent_intervals)
    ans = (r["outcome"] == ANSWERED) & (r["agent"] >= 0)
    ids = [r["agent"][ans].astype(np.int64)]
    if iv is not None:
        ids.append(iv["agent"].astype(np.int64))
    agents, inverse = np.unique(np.concatenate(ids), return_inverse=True)
    m = len(agents)
    ra = inverse[:int(ans.sum())]
    out: Dict[str, np.ndarray] = {"agent": agents}
    out["answered"] = np.bincount(ra, minlength=m).astype(np.int64)
    out["talk"] = np.bincount(ra, weights=r["talk"][ans], minlength=m)
    out["wrap"] = np.bincount(ra, weights=r["wrap"][ans], minlength=m)
    out["aht"] = _ratio(out["talk"] + out["wrap"], out["answered"])
    _, score = _scores(r[ans])
    out["csat_responses"] = np.bincount(ra, weights=score > 0, minlength=m).round().astype(np.int64)
    out["csat_mean"] = _ratio(np.bincount(ra, weights=score, minlength=m), out["csat_responses"])
    out["csat_share"] = _ratio(np.bincount(ra, weights=score >= 4, minlength=m), out["csat_responses"])
    if iv is not None:
        ia = inverse[int(ans.sum()):]
        dur = iv["end"] - iv["start"]
        out["logged_in"] = np.bincount(ia, weights=dur, minlength=m)
        out["paused"] = np.bincount(ia, weights=np.where(iv["state"] == PAUSED, dur, 0.0), minlength=m)
        out["working"] = np.bincount(ia, weights=np.where(np.isin(iv["state"], _WORKING), dur, 0.0), minlength=m)
        out["occupancy"] = _ratio(out["working"], out["logged_in"] - out["paused"])
    else:
        for f in ("logged_in", "paused", "working"):
            out[f] = np.zeros(m)
        out["occupancy"] = np.full(m, np.nan)
    return out


# ---------------------------------------------------------------- text tables


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "-"
    v = float(value)
    if math.isnan(v):
        return "-"
    if kind == "count" or kind == "id":
        return f"{int(round(v)):,}"
    if kind == "rate":
        return f"{100.0 * v:.1f} %"
    if kind == "clock":
        sec = int(round(v))
        h, rem = divmod(sec, 3600)
        mnt, s = divmod(rem, 60)
        return f"{h:02d}:{mnt:02d}" if s == 0 else f"{h:02d}:{mnt:02d}:{s:02d}"
    return f"{v:,.1f}"


def _kind(name: str, catalogue: Mapping[str, Tuple[str, str]]) -> Tuple[str, str]:
    if name in catalogue:
        return catalogue[name]
    return ("seconds", name)


def _align(rows: List[List[str]]) -> str:
    widths = [max(len(row[c]) for row in rows) for c in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [cell.rjust(w) for cell, w in zip(row[1:], widths[1:])]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


#: columns of a per-interval table when none are asked for
INTERVAL_COLUMNS = ("offered", "answered", "abandoned", "answer_rate", "sl_offered", "sl_answered", "asa",
                    "abandon_rate", "aht", "occupancy")


_SURVEY_COLUMNS = ("csat_responses", "csat_mean", "csat_share")


def _any_count(values: Any) -> bool:
    return values is not None and bool(np.asarray(values).sum() > 0)


def format_table(data: Mapping[str, Any], columns: Optional[Sequence[str]] = None,
                 agent_names: Optional[Sequence[Any]] = None) -> str:
    """A plain-text table, aligned for a terminal, of :func:`summary`, :func:`per_interval` or :func:`per_agent`.

    A summary gives one row per indicator and one column per queue (then
    ``all``); per-interval results one row per interval (start clock time)
    with ``columns`` (default :data:`INTERVAL_COLUMNS`); per-agent results one
    row per agent (named by ``agent_names[index]`` when given).  Rates are
    shown in %, times in seconds, NaN as ``-``.  By default the survey's
    indicators (:data:`SURVEY_INDICATORS`) are shown only when some call was
    surveyed (a simulated day has no survey), per interval then as
    ``csat_responses``, ``csat_mean`` and ``csat_share`` columns.
    """
    if not isinstance(data, Mapping) or not data:
        raise InvalidInput(f"format_table needs a summary, per_interval or per_agent dict, got {data!r}")
    first = next(iter(data.values()))
    if isinstance(first, Mapping):  # summary
        groups = list(data)
        names = list(columns) if columns is not None else list(first)
        if columns is None and not any(data[g].get("surveys") for g in groups):
            names = [n for n in names if n not in SURVEY_INDICATORS]
        rows = [["indicator"] + groups]
        for name in names:
            kind, label = _kind(name, INDICATORS)
            rows.append([label] + [_fmt(data[g].get(name), kind) for g in groups])
        return _align(rows)
    if "start" in data:  # per interval
        names = list(columns) if columns is not None else [c for c in INTERVAL_COLUMNS if c in data]
        if columns is None and _any_count(data.get("surveys")):
            names += [c for c in _SURVEY_COLUMNS if c in data]
        header = ["interval"] + [_kind(c, INDICATORS)[1] for c in names]
        rows = [header]
        for i in range(len(data["start"])):
            rows.append([_fmt(data["start"][i], "clock")] + [_fmt(data[c][i], _kind(c, INDICATORS)[0]) for c in names])
        return _align(rows)
    if "agent" in data:  # per agent
        names = list(columns) if columns is not None else [c for c in AGENT_INDICATORS if c in data and c != "agent"]
        if columns is None and not _any_count(data.get("csat_responses")):
            names = [n for n in names if n not in SURVEY_INDICATORS]
        rows = [["agent"] + [_kind(c, AGENT_INDICATORS)[1] for c in names]]
        for i in range(len(data["agent"])):
            a = int(data["agent"][i])
            label = str(agent_names[a]) if agent_names is not None and 0 <= a < len(agent_names) else str(a)
            rows.append([label] + [_fmt(data[c][i], _kind(c, AGENT_INDICATORS)[0]) for c in names])
        return _align(rows)
    raise InvalidInput(f"format_table needs a summary, per_interval or per_agent dict, got keys {list(data)!r}")
