"""acd.erlang against published values and independent computations.

References used here and nowhere in the module:

* Erlang B as a ratio of Poisson probabilities (scipy.stats.poisson);
* Erlang C from the Poisson form, its service level from the waiting-time
  mixture of gamma distributions (scipy.stats.gamma);
* Erlang A from the truncated birth-death chain solved as a linear system
  (numpy) and a tagged caller's absorbing chain (scipy.linalg.expm for the
  service level, the fundamental matrix for waits);
* Erlang A from the incomplete-gamma closed forms (scipy.special.gammainc),
  and at 40 digits (mpmath) when it is installed.
"""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import linalg, special, stats

from acd import erlang
from acd.errors import AcdError, InvalidInput

HOUR = 3600.0


# ---------------------------------------------------------------- published values


def test_erlang_a_reference_case():
    # 13 agents, 200 calls/h, AHT 3 min, mean patience 5 min, t = 20 s
    r = erlang.erlang_a(13, 200 / HOUR, 180.0, 300.0, 20.0)
    assert r.p_wait == pytest.approx(0.225797, abs=5e-7)
    assert r.p_abandon == pytest.approx(0.0249633, abs=5e-8)
    # 0.858178 is P(answered within 20 s) over ALL offered calls
    assert r.service_level == pytest.approx(0.858178, abs=5e-7)
    assert r.service_level_answered == pytest.approx(0.858178 / (1 - 0.0249633), rel=1e-5)
    assert r.load == pytest.approx(10.0)
    assert r.p_answered == pytest.approx(1 - r.p_abandon, abs=1e-15)


def test_erlang_c_reference_value():
    assert erlang.erlang_c(132, 123.0) == pytest.approx(0.3211161792617074, rel=1e-12)
    assert erlang.erlang_c(132, 123) == pytest.approx(0.3211161792617074, rel=1e-12)


# ---------------------------------------------------------------- Erlang B and C


def b_ref(n, a):
    return stats.poisson.pmf(n, a) / stats.poisson.cdf(n, a)


def c_ref(n, a):
    top = stats.poisson.pmf(n, a) * n / (n - a)
    return top / (stats.poisson.cdf(n - 1, a) + top)


CASES_BC = [(1, 0.5), (2, 1.5), (5, 4.9), (10, 3.0), (30, 25.0), (132, 123.0), (500, 480.0), (1000, 700.0),
            (5000, 4950.0), (20000, 19900.0)]


@pytest.mark.parametrize("n, a", CASES_BC)
def test_erlang_b_matches_poisson_ratio(n, a):
    assert erlang.erlang_b(n, a) == pytest.approx(b_ref(n, a), rel=1e-10)


@pytest.mark.parametrize("n, a", CASES_BC)
def test_erlang_c_matches_poisson_form(n, a):
    assert erlang.erlang_c(n, a) == pytest.approx(c_ref(n, a), rel=1e-10)


def mmn_sl_ref(n, a, aht, t):
    """P(W <= t) for M/M/n: sum over the queue found at arrival of Erlang(j + 1, n mu) waits."""
    c = c_ref(n, a)
    rho = a / n
    j = np.arange(0, 20000)
    pj = c * (1 - rho) * rho ** j   # P(arrival finds n + j)
    return (1 - c) + float(np.sum(pj * stats.gamma.cdf(t, j + 1, scale=aht / n)))


@pytest.mark.parametrize("n, a, aht, t", [(13, 10.0, 180.0, 20.0), (5, 4.0, 300.0, 60.0), (132, 123.0, 240.0, 15.0),
                                          (40, 39.5, 100.0, 0.0)])
def test_erlang_c_service_level_and_asa(n, a, aht, t):
    assert erlang.erlang_c_service_level(n, a, aht, t) == pytest.approx(mmn_sl_ref(n, a, aht, t), rel=1e-9)
    assert erlang.erlang_c_asa(n, a, aht) == pytest.approx(c_ref(n, a) * aht / (n - a), rel=1e-10)
    assert erlang.erlang_c_queue_length(n, a) == pytest.approx(c_ref(n, a) * a / (n - a), rel=1e-10)
    assert erlang.occupancy(n, a) == pytest.approx(a / n)


def test_overloaded_erlang_c():
    assert erlang.erlang_c(10, 10.0) == 1.0
    assert erlang.erlang_c(10, 12.5) == 1.0
    assert erlang.erlang_c_service_level(10, 12.0, 180.0, 20.0) == 0.0
    assert erlang.erlang_c_asa(10, 12.0, 180.0) == math.inf
    assert erlang.erlang_c_queue_length(10, 12.0) == math.inf
    assert erlang.occupancy(10, 12.0) == 1.0


