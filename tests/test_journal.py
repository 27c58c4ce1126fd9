"""The SQLite command journal: replay rebuilds the engine; a killed process loses no call-back."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import acd
from acd.errors import JournalError
from acd.journal import JournaledEngine, SqliteJournal


def setup_engine(je):
    je.add_skill("fr")
    je.add_queue(acd.Queue("general"))
    je.add_queue(acd.Queue("line", steps=(acd.RoutingStep(0, {"fr": 3}), acd.RoutingStep(30, overflow="general")),
                           callback_threshold=0, max_wait=600, wrap_up=5))


def test_replay_rebuilds_identical_state(tmp_path):
    path = tmp_path / "j.db"
    je = JournaledEngine.open(path, agent_strategy="round_robin", seed=5)
    setup_engine(je)
    je.login("a", {"fr": 4}, 0.0)
    je.login("b", {"fr": 2}, 0.0, queues=["general"], paused="briefing")
    je.enqueue("c1", "line", 1.0)
    je.enqueue("c2", "line", 2.0, priority=3, requirements={"fr": 1})
    je.answer("c1", 3.0)
    je.accept_callback("c2", 4.0)
    je.schedule_callback("c3", "line", 900.0, 5.0)
    je.ready("b", 40.0)
    with pytest.raises(acd.UnknownAgent):
        je.pause("ghost", 50.0, reason="x")           # refused: only its time is kept
    snap = je.snapshot()
    je.close()

    again = JournaledEngine.open(path)
    assert again.engine.agent_strategy == "round_robin"
    assert again.snapshot() == snap
    assert again.calls() == {"c1": "connected", "c2": "dialing_back", "c3": "scheduled"}
    assert again.now == 50.0
    again.close()


def test_options_must_match(tmp_path):
    path = tmp_path / "j.db"
    JournaledEngine.open(path, seed=1).close()
    with pytest.raises(JournalError, match="engine options"):
        JournaledEngine.open(path, seed=2)


def test_batch_commits_together(tmp_path):
    path = tmp_path / "j.db"
    je = JournaledEngine.open(path, sync="normal")
    setup_engine(je)
    with je.batch():
        for i in range(100):
            je.enqueue(i, "general", float(i))
        with SqliteJournal(path) as other:
            assert len(other) == 3                    # configuration only: the batch is not committed yet
    assert len(je.journal) == 103
    je.close()


def test_unserialisable_arguments_are_refused(tmp_path):
    with SqliteJournal(tmp_path / "j.db") as j:
        with pytest.raises(JournalError, match="JSON"):
            j.append("enqueue", (object(),))
    with pytest.raises(JournalError, match="sync"):
        SqliteJournal(tmp_path / "k.db", sync="sometimes")


CHILD = textwrap.dedent("""
    import sys, acd
    from acd.journal import JournaledEngine
    je = JournaledEngine.open(sys.argv[1], seed=1)
    je.add_queue(acd.Queue("line", callback_threshold=0, callback_attempts=3))
    je.login("agent", {}, 0.0)
    je.enqueue("busy", "line", 0.0)
    je.answer("busy", 0.0)            # the only agent stays busy: call-backs accumulate
    t = 1.0
    i = 0
    while True:
        call = f"c{i}"
        je.enqueue(call, "line", t)
        if i % 3 == 0:
            je.accept_callback(call, t)
            print("pending", call, flush=True)          # acknowledged: durable from here
        elif i % 3 == 1:
            je.schedule_callback(f"s{i}", "line", t + 3600.0, t)
            print("pending", f"s{i}", flush=True)
        else:
            je.abandon(call, t)
        i += 1
        t += 0.5
