"""The simulator (driving the real engine) reproduces Erlang A on M/M/n+M.

One queue, no skills, no ring or wrap-up time, Poisson arrivals,
exponential talk and patience: the model behind Erlang A (Palm / Garnett-
Mandelbaum-Reiman).  Long runs, steady state by batch means: the first
``WARM`` of the calls are dropped, the rest is cut into ``BATCHES`` batches
by arrival order; each indicator's batch averages give a Student-t
confidence interval, which must contain the Erlang A value.

Indicators, all over every arriving call:
* P(wait): the call was not answered at once (no idle agent at arrival),
* P(abandon): the caller hung up before being answered,
* SL(t): answered within t seconds of arrival.
"""

import math

import numpy as np
import pytest

import acd
from acd.sim import AgentGroup, CallType, Dist, Scenario, simulate

ANSWERED, ABANDONED = 0, 1
WARM = 0.02
BATCHES = 20
CONFIDENCE = 0.99
T_QUANTILE = 2.860935   # Student t, 19 degrees of freedom, 0.995 quantile (scipy.stats.t.ppf(0.995, 19))
SL_T = 20.0


def test_t_quantile():
    stats = pytest.importorskip("scipy.stats")
    assert stats.t.ppf(0.5 + CONFIDENCE / 2, BATCHES - 1) == pytest.approx(T_QUANTILE, abs=1e-6)


def mmnm(n, load, talk, patience, calls):
    lam = load * n / talk
    span = calls / lam
    return Scenario(name="mmnm", start=0.0, end=span, interval=span, queues=(acd.Queue("q"),),
                    call_types=(CallType("c", "q", 1.0, Dist.exponential(talk), Dist.exponential(patience)),),
                    agents=(AgentGroup("a", n),), arrivals=(float(calls),)), lam


def batch_ci(x, batches=BATCHES):
    """Mean and half-width of the batch-means confidence interval of indicator x (in arrival order)."""
    x = np.asarray(x, dtype=float)[int(len(x) * WARM):]
    m = len(x) // batches
    means = x[:m * batches].reshape(batches, m).mean(axis=1)
    half = T_QUANTILE * means.std(ddof=1) / math.sqrt(batches)
    return float(means.mean()), float(half)


def _erlang_a(lam, talk, patience, n, t):
    from acd import erlang
    return erlang.erlang_a(n, lam, talk, patience, t)


CASES = [
    # n, offered load per agent, mean talk, mean patience, calls, seed
    pytest.param(20, 0.95, 240.0, 300.0, 1_000_000, 1, id="n20-heavy"),
    pytest.param(100, 1.0, 300.0, 180.0, 1_000_000, 2, id="n100-critical"),
    pytest.param(50, 0.85, 180.0, 120.0, 1_000_000, 3, id="n50-moderate"),
]


@pytest.mark.parametrize("n, load, talk, patience, calls, seed", CASES)
def test_mmnm_matches_erlang_a(n, load, talk, patience, calls, seed):
    sc, lam = mmnm(n, load, talk, patience, calls)
    res = simulate(sc, seed, sample_every=sc.end / 100, record_agents=False)
    r = res.records
    wait = r["answered"] - r["arrival"]
    answered = r["outcome"] == ANSWERED
    indicators = {
        "p_wait": ~(wait == 0.0),                       # NaN (abandoned) counts as waited
        "p_abandon": r["outcome"] == ABANDONED,
        "service_level": answered & (wait <= SL_T),
    }
    ea = _erlang_a(lam, talk, patience, n, SL_T)
    expected = {"p_wait": ea.p_wait, "p_abandon": ea.p_abandon, "service_level": ea.service_level}
    report = []
    for name, x in indicators.items():
        mean, half = batch_ci(x)
        report.append(f"{name}: sim {mean:.4f} +/- {half:.4f} ({CONFIDENCE:.0%} CI), erlang A {expected[name]:.4f}")
        assert abs(mean - expected[name]) <= half, "\n".join(report)
        assert half < 0.02, f"{name}: confidence interval too wide ({half:.4f}); run more calls"
    print("\n".join(report))
