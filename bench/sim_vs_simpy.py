"""Speed of acd's simulator against SimPy and ciw on the same M/M/n+M model.

Not a unit test: run it by hand.

    python bench/sim_vs_simpy.py                      # n = 50 and 500, 1,000,000 calls each
    python bench/sim_vs_simpy.py --calls 100000       # quicker
    python bench/sim_vs_simpy.py --agents 50 --skip ciw

The model: Poisson arrivals, ``n`` agents, exponential talk time (mean
300 s), exponential patience (mean 180 s), FIFO, no ring or wrap-up time,
offered load ``--load`` × n Erlangs (default 1.0: critically loaded, as a
peak hour).  acd's simulator drives the real compiled engine and produces a
full call record per call and agent state intervals; the SimPy and ciw
versions are the minimal idiomatic programs for the same model (each
records wait and outcome per call).  Every program draws its own random
numbers inside the timed region; each first runs a 2,000-call warm-up
(imports, first use) outside it.  The script prints each one's P(wait),
P(abandon) and service level (answered within 60 s / all calls) next to
Erlang A, the wall time, the time per call, and the ratios.

SimPy and ciw are benchmark-only dependencies: ``pip install simpy ciw``.
"""

from __future__ import annotations

import argparse
import gc
import math
import sys
import time
from typing import Callable, Dict, List, Optional

import numpy as np

MEAN_TALK = 300.0
MEAN_PATIENCE = 180.0
SL_SECONDS = 60.0


# ---------------------------------------------------------------- acd

def run_acd(n: int, lam: float, calls: int, seed: int) -> Dict[str, float]:
    import acd
    from acd.sim import AgentGroup, CallType, Dist, Scenario, simulate

    span = calls / lam
    sc = Scenario(name="mmn+m", start=0.0, end=span, interval=span, queues=(acd.Queue("q"),),
                  call_types=(CallType("call", "q", 1.0, Dist.exponential(MEAN_TALK),
                                       Dist.exponential(MEAN_PATIENCE)),),
                  agents=(AgentGroup("agents", n),), arrivals=(float(calls),))
    res = simulate(sc, seed, sample_every=span / 1000)
    rec = res.records
    waited = ~(rec["answered"] == rec["arrival"])
    answered = rec["outcome"] == 0
    return dict(calls=len(rec), p_wait=float(waited.mean()), p_abandon=float((rec["outcome"] == 1).mean()),
                sl=float((answered & (rec["answered"] - rec["arrival"] <= SL_SECONDS)).mean()))


# ---------------------------------------------------------------- SimPy

def run_simpy(n: int, lam: float, calls: int, seed: int) -> Dict[str, float]:
    import simpy

    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / lam, calls).tolist()
    talk = rng.exponential(MEAN_TALK, calls).tolist()
    patience = rng.exponential(MEAN_PATIENCE, calls).tolist()
    env = simpy.Environment()
    agents = simpy.Resource(env, capacity=n)
    stats = [0, 0, 0]   # waited, abandoned, answered within SL

    def caller(i: int):
        arrived = env.now
        with agents.request() as req:
            if not req.triggered:
                stats[0] += 1
            got = yield req | env.timeout(patience[i])
            if req in got:
                if env.now - arrived <= SL_SECONDS:
                    stats[2] += 1
                yield env.timeout(talk[i])
            else:
                stats[1] += 1

    def source():
        for i in range(calls):
            yield env.timeout(gaps[i])
            env.process(caller(i))

    env.process(source())
    env.run()
    return dict(calls=calls, p_wait=stats[0] / calls, p_abandon=stats[1] / calls, sl=stats[2] / calls)


# ---------------------------------------------------------------- ciw