def test_zero_load():
    assert erlang.erlang_b(3, 0.0) == 0.0
    assert erlang.erlang_c(3, 0.0) == 0.0
    assert erlang.erlang_c_service_level(3, 0.0, 180.0, 0.0) == 1.0
    r = erlang.erlang_a(3, 0.0, 180.0, 60.0, 20.0)
    assert (r.p_wait, r.p_abandon, r.service_level, r.asa, r.occupancy) == (0.0, 0.0, 1.0, 0.0, 0.0)


def test_vectorised_b_and_c_equal_scalar():
    n = np.array([[1, 5, 132], [20000, 7, 7]])
    a = np.array([[0.5, 4.9, 123.0], [19900.0, 2.0, 8.0]])
    b = erlang.erlang_b(n, a)
    c = erlang.erlang_c(n, a)
    sl = erlang.erlang_c_service_level(n, a, 180.0, 20.0)
    asa = erlang.erlang_c_asa(n, a, 180.0)
    assert b.shape == c.shape == sl.shape == asa.shape == (2, 3)
    for idx in np.ndindex(n.shape):
        ni, ai = int(n[idx]), float(a[idx])
        assert b[idx] == erlang.erlang_b(ni, ai)
        assert c[idx] == pytest.approx(erlang.erlang_c(ni, ai), rel=1e-15)
        assert sl[idx] == pytest.approx(erlang.erlang_c_service_level(ni, ai, 180.0, 20.0), rel=1e-15)
        assert asa[idx] == pytest.approx(erlang.erlang_c_asa(ni, ai, 180.0), rel=1e-15)
    # broadcasting: one load over many staffing levels
    levels = np.arange(124, 140)
    np.testing.assert_allclose(erlang.erlang_c(levels, 123.0), [c_ref(k, 123.0) for k in levels], rtol=1e-10)
    assert isinstance(erlang.erlang_b(3, 2.0), float)


# ---------------------------------------------------------------- Erlang A, independent references


def erlang_a_chain(n, lam, aht, patience, t, extra=400):
    """Erlang A from the truncated birth-death chain and a tagged caller's absorbing chain."""
    mu, theta = 1 / aht, 1 / patience
    size = n + extra + 1
    k = np.arange(size)
    birth = np.full(size, lam)
    birth[-1] = 0.0
    death = np.minimum(k, n) * mu + np.maximum(k - n, 0) * theta
    q = np.diag(birth[:-1], 1) + np.diag(death[1:], -1)
    q -= np.diag(q.sum(axis=1))
    # pi Q = 0, sum pi = 1: replace one balance equation by the normalisation
    m = q.T.copy()
    m[-1, :] = 1.0
    rhs = np.zeros(size)
    rhs[-1] = 1.0
    pi = np.linalg.solve(m, rhs)
    pi_q = pi[n:]          # arrival finds n + j busy/waiting, j = 0..extra
    # tagged caller with i callers ahead: i -> i-1 at n mu + i theta (0 -> served at n mu), -> abandoned at theta
    M = extra + 1
    g = np.zeros((M + 2, M + 2))
    served, abandoned = M, M + 1
    for i in range(M):
        g[i, i - 1 if i else served] = n * mu + i * theta
        g[i, abandoned] = theta
        g[i, i] = -(n * mu + i * theta + theta)
    within = linalg.expm(g * t)[:M, served]
    tr = g[:M, :M]
    fund = np.linalg.inv(-tr)
    h_served = fund @ g[:M, served]
    wait_served = fund @ h_served
    wait_all = fund @ np.ones(M)
    p_wait = pi_q.sum()
    p_ab = float(pi_q @ (1 - h_served))
    return dict(p_wait=p_wait, p_abandon=p_ab, service_level=pi[:n].sum() + float(pi_q @ within),
                asa=float(pi_q @ wait_served) / (1 - p_ab), mean_wait=float(pi_q @ wait_all),
                queue_length=float(pi[n:] @ np.arange(M)), occupancy=float(pi @ np.minimum(k, n)) / n)


CASES_A = [
    # n, calls per hour, aht, patience, t
    (13, 200.0, 180.0, 300.0, 20.0),
    (1, 10.0, 180.0, 120.0, 20.0),
    (5, 120.0, 180.0, 600.0, 30.0),     # load 6 on 5 agents: overloaded, abandonment keeps it stable
    (20, 380.0, 180.0, 60.0, 10.0),
    (8, 100.0, 240.0, 5.0, 0.0),        # very impatient callers, t = 0
    (30, 900.0, 120.0, 1800.0, 60.0),
]


