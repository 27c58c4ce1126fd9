"""Erlang B, Erlang C, Erlang A (M/M/n+M, Palm) and staffing.

All times (average handle time ``aht``, patience, the service-level
threshold ``t``) are in one unit, seconds in practice, and arrival rates are
calls per that unit (``calls_per_hour / 3600`` for seconds).  The *load*
``a = arrival_rate * aht`` is in Erlangs.

Models
======

**Erlang B** (M/M/n/n, blocked calls lost): ``B(n, a)``, the probability that
an arriving call finds all ``n`` servers busy.  Computed with the recursion
``B(0) = 1``, ``B(k) = a B(k-1) / (k + a B(k-1))`` (the stable form of
``1/B(k) = 1 + k / (a B(k-1))``): no factorial, no overflow, relative error of
a few ulps times ``n``; a ``B`` that would be below 1e-308 underflows to 0.

**Erlang C** (M/M/n, callers wait forever, first come first served):

* ``erlang_c`` = ``C(n, a)`` = P(wait) = ``n B / (n - a (1 - B))`` for
  ``a < n``, and 1 when ``a >= n`` (the queue grows without bound);
* service level ``P(W <= t) = 1 - C exp(-(n - a) t / aht)`` (every caller is
  eventually answered, so every SL definition agrees);
* ASA ``= C aht / (n - a)`` (mean wait, over all callers, which are all
  answered), mean queue length ``C a / (n - a)``;
* occupancy ``= a / n`` (capped at 1).

**Erlang A** (M/M/n+M, Palm's model): Poisson arrivals at rate ``lambda``,
``n`` agents with exponential handle times of mean ``aht`` (``mu = 1/aht``),
one first-come-first-served queue, and each waiting caller abandons after an
exponential patience of mean ``patience`` (``theta = 1/patience``).  The
number of calls in the system is a birth-death chain with birth rate
``lambda`` and death rate ``min(k, n) mu + max(k - n, 0) theta``.

Write ``x = lambda / theta`` and ``b = n mu / theta``.  An arrival (PASTA)
that finds ``n + j`` calls has, if it never hung up, a *virtual wait*
``V_j = sum_{i=0..j} Exp(n mu + i theta)`` (the ``j`` callers ahead leave by
service or abandonment); it is answered iff its own patience ``tau > V_j``.
Since ``exp(-theta V_j)`` is Beta(b, j + 1) distributed, summing over ``j``
with the chain's stationary weights ``pi_{n+j} = pi_n r_j``,
``r_j = prod_{i=1..j} lambda / (n mu + i theta)``, gives, for any ``g``::

    sum_j r_j E[g(V_j)] = integral_0^inf g(v) h(v) dv,
    h(v) = n mu exp(-n mu v + x (1 - exp(-theta v)))

(``h`` is ``pi_n``-normalised density of the virtual wait of arriving
calls).  With ``S = integral h`` (``= sum_j r_j``) and ``1/pi_n = 1/B(n, a) -
1 + S`` (``B`` is Erlang B), and using ``P(tau > V) = E[exp(-theta V)]``:

* ``p_wait``      = P(an arriving call finds every agent busy, i.e. waits at all)
                  = ``pi_n S``;
* ``p_abandon``   = P(the caller hangs up before being answered)
                  = ``pi_n integral (1 - exp(-theta v)) h(v) dv``;
* ``service_level`` = P(answered within ``t``), over **all offered calls**
                  (abandons and answers after ``t`` both count as failures)
                  = ``1 - p_wait + pi_n integral_0^t exp(-theta v) h(v) dv``;
                  this is the definition that gives 0.858178 in the
                  reference case (13 agents, 200 calls/h, 3 min, 5 min, 20 s);
* ``service_level_answered`` = P(answered within ``t`` | answered)
                  = ``service_level / (1 - p_abandon)``;
* ``asa``         = mean wait of **answered** calls (zero waits included)
                  = ``pi_n integral v exp(-theta v) h(v) dv / (1 - p_abandon)``;
* ``mean_wait``   = mean time in queue over **all** callers, answered or not,
                  ``= E[min(V, tau)] = p_abandon * patience``;
* ``queue_length`` = mean number of callers waiting ``= lambda * mean_wait``
                  (Little);
* ``occupancy``   = mean fraction of agents busy
                  ``= lambda (1 - p_abandon) aht / n``.

The closed forms in the incomplete gamma function
(``S = e^x x^-b Gamma(b+1) P(b, x)``, Mandelbaum & Zeltyn) follow from the
same integral; here the integrals are evaluated directly: ``log h`` is
concave, so the integrand is unimodal; its log is computed relative to the
mode without cancellation (through ``z + expm1(-z)``), the range where it is
within ``exp(-60)`` of the maximum is found by bisection, and the integrals
are composite Gauss-Legendre sums refined until they agree to about 1e-14.
This works in log-space for any size (1 to 100,000 agents, patience from
seconds to effectively infinite); ``patience = inf`` gives Erlang C.

Staffing
========

:func:`staff_detail` returns the fewest agents meeting *all* the targets
given, as a :class:`Staffing` naming the target that binds: a service level
``(fraction, t)`` (Erlang A's ``service_level``, answered within ``t`` over
offered, when ``patience`` is given; Erlang C's ``P(W <= t)`` otherwise), a
cap on ``p_abandon`` (needs ``patience``), a cap on the ASA of answered
calls, a cap on occupancy (0.9 by default) and more agents than the offered
load (on by default; Erlang C always needs it).  Each indicator is monotone
in the number of agents, so the smallest number is found by search; the
binding target is the one that fails with one agent fewer.  The result is
then divided by ``1 - shrinkage`` and rounded up (``scheduled``).
:func:`staff` returns that head-count as an int, :func:`staff_intervals` an
array of them, and :func:`evaluate_agents` grades a given head-count.
docs/staffing.md explains the targets and the defaults.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional, Sequence, Tuple, Union, overload

import numpy as np

from .errors import AcdError, InvalidInput

__all__ = (
    "erlang_b",
    "erlang_c",
    "erlang_c_service_level",
    "erlang_c_asa",
    "erlang_c_queue_length",
    "occupancy",
    "ErlangA",
    "erlang_a",
    "TARGETS",
    "Staffing",
    "staff",
    "staff_detail",
    "evaluate_agents",
    "staff_intervals",
)

ArrayLike = Union[float, int, Sequence[float], np.ndarray]
FloatOrArray = Union[float, np.ndarray]

# ---------------------------------------------------------------- validation


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_))


def _scalar_float(name: str, v: object, *, lo: float = 0.0, lo_open: bool = False,
                  hi: Optional[float] = None, hi_open: bool = False, allow_inf: bool = False) -> float:
    """``v`` as a float in the given range, or InvalidInput naming ``name``."""
    ok = _is_number(v)
    if ok:
        f = float(v)  # type: ignore[arg-type]
        ok = not math.isnan(f) and (allow_inf or not math.isinf(f))
        ok = ok and (f > lo if lo_open else f >= lo)
        if hi is not None:
            ok = ok and (f < hi if hi_open else f <= hi)
    if not ok:
        rng = f"{'>' if lo_open else '>='} {lo:g}"
        if hi is not None:
            rng += f" and {'<' if hi_open else '<='} {hi:g}"
        kind = "a number" if allow_inf else "a finite number"
        raise InvalidInput(f"{name} must be {kind} {rng}, got {v!r}")
    return f


def _scalar_int(name: str, v: object, lo: int = 1) -> int:
    if not (isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) and int(v) >= lo):
        raise InvalidInput(f"{name} must be an int >= {lo}, got {v!r}")
    return int(v)


def _array_float(name: str, v: object, *, lo: float = 0.0, lo_open: bool = False,
                 allow_inf: bool = False) -> np.ndarray:
    """``v`` (scalar or array-like) as a float array with every element in range."""
    if _is_number(v) or isinstance(v, (bool, np.bool_, str, bytes)) or v is None:
        return np.asarray(_scalar_float(name, v, lo=lo, lo_open=lo_open, allow_inf=allow_inf), dtype=float)
    try:
        arr = np.asarray(v)
    except Exception:  # ragged sequences and the like
        raise InvalidInput(f"{name} must be a number or an array of numbers, got {v!r}") from None
    if arr.dtype == bool or arr.dtype.kind not in "iuf":
        raise InvalidInput(f"{name} must be a number or an array of numbers, got {v!r}")
    arr = arr.astype(float)
    bad = np.isnan(arr) | (arr <= lo if lo_open else arr < lo)
    if not allow_inf:
        bad |= np.isinf(arr)
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        _scalar_float(name, arr.ravel()[i].item(), lo=lo, lo_open=lo_open, allow_inf=allow_inf)  # raises
    return arr


def _array_int(name: str, v: object, lo: int = 1) -> np.ndarray:
    if _is_number(v) or isinstance(v, (bool, np.bool_, str, bytes)) or v is None:
        return np.asarray(_scalar_int(name, v, lo), dtype=np.int64)
    try:
        arr = np.asarray(v)
    except Exception:
        raise InvalidInput(f"{name} must be an int >= {lo} or an array of them, got {v!r}") from None
    if arr.dtype.kind not in "iu" or arr.dtype == bool:
        raise InvalidInput(f"{name} must be an int >= {lo} or an array of them, got {v!r}")
    bad = arr < lo
    if bad.any():
        i = int(np.flatnonzero(bad.ravel())[0])
        raise InvalidInput(f"{name} must be an int >= {lo}, got {arr.ravel()[i].item()!r}")
    return arr.astype(np.int64)


def _out(x: np.ndarray, scalar: bool) -> FloatOrArray:
    return float(x) if scalar else x


# ---------------------------------------------------------------- Erlang B and C


def _erlang_b_scalar(n: int, a: float) -> float:
    b = 1.0
    for k in range(1, n + 1):
        ab = a * b
        b = ab / (k + ab)
    return b


def _erlang_b_array(n: np.ndarray, a: np.ndarray) -> np.ndarray:
    """B(n, a) elementwise; one pass of the recursion up to max(n)."""
    n, a = np.broadcast_arrays(n, a)
    flat_n, flat_a = n.ravel(), a.ravel()
    out = np.empty(flat_n.shape, dtype=float)
    if flat_n.size == 0:
        return out.reshape(n.shape)
    order = np.argsort(flat_n, kind="stable")
    sorted_n = flat_n[order]
    b = np.ones(flat_n.shape, dtype=float)
    pos = 0
    for k in range(1, int(sorted_n[-1]) + 1):
        ab = flat_a * b
        b = ab / (k + ab)
        end = int(np.searchsorted(sorted_n, k, side="right"))
        if end > pos:
            idx = order[pos:end]
            out[idx] = b[idx]
            pos = end
    return out.reshape(n.shape)


def erlang_b(servers: Any, load: Any) -> FloatOrArray:
    """Erlang B: probability that a call finds all ``servers`` busy (and is lost) at ``load`` Erlangs.

    Scalars give a float; arrays (broadcast together) give an array.
    """
    scalar = _is_number(servers) and _is_number(load)
    n = _array_int("servers", servers)
    a = _array_float("load", load)
    if scalar:
        return _erlang_b_scalar(int(n), float(a))
    return _erlang_b_array(n, a)


def _c_from_b(n: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        c = n * b / (n - a * (1.0 - b))
    return np.where(a < n, np.minimum(c, 1.0), 1.0)


def _c_scalar(n: int, a: float, b: Optional[float] = None) -> float:
    if a >= n:
        return 1.0
    if b is None:
        b = _erlang_b_scalar(n, a)
    return min(n * b / (n - a * (1.0 - b)), 1.0)


def erlang_c(servers: Any, load: Any) -> FloatOrArray:
    """Erlang C: probability that a call has to wait (all ``servers`` busy), callers never abandoning.

    ``n B / (n - a (1 - B))`` for ``load < servers``; 1 when ``load >= servers``
    (no steady state: the queue grows without bound).
    """
    scalar = _is_number(servers) and _is_number(load)
    n = _array_int("servers", servers)
    a = _array_float("load", load)
    if scalar:
        return _c_scalar(int(n), float(a))
    n, a = np.broadcast_arrays(n, a)
    return _c_from_b(n, a, _erlang_b_array(n, a))


def erlang_c_service_level(servers: Any, load: Any, aht: Any, t: Any) -> FloatOrArray:
    """Erlang C service level: P(wait <= ``t``) ``= 1 - C exp(-(n - a) t / aht)``; 0 when ``load >= servers``.

    Every caller is answered in Erlang C, so this is answered within ``t``
    over offered and over answered alike.
    """
    scalar = all(_is_number(v) for v in (servers, load, aht, t))
    n = _array_int("servers", servers)
    a = _array_float("load", load)
    h = _array_float("aht", aht, lo_open=True)
    tt = _array_float("t", t, allow_inf=True)
    n, a, h, tt = np.broadcast_arrays(n, a, h, tt)
    c = _c_from_b(n, a, _erlang_b_array(n, a)) if not scalar else np.asarray(_c_scalar(int(n), float(a)))
    with np.errstate(invalid="ignore", over="ignore"):
        sl = np.where(a < n, 1.0 - c * np.exp(-np.where(a < n, n - a, 1.0) * tt / h), 0.0)
    return _out(np.asarray(sl, dtype=float), scalar)


def erlang_c_asa(servers: Any, load: Any, aht: Any) -> FloatOrArray:
    """Erlang C average speed of answer ``C aht / (n - a)`` (mean wait of all, all answered); inf if ``load >= servers``."""
    scalar = all(_is_number(v) for v in (servers, load, aht))
    n = _array_int("servers", servers)
    a = _array_float("load", load)
    h = _array_float("aht", aht, lo_open=True)
    n, a, h = np.broadcast_arrays(n, a, h)
    c = _c_from_b(n, a, _erlang_b_array(n, a)) if not scalar else np.asarray(_c_scalar(int(n), float(a)))
    with np.errstate(divide="ignore", invalid="ignore"):
        asa = np.where(a < n, c * h / np.where(a < n, n - a, 1.0), math.inf)
    return _out(np.asarray(asa, dtype=float), scalar)


def erlang_c_queue_length(servers: Any, load: Any) -> FloatOrArray:
    """Erlang C mean number of callers waiting ``C a / (n - a)``; inf if ``load >= servers``."""
    scalar = _is_number(servers) and _is_number(load)
    n = _array_int("servers", servers)
    a = _array_float("load", load)
    n, a = np.broadcast_arrays(n, a)
    c = _c_from_b(n, a, _erlang_b_array(n, a)) if not scalar else np.asarray(_c_scalar(int(n), float(a)))
    lq = np.where(a < n, c * a / np.where(a < n, n - a, 1.0), math.inf)
    return _out(np.asarray(lq, dtype=float), scalar)


def occupancy(servers: Any, load: Any) -> FloatOrArray:
    """Agent occupancy without abandonment: ``load / servers``, capped at 1."""
    scalar = _is_number(servers) and _is_number(load)
    n = _array_int("servers", servers)
    a = _array_float("load", load)
    return _out(np.minimum(a / n, 1.0), scalar)


# ---------------------------------------------------------------- Erlang A

_GL_X, _GL_W = np.polynomial.legendre.leggauss(24)
_DEPTH = 60.0  # the integrand is cut where it is below exp(-_DEPTH) times its maximum
_FSERIES = tuple((-1.0) ** k / math.factorial(k) for k in range(2, 12))


def _f(z: float) -> float:
    """``z + expm1(-z)`` (>= 0), accurate for small ``|z|``."""
    if abs(z) < 0.1:
        s = 0.0
        for c in reversed(_FSERIES):
            s = s * z + c
        return s * z * z
    if -z > 700.0:
        return math.inf
    return z + math.expm1(-z)


def _f_array(z: np.ndarray) -> np.ndarray:
    out = np.empty_like(z)
    small = np.abs(z) < 0.1
    zs = z[small]
    s = np.zeros_like(zs)
    for c in reversed(_FSERIES):
        s = s * zs + c
    out[small] = s * zs * zs
    zl = z[~small]
    with np.errstate(over="ignore"):
        out[~small] = zl + np.expm1(-zl)
    return out


@dataclass(frozen=True)
class ErlangA:
    """Steady-state indicators of the M/M/n+M queue (Erlang A); see the module docstring.

    Fields are floats, or arrays when :func:`erlang_a` was given arrays.

    * ``p_wait``: probability that an arriving call finds every agent busy
      (has to wait at all);
    * ``p_abandon``: probability that a call hangs up before being answered;
    * ``p_answered``: ``1 - p_abandon``;
    * ``asa``: mean wait of answered calls (those answered at once count 0);
    * ``mean_wait``: mean time in queue over all calls, answered or abandoned;
    * ``service_level``: answered within ``t`` / offered calls (abandons count
      as misses);
    * ``service_level_answered``: answered within ``t`` / answered calls;
    * ``occupancy``: mean fraction of agents busy;
    * ``queue_length``: mean number of callers waiting.
    """

    servers: Any
    arrival_rate: Any
    aht: Any
    patience: Any
    t: Any
    load: Any
    p_wait: Any
    p_abandon: Any
    p_answered: Any
    asa: Any
    mean_wait: Any
    service_level: Any
    service_level_answered: Any
    occupancy: Any
    queue_length: Any




def _root(fun: Any, lo: float, hi: float, target: float) -> float:
    """Bisection for ``fun(s) = target`` with ``fun`` monotone on [lo, hi] (fun(lo), fun(hi) on either side)."""
    flo = fun(lo) >= target
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if mid == lo or mid == hi:
            break
        if (fun(mid) >= target) == flo:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * max(abs(lo), abs(hi)):
            break
    return 0.5 * (lo + hi)


def _erlang_a_parts(n: int, lam: float, mu: float, theta: float, t: float) -> Tuple[float, float, float, float, float]:
    """For a waiting arrival (weights ``r_j / S``): log S and E[served], E[served and V <= t], E[abandon], E[V; served].

    Returns ``(log_s, served, served_within_t, abandon, served_wait)`` where
    the last four are ratios of integrals over ``h`` (conditional on waiting).
    """
    nmu = n * mu
    rho = lam / nmu
    if rho > 1.0:
        # mode of h at v0 = log(rho) / theta; c = lambda exp(-theta v0) = n mu
        theta_v0 = math.log(rho)
        v0 = theta_v0 / theta
        c = nmu
        log_peak = (nmu / theta) * _f(-theta_v0)  # phi(v0) - phi(0) = (n mu / theta)(rho - 1 - log rho)
    else:
        theta_v0 = 0.0
        v0 = 0.0
        c = lam
        log_peak = 0.0
    k1 = nmu - c  # >= 0
    ct = c / theta

    def psi(s: float) -> float:  # log h(v0 + s) - log h(v0)
        return -k1 * s - ct * _f(theta * s)

    # right end: psi(s_r) = -depth
    bounds = [_DEPTH / nmu + ct / nmu]  # from f(z) >= z - 1
    if k1 > 0:
        bounds.append(_DEPTH / k1)
    hi = min(bounds)
    s_r = _root(psi, 0.0, hi, -_DEPTH) if psi(hi) < -_DEPTH else hi
    # left end (only when the mode is inside): f(z) >= z^2 / 2 for z <= 0
    s_l = 0.0
    if v0 > 0.0:
        lb = -min(v0, math.sqrt(2.0 * _DEPTH / (c * theta)))
        s_l = lb if psi(lb) >= -_DEPTH else _root(psi, lb, 0.0, -_DEPTH)
    s_t = t - v0
    edges = sorted({s_l, 0.0, s_r} | ({s_t} if s_l < s_t < s_r else set()))

    def integrals(m: int) -> np.ndarray:
        xs, ws = [], []
        for a_, b_ in zip(edges[:-1], edges[1:]):
            if b_ <= a_:
                continue
            br = np.linspace(a_, b_, m + 1)
            half = 0.5 * (br[1:] - br[:-1])
            mid = 0.5 * (br[1:] + br[:-1])
            xs.append((mid[:, None] + half[:, None] * _GL_X).ravel())
            ws.append((half[:, None] * _GL_W).ravel())
        s = np.concatenate(xs)
        w = np.concatenate(ws)
        dens = w * np.exp(-k1 * s - ct * _f_array(theta * s))
        tv = theta_v0 + theta * s  # theta * v
        y = np.exp(-tv)  # P(patience > v)
        v = v0 + s
        within = s <= s_t
        i1 = dens.sum()
        return np.array([
            math.log(i1),
            (dens * y).sum() / i1,
            (dens * y)[within].sum() / i1,
            (dens * -np.expm1(-tv)).sum() / i1,
            (dens * v * y).sum() / i1,
        ])

    m = 8
    prev = integrals(m)
    while True:
        m *= 2
        cur = integrals(m)
        err = np.abs(cur - prev)
        scale = np.array([1.0, 1.0, 1.0, 1.0, max(abs(cur[4]), 1e-300)])
        if np.all(err <= 1e-14 * scale + 1e-15) or m >= 4096:
            break
        prev = cur
    log_s = math.log(nmu) + log_peak + float(cur[0])
    return log_s, float(cur[1]), float(cur[2]), float(cur[3]), float(cur[4])


def _erlang_a_scalar(n: int, lam: float, aht: float, patience: float, t: float,
                     b: Optional[float] = None) -> ErlangA:
    """Erlang A for scalars; ``b`` is Erlang B at (n, lam * aht) when already known."""
    a = lam * aht
    mu = 1.0 / aht
    if lam == 0.0:
        return ErlangA(n, lam, aht, patience, t, a, 0.0, 0.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0)
    if math.isinf(patience):  # Erlang C
        if a >= n:
            sl = 1.0 if math.isinf(t) else 0.0  # unstable: every wait is eventually infinite
            return ErlangA(n, lam, aht, patience, t, a, 1.0, 0.0, 1.0, math.inf, math.inf, sl, sl, 1.0, math.inf)
        c = _c_scalar(n, a, b)
        sl = 1.0 - c * math.exp(-(n - a) * t / aht) if not math.isinf(t) else 1.0
        asa = c * aht / (n - a)
        return ErlangA(n, lam, aht, patience, t, a, c, 0.0, 1.0, asa, asa, sl, sl, a / n, lam * asa)
    theta = 1.0 / patience
    if b is None:
        b = _erlang_b_scalar(n, a)
    log_s, served, within, abandon, served_wait = _erlang_a_parts(n, lam, mu, theta, t)
    # p_wait = S / (1/B - 1 + S), in logs
    if b <= 0.0:
        p_wait = 0.0
    else:
        e = math.log1p(-b) - math.log(b) - log_s if b < 1.0 else -math.inf
        p_wait = 1.0 / (1.0 + math.exp(e)) if e < 700.0 else 0.0
    p_ab = p_wait * abandon
    p_ans = (1.0 - p_wait) + p_wait * served
    sl = (1.0 - p_wait) + p_wait * within
    asa = p_wait * served_wait / p_ans if p_ans > 0.0 else math.nan
    mean_wait = p_ab * patience
    return ErlangA(
        servers=n, arrival_rate=lam, aht=aht, patience=patience, t=t, load=a,
        p_wait=p_wait, p_abandon=p_ab, p_answered=p_ans, asa=asa, mean_wait=mean_wait,
        service_level=sl, service_level_answered=sl / p_ans if p_ans > 0.0 else math.nan,
        occupancy=min(lam * p_ans * aht / n, 1.0), queue_length=lam * mean_wait)


def erlang_a(servers: Any, arrival_rate: Any, aht: Any, patience: Any, t: Any = 20.0) -> ErlangA:
    """Erlang A (M/M/n+M) indicators for ``servers`` agents, see :class:`ErlangA` and the module docstring.

    ``arrival_rate`` in calls per time unit; ``aht`` (mean handle time),
    ``patience`` (mean time a caller is willing to wait; ``math.inf`` gives
    Erlang C) and ``t`` (service-level threshold) in that time unit.

    Scalars give an :class:`ErlangA` of floats; arrays (broadcast together,
    one element per interval, say) give one whose fields are arrays.
    """
    args = (servers, arrival_rate, aht, patience, t)
    if all(_is_number(v) for v in args):
        return _erlang_a_scalar(
            _scalar_int("servers", servers),
            _scalar_float("arrival_rate", arrival_rate),
            _scalar_float("aht", aht, lo_open=True),
            _scalar_float("patience", patience, lo_open=True, allow_inf=True),
            _scalar_float("t", t, allow_inf=True))
    n = _array_int("servers", servers)
    lam = _array_float("arrival_rate", arrival_rate)
    h = _array_float("aht", aht, lo_open=True)
    p = _array_float("patience", patience, lo_open=True, allow_inf=True)
    tt = _array_float("t", t, allow_inf=True)
    n, lam, h, p, tt = np.broadcast_arrays(n, lam, h, p, tt)
    rows = [_erlang_a_scalar(int(n.flat[i]), float(lam.flat[i]), float(h.flat[i]), float(p.flat[i]),
                             float(tt.flat[i])) for i in range(n.size)]
    fields = {}
    for name in ErlangA.__dataclass_fields__:
        fields[name] = np.array([getattr(r, name) for r in rows],
                                dtype=np.int64 if name == "servers" else float).reshape(n.shape)
    return ErlangA(**fields)


# ---------------------------------------------------------------- staffing


class _BTable:
    """Erlang B at one load for n = 0, 1, 2, ... computed once by the recursion and extended on demand."""

    def __init__(self, a: float):
        self.a = a
        self.values = [1.0]

    def __call__(self, n: int) -> float:
        v = self.values
        a = self.a
        b = v[-1]
        for k in range(len(v), n + 1):
            ab = a * b
            b = ab / (k + ab)
            v.append(b)
        return v[n]


_MAX_AGENTS = 10_000_000

#: the names :attr:`Staffing.bound` and :attr:`Staffing.fails` use, in the order ties are broken
TARGETS = ("service_level", "abandon", "asa", "occupancy", "load")
_LOAD_TOL = 1e-9  # relative: a load computed as 10.000000001 from calls / interval is 10


@dataclass(frozen=True)
class Staffing:
    """Agents for one interval and what Erlang predicts with them (:func:`staff_detail`, :func:`evaluate_agents`).

    * ``agents``: agents on the phones; ``scheduled``: ``agents / (1 - shrinkage)``
      rounded up (the head-count to roster);
    * ``bound``: the target that set ``agents``, the first of :data:`TARGETS`
      that fails with one agent fewer: ``"service_level"``, ``"abandon"``
      (the ``max_abandon`` / answer-rate cap), ``"asa"``, ``"occupancy"``,
      ``"load"`` (the never-at-or-below-the-offered-load floor, and Erlang
      C's own stability condition); ``"none"`` when no target binds (one
      agent, because calls arrive), ``"zero"`` when no calls arrive (0
      agents), ``"given"`` when the head-count was given
      (:func:`evaluate_agents`);
    * ``fails``: the targets not met with ``agents`` (empty for a search
      result), in the order of :data:`TARGETS`;
    * the indicators at ``agents`` (see :class:`ErlangA`): ``load`` in
      Erlangs, ``service_level`` (answered within ``t`` over offered),
      ``service_level_answered``, ``p_wait``, ``p_abandon``, ``asa`` (mean
      wait of answered calls; ``inf`` when none is answered in finite time),
      ``occupancy``.  With 0 agents and calls: service level 0, ASA ``inf``,
      occupancy 0, and every call is lost (``p_abandon`` 1), with patience
      or without.
    """

    agents: int
    scheduled: int
    bound: str
    fails: Tuple[str, ...]
    arrival_rate: float
    aht: float
    patience: Optional[float]
    load: float
    service_level: float
    service_level_answered: float
    p_wait: float
    p_abandon: float
    asa: float
    occupancy: float

    @property
    def model(self) -> str:
        """``"erlang A"`` (callers abandon) or ``"erlang C"`` (they wait as long as needed)."""
        return "erlang C" if self.patience is None else "erlang A"


@dataclass(frozen=True)
class _Targets:
    sl: Optional[Tuple[float, float]]
    max_ab: Optional[float]
    max_asa: Optional[float]
    max_occ: Optional[float]
    floor: bool


def _validate_staff(arrival_rate: Any, aht: Any, service_level: Any, max_abandon: Any, patience: Any,
                    shrinkage: Any, max_occupancy: Any, min_over_load: Any, max_asa: Any,
                    *, arrays: bool) -> Tuple[Any, Any, Any, _Targets, float]:
    conv = _array_float if arrays else _scalar_float
    lam = conv("arrival_rate", arrival_rate)
    h = conv("aht", aht, lo_open=True)
    p = None if patience is None else conv("patience", patience, lo_open=True, allow_inf=True)
    finite_patience = p is not None and bool(np.any(np.isfinite(p)))
    sl: Optional[Tuple[float, float]] = None
    if service_level is not None:
        if not (isinstance(service_level, (tuple, list)) and len(service_level) == 2):
            raise InvalidInput(f"service_level must be a (fraction, seconds) pair or None, got {service_level!r}")
        t = _scalar_float("service_level seconds", service_level[1], allow_inf=True)
        frac = service_level[0]
        if _is_number(frac) and float(frac) == 1.0:
            # some calls always wait longer than any finite t, and with patience some never get answered
            raise InvalidInput(f"service_level fraction must be a finite number >= 0 and < 1, got {frac!r} "
                               f"(100 % answered within {t:g} can never be met)")
        sl = (_scalar_float("service_level fraction", frac, hi=1.0, hi_open=True), t)
    ab = None
    if max_abandon is not None:
        if p is None:
            raise InvalidInput(f"max_abandon needs patience (erlang a); without it callers never abandon, "
                               f"got max_abandon={max_abandon!r} and patience=None")
        if _is_number(max_abandon) and float(max_abandon) == 0.0:
            if finite_patience:
                raise InvalidInput(f"max_abandon 0 (answer rate 1.0) can never be met with a finite patience: "
                                   f"some callers always hang up before an agent is free, got max_abandon="
                                   f"{max_abandon!r}")
            ab = 0.0
        else:
            ab = _scalar_float("max_abandon", max_abandon, lo_open=True, hi=1.0)
    asa = None
    if max_asa is not None:
        if _is_number(max_asa) and float(max_asa) == 0.0:
            raise InvalidInput(f"max_asa must be > 0, got {max_asa!r} (an ASA of 0 can never be met: "
                               f"some calls always wait)")
        asa = _scalar_float("max_asa", max_asa, lo_open=True)
    sh = _scalar_float("shrinkage", shrinkage, hi=1.0, hi_open=True)
    occ = None if max_occupancy is None else _scalar_float("max_occupancy", max_occupancy, lo_open=True, hi=1.0)
    if not isinstance(min_over_load, (bool, np.bool_)):
        raise InvalidInput(f"min_over_load must be True or False, got {min_over_load!r}")
    return lam, h, p, _Targets(sl, ab, asa, occ, bool(min_over_load)), sh


def _indicators(n: int, lam: float, aht: float, patience: float, t: float, table: _BTable) -> ErlangA:
    if n == 0:  # nobody is ever answered
        a = lam * aht
        return ErlangA(0, lam, aht, patience, t, a, 1.0, 1.0, 0.0, math.inf, math.inf, 0.0, 0.0, 0.0, math.inf)
    return _erlang_a_scalar(n, lam, aht, patience, t, table(n))


def _fails(n: int, r: ErlangA, tg: _Targets, erlang_c: bool) -> Tuple[str, ...]:
    out = []
    if tg.sl is not None and not r.service_level >= tg.sl[0]:
        out.append("service_level")
    if tg.max_ab is not None and not r.p_abandon <= tg.max_ab:
        out.append("abandon")
    if tg.max_asa is not None and not r.asa <= tg.max_asa:
        out.append("asa")
    if tg.max_occ is not None and not r.occupancy <= tg.max_occ:
        out.append("occupancy")
    a = r.load
    if (tg.floor or erlang_c) and n <= a + _LOAD_TOL * max(a, 1.0):
        out.append("load")
    return tuple(out)


def _staffing(n: int, r: ErlangA, bound: str, fails: Tuple[str, ...], patience: Optional[float],
              shrinkage: float) -> Staffing:
    return Staffing(
        agents=n, scheduled=_with_shrinkage(n, shrinkage), bound=bound, fails=fails,
        arrival_rate=float(r.arrival_rate), aht=float(r.aht), patience=patience, load=float(r.load),
        service_level=float(r.service_level), service_level_answered=float(r.service_level_answered),
        p_wait=float(r.p_wait), p_abandon=float(r.p_abandon), asa=float(r.asa), occupancy=float(r.occupancy))


def _staff_scalar(lam: float, aht: float, patience: Optional[float], tg: _Targets, shrinkage: float) -> Staffing:
    """Fewest agents meeting every target, with the one that binds."""
    pat = math.inf if patience is None else patience
    erlang_c = math.isinf(pat)
    pat_out = None if erlang_c else pat
    t = tg.sl[1] if tg.sl is not None else 0.0
    a = lam * aht
    table = _BTable(a)
    if lam == 0.0:
        return _staffing(0, _indicators(1, 0.0, aht, pat, t, table), "zero", (), pat_out, shrinkage)
    seen: dict = {}

    def fails(n: int) -> Tuple[str, ...]:
        if n not in seen:
            seen[n] = _fails(n, _indicators(n, lam, aht, pat, t, table), tg, erlang_c)
        return seen[n]

    # every indicator is monotone in n: from a head-count known to fail, grow an upper bound, then bisect
    lo = math.floor(a) if (tg.floor or erlang_c) else 0
    hi = lo + 1
    step = max(1, math.ceil(math.sqrt(a)))
    while fails(hi):
        lo = hi
        hi += step
        step *= 2
        if hi > _MAX_AGENTS:
            raise AcdError(f"no staffing up to {_MAX_AGENTS} agents meets the targets (load {a!r})")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fails(mid):
            lo = mid
        else:
            hi = mid
    below = fails(hi - 1)
    bound = below[0] if below else "none"
    return _staffing(hi, _indicators(hi, lam, aht, pat, t, table), bound, (), pat_out, shrinkage)


def _with_shrinkage(n: int, shrinkage: float) -> int:
    if shrinkage == 0.0 or n == 0:
        return n
    x = n / (1.0 - shrinkage)
    r = math.ceil(x)
    return r - 1 if r - x > 1.0 - 1e-9 else r  # keep 10 / 0.5 -> 20 despite rounding


_TARGETS_DOC = """
    Targets (all that are given must hold):

    * ``service_level=(fraction, t)``: at least ``fraction`` of offered calls
      answered within ``t`` (Erlang A's ``service_level`` when ``patience``
      is given, Erlang C's ``P(W <= t)`` otherwise); ``None``: no target;
    * ``max_abandon``: Erlang A's ``p_abandon`` at most this (needs
      ``patience``; 1 minus the answer-rate target);
    * ``max_asa``: mean wait of answered calls at most this;
    * ``max_occupancy``: occupancy at most this, **0.9 by default**
      (``None`` or 1: no cap);
    * ``min_over_load``: more agents than the offered load ``a`` (``n > a``),
      **on by default** (``False``: off).

    The two defaults are the safe staffing: with abandonment a
    service-level target alone is met with fewer agents than the load (the
    callers who hang up make room), e.g. 87.5 Erlangs of 420 s calls with
    3 min patience meet 80 % in 60 s with 79 agents, at 98 % occupancy and
    11.5 % abandonment.  The floor is ``n > a`` rather than ``n >= a``
    because it is Erlang C's stability condition: at ``n = a`` the agents
    are never idle and without abandonment the queue grows without bound,
    so the floor means the same under both models (for a load that is not a
    whole number it is ``ceil(a)``).

    A target that can never be met raises :class:`acd.errors.InvalidInput`:
    a service-level fraction of 1, ``max_abandon=0`` with a finite
    patience, ``max_asa=0``.

    ``patience`` (mean, same unit as ``aht``) selects Erlang A; ``None`` or
    ``inf`` selects Erlang C (which also needs more agents than the load).
    The agents found are divided by ``1 - shrinkage`` (breaks, training,
    absence) and rounded up.  A zero arrival rate needs 0 agents.
