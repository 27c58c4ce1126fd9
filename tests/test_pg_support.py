"""The PostgreSQL fixtures (conftest.py) and the throw-away server (pg_support.py)."""

from __future__ import annotations

import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

import pg_support

psycopg = pytest.importorskip("psycopg")

_seen: list[str] = []  # databases the isolation tests ran in


@pytest.mark.parametrize("run", ["first", "second"])
def test_each_test_gets_its_own_empty_database(pg_url, run):
    with psycopg.connect(pg_url, autocommit=True) as c:
        name = c.execute("SELECT current_database()").fetchone()[0]
        assert name.startswith("acd_t_") and name not in _seen
        _seen.append(name)
        assert c.execute("SELECT to_regclass('public.t')").fetchone()[0] is None
        c.execute("CREATE TABLE t (run text PRIMARY KEY)")  # same name in both tests: no conflict
        c.execute("INSERT INTO t VALUES (%s)", (run,))
        assert c.execute("SELECT run FROM t").fetchall() == [(run,)]


def test_databases_of_earlier_tests_are_dropped(pg_server):
    if not _seen:
        pytest.skip("run together with the isolation tests above")
    with psycopg.connect(pg_server, autocommit=True) as c:
        left = c.execute("SELECT datname FROM pg_database WHERE datname = ANY(%s)", (_seen,)).fetchall()
    assert left == []


def test_fsync_is_on(pg_url):
    # the benchmarks measure durable commits
    with psycopg.connect(pg_url) as c:
        assert c.execute("SHOW fsync").fetchone()[0] == "on"
        assert c.execute("SHOW synchronous_commit").fetchone()[0] == "on"


def test_the_server_listens_on_loopback_only(pg_url):
    u = urlsplit(pg_url)
    assert u.hostname == "127.0.0.1"
    with psycopg.connect(pg_url) as c:
        assert c.execute("SHOW listen_addresses").fetchone()[0] == "127.0.0.1"
        assert c.execute("SELECT host(inet_server_addr())").fetchone()[0] == "127.0.0.1"
    # another loopback address reaches the same interface, but nothing is bound there
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.2", u.port), timeout=2).close()


def test_the_command_line_starts_and_stops_a_server():
    if pg_support.find_bindir() is None:
        if os.environ.get("ACD_REQUIRE_PG") == "1":
            pytest.fail("ACD_REQUIRE_PG=1 but no PostgreSQL server binaries")
        pytest.skip("no PostgreSQL server binaries")
    script = str(Path(__file__).with_name("pg_support.py"))
    out = subprocess.run([sys.executable, script, "start"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    env = dict(line.split("=", 1) for line in out.stdout.splitlines())
    env = {k: shlex.split(v)[0] for k, v in env.items()}
    assert set(env) == {"ACD_PG_URL", "ACD_PG_DIR"}
    try:
        with psycopg.connect(env["ACD_PG_URL"]) as c:
            assert c.execute("SELECT current_database(), current_user").fetchone() == ("postgres", "postgres")
            assert c.execute("SHOW max_connections").fetchone()[0] == "200"
            assert c.execute("SHOW shared_buffers").fetchone()[0] == "128MB"
            assert c.execute("SHOW unix_socket_directories").fetchone()[0] == env["ACD_PG_DIR"]
        assert (Path(env["ACD_PG_DIR"]) / "postgres.log").exists()
    finally:
        stop = subprocess.run([sys.executable, script, "stop", env["ACD_PG_DIR"]], capture_output=True, text=True,
                              timeout=120)
    assert stop.returncode == 0, stop.stderr
    assert not os.path.exists(env["ACD_PG_DIR"])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", urlsplit(env["ACD_PG_URL"]).port), timeout=2).close()


def test_stop_refuses_a_directory_it_did_not_make(tmp_path):
    (tmp_path / "keep").write_text("x")
    with pytest.raises(pg_support.PgSupportError, match="not made by"):
        pg_support.stop(str(tmp_path))
    assert (tmp_path / "keep").exists()