@pytest.mark.parametrize("n, per_hour, aht, patience, t", CASES_A)
def test_erlang_a_matches_birth_death_chain(n, per_hour, aht, patience, t):
    r = erlang.erlang_a(n, per_hour / HOUR, aht, patience, t)
    ref = erlang_a_chain(n, per_hour / HOUR, aht, patience, t)
    for key, value in ref.items():
        assert getattr(r, key) == pytest.approx(value, rel=1e-8, abs=1e-12), key
    assert r.service_level_answered == pytest.approx(ref["service_level"] / (1 - ref["p_abandon"]), rel=1e-8)
    assert r.p_answered == pytest.approx(1 - ref["p_abandon"], rel=1e-12)


def erlang_a_gamma(n, lam, aht, patience, t):
    """P(wait), P(abandon), SL from the incomplete-gamma closed forms (scipy), x = lam/theta, b = n mu/theta."""
    mu, theta = 1 / aht, 1 / patience
    x, b = lam / theta, n * mu / theta
    log_s = x - b * math.log(x) + special.gammaln(b + 1) + math.log(special.gammainc(b, x))
    served = b / x * special.gammainc(b + 1, x) / special.gammainc(b, x)   # served | waiting
    u = math.exp(-theta * t)
    within = b / x * (special.gammainc(b + 1, x) - special.gammainc(b + 1, x * u)) / special.gammainc(b, x)
    B = b_ref(n, lam * aht)
    p_wait = 1 / (1 + (1 / B - 1) * math.exp(-log_s))
    return p_wait, p_wait * (1 - served), 1 - p_wait + p_wait * within


@pytest.mark.parametrize("n, per_hour, aht, patience, t", CASES_A + [
    (100, 2000.0, 180.0, 180.0, 60.0), (500, 14000.0, 180.0, 60.0, 30.0), (2000, 39000.0, 180.0, 400.0, 20.0),
    (20000, 398000.0, 180.0, 300.0, 20.0)])
def test_erlang_a_matches_incomplete_gamma(n, per_hour, aht, patience, t):
    r = erlang.erlang_a(n, per_hour / HOUR, aht, patience, t)
    p_wait, p_ab, sl = erlang_a_gamma(n, per_hour / HOUR, aht, patience, t)
    # the closed form loses digits to cancellation at large n; the chain and mpmath tests are tighter
    assert r.p_wait == pytest.approx(p_wait, rel=1e-9)
    assert r.p_abandon == pytest.approx(p_ab, rel=1e-7)
    assert r.service_level == pytest.approx(sl, rel=1e-9)


@pytest.mark.parametrize("n, per_hour, aht, patience, t", [
    (13, 200.0, 180.0, 300.0, 20.0), (100, 2000.0, 180.0, 180.0, 60.0), (20000, 398000.0, 180.0, 300.0, 20.0),
    (5, 80.0, 180.0, 1e5, 20.0), (3, 300.0, 60.0, 30.0, 10.0)])
def test_erlang_a_high_precision(n, per_hour, aht, patience, t):
    mp = pytest.importorskip("mpmath")
    with mp.workdps(40):
        lam, mu, theta = mp.mpf(per_hour) / 3600, 1 / mp.mpf(aht), 1 / mp.mpf(patience)
        x, b, a = lam / theta, n * mu / theta, lam / mu
        inv_b = mp.mpf(1)
        for k in range(1, n + 1):
            inv_b = 1 + k / a * inv_b
        low = lambda s, z: mp.gammainc(s, 0, z)  # noqa: E731
        s0 = b * mp.e ** x * x ** -b * low(b, x)
        s_served = b * mp.e ** x * x ** (-b - 1) * low(b + 1, x)
        s_within = b * mp.e ** x * x ** (-b - 1) * (low(b + 1, x) - low(b + 1, x * mp.e ** (-theta * t)))
        pi_n = 1 / (inv_b - 1 + s0)
        ref = {"p_wait": pi_n * s0, "p_abandon": pi_n * (s0 - s_served), "service_level": 1 - pi_n * s0 + pi_n * s_within}
        ref = {k: float(v) for k, v in ref.items()}
    r = erlang.erlang_a(n, per_hour / HOUR, aht, patience, t)
    for key, value in ref.items():
        assert getattr(r, key) == pytest.approx(value, rel=1e-12), key