def run_ciw(n: int, lam: float, calls: int, seed: int) -> Dict[str, float]:
    import ciw

    net = ciw.create_network(arrival_distributions=[ciw.dists.Exponential(rate=lam)],
                             service_distributions=[ciw.dists.Exponential(rate=1.0 / MEAN_TALK)],
                             number_of_servers=[n],
                             reneging_time_distributions=[ciw.dists.Exponential(rate=1.0 / MEAN_PATIENCE)])
    ciw.seed(seed)
    q = ciw.Simulation(net)
    q.simulate_until_max_customers(calls, method="Finish")
    recs = q.get_all_records()
    m = len(recs)
    waited = sum(1 for r in recs if r.waiting_time > 0)
    reneged = sum(1 for r in recs if r.record_type == "renege")
    sl = sum(1 for r in recs if r.record_type == "service" and r.waiting_time <= SL_SECONDS)
    return dict(calls=m, p_wait=waited / m, p_abandon=reneged / m, sl=sl / m)


# ---------------------------------------------------------------- Erlang A (reference)

def erlang_a_ref(n: int, lam: float) -> Optional[Dict[str, float]]:
    """Erlang A's values for the model (acd.erlang), or None when unavailable."""
    try:
        from acd import erlang
    except ImportError:
        return None
    r = erlang.erlang_a(n, lam, MEAN_TALK, MEAN_PATIENCE, SL_SECONDS)
    return dict(p_wait=float(r.p_wait), p_abandon=float(r.p_abandon), sl=float(r.service_level))


# ---------------------------------------------------------------- main

RUNNERS: Dict[str, Callable[[int, float, int, int], Dict[str, float]]] = {
    "acd": run_acd, "simpy": run_simpy, "ciw": run_ciw}


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=1_000_000, help="calls per run (default 1,000,000)")
    ap.add_argument("--agents", type=int, nargs="+", default=[50, 500], help="agent counts (default 50 500)")
    ap.add_argument("--load", type=float, default=1.0, help="offered load per agent in Erlangs (default 1.0)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--skip", nargs="*", default=[], choices=sorted(RUNNERS), help="programs to leave out")
    ap.add_argument("--repeat", type=int, default=3, help="runs per program, best time kept (default 3)")
    args = ap.parse_args(argv)

    print(f"M/M/n+M, talk {MEAN_TALK:g} s, patience {MEAN_PATIENCE:g} s, load {args.load:g} x n, "
          f"{args.calls:,} calls per run; python {sys.version.split()[0]}")
    versions = {}
    for name, mod in (("simpy", "simpy"), ("ciw", "ciw")):
        try:
            versions[name] = __import__(mod).__version__
        except ImportError:
            if name not in args.skip:
                print(f"({name} is not installed: pip install {mod}; skipped)")
                args.skip.append(name)
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    for n in args.agents:
        lam = args.load * n / MEAN_TALK
        print(f"\n== n = {n} agents, lambda = {lam * 3600:.0f} calls/h")
        ref = None
        try:
            ref = erlang_a_ref(n, lam)
        except Exception as e:  # the reference is informative only
            print(f"(erlang_a reference unavailable: {e})")
        if ref:
            print(f"{'erlang A':>8}  {'':>10} {'':>9}  P(wait) {ref['p_wait']:.4f}  "
                  f"P(ab) {ref['p_abandon']:.4f}  SL {ref['sl']:.4f}")
        times: Dict[str, float] = {}
        for name, fn in RUNNERS.items():
            if name in args.skip:
                continue
            fn(n, lam, 2_000, args.seed + 1)   # warm-up: imports and first-use costs stay out of the timing
            best = math.inf
            out: Dict[str, float] = {}
            for _ in range(args.repeat):
                gc.collect()
                t0 = time.perf_counter()
                out = fn(n, lam, args.calls, args.seed)
                best = min(best, time.perf_counter() - t0)
            times[name] = best / out["calls"]
            print(f"{name:>8}  {best:8.2f} s {times[name] * 1e6:7.2f} us/call  P(wait) {out['p_wait']:.4f}  "
                  f"P(ab) {out['p_abandon']:.4f}  SL {out['sl']:.4f}", flush=True)
        if "acd" in times:
            for name in times:
                if name != "acd":
                    print(f"   {name} / acd time per call: {times[name] / times['acd']:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
