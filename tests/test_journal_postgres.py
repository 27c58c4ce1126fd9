"""The PostgreSQL journal: same log as SQLite, fenced by the database, followed by standbys."""

from __future__ import annotations

import random
import threading
import time

import pytest

import acd
from acd.errors import AcdError, Fenced, JournalError
from acd.journal import JournaledEngine, SqliteJournal
from acd.journal.leadership import Leadership
from acd.journal.postgres import PostgresJournal

psycopg = pytest.importorskip("psycopg")


def leader(url, node="a", lease=2.0):
    j = PostgresJournal(url, node=node)
    lead = Leadership(url, node=node, lease=lease)
    epoch = lead.try_take(j.writer_pid)
    assert epoch is not None
    j.promote(epoch)
    return j, lead


def test_append_and_read_back_exactly(pg_url):
    j, lead = leader(pg_url)
    args = [("c1", "support", 0.1 + 0.2, None, {"tech": 3}), ("a", {"x": 1}, 1e-300, ["q"], None), ("é", 2**53)]
    for a in args:
        j.append("enqueue", a)
    j.close()
    r = PostgresJournal(pg_url, node="reader")
    assert [rec for rec in r.records()] == [(i + 1, "enqueue", tuple(list(v) if isinstance(v, tuple) else v
                                                                    for v in a)) for i, a in enumerate(args)]
    assert len(r) == 3 and r.journal_id == j.journal_id
    r.close()
    lead.release()


def test_a_standby_cannot_write(pg_url):
    j = PostgresJournal(pg_url, node="s")
    with pytest.raises(JournalError, match="standby"):
        j.append("advance", (1.0,))
    assert len(j) == 0
    j.close()


def test_group_commit_from_many_threads_is_contiguous_and_durable(pg_url):
    j, lead = leader(pg_url)
    got = []

    def work(k):
        for i in range(200):
            got.append(j.append("advance", (float(k * 1000 + i),)))
    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(got) == list(range(1, 1601))
    other = PostgresJournal(pg_url, node="r")
    recs = list(other.records())
    assert [r[0] for r in recs] == list(range(1, 1601))
    assert sorted(r[2][0] for r in recs) == sorted(float(k * 1000 + i) for k in range(8) for i in range(200))
    other.close()
    j.close()
    lead.release()


def test_the_database_refuses_a_stale_epoch(pg_url):
    j, lead = leader(pg_url)
    j.append("advance", (1.0,))
    with psycopg.connect(pg_url, autocommit=True) as c:
        with pytest.raises(psycopg.Error) as e:
            c.execute("INSERT INTO acd.commands (seq, epoch, op, args) VALUES (2, %s, 'advance', '[2.0]')",
                      (lead.epoch - 1,))
        assert e.value.sqlstate == "AE001"
        with pytest.raises(psycopg.Error, match="append-only"):
            c.execute("DELETE FROM acd.commands")
        with pytest.raises(psycopg.Error, match="append-only"):
            c.execute("UPDATE acd.commands SET op = 'x'")
        with pytest.raises(psycopg.Error) as e:
            c.execute("INSERT INTO acd.meta VALUES ('k', '1', 0)")
        assert e.value.sqlstate == "AE001"
    j.close()
    lead.release()


def test_a_paused_primary_is_evicted_and_then_fenced(pg_url):
    """A holds the lock but stops renewing (SIGSTOP, GC pause): after the lease, B ends A's sessions,
    takes a new epoch, and nothing A writes afterwards is recorded."""
    a, la = leader(pg_url, "a", lease=0.6)
    a.append("advance", (1.0,))
    b = PostgresJournal(pg_url, node="b")
    lb = Leadership(pg_url, node="b", lease=0.6)
    assert lb.try_take(b.writer_pid) is None          # A's lease still runs
    time.sleep(0.8)
    epoch = lb.try_take(b.writer_pid)
    assert epoch == la.epoch + 1
    b.promote(epoch)
    refused = []
    for _ in range(3):     # the first attempt finds its connection ended, the next reconnects: fenced
        try:
            a.append("advance", (2.0,))
        except JournalError as e:
            refused.append(e)
    assert len(refused) == 3 and isinstance(refused[-1], Fenced)
    with pytest.raises(JournalError):
        la.renew()
    b.append("advance", (3.0,))
    assert [(e, lo, hi) for e, lo, hi in b.epochs()] == [(epoch - 1, 1, 1), (epoch, 2, 2)]
    a.close()
    b.close()
    lb.release()


