"""A throw-away PostgreSQL server for the tests and CI (stdlib only).

As a module::

    server = start()        # initdb + pg_ctl start; server.url, server.dir
    ...
    stop(server.dir)        # pg_ctl stop -m fast, then the directory is removed

As a command (CI, see .ci/run)::

    eval "$(python3 tests/pg_support.py start)"   # prints ACD_PG_URL=... and ACD_PG_DIR=...
    python3 tests/pg_support.py stop "$ACD_PG_DIR"

`start` on the command line first installs the server from Debian's packages when
ACD_PG_INSTALL=1 and none is found (`install_if_missing`).

The server listens on 127.0.0.1 only, on a free TCP port, with its unix socket inside
its own directory, trusts every local connection, and keeps fsync ON (the benchmarks
measure durable commits). initdb and pg_ctl refuse to run as root, so as root both run
as the unprivileged `postgres` user (ACD_PG_USER overrides it), who then owns the
directory.
"""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shlex
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass

_TOOLS = ("initdb", "pg_ctl", "postgres")
_MARKER = "acd-pg-support.json"  # written into every directory we made; `stop` refuses others
_PREFIX = "acd-pg-"


@dataclass(frozen=True)
class Server:
    url: str  # postgresql://postgres@127.0.0.1:PORT/postgres
    dir: str  # the temporary directory: data/, the unix socket, postgres.log
    port: int
    bindir: str

    @property
    def log(self) -> str:
        return os.path.join(self.dir, "postgres.log")

    def stop(self) -> None:
        stop(self.dir)


class PgSupportError(RuntimeError):
    pass


def _log(msg: str) -> None:
    print(f"pg_support: {msg}", file=sys.stderr, flush=True)


def _version_key(bindir: str) -> tuple[int, ...]:
    m = re.search(r"/postgresql/([0-9.]+)/bin$", bindir)
    return tuple(int(p) for p in m.group(1).split(".") if p) if m else (0,)


def _has_tools(bindir: str) -> bool:
    return all(os.access(os.path.join(bindir, t), os.X_OK) for t in _TOOLS)


def find_bindir() -> str | None:
    """The directory holding initdb, pg_ctl and postgres, or None.

    ACD_PG_BINDIR if set; else /usr/lib/postgresql/*/bin, newest version first (Debian
    puts the server there, and PATH's pg_config may belong to a client-only package);
    else wherever PATH has initdb.
    """
    explicit = os.environ.get("ACD_PG_BINDIR")
    if explicit:
        return explicit if _has_tools(explicit) else None
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        if _has_tools(bindir):
            return bindir
    initdb = shutil.which("initdb")
    if initdb:
        bindir = os.path.dirname(os.path.realpath(initdb))
        if _has_tools(bindir):
            return bindir
    return None


