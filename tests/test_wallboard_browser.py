"""The wallboard in a real browser: Debian's headless Chromium, driven over the DevTools protocol.

The protocol runs over a pipe (``--remote-debugging-pipe``: the browser reads
commands on its fd 3 and writes answers and events on its fd 4, each message
one JSON text ended by a NUL byte), so no websocket library is needed.  The
service runs on loopback in a thread of its own; a caller enters a queue
through the fake Asterisk (FastAGI) and the page must show it within one
second, measured from the command to the DOM.  A screenshot is kept as a CI
artefact: ``build/artifacts/wallboard.png``.

Skipped when Chromium is missing, except with ``ACD_REQUIRE_CHROMIUM=1``
(CI), where a missing browser fails the test.
"""

from __future__ import annotations

import asyncio
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
from fakes.channel import FakeChannel
from service_support import make_config

from acd.service import Dispatcher

ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "artifacts"


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and os.path.exists("/usr/bin/chromium"):
        path = "/usr/bin/chromium"
    if path is None:
        if os.environ.get("ACD_REQUIRE_CHROMIUM") == "1":
            pytest.fail("ACD_REQUIRE_CHROMIUM=1 but no Chromium found (apt-get install -y chromium)")
        pytest.skip("no Chromium (apt-get install -y chromium; ACD_REQUIRE_CHROMIUM=1 makes this a failure)")
    return path


def _above(fd: int, low: int = 10) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, low)
    os.close(fd)
    return high


class CDP:
    """A DevTools protocol client over the browser's pipe; one page session."""

    def __init__(self, binary: str, profile: str) -> None:
        to_browser_r, self._w = os.pipe()
        self._r, from_browser_w = os.pipe()
        # moved above 9, so that the shell's "3<&n 4>&m" never overwrites one end with the other
        to_browser_r, from_browser_w = (_above(to_browser_r), _above(from_browser_w))
        # the browser wants the pipe on fds 3 and 4 exactly: a shell redirects them, then execs it
        args = [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
                "--disable-background-networking", "--disable-component-update", "--remote-debugging-pipe",
                f"--user-data-dir={profile}", "--window-size=1600,1000", "about:blank"]
        self.log = os.path.join(profile, "chromium.log")
        with open(self.log, "wb") as err:   # bash: dash takes no fd number above 9 in a redirection
            self.proc = subprocess.Popen(
                [shutil.which("bash") or "/bin/bash", "-c", f'exec "$@" 3<&{to_browser_r} 4>&{from_browser_w}',
                 "bash", *args], pass_fds=(to_browser_r, from_browser_w), stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, stderr=err)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buf = b""
        self._id = 0
        self.events: List[Dict[str, Any]] = []
        self.session: Optional[str] = None

    def _read(self, deadline: float) -> Dict[str, Any]:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no answer from Chromium")
            ready, _, _ = select.select([self._r], [], [], left)
            if ready:
                data = os.read(self._r, 1 << 20)
                if not data:
                    raise EOFError(f"Chromium closed its pipe (exit {self.proc.poll()}): {self.log_tail()}")
                self._buf += data
        msg, _, self._buf = self._buf.partition(b"\0")
        return json.loads(msg)

    def log_tail(self) -> str:
        with open(self.log, "rb") as f:
            lines = [ln for ln in f.read().decode("utf-8", "replace").splitlines() if "dbus" not in ln]
        return "\n".join(lines[-15:])

    def send(self, method: str, params: Optional[Dict[str, Any]] = None, *, browser: bool = False,
             timeout: float = 10.0) -> Dict[str, Any]:
        self._id += 1
        msg: Dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if not browser and self.session is not None:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            got = self._read(deadline)
            if got.get("id") == self._id:
                if "error" in got:
                    raise RuntimeError(f"{method}: {got['error']}")
                return got.get("result", {})
            self.events.append(got)

    def wait_event(self, method: str, timeout: float = 10.0) -> Dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read(deadline))

    def open_page(self, url: str) -> None:
        target = self.send("Target.createTarget", {"url": "about:blank"}, browser=True)["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True},
                                 browser=True)["sessionId"]
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send("Emulation.setDeviceMetricsOverride", {"width": 1600, "height": 1000, "deviceScaleFactor": 1,
                                                         "mobile": False})
        self.send("Page.navigate", {"url": url})
        self.wait_event("Page.loadEventFired")

    def eval(self, expression: str) -> Any:
        got = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        if "exceptionDetails" in got:
            raise RuntimeError(f"{expression}: {got['exceptionDetails']}")
        return got["result"].get("value")

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close", browser=True, timeout=2)
                except (OSError, TimeoutError, EOFError, RuntimeError):
                    pass
                try:
                    self.proc.wait(3)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
        finally:
            for fd in (self._r, self._w):
                try:
                    os.close(fd)
                except OSError:
                    pass