# ---------------------------------------------------------------- limits and identities


@pytest.mark.parametrize("n, a", [(13, 10.0), (5, 4.5), (132, 123.0), (1000, 980.0)])
def test_infinite_patience_tends_to_erlang_c(n, a):
    aht, t = 180.0, 20.0
    lam = a / aht
    c = erlang.erlang_c(n, a)
    sl = erlang.erlang_c_service_level(n, a, aht, t)
    asa = erlang.erlang_c_asa(n, a, aht)
    exact = erlang.erlang_a(n, lam, aht, math.inf, t)
    assert (exact.p_wait, exact.p_abandon, exact.service_level, exact.asa) == pytest.approx((c, 0.0, sl, asa),
                                                                                            rel=1e-14)
    for patience, tol in ((1e7, 1e-3), (1e10, 1e-6), (1e14, 1e-10)):
        r = erlang.erlang_a(n, lam, aht, patience, t)
        assert r.p_wait == pytest.approx(c, rel=tol)
        assert r.service_level == pytest.approx(sl, rel=tol)
        assert r.asa == pytest.approx(asa, rel=tol)
        assert r.mean_wait == pytest.approx(asa, rel=tol)
        assert r.p_abandon < tol
        assert r.occupancy == pytest.approx(a / n, rel=tol)


@pytest.mark.parametrize("n, a", [(1, 1.0), (10, 12.0), (50, 40.0)])
def test_no_patience_tends_to_erlang_b(n, a):
    # callers who hang up at once: a loss system
    r = erlang.erlang_a(n, a / 180.0, 180.0, 1e-9, 20.0)
    bl = erlang.erlang_b(n, a)
    assert r.p_wait == pytest.approx(bl, rel=1e-6)
    assert r.p_abandon == pytest.approx(bl, rel=1e-6)
    assert r.service_level == pytest.approx(1 - bl, rel=1e-6)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 300), load=st.floats(0.05, 2.0), aht=st.floats(10.0, 1000.0),
       patience=st.floats(1.0, 1e5), t=st.floats(0.0, 600.0))
def test_erlang_a_identities(n, load, aht, patience, t):
    lam = load * n / aht
    r = erlang.erlang_a(n, lam, aht, patience, t)
    values = [r.p_wait, r.p_abandon, r.service_level, r.asa, r.mean_wait, r.occupancy, r.queue_length]
    assert all(math.isfinite(v) for v in values)
    assert 0 <= r.p_abandon <= r.p_wait <= 1
    assert 1 - r.p_wait - 1e-12 <= r.service_level <= r.p_answered + 1e-12
    assert r.p_answered == pytest.approx(1 - r.p_abandon, abs=1e-15)
    assert r.mean_wait == pytest.approx(r.p_abandon * patience, rel=1e-12)
    assert r.queue_length == pytest.approx(lam * r.mean_wait, rel=1e-12)
    assert r.occupancy == pytest.approx(lam * aht * (1 - r.p_abandon) / n, rel=1e-12)
    assert 0 <= r.occupancy <= 1
    # more agents: less waiting, fewer abandons, better service
    more = erlang.erlang_a(n + 1, lam, aht, patience, t)
    assert more.p_wait <= r.p_wait + 1e-12
    assert more.p_abandon <= r.p_abandon + 1e-12
    assert more.service_level >= r.service_level - 1e-12
    # a longer threshold cannot lower the service level
    assert erlang.erlang_a(n, lam, aht, patience, t + 10).service_level >= r.service_level - 1e-12


def test_erlang_a_vectorised_equals_scalar():
    n = np.array([10, 13, 20, 400])
    lam = np.array([150.0, 200.0, 380.0, 7900.0]) / HOUR
    r = erlang.erlang_a(n, lam, 180.0, 300.0, 20.0)
    assert r.p_wait.shape == (4,) and r.servers.dtype == np.int64
    for i in range(4):
        s = erlang.erlang_a(int(n[i]), float(lam[i]), 180.0, 300.0, 20.0)
        for key in ("p_wait", "p_abandon", "service_level", "asa", "occupancy", "queue_length"):
            assert getattr(r, key)[i] == getattr(s, key)


# ---------------------------------------------------------------- large systems