def _run_as() -> pwd.struct_passwd | None:
    """The user to run the server as: None for the current user, else (when root) postgres."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("ACD_PG_USER", "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise PgSupportError(
            f"running as root, and initdb refuses root, but there is no user {name!r} to run the "
            "server as (the postgresql package creates `postgres`; or set ACD_PG_USER)") from None


def _reachable_by(path: str, user: pwd.struct_passwd) -> bool:
    """Whether `user` can traverse every directory down to `path` (approximate: mode bits)."""
    path = os.path.realpath(path)
    while True:
        st = os.stat(path)
        if st.st_uid == user.pw_uid:
            ok = st.st_mode & stat.S_IXUSR
        elif st.st_gid == user.pw_gid:
            ok = st.st_mode & stat.S_IXGRP
        else:
            ok = st.st_mode & stat.S_IXOTH
        if not ok:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def _cmd(args: list[str], user: pwd.struct_passwd | None) -> list[str]:
    if user is None:
        return args
    runuser = shutil.which("runuser") or "/usr/sbin/runuser"
    return [runuser, "-u", user.pw_name, "--", *args]


def _run(args: list[str], user: pwd.struct_passwd | None, cwd: str, timeout: float = 120) -> None:
    p = subprocess.run(_cmd(args, user), cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=timeout)
    if p.returncode != 0:
        raise PgSupportError(f"{shlex.join(args)} failed (exit {p.returncode}):\n{p.stdout.strip()}")


def _conf_str(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _tail(path: str, lines: int = 30) -> str:
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:]).strip()
    except OSError:
        return "(no log)"


def start(timeout: float = 60) -> Server:
    """initdb into a fresh temporary directory and start the server; returns once it accepts connections."""
    bindir = find_bindir()
    if bindir is None:
        raise PgSupportError("no PostgreSQL server binaries (initdb, pg_ctl, postgres) in "
                             "/usr/lib/postgresql/*/bin or on PATH")
    user = _run_as()
    base = tempfile.gettempdir()
    if user is not None and not _reachable_by(base, user):
        base = "/tmp"
    # short names: the unix socket's path must stay under ~107 bytes
    top = tempfile.mkdtemp(prefix=_PREFIX, dir=base)
    try:
        with open(os.path.join(top, _MARKER), "w") as f:
            json.dump({"pid": os.getpid(), "bindir": bindir}, f)
        if user is not None:
            os.chown(top, user.pw_uid, user.pw_gid)
        data = os.path.join(top, "data")
        log = os.path.join(top, "postgres.log")
        t0 = time.monotonic()
        _run([os.path.join(bindir, "initdb"), "-D", data, "-A", "trust", "-U", "postgres",
              "-E", "UTF8", "--no-locale", "--no-sync"], user, cwd=top)
        t_initdb = time.monotonic() - t0
        settings = {
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": _conf_str(top),
            "max_connections": "200",
            "shared_buffers": "128MB",
            "fsync": "on",  # stays on: benchmarks measure durable commits
            "logging_collector": "off",  # pg_ctl -l writes the log file
            "log_line_prefix": "'%m [%p] %q%u@%d '",
        }
        with open(os.path.join(data, "postgresql.conf"), "a") as f:
            f.write("\n# tests/pg_support.py\n" + "".join(f"{k} = {v}\n" for k, v in settings.items()))
        for attempt in range(3):  # the free port may be taken between probing and binding
            port = _free_port()
            seen = os.path.getsize(log) if os.path.exists(log) else 0
            try:
                _run([os.path.join(bindir, "pg_ctl"), "-D", data, "-l", log, "-o", f"-p {port}",
                      "-w", "-t", str(int(timeout)), "start"], user, cwd=top, timeout=timeout + 30)
            except PgSupportError as e:
                taken = False
                if os.path.exists(log):
                    with open(log, errors="replace") as f:
                        f.seek(seen)
                        taken = "Address already in use" in f.read()
                if attempt < 2 and taken:
                    _log(f"port {port} was taken; trying another")
                    continue
                raise PgSupportError(f"{e}\n--- {log} ---\n{_tail(log)}") from None
            break
        deadline = time.monotonic() + timeout
        while not _accepts(port):  # pg_ctl -w waited already; this is belt and braces
            if time.monotonic() > deadline:
                raise PgSupportError(f"server on port {port} does not accept connections\n{_tail(log)}")
            time.sleep(0.05)
        server = Server(url=f"postgresql://postgres@127.0.0.1:{port}/postgres", dir=top, port=port, bindir=bindir)
        with open(os.path.join(top, _MARKER), "w") as f:
            json.dump({"pid": os.getpid(), "bindir": bindir, "port": port, "url": server.url}, f)
        _log(f"PostgreSQL ({bindir}) on 127.0.0.1:{port} in {top}: initdb {t_initdb:.2f} s, "
             f"ready after {time.monotonic() - t0:.2f} s")
        return server
    except BaseException:
        stop(top)
        raise


def stop(dir: str) -> None:
    """pg_ctl stop -m fast (if it runs), then remove the directory. Only for directories `start` made."""
    if not os.path.isdir(dir):
        return
    if not os.path.exists(os.path.join(dir, _MARKER)):
        raise PgSupportError(f"{dir} was not made by pg_support.start; not removing it")
    data = os.path.join(dir, "data")
    if os.path.exists(os.path.join(data, "postmaster.pid")):
        bindir = find_bindir()
        try:
            with open(os.path.join(dir, _MARKER)) as f:
                bindir = json.load(f).get("bindir") or bindir
        except (OSError, ValueError):
            pass
        user = _run_as()
        try:
            _run([os.path.join(bindir or "", "pg_ctl"), "-D", data, "-m", "fast", "-w", "-t", "60", "stop"],
                 user, cwd=dir, timeout=90)
        except (PgSupportError, OSError, subprocess.TimeoutExpired) as e:
            _kill_postmaster(data, e)
    shutil.rmtree(dir, ignore_errors=True)


def _kill_postmaster(data: str, why: BaseException) -> None:
    """Last resort when pg_ctl stop failed: SIGQUIT (immediate shutdown) to the postmaster of `data`."""
    try:
        with open(os.path.join(data, "postmaster.pid")) as f:
            pid = int(f.readline())
    except (OSError, ValueError):
        return
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"postgres" not in f.read():
                return  # a stale pid file; that pid is someone else now
    except OSError:
        return
    _log(f"pg_ctl stop failed ({why}); sending SIGQUIT to postmaster {pid}")
    try:
        os.kill(pid, 3)
        for _ in range(100):
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, 9)
    except ProcessLookupError:
        pass


def install_if_missing() -> str:
    """Install the server from Debian's packages when none is found; returns the bindir.

    Needs root (as CI is). Tries postgresql-15, then postgresql (Debian's default version),
    running apt-get update when the first attempt fails. Debian's packages normally create
    and start a `main` cluster on port 5432: a createcluster.d snippet stops that, since
    tests use their own throw-away server.
    """
    bindir = find_bindir()
    if bindir is not None:
        return bindir
    if os.geteuid() != 0:
        raise PgSupportError("no PostgreSQL server found, and installing one needs root")
    apt = shutil.which("apt-get")
    if apt is None:
        raise PgSupportError("no PostgreSQL server found and no apt-get to install one")
    snippet_dir = "/etc/postgresql-common/createcluster.d"
    os.makedirs(snippet_dir, exist_ok=True)
    snippet = os.path.join(snippet_dir, "acd-no-main-cluster.conf")
    if not os.path.exists(snippet):
        with open(snippet, "w") as f:
            f.write("# acd tests/pg_support.py: tests run their own server; no default cluster\n"
                    "create_main_cluster = false\n")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    updated = False
    for attempt in range(2):
        for pkg in ("postgresql-15", "postgresql"):
            _log(f"installing {pkg} (apt-get)")
            p = subprocess.run([apt, "install", "-y", "-q", "--no-install-recommends", pkg], env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
            if p.returncode == 0 and find_bindir() is not None:
                return find_bindir()  # type: ignore[return-value]
            last = p.stdout.strip()[-2000:]
        if not updated:
            _log("apt-get update")
            subprocess.run([apt, "update", "-q"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           check=False)
            updated = True
    raise PgSupportError(f"could not install PostgreSQL from Debian's packages:\n{last}")


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "start" and len(argv) == 1:
        try:
            if os.environ.get("ACD_PG_INSTALL") == "1":
                install_if_missing()
            server = start()
        except PgSupportError as e:
            _log(str(e))
            return 1
        print(f"ACD_PG_URL={shlex.quote(server.url)}")
        print(f"ACD_PG_DIR={shlex.quote(server.dir)}")
        return 0
    if len(argv) == 2 and argv[0] == "stop":
        try:
            stop(argv[1])
        except PgSupportError as e:
            _log(str(e))
            return 1
        return 0
    print("usage: pg_support.py start | pg_support.py stop DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