def test_a_live_lock_is_not_taken(pg_url):
    a, la = leader(pg_url, "a", lease=0.5)
    b = PostgresJournal(pg_url, node="b")
    lb = Leadership(pg_url, node="b", lease=0.5)
    for _ in range(6):
        assert la.renew()
        assert lb.try_take(b.writer_pid) is None
        time.sleep(0.15)
    la.release()                                    # a clean stop: B leads at once
    assert lb.try_take(b.writer_pid) == 2
    a.close()
    b.close()
    lb.release()


def test_a_follower_catches_up_live(pg_url):
    opts = dict(agent_strategy="longest_idle")
    a, la = leader(pg_url)
    ja = JournaledEngine(a, **opts)
    ja.add_skill("tech")
    ja.add_queue(acd.Queue("support", steps=(acd.RoutingStep(0, {"tech": 1}),)))
    b = PostgresJournal(pg_url, node="b")
    jb = JournaledEngine(b, **opts)
    jb.load()
    assert jb.applied == ja.applied
    assert b.wait_for_change(0.0) is None           # listening from now on
    ja.login("x", {"tech": 3}, 0.0)
    ja.enqueue("c1", "support", 1.0)
    ja.enqueue("c2", "support", 2.0)
    assert b.wait_for_change(2.0) in (3, 4, 5)      # a commit was notified (add_* were 1 and 2)
    jb.catch_up()
    assert jb.snapshot() == ja.snapshot() and jb.applied == ja.applied == 5
    # taking over: the follower writes next, from where the log stands
    la.release()
    a.close()
    lb = Leadership(pg_url, node="b")
    jb.promote(lb.try_take(b.writer_pid))
    jb.answer("c1", 3.0)
    assert jb.journal.last_seq == 6
    jb.close()
    lb.release()


def _workload(seed, n=400):
    """A random but valid-ish command stream (refused commands are part of it: they journal nothing
    but the time they let pass)."""
    rng = random.Random(seed)
    now = 0.0
    cmds = []
    for i in range(n):
        now += rng.expovariate(2.0)
        k = rng.random()
        agent, call = f"a{rng.randrange(6)}", f"c{rng.randrange(40)}"
        if k < 0.15:
            cmds.append(("login", agent, {"tech": rng.randint(1, 5)}, now))
        elif k < 0.2:
            cmds.append(("logout", agent, now))
        elif k < 0.3:
            cmds.append(("ready", agent, now))
        elif k < 0.55:
            cmds.append(("enqueue", call, "support", now, rng.choice([None, 1, 5])))
        elif k < 0.7:
            cmds.append(("answer", call, now))
        elif k < 0.8:
            cmds.append(("complete", call, now))
        elif k < 0.88:
            cmds.append(("abandon", call, now))
        elif k < 0.93:
            cmds.append(("accept_callback", call, now))
        elif k < 0.96:
            cmds.append(("callback_answered", call, now))
        else:
            cmds.append(("advance", now))
    return cmds


def _drive(je, cmds):
    out = []
    for op, *args in cmds:
        try:
            out.append(repr(getattr(je, op)(*args)))
        except AcdError as e:
            out.append(f"{type(e).__name__}: {e}")
    return out


