"""Group commit of the PostgreSQL journal: throughput, append latency and group size, as one table.

    python bench/journal_pg.py                          # 1, 4, 16, 64 producers, 5 s each
    python bench/journal_pg.py --producers 16 --seconds 3 --json
    python bench/journal_pg.py --producers 4,16,64 --rate 5000   # open loop at the target rate
    ACD_PG_URL=postgresql://user@host/db python bench/journal_pg.py

The issue's target: >= 5,000 journaled commands/s and p99 append <= 5 ms on
the 2-core machine with a local server, every command acknowledged only once
durable (the server keeps fsync and synchronous_commit on; they are printed).

For each producer count a fresh database is created on the server of
``--url`` (``bench_journal_<pid>_<n>``, dropped afterwards), a node takes the
lead and promotes its :class:`~acd.journal.postgres.PostgresJournal`, and N
threads append engine commands (``enqueue``/``answer``/``complete``/
``ready``/``advance``, JSON-sized like the engine's) as fast as they can.
Reported over the window after a warm-up: commands/s, p50/p99/max latency of
``append`` (its return means durable), commits/s and records per commit (the
journal's group write is wrapped and counted), the mean time of one group
write, and CPU in cores of this process, of the server's processes and of the
whole machine.  The same figures for ``SqliteJournal(sync="full")`` on a
temporary file with one producer are the reference, in the same run.  Ratios
matter more than absolute figures on a shared, noisy machine.

By default the producers run in a closed loop, so with N producers N appends
are always in flight and latency grows with N (Little's law: about N divided
by the throughput).  ``--rate R`` runs them in an open loop instead: R
commands/s in all, evenly spread over the N threads, latency counted from
each command's scheduled time (a stall counts for every command it delays):
that is the question "is p99 <= 5 ms at 5,000 commands/s".  The harness is
``bench/benchmarks/journal_harness.py`` (shared with the asv benchmark).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict, List

from benchmarks.journal_harness import measure_postgres, measure_sqlite, pg_url

TARGET_RATE = 5000.0
TARGET_P99_MS = 5.0


def server_settings(url: str) -> Dict[str, str]:
    import psycopg
    with psycopg.connect(url, autocommit=True, connect_timeout=3) as c:
        rows = c.execute("SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', "
                         "'wal_sync_method', 'commit_delay', 'server_version', 'full_page_writes')").fetchall()
    return dict(rows)


def table(rows: List[Dict[str, Any]]) -> str:
    cols = [("backend", "journal", "{}"), ("producers", "N", "{}"), ("offered_per_s", "offered", "{:.0f}"),
            ("commands_per_s", "cmd/s", "{:.0f}"),
            ("p50_ms", "p50 ms", "{:.2f}"), ("p99_ms", "p99 ms", "{:.2f}"), ("max_ms", "max ms", "{:.1f}"),
            ("commits_per_s", "commit/s", "{:.0f}"), ("mean_group", "rec/commit", "{:.1f}"),
            ("write_ms", "write ms", "{:.2f}"), ("client_cpu", "cpu client", "{:.2f}"),
            ("server_cpu", "cpu server", "{:.2f}"), ("machine_cpu", "cpu machine", "{:.2f}"),
            ("target", "target", "{}")]
    cells = [[h for _, h, _ in cols]]
    for r in rows:
        cells.append(["-" if r.get(k) is None else f.format(r[k]) for k, _, f in cols])
    widths = [max(len(c[i]) for c in cells) for i in range(len(cols))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def main(argv: List[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=pg_url(),
                    help="server to create the databases on (default: $ACD_PG_URL, else the dev server)")
    ap.add_argument("--producers", default="1,4,16,64",
                    help="comma-separated producer-thread counts (default 1,4,16,64)")
    ap.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run (default 5)")
    ap.add_argument("--warmup", type=float, default=0.5, help="seconds appended before measuring (default 0.5)")
    ap.add_argument("--rate", type=float, default=None,
                    help="open loop: offer this many commands/s in all (default: closed loop, as fast as possible)")
    ap.add_argument("--no-sqlite", action="store_true", help="skip the SqliteJournal reference")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = ap.parse_args(argv)
    counts = [int(x) for x in args.producers.split(",") if x.strip()]
    if not counts or min(counts) < 1:
        ap.error("--producers: positive integers, e.g. 1,4,16,64")

    settings = server_settings(args.url)
    rows: List[Dict[str, Any]] = []
    if not args.no_sqlite:
        rows.append(measure_sqlite(1, args.seconds, warmup=args.warmup, rate=args.rate, sync="full"))
    for n in counts:
        rows.append(measure_postgres(args.url, n, args.seconds, warmup=args.warmup, rate=args.rate))
    # open loop: the offered rate is the throughput asked for (1% short: the window's edges)
    need = TARGET_RATE if args.rate is None else 0.99 * max(args.rate, TARGET_RATE)
    for r in rows:
        if r["backend"] == "postgres":
            r["target"] = "met" if r["commands_per_s"] >= need and r["p99_ms"] <= TARGET_P99_MS else "MISSED"
    ref = next((r for r in rows if r["backend"].startswith("sqlite")), None)
    if ref:
        for r in rows:
            r["rate_vs_sqlite"] = r["commands_per_s"] / ref["commands_per_s"]

    if args.json:
        print(json.dumps({"server": settings, "cpus": os.cpu_count(), "seconds": args.seconds, "rate": args.rate,
                          "target": {"commands_per_s": TARGET_RATE, "p99_ms": TARGET_P99_MS}, "runs": rows},
                         indent=2))
    else:
        print(f"server {settings.get('server_version')}: fsync={settings.get('fsync')} "
              f"synchronous_commit={settings.get('synchronous_commit')} "
              f"wal_sync_method={settings.get('wal_sync_method')} commit_delay={settings.get('commit_delay')}; "
              f"{os.cpu_count()} CPUs; {args.seconds:g} s per run after {args.warmup:g} s warm-up; "
              + (f"open loop at {args.rate:g} commands/s" if args.rate else "closed loop"))
        print(f"target: >= {TARGET_RATE:.0f} commands/s and p99 <= {TARGET_P99_MS:g} ms\n")
        print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
