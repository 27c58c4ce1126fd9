"""Producers appending engine commands to a journal, measured (throughput, latency, group size).

Used by ``bench/journal_pg.py`` (the report) and ``bench_journal_pg.py`` (asv).

Each producer thread appends, as fast as it can, the commands one call makes
in the service -- ``enqueue`` (an Asterisk-style unique id, a queue, the
time, a priority, sometimes skill requirements), ``answer``, ``complete``,
the agent's ``ready``, and now and then an ``advance`` -- with arguments of
the size the engine journals (``JournaledEngine`` stores the positional
tuple).  Every append is timed (``perf_counter``) and counted if it
*completes* inside the measured window, which starts after a warm-up.

Commits are counted by wrapping the journal's write of a group (for
:class:`~acd.journal.postgres.PostgresJournal` its ``_write``, one
``INSERT ... unnest`` in autocommit, i.e. one transaction; for
:class:`~acd.journal.sqlite.SqliteJournal` its ``_flush``): records per
commit is the mean group size.  CPU is read from ``os.times`` (this
process), ``/proc/<pid>/stat`` (every backend of the server, when it runs on
this machine) and ``/proc/stat`` (the whole machine, in cores).
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

DEV_URL = "postgresql://postgres@127.0.0.1:55432/postgres"

QUEUES = ("support", "sales", "billing", "support-fr", "vip")
SKILLS = ("fr", "de", "billing", "tier2", "sales")


def pg_url() -> str:
    return os.environ.get("ACD_PG_URL") or DEV_URL


def commands(producer: int, seed: int = 0) -> Iterator[Tuple[str, Tuple[Any, ...]]]:
    """The commands of one call after another, as JournaledEngine journals them."""
    rng = random.Random(seed * 1_000_003 + producer)
    now = 1_712_000_000.0 + producer
    n = 0
    while True:
        n += 1
        call = f"{1_712_000_000 + producer * 10_000 + n // 1000}.{n % 1000 + producer}"
        agent = f"agent-{producer:02d}{rng.randrange(100):02d}"
        now += round(rng.uniform(0.0, 2.0), 6)
        req = None if rng.random() < 0.7 else {rng.choice(SKILLS): rng.randint(1, 5)}
        yield "enqueue", (call, rng.choice(QUEUES), now, rng.choice((None, 1, 2, 3)), req)
        now += round(rng.uniform(0.0, 0.5), 6)
        yield "answer", (call, now)
        now += round(rng.uniform(30.0, 600.0), 6)
        yield "complete", (call, now)
        now += round(rng.uniform(0.0, 10.0), 6)
        yield "ready", (agent, now)
        if n % 8 == 0:
            yield "advance", (now,)


class Commits:
    """Counts the journal's commits (group writes) and the records they hold."""

    def __init__(self, journal: Any) -> None:
        self.commits = 0
        self.records = 0
        self.seconds = 0.0          # time spent inside the write (round trip + commit)
        if hasattr(journal, "_write"):              # PostgresJournal: _write(group, epoch)
            inner = journal._write

            def write(group: List[Any], epoch: Any) -> None:
                t = time.perf_counter()
                inner(group, epoch)
                self.seconds += time.perf_counter() - t
                self.commits += 1
                self.records += len(group)
            journal._write = write
        else:                                       # SqliteJournal: _flush() writes _buffer
            inner_flush = journal._flush

            def flush() -> None:
                n = len(journal._buffer)
                t = time.perf_counter()
                inner_flush()
                self.seconds += time.perf_counter() - t
                if n:
                    self.commits += 1
                    self.records += n
            journal._flush = flush

    def snapshot(self) -> Tuple[int, int, float]:
        return self.commits, self.records, self.seconds