def test_large_systems_are_finite_and_sane():
    n, a = 20000, 19900.0
    b = erlang.erlang_b(n, a)
    c = erlang.erlang_c(n, a)
    assert 0 < b < c < 1 and math.isfinite(b) and math.isfinite(c)
    assert c == pytest.approx(c_ref(n, a), rel=1e-10)
    assert erlang.erlang_c_asa(n, a, 180.0) == pytest.approx(c * 180.0 / 100.0, rel=1e-12)
    r = erlang.erlang_a(n, a / 180.0, 180.0, 300.0, 20.0)
    for key in ("p_wait", "p_abandon", "service_level", "asa", "mean_wait", "occupancy", "queue_length"):
        v = getattr(r, key)
        assert math.isfinite(v) and v >= 0, key
    assert 0 < r.p_abandon < r.p_wait < c
    assert 0.99 < r.service_level < 1 and 0.99 < r.occupancy < 1
    # far bigger, overloaded, and practically patient callers: still finite
    for args in [(100000, 99990.0 / 180, 180.0, 1e6, 20.0), (20000, 25000.0 / 180, 180.0, 300.0, 20.0),
                 (1, 100.0, 1.0, 1e12, 1.0), (7, 1e6, 1.0, 100.0, 5.0)]:
        r = erlang.erlang_a(*args)
        assert all(math.isfinite(getattr(r, k)) for k in ("p_wait", "p_abandon", "service_level", "asa"))
        assert 0 <= r.service_level <= 1 and 0 <= r.p_abandon <= 1
    # overloaded (load 25000 on 20000): the excess abandons
    r = erlang.erlang_a(20000, 25000.0 / 180, 180.0, 300.0, 20.0)
    assert r.p_abandon == pytest.approx(0.2, abs=2e-3)


# ---------------------------------------------------------------- staffing

OLD = {"max_occupancy": None, "min_over_load": False}   # the defaults before safe staffing


def _indicators(n, lam, aht, patience, t):
    """SL over offered, abandonment, ASA of answered, occupancy with n agents, from erlang_a (checked above)."""
    if n == 0:
        return 0.0, 1.0, math.inf, 0.0
    r = erlang.erlang_a(n, lam, aht, math.inf if patience is None else patience, t)
    return r.service_level, r.p_abandon, r.asa, r.occupancy


def _failing(n, lam, aht, sl=(0.8, 20.0), patience=None, max_abandon=None, max_occupancy=0.9, min_over_load=True,
             max_asa=None):
    """The targets n agents fail (Erlang C also fails without more agents than the load)."""
    s, ab, asa, occ = _indicators(n, lam, aht, patience, sl[1] if sl else 0.0)
    out = set()
    if sl is not None and s < sl[0]:
        out.add("service_level")
    if max_abandon is not None and ab > max_abandon:
        out.add("abandon")
    if max_asa is not None and not asa <= max_asa:
        out.add("asa")
    if max_occupancy is not None and occ > max_occupancy:
        out.add("occupancy")
    if (min_over_load or patience is None) and n <= lam * aht * (1 + 1e-9):
        out.add("load")
    if n == 0 and lam > 0:
        out.add("no agent")
    return out


def _meets(n, lam, aht, **kw):
    return not _failing(n, lam, aht, **kw)


@pytest.mark.parametrize("per_hour, aht, kw", [
    (200.0, 180.0, {}),
    (200.0, 180.0, {"patience": 300.0}),
    (200.0, 180.0, {"patience": 300.0, "max_abandon": 0.01}),
    (200.0, 180.0, {"service_level": (0.9, 60.0), "max_occupancy": 0.7}),
    (2000.0, 300.0, {"service_level": (0.8, 60.0), "patience": 120.0, "max_abandon": 0.03}),
    (50.0, 600.0, {"service_level": None, "patience": 200.0, "max_abandon": 0.05}),
    (398000.0, 180.0, {"patience": 300.0}),
    (398000.0, 180.0, {}),
    (750.0, 420.0, {"service_level": (0.8, 60.0), "patience": 180.0, "max_asa": 5.0}),
    (750.0, 420.0, {"service_level": (0.8, 60.0), "patience": 180.0, "max_asa": 5.0, **OLD}),
])
@pytest.mark.parametrize("defaults", ["safe", "old"])
def test_staff_is_the_fewest_agents_meeting_targets(per_hour, aht, kw, defaults):
    lam = per_hour / HOUR
    kw = dict(kw, **OLD) if defaults == "old" else kw
    n = erlang.staff(lam, aht, **kw)
    args = dict(sl=kw.get("service_level", (0.8, 20.0)), patience=kw.get("patience"),
                max_abandon=kw.get("max_abandon"), max_occupancy=kw.get("max_occupancy", 0.9),
                min_over_load=kw.get("min_over_load", True), max_asa=kw.get("max_asa"))
    assert _meets(n, lam, aht, **args)
    assert not _meets(n - 1, lam, aht, **args)
    d = erlang.staff_detail(lam, aht, **kw)
    assert d.agents == d.scheduled == n and d.fails == ()
    assert d.bound in _failing(n - 1, lam, aht, **args)


