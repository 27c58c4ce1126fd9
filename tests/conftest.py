import os

import pytest
from hypothesis import settings

import acd
from acd._reference import ReferenceEngine

# CI runs more examples; `ACD_HYPOTHESIS=ci` (see .ci/run)
settings.register_profile("ci", max_examples=1500, deadline=None)
settings.register_profile("dev", max_examples=300, deadline=None)
settings.load_profile(os.environ.get("ACD_HYPOTHESIS", "dev"))


@pytest.fixture(params=["core", "reference"])
def engine_cls(request):
    """Both implementations: every behavioural test runs on each."""
    return acd.Engine if request.param == "core" else ReferenceEngine


# --- PostgreSQL (tests/pg_support.py) ---------------------------------------------------------
# ACD_PG_URL: use that server (CI starts one in .ci/run); else a throw-away one is started here.
# ACD_REQUIRE_PG=1 (CI): no server is an error instead of a skip.

def _pg_required():
    return os.environ.get("ACD_REQUIRE_PG") == "1"


def _pg_unavailable(reason):
    if _pg_required():
        pytest.fail(f"PostgreSQL required (ACD_REQUIRE_PG=1) but {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL: {reason} (set ACD_PG_URL, or install postgresql)")


def _pg_with_database(url, name):
    from urllib.parse import urlsplit, urlunsplit

    if url.startswith(("postgresql://", "postgres://")):
        return urlunsplit(urlsplit(url)._replace(path="/" + name))
    from psycopg.conninfo import make_conninfo  # a key=value conninfo string

    return make_conninfo(url, dbname=name)


@pytest.fixture(scope="session")
def pg_server():
    """Base URL of a PostgreSQL server for the whole session (connect to its `postgres` database)."""
    url = os.environ.get("ACD_PG_URL")
    if url:
        yield url
        return
    import pg_support

    if pg_support.find_bindir() is None:
        _pg_unavailable("ACD_PG_URL is not set and no server binaries were found "
                        "(/usr/lib/postgresql/*/bin, PATH)")
    try:
        server = pg_support.start()
    except pg_support.PgSupportError as e:
        _pg_unavailable(f"could not start a throw-away server: {e}")
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server):
    """URL of a fresh, empty database for this test alone; dropped (WITH (FORCE)) afterwards."""
    import secrets

    if _pg_required():
        import psycopg
    else:
        psycopg = pytest.importorskip("psycopg")
    name = f"acd_t_{secrets.token_hex(6)}"
    with psycopg.connect(pg_server, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _pg_with_database(pg_server, name)
    finally:
        with psycopg.connect(pg_server, autocommit=True) as c:
            c.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