class ServiceThread:
    """``acd serve`` on loopback in a thread with its own event loop."""

    def __init__(self, tmp_path: Path) -> None:
        self.loop = asyncio.new_event_loop()
        self.d = Dispatcher(make_config(tmp_path))
        self.thread = threading.Thread(target=self.loop.run_forever, name="acd-service", daemon=True)
        self.thread.start()
        self.call(self.d.start())

    def call(self, coro: Any, timeout: float = 20.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        try:
            self.call(self.d.stop(timeout=0.5))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
            self.loop.close()


WAITING = 'document.querySelector(\'[data-queue="support"] [data-field="waiting"]\')?.textContent'


def test_the_page_shows_a_new_caller_within_a_second(tmp_path):
    binary = _chromium()
    profile = tempfile.mkdtemp(prefix="acd-chromium-")
    svc = ServiceThread(tmp_path)
    browser: Optional[CDP] = None
    channel: Optional[FakeChannel] = None
    try:
        browser = CDP(binary, profile)
        browser.send("Browser.getVersion", browser=True)
        browser.open_page(f"http://127.0.0.1:{svc.d.http_port}/")
        # the page's own state first, then its event stream (updates counts SSE states)
        deadline = time.monotonic() + 10
        while browser.eval("Number(document.body.dataset.updates || 0)") < 1:
            assert time.monotonic() < deadline, "the page never received a state from /events"
            time.sleep(0.02)
        assert browser.eval(WAITING) == "0"
        assert browser.eval("document.getElementById('live').textContent") == "live"
        assert "NO AGENT LOGGED IN for support" in browser.eval("document.getElementById('alarms').textContent")

        async def enqueue() -> FakeChannel:
            return await FakeChannel(svc.d.fastagi_port, "enqueue?queue=support", uniqueid="1700000000.42").start()

        t0 = time.monotonic()
        channel = svc.call(enqueue())
        polls = 0
        while browser.eval(WAITING) != "1":
            polls += 1
            assert time.monotonic() - t0 < 1.0, "the page did not show the caller within 1 s"
            time.sleep(0.01)
        latency = time.monotonic() - t0
        print(f"\nwallboard latency: enqueue -> DOM {latency * 1000:.0f} ms ({polls} polls)")
        assert svc.d.engine.call_state("1700000000.42") == "waiting"
        assert browser.eval("document.querySelector('#callers tr[data-call]')?.dataset.call") == "1700000000.42"
        updates = browser.eval("document.body.dataset.updates")
        time.sleep(2.0)      # the caller's wait ticks in the page, with no event since
        assert browser.eval("document.body.dataset.updates") == updates
        wait = browser.eval("document.querySelector('#callers tr[data-call] td.w').textContent")
        assert wait in ("1 s", "2 s", "3 s"), wait
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = browser.send("Page.captureScreenshot", {"format": "png"})["data"]
        (ARTIFACTS / "wallboard.png").write_bytes(base64.b64decode(shot))
        assert (ARTIFACTS / "wallboard.png").stat().st_size > 10_000
    finally:
        try:
            if browser is not None:
                browser.close()
        finally:
            try:
                if channel is not None:
                    async def hang_up() -> None:
                        await channel.hangup()
                        await channel.done()
                    svc.call(hang_up())
            finally:
                svc.stop()
                shutil.rmtree(profile, ignore_errors=True)
