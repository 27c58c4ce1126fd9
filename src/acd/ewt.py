"""Estimated wait time (EWT) predictors.

The queue-length predictor with abandonment (Whitt, "Predicting queueing
delays", Management Science 1999): a caller with ``k`` callers ahead, ``s``
eligible agents each finishing at rate ``mu`` and every caller ahead
abandoning at rate ``theta``, moves up one place at rate ``s*mu + j*theta``
while ``j`` callers are ahead, so its expected wait until service is

    EWT(k) = sum_{j=0..k} 1 / (s*mu + j*theta).

Both engines compute it with :func:`ql_sum` (the compiled core has a C copy
with the same operations, so their results are bit-identical).  For large
``k`` the tail of the sum is a difference of digamma values.

Also reported: head-of-line (how long the oldest caller has waited) and
last-to-enter-service (the wait of the last caller an agent took).
"""

from __future__ import annotations

import math
from typing import NamedTuple

__all__ = ("WaitEstimate", "ql_sum", "abandon_probability")

_DIRECT = 63  # terms summed one by one before the digamma tail


class WaitEstimate(NamedTuple):
    ewt: float            # queue-length predictor with abandonment (seconds; inf if no agent)
    position: int         # 1-based place in line among the queue's callers
    agents: int           # eligible agents logged in and not paused
    service_rate: float   # estimated per-agent service rate (1/s)
    abandon_rate: float   # estimated abandonment rate theta (1/s)
    hol: float            # head-of-line: wait of the oldest caller in the queue
    les: float            # last-to-enter-service: wait of the last caller taken


def _digamma_large(x: float) -> float:
    """Asymptotic digamma, accurate to double precision for x >= 64."""
    inv = 1.0 / x
    inv2 = inv * inv
    return math.log(x) - 0.5 * inv - inv2 * (1.0 / 12.0 - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0)))


def ql_sum(a: float, theta: float, k: int) -> float:
    """sum_{j=0..k} 1/(a + j*theta), for a > 0, theta > 0, k >= 0."""
    total = 0.0
    n = k if k < _DIRECT else _DIRECT
    for j in range(n + 1):
        total += 1.0 / (a + float(j) * theta)
    if k > _DIRECT:
        r = a / theta
        total += (_digamma_large(r + float(k) + 1.0) - _digamma_large(r + float(_DIRECT) + 1.0)) / theta
    return total


def abandon_probability(theta: float, ewt: float) -> float:
    """Plug-in probability that an exponential patience of rate theta runs out before ewt."""
    if math.isinf(ewt):
        return 1.0
    return 1.0 - math.exp(-theta * ewt)