"""


def staff_detail(arrival_rate: float, aht: float, *, service_level: Optional[Tuple[float, float]] = (0.8, 20.0),
                 max_abandon: Optional[float] = None, patience: Optional[float] = None, shrinkage: float = 0.0,
                 max_occupancy: Optional[float] = 0.9, min_over_load: bool = True,
                 max_asa: Optional[float] = None) -> Staffing:
    lam, h, p, tg, sh = _validate_staff(arrival_rate, aht, service_level, max_abandon, patience, shrinkage,
                                        max_occupancy, min_over_load, max_asa, arrays=False)
    return _staff_scalar(lam, h, p, tg, sh)


staff_detail.__doc__ = ("The fewest agents for ``arrival_rate`` calls per time unit of mean handle time ``aht``, "
                        "as a :class:`Staffing` (agents, scheduled head-count, binding target, indicators).\n"
                        + _TARGETS_DOC)


def staff(arrival_rate: float, aht: float, *, service_level: Optional[Tuple[float, float]] = (0.8, 20.0),
          max_abandon: Optional[float] = None, patience: Optional[float] = None, shrinkage: float = 0.0,
          max_occupancy: Optional[float] = 0.9, min_over_load: bool = True, max_asa: Optional[float] = None) -> int:
    return staff_detail(arrival_rate, aht, service_level=service_level, max_abandon=max_abandon, patience=patience,
                        shrinkage=shrinkage, max_occupancy=max_occupancy, min_over_load=min_over_load,
                        max_asa=max_asa).scheduled


staff.__doc__ = ("Fewest agents to schedule for ``arrival_rate`` calls per time unit of mean handle time ``aht`` "
                 "(:attr:`Staffing.scheduled` of :func:`staff_detail`).\n" + _TARGETS_DOC)


def evaluate_agents(agents: int, arrival_rate: float, aht: float, *,
                    service_level: Optional[Tuple[float, float]] = (0.8, 20.0), max_abandon: Optional[float] = None,
                    patience: Optional[float] = None, shrinkage: float = 0.0, max_occupancy: Optional[float] = 0.9,
                    min_over_load: bool = True, max_asa: Optional[float] = None) -> Staffing:
    """The indicators with ``agents`` on the phones (no search) and the targets they fail (:attr:`Staffing.fails`).

    The targets are those of :func:`staff_detail`; ``bound`` is ``"given"``
    (``"zero"`` without calls); ``agents`` may be 0.
    """
    n = _scalar_int("agents", agents, lo=0)
    lam, h, p, tg, sh = _validate_staff(arrival_rate, aht, service_level, max_abandon, patience, shrinkage,
                                        max_occupancy, min_over_load, max_asa, arrays=False)
    pat = math.inf if p is None else p
    t = tg.sl[1] if tg.sl is not None else 0.0
    table = _BTable(lam * h)
    if lam == 0.0:
        return _staffing(n, _indicators(max(n, 1), 0.0, h, pat, t, table), "zero", (),
                         None if math.isinf(pat) else pat, sh)
    r = _indicators(n, lam, h, pat, t, table)
    return _staffing(n, r, "given", _fails(n, r, tg, math.isinf(pat)), None if math.isinf(pat) else pat, sh)


def staff_intervals(arrival_rates: Any, aht: Any, *, service_level: Optional[Tuple[float, float]] = (0.8, 20.0),
                    max_abandon: Optional[float] = None, patience: Any = None, shrinkage: float = 0.0,
                    max_occupancy: Optional[float] = 0.9, min_over_load: bool = True,
                    max_asa: Optional[float] = None) -> np.ndarray:
    """:func:`staff` for every interval: ``arrival_rates`` (and ``aht``, ``patience`` if arrays) broadcast together.

    Returns an int64 array of agents to schedule, one per interval; the
    targets and their defaults are those of :func:`staff`.
    """
    lam, h, p, tg, sh = _validate_staff(arrival_rates, aht, service_level, max_abandon, patience, shrinkage,
                                        max_occupancy, min_over_load, max_asa, arrays=True)
    if p is None:
        lam, h = np.broadcast_arrays(lam, h)
        p = np.full(lam.shape, math.inf)
    else:
        lam, h, p = np.broadcast_arrays(lam, h, p)
    out = np.empty(lam.shape, dtype=np.int64)
    for i in range(lam.size):
        pi = float(p.flat[i])
        out.flat[i] = _staff_scalar(float(lam.flat[i]), float(h.flat[i]), None if math.isinf(pi) else pi, tg,
                                    sh).scheduled
    return out