def test_staff_reference_case_and_shrinkage():
    lam = 200 / HOUR
    assert erlang.staff(lam, 180.0) == 14               # Erlang C: 13 agents give 79.6 % in 20 s
    assert erlang.staff(lam, 180.0, patience=300.0) == 13  # Erlang A: 85.8 % with 13
    assert erlang.staff(lam, 180.0, patience=300.0, max_abandon=0.01) == 15
    assert erlang.staff(lam, 180.0, shrinkage=0.3) == math.ceil(14 / 0.7)
    assert erlang.staff(lam, 180.0, shrinkage=0.5) == 28
    assert erlang.staff(lam, 180.0, max_occupancy=0.6) == 17
    assert erlang.staff(0.0, 180.0) == 0
    assert erlang.staff(lam, 180.0, patience=math.inf) == 14
    d = erlang.staff_detail(lam, 180.0, patience=300.0, shrinkage=0.3)
    assert (d.agents, d.scheduled, d.bound, d.model) == (13, 19, "service_level", "erlang A")
    assert d.service_level == pytest.approx(0.858178, abs=1e-6)
    z = erlang.staff_detail(0.0, 180.0, patience=300.0)
    assert (z.agents, z.scheduled, z.bound, z.service_level, z.p_abandon) == (0, 0, "zero", 1.0, 0.0)
    # no target at all: one agent because calls arrive (Erlang A), more than the load for Erlang C
    assert erlang.staff_detail(lam, 180.0, service_level=None, patience=300.0, **OLD).agents == 1
    assert erlang.staff_detail(lam, 180.0, service_level=None, patience=300.0, **OLD).bound == "none"
    assert erlang.staff_detail(lam, 180.0, service_level=None, **OLD).agents == 11
    assert erlang.staff_detail(lam, 180.0, service_level=None, **OLD).bound == "load"


def test_safe_defaults_bind_where_a_service_level_alone_understaffs():
    """Issue 13: 87.5 and 1,050 Erlangs of 420 s calls, 3 min patience, 80 % in 60 s.

    Checked against the incomplete-gamma closed forms (scipy), not erlang_a.
    """
    sl = (0.8, 60.0)

    def ref(n, lam):
        p_wait, p_ab, s = erlang_a_gamma(n, lam, 420.0, 180.0, 60.0)
        return s, p_ab, lam * (1 - p_ab) * 420.0 / n

    lam = 87.5 / 420.0
    old = erlang.staff_detail(lam, 420.0, service_level=sl, patience=180.0, **OLD)
    assert (old.agents, old.bound) == (79, "service_level")          # below the load: what the issue reports
    s, p_ab, occ = ref(79, lam)
    assert s >= 0.8 > ref(78, lam)[0]
    assert p_ab == pytest.approx(0.115, abs=5e-4) and occ == pytest.approx(0.98, abs=5e-3)
    assert old.p_abandon == pytest.approx(p_ab, rel=1e-7) and old.occupancy == pytest.approx(occ, rel=1e-7)
    floor = erlang.staff_detail(lam, 420.0, service_level=sl, patience=180.0, max_occupancy=None)
    assert (floor.agents, floor.bound) == (88, "load")
    safe = erlang.staff_detail(lam, 420.0, service_level=sl, patience=180.0)
    assert safe.agents >= 88 and safe.bound == "occupancy"
    assert ref(safe.agents, lam)[2] <= 0.9 < ref(safe.agents - 1, lam)[2]
    assert erlang.staff(lam, 420.0, service_level=sl, patience=180.0) == safe.agents == 96
    lam = 1050.0 / 420.0
    assert erlang.staff(lam, 420.0, service_level=sl, patience=180.0, **OLD) == 850
    assert erlang.staff_detail(lam, 420.0, service_level=sl, patience=180.0, max_occupancy=None).agents == 1051
    big = erlang.staff_detail(lam, 420.0, service_level=sl, patience=180.0)
    assert big.bound == "occupancy" and ref(big.agents, lam)[2] <= 0.9 < ref(big.agents - 1, lam)[2]


