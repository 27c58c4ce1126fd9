"""Accuracy of the engine's queue-length wait predictor in M/M/s+M simulations.

    python bench/ewt_accuracy.py                # s = 50 and s = 200, 1,000,000 calls each
    python bench/ewt_accuracy.py --calls 20000  # quicker

A plain event loop drives the real engine: Poisson arrivals, exponential
service, exponential patience.  A small fraction of callers ("tagged", 2 %)
never abandon, so that their wait is the *potential* wait the predictor
targets (time until an agent takes them).  For each tagged caller who has to
wait, the engine's ``estimate_wait`` just before it joins is compared with its
actual wait.

Reference values: with ``k`` callers ahead, the potential wait is a sum of
independent exponentials of rates ``s*mu + j*theta`` (j = k..0), so its mean
is the predictor itself and its variance is ``sum 1/(s*mu + j*theta)^2``.
The analytic relative RMSE is sqrt(mean variance) / mean wait over the same
tagged callers, computed with the true mu and theta; the simulated one is
sqrt(mean squared error) / mean wait.  Targets (issue 3): simulated relative
RMSE within 5 % of the analytic value, mean bias under 2 %.
"""

from __future__ import annotations

import argparse
import heapq
import math
import sys
from typing import Dict

import numpy as np

import acd


def run(servers: int, calls: int, seed: int, rho: float = 1.05, aht: float = 300.0,
        patience: float = 180.0, tagged_share: float = 0.02) -> Dict[str, float]:
    mu, theta = 1.0 / aht, 1.0 / patience
    lam = rho * servers * mu
    rng = np.random.default_rng(seed)
    inter = rng.exponential(1.0 / lam, calls)
    services = rng.exponential(aht, calls)
    patiences = rng.exponential(patience, calls)
    tagged = rng.random(calls) < tagged_share

    e = acd.Engine(patience_window=0)
    e.add_queue(acd.Queue("q", expected_handle_time=aht, expected_patience=patience))
    for i in range(servers):
        e.login(i, {}, 0.0)

    events: list = []   # (time, kind, call): 0 = service end, 1 = abandonment
    arrival_at = {}
    predicted: Dict[int, tuple] = {}
    waits = []
    preds = []
    variances = []
    warmup = calls // 10

    def handle(decisions, now):
        for d in decisions:
            if type(d) is acd.Assign:
                e.answer(d.call, now)
                heapq.heappush(events, (now + services[d.call], 0, d.call))
                if d.call in predicted:
                    ewt, var = predicted.pop(d.call)
                    waits.append(now - arrival_at[d.call])
                    preds.append(ewt)
                    variances.append(var)

    t = 0.0
    for i in range(calls):
        t += inter[i]
        while events and events[0][0] <= t:
            when, kind, call = heapq.heappop(events)
            if kind == 0:
                handle(e.complete(call, when), when)
            elif _waiting(e, call):             # still on the line when its patience runs out
                handle(e.abandon(call, when), when)
        est = e.estimate_wait("q") if tagged[i] and i >= warmup else None
        arrival_at[i] = t
        out = e.enqueue(i, "q", t)
        if est is not None and not out and math.isfinite(est.ewt):
            k = est.position - 1
            var = sum(1.0 / (servers * mu + j * theta) ** 2 for j in range(k + 1))
            predicted[i] = (est.ewt, var)
        handle(out, t)
        if not out and not tagged[i]:
            heapq.heappush(events, (t + patiences[i], 1, i))
    w = np.array(waits)
    p = np.array(preds)
    rmse = math.sqrt(float(np.mean((w - p) ** 2)))
    analytic = math.sqrt(float(np.mean(variances)))
    mean_w = float(np.mean(w))
    est = e.patience("q")
    return {
        "servers": servers, "tagged": len(w), "mean_wait": mean_w,
        "bias": (float(np.mean(p)) - mean_w) / mean_w,
        "rel_rmse": rmse / mean_w, "rel_rmse_analytic": analytic / mean_w,
        "theta_hat": est.rate, "theta": theta,
    }


def _waiting(e: acd.Engine, call: int) -> bool:
    try:
        return e.call_state(call) == "waiting"
    except acd.UnknownCall:
        return False


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--servers", type=int, nargs="*", default=[50, 200])
    args = ap.parse_args(argv)
    print(f"{'s':>5} {'tagged':>7} {'mean wait':>10} {'bias':>8} {'rel RMSE':>9} {'analytic':>9} "
          f"{'ratio':>7} {'theta^/theta':>12}")
    ok = True
    for s in args.servers:
        r = run(s, args.calls, args.seed)
        ratio = r["rel_rmse"] / r["rel_rmse_analytic"]
        print(f"{s:>5} {r['tagged']:>7} {r['mean_wait']:>9.1f}s {r['bias']:>+8.2%} {r['rel_rmse']:>9.3f} "
              f"{r['rel_rmse_analytic']:>9.3f} {ratio:>7.3f} {r['theta_hat'] / r['theta']:>12.3f}")
        ok &= abs(ratio - 1) <= 0.05 and abs(r["bias"]) < 0.02
    print("targets met (|RMSE/analytic - 1| <= 5 %, |bias| < 2 %)" if ok else "targets NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
