"""Peak-load measurements of the engine, reported as one table (all in one run).

    python bench/peak_load.py                 # the issue's full scenario
    python bench/peak_load.py --quick         # smaller, for CI
    python bench/peak_load.py --guard 20      # exit 1 if core/reference throughput < 20x

Per-operation latency is measured through the Python API in batches of
``--batch`` operations timed together (perf_counter_ns), and the median over
batches divided by the batch size is reported, so the timer's own cost is
amortised.  Throughput replays a recorded closed-loop stream on a freshly
loaded engine, both with ``Engine.replay`` and with one Python method call
per event; the reference model replays a prefix of the same stream in the
same run (it scans every waiting call per dispatch, so its cost grows with
the number of waiting calls: the ratio is reported at the scenario's size).
Memory per waiting call is the growth of the process's resident set while
``n`` extra calls are enqueued (ids are ints held by the engine only).
"""

from __future__ import annotations

import os
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # an idle BLAS pool spinning on 2 cores skews timings

import argparse
import gc
import statistics
import sys
import time
from typing import Callable, List

import numpy as np

import acd
from acd._reference import ReferenceEngine
from acd.workload import peak_load, replay


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def batches(fn: Callable[[int], None], n_batches: int, batch: int) -> float:
    """Median seconds per operation over batches."""
    per = []
    for i in range(n_batches):
        per.append(fn(i) / batch)
    return statistics.median(per)


def op_latencies(waiting: int, batch: int, n_batches: int, seed: int = 0) -> dict:
    load = peak_load(seed, waiting=waiting)
    engine, driver = load.build(acd.Engine)
    rng = np.random.default_rng(seed + 9)
    queues = [q.name for q in load.queues]
    t = [load.start + 1.0]
    next_id = [10**9]
    res = {}
    gc.collect()

    def enqueue_batch(_: int) -> float:
        ids = list(range(next_id[0], next_id[0] + batch))
        next_id[0] += batch
        qs = [queues[int(i)] for i in rng.integers(len(queues), size=batch)]
        ps = [int(p) for p in rng.integers(load.priorities, size=batch)]
        now = t[0]
        enq = engine.enqueue
        outs = [None] * batch
        t0 = time.perf_counter_ns()
        for i in range(batch):
            outs[i] = enq(ids[i], qs[i], now, ps[i])
        dt = time.perf_counter_ns() - t0
        for i in range(batch):   # untimed: back to the same number of waiting calls
            driver.track(("enqueue", ids[i], qs[i], now, ps[i]), outs[i])
        for i in ids:
            if i in driver.waiting.pos:
                driver.apply(("abandon", i, now))
        return dt / 1e9

    def abandon_batch(_: int) -> float:
        victims = [driver.waiting.items[int(j)] for j in rng.choice(len(driver.waiting), size=batch, replace=False)]
        now = t[0]
        ab = engine.abandon
        outs = [None] * batch
        t0 = time.perf_counter_ns()
        for i in range(batch):
            outs[i] = ab(victims[i], now)
        dt = time.perf_counter_ns() - t0
        for i in range(batch):
            driver.track(("abandon", victims[i], now), outs[i])
        for _ in range(batch):  # refill, untimed
            driver.new_call(now)
        return dt / 1e9

    def ready_batch(_: int) -> float:
        """Agents end wrap-up: each ready() assigns the agent's next call."""
        now = t[0]
        calls = [driver.connected.items[int(j)]
                 for j in rng.choice(len(driver.connected), size=min(batch, len(driver.connected)), replace=False)]
        for c in calls:
            driver.apply(("complete", c, now))
        agents = [a for a in driver.wrapping.items if engine.agent_state(a) == "wrap_up"][:batch]
        rd = engine.ready
        outs = [None] * len(agents)
        t0 = time.perf_counter_ns()
        for i in range(len(agents)):
            outs[i] = rd(agents[i], now)
        dt = time.perf_counter_ns() - t0
        for a, out in zip(agents, outs):
            driver.track(("ready", a, now), out)
        while driver.offered:
            driver.apply(("answer", driver.offered[0], now))
        return dt / 1e9 * batch / max(1, len(agents))

    def complete_batch(_: int) -> float:
        now = t[0]
        calls = [driver.connected.items[int(j)]
                 for j in rng.choice(len(driver.connected), size=min(batch, len(driver.connected)), replace=False)]
        cp = engine.complete
        outs = [None] * len(calls)
        t0 = time.perf_counter_ns()
        for i in range(len(calls)):
            outs[i] = cp(calls[i], now)
        dt = time.perf_counter_ns() - t0
        for c, out in zip(calls, outs):
            driver.track(("complete", c, now), out)
        for a in list(driver.wrapping.items):   # untimed: agents back on calls
            if engine.agent_state(a) == "wrap_up":
                driver.apply(("ready", a, now))
        while driver.offered:
            driver.apply(("answer", driver.offered[0], now))
        return dt / 1e9 * batch / max(1, len(calls))

    res["enqueue"] = batches(enqueue_batch, n_batches, batch)
    res["abandon"] = batches(abandon_batch, n_batches, batch)
    res["ready -> assign"] = batches(ready_batch, n_batches, batch)
    res["complete (to wrap-up)"] = batches(complete_batch, n_batches, batch)
    return res