""")


def test_killed_process_loses_no_pending_call_back(tmp_path):
    path = tmp_path / "crash.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen([sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True, env=env)
    acked = []
    deadline = time.monotonic() + 60
    try:
        while len(acked) < 150 and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            acked.append(line.split()[1])
    finally:
        proc.send_signal(signal.SIGKILL)     # no clean shutdown, mid-write
        proc.wait(timeout=30)
        proc.stdout.close()
    assert len(acked) >= 150, "child did not produce enough call-backs"

    je = JournaledEngine.open(path)
    calls = je.calls()
    pending = {c for c, s in calls.items() if s in ("callback_pending", "scheduled")}
    # every acknowledged call-back is back, exactly once; at most the one in flight is extra
    assert set(acked) <= pending
    assert len(pending - set(acked)) <= 1
    snap = je.snapshot()["queues"]["line"]["callbacks"]
    assert snap["pending"] == len(pending)
    assert snap["accepted"] + snap["scheduled"] == len(pending)
    je.close()


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def open_at(path, clock, **kw):
    """JournaledEngine.open with an injected clock (retry timing under test control)."""
    journal = SqliteJournal(path, sync="normal")
    je = JournaledEngine(journal, clock=clock, **kw)
    je.load()
    return je


def fill_until_full(je, start):
    """Enqueue/abandon calls until the journal refuses a write; return the call that failed.  Each
    pair is one group commit, so that the write that fails holds the enqueue wherever the page
    limit falls (record sizes change as commands and queues gain fields)."""
    i = start
    while True:
        call = f"f{i}"
        try:
            with je.batch():
                je.enqueue(call, "q", float(i))
                je.abandon(call, float(i))
        except JournalError:
            return call, float(i)
        i += 1


def test_a_write_that_fails_is_rolled_back_and_the_journal_recovers(tmp_path):
    clock = FakeClock()
    path = tmp_path / "j.db"
    je = open_at(path, clock)
    je.add_queue(acd.Queue("q"))
    je.login("a", {}, 0.0)
    db = je.journal._db
    db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}")   # the disk is full
    call, t = fill_until_full(je, 1)
    assert not je.up and "full" in je.last_error
    # the failed enqueue changed nothing: no call, the agent is not reserved for it
    with pytest.raises(acd.UnknownCall):
        je.call_state(call)
    assert je.agent_state("a") == "available"
    assert je.now < t or je.calls() == {}
    # while down: refused at once, nothing applied
    with pytest.raises(JournalError, match="refused until it can"):
        je.enqueue("late", "q", t + 1)
    with pytest.raises(acd.UnknownCall):
        je.call_state("late")
    clock.t += 0.6                                     # retry time, still full: refused, and backs off
    with pytest.raises(JournalError, match="refused until it can"):
        je.enqueue("late", "q", t + 1)
    db.execute("PRAGMA max_page_count=1073741823")     # space is back
    clock.t += 0.5                                     # within the back-off: still refused
    with pytest.raises(JournalError):
        je.enqueue("late", "q", t + 1)
    clock.t += 1.0
    out = je.enqueue("late", "q", t + 2)
    assert je.up and [type(d).__name__ for d in out] == ["Assign"]
    snap = je.snapshot()
    je.close()
    again = JournaledEngine.open(path)
    assert again.snapshot() == snap
    notes = [args for _, op, args in again.journal.records() if op == "note"]
    assert [n[0] for n in notes] == ["journal_recovered"] and "full" in notes[0][1]["error"]
    again.close()


@pytest.mark.skipif(sys.platform != "linux" or os.geteuid() != 0, reason="needs root to mount a tmpfs")
def test_real_full_disk_then_space_freed(tmp_path):
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        clock = FakeClock()
        je = open_at(mnt / "j.db", clock)
        je.add_queue(acd.Queue("q"))
        je.login("a", {}, 0.0)
        filler = mnt / "filler"
        with open(filler, "wb") as f:                  # take every free byte
            try:
                while True:
                    f.write(b"x" * 65536)
                    f.flush()
            except OSError:
                pass
        call, t = fill_until_full(je, 1)
        assert not je.up
        assert je.agent_state("a") == "available"
        filler.unlink()
        clock.t += 1.0
        assert [type(d).__name__ for d in je.enqueue("back", "q", t + 1)] == ["Assign"]
        assert je.up
        je.close()
        assert JournaledEngine.open(mnt / "j.db").call_state("back") == "offered"
    finally:
        subprocess.run(["umount", "-l", str(mnt)])


def test_closed_connection_cannot_roll_back_and_says_so(tmp_path):
    je = JournaledEngine.open(tmp_path / "j.db", sync="normal")
    je.add_queue(acd.Queue("q"))
    je.journal._db.close()                      # the file goes away under us
    with pytest.raises(JournalError):
        je.enqueue("c1", "q", 1.0)
    with pytest.raises(JournalError, match="restart from the journal"):
        je.enqueue("c2", "q", 2.0)
    assert not je.up


def _corrupt(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def test_corrupted_pages_are_a_journal_error(tmp_path):
    path = tmp_path / "j.db"
    je = JournaledEngine.open(path, sync="normal")
    setup_engine(je)
    je.login("a", {"fr": 3}, 0.0)
    for i in range(2000):
        je.enqueue(f"c{i}", "general", float(i))
    je.close()
    size = os.path.getsize(path)
    _corrupt(path, size // 2, os.urandom(8192))
    with pytest.raises(JournalError, match=str(path).replace(".", r"\.")):
        JournaledEngine.open(path)


def test_not_a_database_and_missing_table(tmp_path):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(JournalError, match="cannot open journal"):
        JournaledEngine.open(junk)
    path = tmp_path / "j.db"
    je = JournaledEngine.open(path)
    je.add_queue(acd.Queue("q"))
    je.close()
    import sqlite3
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE commands")
    with pytest.raises(JournalError, match=r"not an acd journal: table\(s\) \['commands'\] missing"):
        JournaledEngine.open(path)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE things (x)")
    with pytest.raises(JournalError, match="not an acd journal"):
        JournaledEngine.open(other)


@pytest.mark.parametrize("op", ["__class__", "replay", "close", "snapshot", "enqueue_x"])
def test_unknown_operation_in_a_journal_is_refused(tmp_path, op):
    path = tmp_path / "j.db"
    je = JournaledEngine.open(path)
    je.add_queue(acd.Queue("q"))
    je.close()
    import sqlite3
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO commands (op, args) VALUES (?, ?)", (op, "[]"))
    with pytest.raises(JournalError, match=rf"record 2 holds an unknown command '{op}'"):
        JournaledEngine.open(path)


def test_malformed_arguments_in_a_journal_are_refused(tmp_path):
    path = tmp_path / "j.db"
    je = JournaledEngine.open(path)
    je.add_queue(acd.Queue("q"))
    je.close()
    import sqlite3
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO commands (op, args) VALUES ('enqueue', '[1, 2, 3, 4, 5, 6, 7, 8]')")
        db.execute("INSERT INTO commands (op, args) VALUES ('answer', '{\"x\": 1}')")
    with pytest.raises(JournalError, match="record 2 .enqueue. has malformed arguments"):
        JournaledEngine.open(path)


def test_replay_on_a_journaled_engine_is_journaled(tmp_path):
    path = tmp_path / "j.db"
    je = JournaledEngine.open(path)
    je.add_queue(acd.Queue("q"))
    out = je.replay([("login", "a", {}, 0.0), ("enqueue", "c1", "q", 1.0), ("answer", "c1", 2.0)])
    assert [type(d).__name__ for d in out] == ["Assign"]
    with pytest.raises(JournalError, match="not an engine command"):
        je.replay([("close",)])
    snap = je.snapshot()
    je.close()
    again = JournaledEngine.open(path)
    assert again.snapshot() == snap and again.call_state("c1") == "connected"


def test_observer_sees_the_same_records_live_and_on_replay(tmp_path):
    path = tmp_path / "j.db"
    live = []
    je = JournaledEngine.open(path, observer=lambda *rec: live.append(rec))
    setup_engine(je)
    je.login("a", {"fr": 4}, 0.0)
    je.enqueue("c1", "line", 1.0)
    je.note("callback_number", {"call": "c2", "number": "0612345678"})
    je.enqueue("c2", "line", 2.0)
    je.accept_callback("c2", 3.0)
    with pytest.raises(acd.UnknownCall):
        je.answer("ghost", 45.0)          # refused; its deadlines (c2's overflow at 32 s) are journaled
    held = je.complete("c1", 46.0) if je.call_state("c1") == "connected" else je.answer("c1", 46.0)
    assert held and isinstance(held[0], acd.Overflow)    # the refused command's decisions come next
    je.close()
    again = []
    JournaledEngine.open(path, observer=lambda *rec: again.append(rec)).close()
    assert again == live
    assert [r[1] for r in live].count("note") == 1
    assert any(r[1] == "advance" and r[3] for r in live)


def test_batch_failure_rolls_back_every_command_of_the_batch(tmp_path):
    clock = FakeClock()
    seen = []
    je = open_at(tmp_path / "j.db", clock, observer=lambda *rec: seen.append(rec[1]))
    je.add_queue(acd.Queue("q"))
    before = list(seen)
    db = je.journal._db
    db.execute(f"PRAGMA max_page_count={db.execute('PRAGMA page_count').fetchone()[0]}")
    with pytest.raises(JournalError):
        with je.batch():
            for i in range(3000):
                je.enqueue(f"b{i}", "q", float(i))
    assert je.calls() == {} and seen == before and not je.up