@pytest.mark.parametrize("seed", range(4))
def test_postgres_and_sqlite_journals_replay_to_the_same_engine(pg_url, tmp_path, seed):
    opts = dict(agent_strategy="longest_idle", seed=seed)
    q = acd.Queue("support", steps=(acd.RoutingStep(0, {"tech": 2}), acd.RoutingStep(3.0, {"tech": 1})), wrap_up=1.0,
                  callback_threshold=2.0, max_wait=30.0)
    pj, lead = leader(pg_url)
    engines = [JournaledEngine(SqliteJournal(tmp_path / "j.sqlite3", sync="normal"), **opts),
               JournaledEngine(pj, **opts)]
    for je in engines:
        je.add_skill("tech")
        je.add_queue(q)
    cmds = _workload(seed)
    outs = [_drive(je, cmds) for je in engines]
    assert outs[0] == outs[1]
    snaps = [je.snapshot() for je in engines]
    assert snaps[0] == snaps[1]
    for je in engines:
        je.close()
    lead.release()
    again = [JournaledEngine.open(str(tmp_path / "j.sqlite3"), **opts)]
    pr = PostgresJournal(pg_url, node="replay")
    jr = JournaledEngine(pr, **opts)
    jr.load()
    again.append(jr)
    assert again[0].snapshot() == again[1].snapshot() == snaps[0]
    assert [r for r in again[0].journal.records()] == [r for r in pr.records()]
    for je in again:
        je.close()


def test_demote_fails_the_appends_waiting_behind_a_commit(pg_url):
    """An append queued behind a commit in flight when the node is demoted gets an error (it used
    to spin for ever holding the journal's lock)."""
    j, lead = leader(pg_url)
    gate = threading.Event()
    real = j._write

    def slow_write(group, epoch):
        gate.wait(5)
        real(group, epoch)
    j._write = slow_write
    results = {}

    def append(name):
        try:
            results[name] = j.append("advance", (1.0,))
        except JournalError as e:
            results[name] = e
    first = threading.Thread(target=append, args=("first",))
    first.start()
    time.sleep(0.2)                       # the first commit is in flight
    second = threading.Thread(target=append, args=("second",))
    second.start()
    time.sleep(0.2)                       # the second waits behind it
    j.demote()
    gate.set()
    first.join(5)
    second.join(5)
    assert not first.is_alive() and not second.is_alive()
    assert results["first"] == 1
    assert isinstance(results["second"], JournalError)
    j._write = real
    j.close()
    lead.release()


def test_acd_report_reads_a_postgresql_journal_read_only(pg_url):
    import io
    import json

    from acd.cli import main as acd_main
    from acd.policy import Queue

    j, lead = leader(pg_url)
    je = JournaledEngine(j)
    je.note("clock", {"engine": 0.0, "unix": 1764579600.0})
    je.add_skill("fr")
    je.add_queue(Queue("q", wrap_up=5.0, service_level=(0.8, 20.0)))
    je.login("a1", {"fr": 1}, 0.0)
    je.enqueue("c1", "q", 1.0)
    je.answer("c1", 4.0)
    je.complete("c1", 64.0)
    je.enqueue("c2", "q", 70.0)
    je.answer("c2", 100.0)
    je.complete("c2", 130.0)
    je.enqueue("c3", "q", 131.0)
    je.enqueue("c4", "q", 132.0)
    je.abandon("c4", 140.0)
    before = len(j)

    def acd(*argv):
        out, err = io.StringIO(), io.StringIO()
        return acd_main(list(argv), out=out, err=err), out.getvalue(), err.getvalue()

    code, out, err = acd("report", pg_url, "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    s = got["summary"]["q"]
    assert (s["offered"], s["answered"], s["abandoned"], s["answered_within"]) == (3, 2, 1, 1)
    assert got["open_calls"] == 1 and got["sl_threshold"] == 20.0
    from acd.journal.postgres import redact_url
    assert got["journal"] == redact_url(pg_url)          # never a password
    je.close()
    lead.release()
    r = PostgresJournal(pg_url, node="check")
    assert len(r) == before                            # the report wrote nothing
    r.close()
    code, out, err = acd("report", pg_url, "--schema", "other")
    assert code == 2 and "holds no acd journal" in err and err.count("\n") == 1
    ro = PostgresJournal(pg_url, read_only=True)
    with pytest.raises(JournalError, match="read-only"):
        ro.promote(99)
    ro.close()