def _proc_cpu(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _machine() -> Tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    total = sum(v[:8])
    return (total - idle) / os.sysconf("SC_CLK_TCK"), total / os.sysconf("SC_CLK_TCK")


class Cpu:
    def __init__(self, server_pids: Callable[[], List[int]]) -> None:
        self._server_pids = server_pids

    def snapshot(self) -> Tuple[float, float, float, float, float]:
        t = os.times()
        busy, total = _machine()
        server = sum(_proc_cpu(p) for p in self._server_pids())
        return time.perf_counter(), t.user + t.system, server, busy, total


def percentile(sorted_values: List[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    k = min(len(sorted_values) - 1, max(0, int(round(q * (len(sorted_values) - 1)))))
    return sorted_values[k]


def measure(journal: Any, producers: int, seconds: float, *, warmup: float = 0.5, rate: Optional[float] = None,
            server_pids: Callable[[], List[int]] = lambda: [], seed: int = 0) -> Dict[str, Any]:
    """Run ``producers`` threads appending for ``warmup + seconds``; figures of the measured window.

    Closed loop by default (each thread appends again as soon as its append returns).  With
    ``rate`` (commands/s in all), open loop: thread i appends at ``t0 + (k + i/N) * N/rate`` and
    latency counts from that scheduled time, so a stall is not hidden by the appends it delays."""
    counter = Commits(journal)
    cpu = Cpu(server_pids)
    gens = [commands(p, seed) for p in range(producers)]
    latencies: List[List[float]] = [[] for _ in range(producers)]
    errors: List[BaseException] = []
    start = threading.Barrier(producers + 1)
    window: List[float] = []            # [begin, end], set by the main thread before the barrier

    def producer(i: int) -> None:
        gen, lat = gens[i], latencies[i]
        append, clock, sleep = journal.append, time.perf_counter, time.sleep
        start.wait()
        begin, end = window
        period = producers / rate if rate else 0.0
        due = window[0] - warmup + period * i / producers
        try:
            while True:
                op, args = next(gen)
                if period:
                    due += period
                    wait = due - clock()
                    if wait > 0:
                        sleep(wait)
                    t0 = due
                else:
                    t0 = clock()
                append(op, args)
                t1 = clock()
                if t1 >= end:
                    return
                if t1 >= begin:
                    lat.append(t1 - t0)
        except BaseException as e:      # a failed append ends the run; reported below
            errors.append(e)

    threads = [threading.Thread(target=producer, args=(i,), name=f"producer-{i}", daemon=True)
               for i in range(producers)]
    for t in threads:
        t.start()
    t0 = time.perf_counter()
    window[:] = [t0 + warmup, t0 + warmup + seconds]
    start.wait()
    time.sleep(max(0.0, window[0] - time.perf_counter()))
    c0, p0 = counter.snapshot(), cpu.snapshot()
    time.sleep(max(0.0, window[1] - time.perf_counter()))
    c1, p1 = counter.snapshot(), cpu.snapshot()
    for t in threads:
        t.join(timeout=30 + seconds)
    if errors:
        raise RuntimeError(f"{len(errors)} producer(s) failed: {errors[0]!r}") from errors[0]
    lat = sorted(x for per in latencies for x in per)
    wall = p1[0] - p0[0]
    commits, records = c1[0] - c0[0], c1[1] - c0[1]
    return {
        "producers": producers,
        "offered_per_s": rate,
        "seconds": round(wall, 3),
        "commands": len(lat),
        "commands_per_s": len(lat) / seconds,
        "p50_ms": percentile(lat, 0.50) * 1e3,
        "p99_ms": percentile(lat, 0.99) * 1e3,
        "max_ms": (lat[-1] if lat else float("nan")) * 1e3,
        "commits": commits,
        "commits_per_s": commits / wall,
        "mean_group": records / commits if commits else float("nan"),
        "write_ms": (c1[2] - c0[2]) / commits * 1e3 if commits else float("nan"),
        # CPU in cores (1.0 = one core busy the whole window); the machine has os.cpu_count()
        "client_cpu": (p1[1] - p0[1]) / wall,
        "server_cpu": (p1[2] - p0[2]) / wall if p1[2] else None,
        "machine_cpu": (p1[3] - p0[3]) / (p1[4] - p0[4]) * (os.cpu_count() or 1),
    }


# ------------------------------------------------------------------ PostgreSQL
@contextlib.contextmanager
def fresh_database(url: str, name: str) -> Iterator[str]:
    """A new database on the server of ``url`` (dropped afterwards); yields its conninfo."""
    import psycopg
    from psycopg.conninfo import make_conninfo
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield make_conninfo(url, dbname=name)
    finally:
        with psycopg.connect(url, autocommit=True, connect_timeout=3) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_pids(url: str) -> Callable[[], List[int]]:
    """Pids of the server's processes (backends and background workers), if it runs here."""
    import psycopg
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as c:
        host = c.info.host
        pids = [r[0] for r in c.execute("SELECT pid FROM pg_stat_activity")]
    local = host.startswith("/") or host in ("127.0.0.1", "::1", "localhost")
    if not local or not all(os.path.exists(f"/proc/{p}") for p in pids):
        return lambda: []
    return lambda: pids


@contextlib.contextmanager
def postgres_primary(url: str, node: str = "bench") -> Iterator[Any]:
    """A promoted PostgresJournal (schema ``acd``) on ``url``."""
    from acd.journal.leadership import Leadership
    from acd.journal.postgres import PostgresJournal
    journal = PostgresJournal(url, node=node)
    lead = Leadership(url, node=node)
    try:
        epoch = lead.try_take(journal.writer_pid)
        if epoch is None:
            raise RuntimeError("could not take the lead of a fresh database")
        journal.promote(epoch)
        yield journal
    finally:
        journal.close()
        lead.release()


def measure_postgres(url: str, producers: int, seconds: float, *, warmup: float = 0.5, rate: Optional[float] = None,
                     db_name: Optional[str] = None) -> Dict[str, Any]:
    """One fresh database, one primary journal, ``producers`` threads."""
    name = db_name or f"bench_journal_{os.getpid()}_{producers}"
    with fresh_database(url, name) as db_url:
        with postgres_primary(db_url) as journal:
            pids = server_pids(db_url)
            out = measure(journal, producers, seconds, warmup=warmup, rate=rate, server_pids=pids)
            out["durable_seq"] = journal.head()
    out["backend"] = "postgres"
    return out


def measure_sqlite(producers: int, seconds: float, *, warmup: float = 0.5, rate: Optional[float] = None,
                   sync: str = "full") -> Dict[str, Any]:
    import tempfile
    from acd.journal.sqlite import SqliteJournal
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as d:
        journal = SqliteJournal(os.path.join(d, "journal.db"), sync=sync)
        try:
            out = measure(journal, producers, seconds, warmup=warmup, rate=rate)
        finally:
            journal.close()
    out["backend"] = f"sqlite-{sync}"
    return out
