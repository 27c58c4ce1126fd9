"""Classic AGI against FastAGI: what one AGI process costs, and a burst of callers.

    python bench/agi_script.py                  # 20 sequential calls, then 100 callers in 2 s, 100 agents
    python bench/agi_script.py --quick          # 5 calls, 30 callers in 1 s (a smoke run)
    python bench/agi_script.py --check          # exit 1 when a target is missed

Everything runs against a real ``acd serve`` (started here: one queue, wrap-up
0, no AMI, journal with ``sync = "normal"``) and the two real classic AGI
programs -- the ``acd-agi`` console script ("python") and the compiled relay
``acd-agi-native`` ("native") -- driven by a fake Asterisk (``bench/benchmarks/agi_harness.py``) that
plays examples/asterisk/extensions.conf: ``enqueue``; on ``ACD_STATUS=OK`` the
agent's phone rings and answers, ``U()`` runs ``dial_result`` on the agent's
channel (with ``AGISIGHUP=no``, as the README's classic dialplan has it), the
agent hangs up after the talk time, and the caller's ``h`` runs ``call_end`` on
the dead channel.  One more classic burst leaves ``AGISIGHUP`` on for
``dial_result``: a hang-up while it runs is then a SIGHUP to the process.

1. *Per process*: ``--samples`` calls one after the other, each made of the
   three classic processes; CPU (user + system, from ``wait4``) and wall time
   from fork to reaped, peak RSS since exec (``VmHWM`` read at the process's
   last command), time to the decision (fork to ``SET VARIABLE ACD_STATUS``),
   and how long after the fork the script catches SIGHUP (``SigCgt`` in /proc).
   The same calls over FastAGI give the service's own CPU per call on both
   paths (from ``/proc/<pid>/stat``).  ``python -c pass`` is timed in the same
   run: the interpreter's start-up, which no script can go below.
2. *Burst*: ``--calls`` callers arriving evenly over ``--over`` seconds, over
   FastAGI, the python script and the native relay (``--rounds`` times, the
   order rotating): origination
   (the caller's ``AGI(enqueue)`` starts) to decision (``ACD_STATUS`` set),
   the ``dial_result`` reports that reached the engine (the VERBOSE line the
   route sends once the engine has the answer came back), CPU of all script
   processes (``RUSAGE_CHILDREN``), of the service and of the fake Asterisk.

Before measuring, the package is byte-compiled (``compileall``): a process
that compiles acd's sources at every start (no ``__pycache__``, e.g. with
``PYTHONDONTWRITEBYTECODE`` on a fresh checkout) costs twice as much.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import os
import resource
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List

import acd
from benchmarks.agi_harness import (FakeAsterisk, Service, burst_report, classic_sync, fastagi_sync,
                                    find_agi_script, find_native_relay, handler_delay, quantile)
from benchmarks.common import AGI_AGENTS, AGI_BURST_CALLS, AGI_BURST_SECONDS, AGI_SAMPLES

TARGET_CPU = 0.040
TARGET_RSS = 15 * 2**20
TARGET_RATIO = 3.0


def ms(x: float) -> str:
    return f"{x * 1e3:6.1f}"


def children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def own_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def interpreter_start(n: int) -> float:
    """Median CPU seconds of ``python -c pass`` (same interpreter, same site-packages)."""
    cpu = []
    for _ in range(n):
        proc = subprocess.Popen([sys.executable, "-c", "pass"])
        _, _, usage = os.wait4(proc.pid, 0)
        proc.returncode = 0
        cpu.append(usage.ru_utime + usage.ru_stime)
    return statistics.median(cpu)


def per_process(service: Service, agi_bin: str, samples: int) -> Dict[str, Any]:
    runs: Dict[str, List[Any]] = {"enqueue": [], "dial_result": [], "call_end": []}
    before = service.cpu()
    for i in range(samples):
        call = f"seq-classic.{i}"
        enq = classic_sync(agi_bin, service.socket_path, "enqueue", {"queue": "support", "priority": "2"},
                           f"PJSIP/trunk-s{i:04d}", call)
        if enq.variables.get("ACD_STATUS") != "OK":
            raise RuntimeError(f"enqueue not assigned at once: {enq.variables} {enq.stderr}")
        report = {"call": call, "status": "ANSWER", "agent": enq.variables["ACD_AGENT"]}
        dial = classic_sync(agi_bin, service.socket_path, "dial_result", report,
                            f"{enq.variables['ACD_AGENT_DIAL']}-s{i:04d}", f"{call}-leg")
        end = classic_sync(agi_bin, service.socket_path, "call_end", {"status": "ANSWER"},
                           f"PJSIP/trunk-s{i:04d}", call, dead=True)
        for name, run in (("enqueue", enq), ("dial_result", dial), ("call_end", end)):
            if run.status != 0 or run.variables.get("ACD_STATUS") != "OK":
                raise RuntimeError(f"{name} failed: {run.status} {run.variables} {run.stderr}")
            runs[name].append(run)
    classic_service = (service.cpu() - before) / samples
    before = service.cpu()
    fast_decisions = []
    for i in range(samples):
        call = f"seq-fast.{i}"
        t0 = time.perf_counter()
        v = fastagi_sync(service.port, "enqueue", {"queue": "support", "priority": "2"}, f"PJSIP/trunk-f{i:04d}",
                         call)
        fast_decisions.append(time.perf_counter() - t0)
        if v.get("ACD_STATUS") != "OK":
            raise RuntimeError(f"FastAGI enqueue not assigned at once: {v}")
        fastagi_sync(service.port, "dial_result", {"call": call, "status": "ANSWER", "agent": v["ACD_AGENT"]},
                     f"{v['ACD_AGENT_DIAL']}-f{i:04d}", f"{call}-leg")
        fastagi_sync(service.port, "call_end", {"status": "ANSWER"}, f"PJSIP/trunk-f{i:04d}", call, dead=True)
    fast_service = (service.cpu() - before) / samples
    return {"runs": runs, "classic_service": classic_service, "fast_service": fast_service,
            "fast_decision": statistics.median(fast_decisions)}


def print_per_process(label: str, res: Dict[str, Any], start: float) -> float:
    print(f"\n1. {label}: one call at a time, {len(res['runs']['enqueue'])} calls; medians (min-max)")
    print(f"   {'process':12} {'CPU ms':>22} {'wall ms':>22} {'peak RSS MB':>14}")
    total = 0.0
    for name, runs in res["runs"].items():
        cpu = [r.cpu for r in runs]
        wall = [r.wall for r in runs]
        rss = [r.max_rss / 2**20 for r in runs]
        total += statistics.median(cpu)
        print(f"   {name:12} {ms(statistics.median(cpu))} ({ms(min(cpu))}-{ms(max(cpu))})"
              f" {ms(statistics.median(wall))} ({ms(min(wall))}-{ms(max(wall))})"
              f" {statistics.median(rss):6.1f} ({max(rss):4.1f})")
    dec = [r.decided for r in res["runs"]["enqueue"]]
    print(f"   interpreter start-up alone (python -c pass): {ms(start)} ms CPU")
    print(f"   enqueue, fork -> decision: classic {ms(statistics.median(dec))} ms, "
          f"FastAGI connect -> decision {ms(res['fast_decision'])} ms")
    per_call_classic = total + res["classic_service"]
    print(f"   CPU per answered call (3 AGI steps): classic {ms(per_call_classic)} ms "
          f"(scripts {ms(total)} + acd serve {ms(res['classic_service'])}); "
          f"FastAGI {ms(res['fast_service'])} ms (acd serve)  -> {per_call_classic / res['fast_service']:.1f}x")
    return max(statistics.median([r.cpu for r in runs]) for runs in res["runs"].values())


async def one_burst(service: Service, agi_bin: str, mode: str, calls: int, over: float, seed: int,
                    prefix: str, sighup_reports: bool = False) -> Dict[str, Any]:
    fake = FakeAsterisk(mode, service, agi_bin, seed=seed, sighup_reports=sighup_reports)
    cpu0, svc0, own0, t0 = children_cpu(), service.cpu(), own_cpu(), time.perf_counter()
    results = await fake.burst(calls, over, prefix)
    report = burst_report(results, service)
    report.update(wall=time.perf_counter() - t0, scripts_cpu=children_cpu() - cpu0, service_cpu=service.cpu() - svc0,
                  fake_cpu=own_cpu() - own0)
    return report


def print_burst(label: str, r: Dict[str, Any]) -> None:
    d = r["decision"]
    print(f"   {label:9} decision median {ms(quantile(d, 0.5))} p90 {ms(quantile(d, 0.9))} max"
          f" {ms(max(d, default=0))} ms | decided {r['decided']}/{r['calls']} | dial_result relayed"
          f" {r['dial_results_relayed']}/{r['talked']} (agent gone before it ended: {r['hangups_during_dial_result']},"
          f" killed by SIGHUP: {r['killed_by_sighup']}) | CPU scripts {r['scripts_cpu']:5.2f} s,"
          f" acd serve {r['service_cpu']:4.2f} s, fake Asterisk {r['fake_cpu']:4.2f} s | wall {r['wall']:.1f} s")
    if r["outcomes"].keys() - {"talked"}:
        print(f"             outcomes: {r['outcomes']}")
    for line in r["stderr"][:5]:
        print(f"             stderr: {line}")


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=AGI_SAMPLES, help="sequential calls for the per-process figures")
    ap.add_argument("--calls", type=int, default=AGI_BURST_CALLS, help="callers in the burst")
    ap.add_argument("--over", type=float, default=AGI_BURST_SECONDS,
                    help="seconds over which the burst's callers arrive")
    ap.add_argument("--agents", type=int, default=AGI_AGENTS)
    ap.add_argument("--rounds", type=int, default=3, help="bursts per transport (alternating)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="5 samples, 30 callers in 1 s")
    ap.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args(argv)
    if args.quick:
        args.samples, args.calls, args.over, args.agents, args.rounds = 5, 30, 1.0, 30, 1
    compileall.compile_dir(os.path.dirname(acd.__file__), quiet=1)
    agi_bin = find_agi_script()
    programs = {"python": agi_bin, "native": find_native_relay()}
    print(f"acd {acd.__version__}, Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.2f}; programs {programs}")
    service = Service(args.agents)
    ok = True
    try:
        start = interpreter_start(max(args.samples, 5))
        worst_cpu = worst_rss = 0.0
        for label, program in programs.items():
            res = per_process(service, program, args.samples)
            worst_cpu = max(worst_cpu, print_per_process(label, res, start))
            worst_rss = max([worst_rss, *(r.max_rss for runs in res["runs"].values() for r in runs)])
            window = handler_delay([program], max(args.samples, 5))
            print(f"   fork -> SIGHUP handler in place (before it, a hang-up kills the process): median"
                  f" {ms(statistics.median(window))} ms, max {ms(max(window))} ms")
        print(f"\n2. burst: {args.calls} callers over {args.over:g} s, {args.agents} agents;"
              " the agent hangs up 0-0.8 s after answering")
        transports = ["fastagi", *programs]
        ratios: Dict[str, List[float]] = {label: [] for label in programs}
        for rnd in range(args.rounds):
            reports = {}
            for label in transports[rnd % 3:] + transports[:rnd % 3]:
                mode, program = ("fastagi", agi_bin) if label == "fastagi" else ("classic", programs[label])
                reports[label] = asyncio.run(one_burst(service, program, mode, args.calls, args.over,
                                                       args.seed + rnd, f"burst{rnd}-{label}"))
                print_burst(label, reports[label])
                r = reports[label]
                ok &= r["decided"] == r["calls"] and r["dial_results_relayed"] == r["talked"] == r["calls"]
            fast = quantile(reports["fastagi"]["decision"], 0.5)
            for label in programs:
                ratios[label].append(quantile(reports[label]["decision"], 0.5) / fast)
            print(f"   round {rnd + 1}: median origination -> decision over FastAGI's: "
                  + ", ".join(f"{label} {ratios[label][-1]:.1f}x" for label in programs))
        if not args.quick:
            print("   without AGISIGHUP=no on the agent's channel (its hang-up signals the U() dial_result step):")
            for label, program in programs.items():
                r = asyncio.run(one_burst(service, program, "classic", args.calls, args.over, args.seed,
                                          f"burst-sighup-{label}", sighup_reports=True))
                print_burst(label, r)
        native_ratio = max(ratios["native"])
        print("\ntargets: CPU per process <= 40 ms: "
              f"{'met' if worst_cpu <= TARGET_CPU else 'MISSED'} ({ms(worst_cpu).strip()} ms, worst median);"
              f" peak RSS <= 15 MB: {'met' if worst_rss <= TARGET_RSS else 'MISSED'} ({worst_rss / 2**20:.1f} MB);"
              f" burst decision within 3x of FastAGI (native relay): "
              f"{'met' if native_ratio <= TARGET_RATIO else 'MISSED'}"
              f" ({', '.join(f'{x:.1f}x' for x in ratios['native'])}; python script"
              f" {', '.join(f'{x:.1f}x' for x in ratios['python'])}); every dial_result relayed: {'yes' if ok else 'NO'}")
        ok &= worst_cpu <= TARGET_CPU and worst_rss <= TARGET_RSS and native_ratio <= TARGET_RATIO
    finally:
        service.stop()
    return 0 if ok or not args.check else 1


if __name__ == "__main__":
    sys.exit(main())