def test_evaluate_agents():
    lam = 87.5 / 420.0
    e = erlang.evaluate_agents(79, lam, 420.0, service_level=(0.8, 60.0), patience=180.0)
    assert e.bound == "given" and e.fails == ("occupancy", "load")
    r = erlang.erlang_a(79, lam, 420.0, 180.0, 60.0)
    assert (e.service_level, e.p_abandon, e.asa, e.occupancy) == (r.service_level, r.p_abandon, r.asa, r.occupancy)
    assert erlang.evaluate_agents(96, lam, 420.0, service_level=(0.8, 60.0), patience=180.0).fails == ()
    assert erlang.evaluate_agents(79, lam, 420.0, service_level=(0.8, 60.0), patience=180.0, **OLD).fails == ()
    zero = erlang.evaluate_agents(0, lam, 420.0, patience=180.0, max_abandon=0.1, shrinkage=0.2)
    assert zero.fails == ("service_level", "abandon", "load") and zero.p_abandon == 1.0 and zero.asa == math.inf
    assert erlang.evaluate_agents(10, lam, 420.0, shrinkage=0.5).scheduled == 20
    # Erlang C below the load: unstable, every target fails
    c = erlang.evaluate_agents(80, lam, 420.0, service_level=(0.8, 60.0), max_asa=30.0)
    assert c.fails == ("service_level", "asa", "occupancy", "load") and c.model == "erlang C"
    assert erlang.evaluate_agents(3, 0.0, 420.0).bound == "zero"


_TARGET_SETS = st.fixed_dictionaries({}, optional={
    "max_abandon": st.floats(0.005, 0.3), "max_asa": st.floats(2.0, 120.0),
    "max_occupancy": st.none() | st.floats(0.6, 1.0), "min_over_load": st.booleans(),
    "service_level": st.none() | st.tuples(st.floats(0.3, 0.97), st.floats(0.0, 120.0))})


@settings(max_examples=40, deadline=None)
@given(per_hour=st.floats(1.0, 4000.0), aht=st.floats(30.0, 900.0),
       patience=st.none() | st.floats(10.0, 3600.0), targets=_TARGET_SETS)
def test_staffing_meets_every_target_and_one_fewer_fails_the_bound(per_hour, aht, patience, targets):
    if patience is None:
        targets.pop("max_abandon", None)
    lam = per_hour / HOUR
    d = erlang.staff_detail(lam, aht, patience=patience, **targets)
    args = dict(sl=targets.get("service_level", (0.8, 20.0)), patience=patience,
                max_abandon=targets.get("max_abandon"), max_occupancy=targets.get("max_occupancy", 0.9),
                min_over_load=targets.get("min_over_load", True), max_asa=targets.get("max_asa"))
    assert _failing(d.agents, lam, aht, **args) == set()
    below = _failing(d.agents - 1, lam, aht, **args)
    assert below, "one agent fewer meets every target"
    assert d.bound in below or (d.bound == "none" and below == {"no agent"})
    e = erlang.evaluate_agents(d.agents - 1, lam, aht, patience=patience, **targets)
    assert set(e.fails) == below - {"no agent"} and d.bound in e.fails + ("none",)


@settings(max_examples=50, deadline=None)
@given(per_hour=st.floats(1.0, 3000.0), aht=st.floats(30.0, 900.0), patience=st.none() | st.floats(10.0, 3600.0),
       frac=st.floats(0.5, 0.95), t=st.floats(0.0, 120.0))
def test_staff_is_monotone(per_hour, aht, patience, frac, t):
    lam = per_hour / HOUR
    n = erlang.staff(lam, aht, service_level=(frac, t), patience=patience)
    assert erlang.staff(lam * 1.1, aht, service_level=(frac, t), patience=patience) >= n
    assert erlang.staff(lam, aht * 1.1, service_level=(frac, t), patience=patience) >= n
    assert erlang.staff(lam, aht, service_level=(min(frac + 0.04, 0.99), t), patience=patience) >= n
    assert erlang.staff(lam, aht, service_level=(frac, t + 10.0), patience=patience) <= n
    assert erlang.staff(lam, aht, service_level=(frac, t), patience=patience, shrinkage=0.25) >= n


