"""Shared by the AGI, FastAGI and service tests: an independent AGI argument splitter,
a FastAGI server in a thread, and a fake Asterisk driving a classic AGI process on its pipes."""

from __future__ import annotations

import asyncio
import os
import select
import subprocess
import threading
import time
from typing import Any, Callable, Dict, List, Optional


def split_args(line: str) -> List[str]:
    """Split an AGI command line as Asterisk's res_agi does: '"' toggles quoting, '\\' escapes.

    Written from the documented rules, independently of acd's quoting, so that
    tests check acd's encoder against it."""
    words: List[str] = []
    cur: Optional[str] = None
    quoted = escaped = False
    for ch in line:
        if ch == '"' and not escaped:
            quoted = not quoted
            cur = "" if cur is None else cur
            continue
        if ch in " \t" and not quoted and not escaped:
            if cur is not None:
                words.append(cur)
                cur = None
            continue
        if ch == "\\" and not escaped:
            escaped = True
            continue
        cur = (cur or "") + ch
        escaped = False
    if cur is not None:
        words.append(cur)
    return words


class ServerThread:
    """A FastAGIServer running in its own event loop thread (a blocking script blocks ours)."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(5)

    def _run(self) -> None:
        async def body() -> None:
            await self.server.start()
            self._ready.set()
            await self.server.serve_forever()
        try:
            self.loop.run_until_complete(body())
        finally:
            self.loop.close()

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.stop(timeout=2), self.loop).result(10)
        self._thread.join(10)
        assert not self._thread.is_alive()


def env_lines(env: Dict[str, str]) -> bytes:
    return ("".join(f"{k}: {v}\n" for k, v in env.items()) + "\n").encode()


def asterisk_reply(command: str) -> str:
    """What Asterisk answers to a command on a live channel (enough for the relay tests)."""
    return "200 result=1" if command.startswith(("SET VARIABLE", "VERBOSE")) else "200 result=0"


class PipeAsterisk:
    """Asterisk's side of one classic AGI process: the environment on its stdin at once (as
    res_agi writes it; or later, with :meth:`send_env`), every command it writes answered by
    ``reply`` from a thread."""

    def __init__(self, argv: List[str], env: Dict[str, str], *, os_env: Optional[Dict[str, str]] = None,
                 reply: Callable[[str], str] = asterisk_reply) -> None:
        self.commands: List[str] = []
        self.reply = reply
        self.started = time.monotonic()
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=os_env)
        if env:
            self.send_env(env)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def send_env(self, env: Dict[str, str]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(env_lines(env))
        self.proc.stdin.flush()

    def _serve(self) -> None:
        assert self.proc.stdout is not None and self.proc.stdin is not None
        fd = self.proc.stdout.fileno()
        buf = b""
        while True:
            select.select([fd], [], [], 30)
            chunk = os.read(fd, 4096)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                command = line.decode()
                self.commands.append(command)
                try:
                    self.proc.stdin.write((self.reply(command) + "\n").encode())
                    self.proc.stdin.flush()
                except (BrokenPipeError, ValueError):
                    return

    def handler_installed(self, signum: int) -> bool:
        """Whether the process catches ``signum`` now (SigCgt in /proc, Linux)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("SigCgt:"):
                    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)
        raise AssertionError("no SigCgt line in /proc/<pid>/status")

    def finish(self, timeout: float = 20.0) -> tuple:
        """(exit status, stderr) once the process has ended."""
        try:
            status = self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(5)
        self._thread.join(5)
        assert self.proc.stderr is not None
        err = self.proc.stderr.read().decode()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None and not stream.closed:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass
        return status, err
