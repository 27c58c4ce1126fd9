"""Caller patience, estimated from censored waits.

Every wait that ends in an abandonment is an observation of patience; every
wait that ends otherwise (answered, overflowed, exited, switched to a
call-back) is censored: the caller was still patient then.  The engines keep,
per queue and priority, the number of abandonments and the total time at
risk, whose ratio is the maximum-likelihood rate of an exponential patience,
and a window of recent (wait, abandoned) pairs for :func:`kaplan_meier`.

The rates used for decisions add one pseudo-observation from the queue's
``expected_patience`` prior: ``(abandons + 1) / (exposure + prior)``, so that
a new queue starts from the prior and data takes over as it accumulates.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Sequence, Tuple

if TYPE_CHECKING:
    import numpy as np

__all__ = ("PatienceEstimate", "kaplan_meier", "exponential_mle")


class PatienceEstimate(NamedTuple):
    rate: float           # MLE abandonment rate (abandons / exposure); nan without exposure
    mean: float           # 1 / rate (seconds); inf when no abandonment was seen
    abandons: int         # uncensored observations
    observations: int     # all waits seen (abandoned + censored)
    exposure: float       # total seconds callers spent waiting (time at risk)
    smoothed_rate: float  # rate used for decisions: (abandons + 1) / (exposure + prior)


def exponential_mle(abandons: int, observations: int, exposure: float, prior: float) -> PatienceEstimate:
    rate = abandons / exposure if exposure > 0 else float("nan")
    mean = (1.0 / rate) if abandons > 0 else float("inf")
    return PatienceEstimate(rate, mean, abandons, observations, exposure, (abandons + 1) / (exposure + prior))


def kaplan_meier(samples: Sequence[Tuple[float, bool]]) -> Tuple[np.ndarray, np.ndarray]:
    """Survival curve of patience from (wait, abandoned) pairs.

    Returns ``(times, survival)``: the distinct abandonment times and
    P(patience > t) just after each.  Censored waits leave the risk set
    without a drop, tied censorings at an abandonment time count as at risk.
    """
    import numpy as np  # only here: the engine uses exponential_mle, which needs no arrays

    if len(samples) == 0:
        return np.empty(0), np.empty(0)
    arr = np.asarray(samples, dtype=float)
    waits, events = arr[:, 0], arr[:, 1] > 0
    order = np.lexsort((~events, waits))          # by time, abandonments before censorings at ties
    waits, events = waits[order], events[order]
    times, first = np.unique(waits, return_index=True)
    n = len(waits)
    at_risk = n - first
    deaths = np.add.reduceat(events.astype(np.int64), first)
    keep = deaths > 0
    factors = 1.0 - deaths[keep] / at_risk[keep]
    return times[keep], np.cumprod(factors)