def memory_per_call(n: int) -> float:
    load = peak_load(0, waiting=1000)
    engine, _ = load.build(acd.Engine)
    queues = [q.name for q in load.queues]
    gc.collect()
    before = rss_bytes()
    now = load.start + 1.0
    for i in range(n):
        engine.enqueue(10**9 + i, queues[i % len(queues)], now, i % load.priorities)
    gc.collect()
    return (rss_bytes() - before) / n


def throughput(events: int, waiting: int, agents: int) -> dict:
    load = peak_load(0, waiting=waiting, agents=agents)
    engine, driver = load.build(acd.Engine)
    stream = driver.record(events)
    bulk, _ = load.build(acd.Engine)
    loop, _ = load.build(acd.Engine)
    gc.collect()
    t0 = time.perf_counter()
    out = bulk.replay(stream)
    t_bulk = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_loop = replay(loop, stream)
    t_loop = time.perf_counter() - t0
    assert n_loop == len(out)
    return {"events": len(stream), "decisions": len(out),
            "bulk_eps": len(stream) / t_bulk, "loop_eps": len(stream) / t_loop}


def versus_reference(events: int, waiting: int, agents: int) -> dict:
    """Same stream, same starting state, compiled core vs oracle (one Python call per event each)."""
    load = peak_load(0, waiting=waiting, agents=agents)
    engine, driver = load.build(acd.Engine)
    stream = driver.record(events)
    core, _ = load.build(acd.Engine)
    ref, _ = load.build(ReferenceEngine)
    gc.collect()
    t0 = time.perf_counter()
    n_core = replay(core, stream)
    t_core = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_ref = replay(ref, stream)
    t_ref = time.perf_counter() - t0
    assert n_core == n_ref
    return {"events": len(stream), "core_eps": len(stream) / t_core, "ref_eps": len(stream) / t_ref,
            "ratio": t_ref / t_core}


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="CI size: fewer events and batches")
    ap.add_argument("--guard", type=float, default=None, help="fail if core/reference throughput ratio is below this")
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args(argv)
    quick = args.quick
    print(f"acd {acd.__version__}, python {sys.version.split()[0]}")
    if args.guard is None or not quick:
        nb = 5 if quick else 21
        rows = {}
        for waiting in ((1_000, 50_000) if quick else (1_000, 50_000, 1_000_000)):
            rows[waiting] = op_latencies(waiting, args.batch, nb)
        print("\nmedian latency per operation through the Python API (ns); columns: waiting calls")
        ws = list(rows)
        print(f"{'operation':<24}" + "".join(f"{w:>12,}" for w in ws))
        for op in rows[ws[0]]:
            print(f"{op:<24}" + "".join(f"{rows[w][op] * 1e9:>12.0f}" for w in ws))
        if len(ws) > 2:
            print("ratio 1,000,000 / 1,000: " + ", ".join(
                f"{op} {rows[ws[-1]][op] / rows[ws[0]][op]:.2f}" for op in rows[ws[0]]))
        print(f"\nmemory per waiting call: {memory_per_call(200_000 if quick else 1_000_000):.0f} bytes (RSS growth)")
    if args.guard is None or not quick:
        ev = 100_000 if quick else 1_000_000
        tp = throughput(ev, 50_000, 2000)
        print(f"\nthroughput, recorded stream of {tp['events']:,} events ({tp['decisions']:,} assignments), "
              f"50,000 waiting calls, 2,000 agents:")
        print(f"  Engine.replay:              {tp['bulk_eps']:>12,.0f} events/s")
        print(f"  one Python call per event:  {tp['loop_eps']:>12,.0f} events/s")
    # the oracle scans every waiting call per command: compared at 5,000 waiting calls
    tp = versus_reference(2_000, 5_000, 2000)
    print(f"\ncompiled core vs reference model, same {tp['events']:,}-event stream, 5,000 waiting calls, "
          f"2,000 agents: core {tp['core_eps']:,.0f}/s, reference {tp['ref_eps']:,.0f}/s, ratio {tp['ratio']:.0f}x")
    if args.guard is not None and tp["ratio"] < args.guard:
        print(f"THROUGHPUT GUARD FAILED: core is only {tp['ratio']:.1f}x the reference (< {args.guard}x)")
        return 1
    if args.guard is not None:
        print(f"throughput guard passed: {tp['ratio']:.0f}x >= {args.guard}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
