"""asv benchmarks of the PostgreSQL journal's group commit; skipped unless ``ACD_PG_URL`` names a server.

One measurement, shared by the tracks (``setup_cache``): a fresh database on
that server (``bench_asv_journal_<pid>``, dropped afterwards), a promoted
:class:`~acd.journal.postgres.PostgresJournal`, JOURNAL_PG_PRODUCERS threads
appending engine commands as fast as they can for JOURNAL_PG_SECONDS (closed
loop; ``bench/benchmarks/journal_harness.py``).  Each append is durable when
it returns.  The full table, with other producer counts and SQLite as the
reference: ``python bench/journal_pg.py``.
"""

import os

from .common import JOURNAL_PG_PRODUCERS, JOURNAL_PG_SECONDS, JOURNAL_PG_WARMUP
from .journal_harness import measure_postgres


def _server():
    """(url, None) if a server answers at $ACD_PG_URL, else (None, why not)."""
    url = os.environ.get("ACD_PG_URL")
    if not url:
        return None, "ACD_PG_URL is not set"
    try:
        import psycopg
    except ImportError:
        return None, "psycopg is not installed"
    try:
        psycopg.connect(url, connect_timeout=2).close()
    except psycopg.Error as e:
        return None, f"no PostgreSQL server at $ACD_PG_URL: {str(e).strip().splitlines()[0] if str(e).strip() else e!r}"
    return url, None


class PostgresGroupCommit:
    """JOURNAL_PG_PRODUCERS producers appending to one primary journal (group commit)."""

    timeout = 120

    def setup_cache(self):
        url, why = _server()
        if url is None:
            return {"skip": why}
        return measure_postgres(url, JOURNAL_PG_PRODUCERS, JOURNAL_PG_SECONDS, warmup=JOURNAL_PG_WARMUP,
                                db_name=f"bench_asv_journal_{os.getpid()}")

    setup_cache.timeout = 120

    def setup(self, result):
        if "skip" in result:
            raise NotImplementedError(result["skip"])

    def track_commands_per_second(self, result):
        return result["commands_per_s"]

    track_commands_per_second.unit = "commands/s"

    def track_p99_append(self, result):
        return result["p99_ms"]

    track_p99_append.unit = "ms"

    def track_records_per_commit(self, result):
        return result["mean_group"]

    track_records_per_commit.unit = "records"