def test_staff_intervals():
    rates = np.array([0.0, 50.0, 200.0, 800.0, 3000.0]) / HOUR
    for kw in ({}, {"patience": 300.0}, {"patience": 300.0, "max_abandon": 0.02, "shrinkage": 0.2}):
        got = erlang.staff_intervals(rates, 180.0, **kw)
        assert got.dtype == np.int64 and got.shape == (5,)
        assert got.tolist() == [erlang.staff(float(r), 180.0, **kw) for r in rates]
        assert np.all(np.diff(got) >= 0)
    # per-interval handle times and patience broadcast with the rates
    got = erlang.staff_intervals(rates[1:], np.array([120.0, 180.0, 240.0, 300.0]), patience=np.array([60.0, 120.0, 180.0, 240.0]))
    assert got.tolist() == [erlang.staff(float(r), h, patience=p)
                            for r, h, p in zip(rates[1:], (120.0, 180.0, 240.0, 300.0), (60.0, 120.0, 180.0, 240.0))]
    assert erlang.staff_intervals([], 180.0).shape == (0,)


# ---------------------------------------------------------------- input errors


@pytest.mark.parametrize("call, message", [
    (lambda: erlang.erlang_b(0, 1.0), "servers must be an int >= 1, got 0"),
    (lambda: erlang.erlang_b(-1, 1.0), "servers must be an int >= 1, got -1"),
    (lambda: erlang.erlang_b(2.5, 1.0), "servers must be an int >= 1, got 2.5"),
    (lambda: erlang.erlang_b(True, 1.0), "servers must be an int >= 1, got True"),
    (lambda: erlang.erlang_c(3, -1.0), "load must be a finite number >= 0, got -1.0"),
    (lambda: erlang.erlang_c(3, math.nan), "load must be a finite number >= 0, got nan"),
    (lambda: erlang.erlang_c(np.array([3, 0]), 1.0), "servers must be an int >= 1, got 0"),
    (lambda: erlang.erlang_c([3, 4], ["x", 1.0]), "load must be a number or an array of numbers"),
    (lambda: erlang.erlang_c_service_level(3, 1.0, 0.0, 20.0), "aht must be a finite number > 0, got 0.0"),
    (lambda: erlang.erlang_c_service_level(3, 1.0, 180.0, -1.0), "t must be a number >= 0, got -1.0"),
    (lambda: erlang.erlang_a(3, 1.0, 180.0, 0.0, 20.0), "patience must be a number > 0, got 0.0"),
    (lambda: erlang.erlang_a(3, "1", 180.0, 60.0, 20.0), "arrival_rate must be a finite number >= 0, got '1'"),
    (lambda: erlang.staff(-1.0, 180.0), "arrival_rate must be a finite number >= 0, got -1.0"),
    (lambda: erlang.staff(1.0, 180.0, service_level=(1.0, 20.0)),
     "service_level fraction must be a finite number >= 0 and < 1, got 1.0"),
    (lambda: erlang.staff(1.0, 180.0, service_level=0.8), "service_level must be a (fraction, seconds) pair"),
    (lambda: erlang.staff(1.0, 180.0, max_abandon=0.05), "max_abandon needs patience"),
    (lambda: erlang.staff(1.0, 180.0, patience=60.0, max_abandon=1.5), "max_abandon must be a finite number > 0"),
    (lambda: erlang.staff(1.0, 180.0, shrinkage=1.0), "shrinkage must be a finite number >= 0 and < 1, got 1.0"),
    (lambda: erlang.staff(1.0, 180.0, max_occupancy=0.0), "max_occupancy must be a finite number > 0 and <= 1"),
    (lambda: erlang.staff_intervals([1.0, -2.0], 180.0), "arrival_rate must be a finite number >= 0, got -2.0"),
    # targets that can never be met
    (lambda: erlang.staff(1.0, 180.0, patience=60.0, max_abandon=0.0),
     "max_abandon 0 (answer rate 1.0) can never be met with a finite patience"),
    (lambda: erlang.staff_detail(1.0, 180.0, service_level=(1.0, 60.0), patience=60.0),
     "got 1.0 (100 % answered within 60 can never be met)"),
    (lambda: erlang.staff(1.0, 180.0, max_asa=0.0), "max_asa must be > 0, got 0.0 (an ASA of 0 can never be met"),
    (lambda: erlang.staff(1.0, 180.0, max_asa=-1.0), "max_asa must be a finite number > 0, got -1.0"),
    (lambda: erlang.staff(1.0, 180.0, min_over_load=None), "min_over_load must be True or False, got None"),
    (lambda: erlang.evaluate_agents(-1, 1.0, 180.0), "agents must be an int >= 0, got -1"),
])
def test_input_errors(call, message):
    with pytest.raises(InvalidInput) as info:
        call()
    assert message in str(info.value)
    assert isinstance(info.value, ValueError) and isinstance(info.value, AcdError)
