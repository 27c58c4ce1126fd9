"""Confidence intervals over independent replications (shared by simstaff and sweep).

Replications are independent runs of one day with different seeds, so each
replication is one observation; a rate (service level, answer rate) is a
ratio of two sums, and its estimate over ``R`` replications is the ratio of
the totals, with the classical ratio-estimator (delta method) standard error

    se = sqrt( sum_r (y_r - est x_r)^2 / (R - 1) / R ) / mean(x)

which is what a long run would converge to (a mean of per-replication
ratios would weigh a quiet day like a busy one).  The interval is the
Student-t one with ``R - 1`` degrees of freedom.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from ..errors import InvalidInput

__all__ = ("t_quantile", "ratio_ci", "mean_ci", "check_confidence", "check_replications")


def check_confidence(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.5 <= value < 1.0:
        raise InvalidInput(f"{name} must be a number in [0.5, 1), got {value!r}")
    return float(value)


def check_replications(name: str, value: object, lo: int = 2) -> int:
    # one replication gives no variance: no interval
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= 10_000:
        raise InvalidInput(f"{name} must be an int in {lo}..10000, got {value!r}")
    return value


def t_quantile(confidence: float, df: int) -> float:
    """Two-sided Student-t quantile: the interval mean +- q se covers with probability ``confidence``."""
    from scipy import stats  # type: ignore[import-untyped,unused-ignore]
    return float(stats.t.ppf(0.5 + confidence / 2.0, df))


def ratio_ci(num: np.ndarray, den: np.ndarray, confidence: float,
             clip: Tuple[float, float] = (0.0, 1.0)) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimate, lower and upper bound of ``sum num / sum den`` over axis 0 (the replications).

    NaN where no replication has a denominator.  Bounds are clipped to ``clip``.
    """
    y = np.asarray(num, dtype=float)
    x = np.asarray(den, dtype=float)
    r = y.shape[0]
    sx = x.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        est = np.where(sx > 0, y.sum(axis=0) / np.where(sx > 0, sx, 1.0), np.nan)
        resid = y - np.nan_to_num(est)[None, ...] * x
        s = resid.std(axis=0, ddof=1) if r > 1 else np.full(est.shape, np.inf)
        se = s / math.sqrt(r) / (sx / r)
    half = t_quantile(confidence, r - 1) * se if r > 1 else np.full(est.shape, np.inf)
    lo = np.clip(est - half, *clip)
    hi = np.clip(est + half, *clip)
    return est, np.where(np.isnan(est), np.nan, lo), np.where(np.isnan(est), np.nan, hi)


def mean_ci(values: np.ndarray, confidence: float) -> Tuple[float, float, float]:
    """Mean and Student-t interval of independent observations (NaN ones left out)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    if len(v) == 0:
        return math.nan, math.nan, math.nan
    m = float(v.mean())
    if len(v) == 1:
        return m, math.nan, math.nan
    half = t_quantile(confidence, len(v) - 1) * float(v.std(ddof=1)) / math.sqrt(len(v))
    return m, m - half, m + half
