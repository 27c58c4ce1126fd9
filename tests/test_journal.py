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


def test_journal_failure_stops_the_engine(tmp_path):
    je = JournaledEngine.open(tmp_path / "j.db", sync="normal")
    je.add_queue(acd.Queue("q"))
    je.journal._db.close()                      # the disk goes away
    with pytest.raises(JournalError):
        je.enqueue("c1", "q", 1.0)
    with pytest.raises(JournalError, match="failed earlier"):
        je.enqueue("c2", "q", 2.0)
