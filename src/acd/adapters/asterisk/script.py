"""The classic AGI script: relay one call to the running dispatcher, then exit.

Asterisk runs it once per ``AGI()`` step, as the installed ``acd-agi`` console
script (``AGI(acd-agi,enqueue?queue=support&priority=2)``, see
``examples/asterisk/README.md``) or as ``python -m acd.adapters.asterisk``.
It reads the AGI environment on stdin, connects to the dispatcher's UNIX
socket (``--socket PATH``, else ``$ACD_AGI_SOCKET``, else
:data:`DEFAULT_SOCKET_PATH`) and relays commands and replies in the relay
protocol (:mod:`.relay`) until the dispatcher ends the session.

Routing: the first AGI argument names the script, optionally with a query
(``enqueue?queue=support&priority=2``); further arguments of the form
``key=value`` are added (``AGI(acd-agi,enqueue,queue=support)``).

Hang-ups.  Asterisk tells a classic AGI process that the channel hung up with
SIGHUP.  The entry point (:mod:`.__main__`) catches it before anything else is
imported, and :func:`main` relays it as ``{"op": "hangup"}`` as soon as the
dispatcher knows the call (right after the hello, whenever it came); the
signal handler itself only records the hang-up and wakes the relay loop, so a
message is never cut in two.  If the dispatcher cannot be reached the hang-up
is said on stderr with the error.  What no script can cover is the
interpreter's own start-up, before the first line of the entry point runs
(about 10 ms on an idle machine, far more on a saturated one): a SIGHUP then
ends the process, before it has read or sent anything.  For a step that only
reports (``dial_result`` in ``U()``, the call-back context) set
``AGISIGHUP=no`` in the dialplan: the report then always arrives
(``examples/asterisk/README.md``).

Errors: if the dispatcher cannot be reached (or is lost), or the request is
malformed, the script sets ``ACD_STATUS=ERROR``, ``ACD_ERROR=<code>`` and
``ACD_ERROR_DETAIL`` on the channel, logs a ``VERBOSE`` line, prints one line
on stderr (``acd-agi: <CODE>: <detail>``, never a traceback) and exits with
status 1.  Exit status 0 when the dispatcher ended the session (``OK`` or
``HANGUP``), 1 on any reported error, 2 when the AGI environment could not be
read or the command line is wrong.

Light by design: a call may start three of these processes (``enqueue``, the
``U()`` ``dial_result``, ``call_end``), so this module and everything it
imports are the standard library's ``os``, ``sys`` and ``math``, the C modules
``_socket``, ``_signal`` and ``select`` (``socket``, ``signal`` and ``json``
would bring ``enum`` and ``re``, about as costly as all the rest), and acd's
sans-I/O AGI modules -- not asyncio, not the engine, not numpy
(``tests/test_agi_script_startup.py`` checks the list).  Measured:
``bench/agi_script.py``.
"""

from __future__ import annotations

import _socket
import os
import select
import sys

from acd.errors import InvalidInput, ProtocolError

from . import relay
from .blocking import SyncAGISession
from .commands import error_commands
from .errors import AGIError, ChannelHungUp
from .lines import LineBuffer
from .routes import Route, parse_route

TYPE_CHECKING = False
if TYPE_CHECKING:
    import signal as _signal  # the same functions (the C module has no stub)
    from collections.abc import Sequence
    from typing import IO, Any, Final

    from .wire import AGIEnvironment
else:
    import _signal  # the C module: `signal` would convert its constants to enums first

__all__ = ("main", "native_path", "DEFAULT_SOCKET_PATH", "HANGUP_GRACE", "USAGE", "NATIVE_NAME")

DEFAULT_SOCKET_PATH: Final = "/run/acd/agi.sock"
HANGUP_GRACE: Final = 60.0
"""Seconds the script still waits for the dispatcher after a hang-up."""

USAGE: Final = """\
usage: acd-agi [--socket PATH] SCRIPT[?key=value&...] [key=value ...]

Classic AGI script for acd: relays this call to the running `acd serve`
over its UNIX socket ([fastagi] unix_path), so that the dialplan can say
  AGI(acd-agi,enqueue?queue=support&priority=2)
Asterisk runs it with the AGI environment on stdin; it is not meant to be run
by hand.  The socket is --socket PATH, else $ACD_AGI_SOCKET, else
/run/acd/agi.sock.  Exit status: 0 done, 1 error reported to the channel
(ACD_STATUS=ERROR), 2 no usable AGI environment or bad options.

options:
  --socket PATH  the dispatcher's relay socket
  --native-path  print the path of the compiled relay (acd-agi-native: the
                 same job for about a millisecond of CPU; link that one into
                 agi-bin for busy sites) and exit
  -h, --help     show this help and exit
  --version      show the version and exit
"""

NATIVE_NAME: Final = "acd-agi-native"


def native_path() -> str:
    """Where the compiled relay was installed (InvalidInput when this build has none)."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), NATIVE_NAME)
    if not os.access(path, os.X_OK):
        raise InvalidInput(f"no compiled relay at {path} (this installation was built without it)")
    return path


class _Hangup:
    """The SIGHUP handler: records the hang-up and wakes the relay loop (nothing else:
    a handler that wrote to the socket could cut a message in two)."""

    def __init__(self) -> None:
        self.seen = False
        self.wake_fd = -1

    def __call__(self, signum: int = 0, frame: object = None) -> None:
        self.seen = True
        if self.wake_fd >= 0:
            try:
                os.write(self.wake_fd, b"\0")
            except OSError:  # full (already woken) or closed: either way nothing is lost
                pass


class _RelayClient:
    """Blocking client side of the relay socket: one message at a time, from the main code only."""

    def __init__(self, sock: _socket.socket, hangup: _Hangup) -> None:
        self._sock = sock
        self._sock_fd = sock.fileno()
        self._buf = LineBuffer(relay.MAX_RELAY_LINE)
        self._hangup = hangup
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        hangup.wake_fd = self._wake_w
        self.hangup_sent = False

    def send(self, data: bytes) -> None:
        self._sock.sendall(data)

    def relay_hangup(self) -> None:
        """Tell the dispatcher about a hang-up seen since the last call (at most once)."""
        if self._hangup.seen and not self.hangup_sent:
            self.hangup_sent = True
            self._sock.sendall(relay.HANGUP)

    def receive(self) -> dict[str, Any] | None:
        """The next message from the dispatcher; None when it closed the connection.

        While waiting, a hang-up is relayed as soon as it is seen; after one,
        the dispatcher has :data:`HANGUP_GRACE` seconds to end the session.
        """
        while True:
            self.relay_hangup()
            line = self._buf.next_line()
            if line is not None:
                return relay.decode(line)
            if self._buf.eof:
                return None
            ready, _, _ = select.select([self._sock_fd, self._wake_r], [], [],
                                        HANGUP_GRACE if self.hangup_sent else None)
            if not ready:
                raise TimeoutError(f"no word from the dispatcher within {HANGUP_GRACE:g} s of the hang-up")
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
            if self._sock_fd in ready:
                data = self._sock.recv(65536)
                if data:
                    self._buf.feed(data)
                else:
                    self._buf.feed_eof()

    def close(self) -> None:
        self._hangup.wake_fd = -1
        for fd in (self._wake_r, self._wake_w):
            os.close(fd)
        self._sock.close()


def _script_error(agi: SyncAGISession, code: str, detail: str, stderr: IO[str], hangup: _Hangup) -> None:
    """Report an error on stderr and to the channel (best effort)."""
    note = "; the channel had hung up" if hangup.seen else ""
    print(f"acd-agi: {code}: {detail}{note}", file=stderr)
    if agi.hung_up:
        return
    for cmd in error_commands(code, detail):  # SET VARIABLE works on a dead channel too
        try:
            agi.transact(cmd)
        except (AGIError, ProtocolError, InvalidInput):
            return


def _parse_argv(argv: Sequence[str]) -> tuple[str | None, str | None]:
    """``(socket path, what to print and exit with)``; InvalidInput for a bad option."""
    socket_path = None
    it = iter(argv)
    for arg in it:
        if arg in ("-h", "--help"):
            return socket_path, USAGE
        if arg == "--version":
            from acd import __version__
            return socket_path, f"acd-agi (acd {__version__})\n"
        if arg == "--native-path":
            return socket_path, native_path() + "\n"
        if arg == "--socket":
            socket_path = next(it, None)
            if not socket_path:
                raise InvalidInput("--socket needs a path")
        elif arg.startswith("--socket="):
            socket_path = arg.split("=", 1)[1]
        elif arg.startswith("-"):
            raise InvalidInput(f"unknown option {arg!r} (see --help)")
    return socket_path, None


def main(argv: Sequence[str] | None = None, *, stdin: IO[bytes] | None = None, stdout: IO[bytes] | None = None,
         stderr: IO[str] | None = None, socket_path: str | None = None, connect_timeout: float = 5.0,
         install_signal_handlers: bool | None = None, early_hangups: Sequence[int] = ()) -> int:
    """Run as a classic AGI script: relay this call to the dispatcher.

    Returns the exit status: 0 when the dispatcher ended the session (``OK``
    or ``HANGUP``), 1 on any reported error (dispatcher down or lost, bad
    request, ``ERROR`` from the dispatcher), 2 when even the AGI environment
    could not be read or an option is wrong.  Errors end up as one line on
    stderr, never as a traceback.  ``install_signal_handlers`` (default: when
    reading the real stdin) catches SIGHUP as a hang-up; ``early_hangups``
    are the SIGHUPs the entry point caught before this ran (a non-empty
    sequence: the channel hung up already).
    """
    errf = stderr if stderr is not None else sys.stderr
    try:
        return _main(argv, stdin, stdout, errf, socket_path, connect_timeout, install_signal_handlers,
                     early_hangups)
    except Exception as exc:  # a bug: still one clear line for the Asterisk log
        print(f"acd-agi: INTERNAL: {type(exc).__name__}: {exc}", file=errf)
        return 1


def _main(argv: Sequence[str] | None, stdin: IO[bytes] | None, stdout: IO[bytes] | None, errf: IO[str],
          socket_path: str | None, connect_timeout: float, install_signal_handlers: bool | None,
          early_hangups: Sequence[int]) -> int:
    hangup = _Hangup()
    if install_signal_handlers is None:
        install_signal_handlers = stdin is None
    previous: Any = None
    if install_signal_handlers:
        try:
            previous = _signal.signal(_signal.SIGHUP, hangup)
        except (ValueError, OSError, AttributeError):  # not the main thread / no SIGHUP here
            previous = None
    if early_hangups:  # checked after the handler is in place: no SIGHUP falls in between
        hangup()
    try:
        return _run(argv, stdin, stdout, errf, socket_path, connect_timeout, hangup)
    finally:
        if previous is not None:
            _signal.signal(_signal.SIGHUP, previous)


def _run(argv: Sequence[str] | None, stdin: IO[bytes] | None, stdout: IO[bytes] | None, errf: IO[str],
         socket_path: str | None, connect_timeout: float, hangup: _Hangup) -> int:
    try:
        arg_path, message = _parse_argv(sys.argv[1:] if argv is None else argv)
    except InvalidInput as exc:
        print(f"acd-agi: {exc}", file=errf)
        return 2
    if message is not None:
        if stdout is None:
            sys.stdout.write(message)
        else:
            stdout.write(message.encode())
        return 0
    path = socket_path or arg_path or os.environ.get("ACD_AGI_SOCKET") or DEFAULT_SOCKET_PATH

    agi = SyncAGISession(stdin if stdin is not None else sys.stdin.buffer,
                         stdout if stdout is not None else sys.stdout.buffer)
    agi.on_hangup = hangup
    try:
        env = agi.read_environment()
    except ProtocolError as exc:
        note = "; the channel had hung up" if hangup.seen else ""
        print(f"acd-agi: PROTOCOL: cannot read the AGI environment: {exc}{note}", file=errf)
        return 2
    try:
        route = parse_route(env, classic=True)
    except InvalidInput as exc:
        _script_error(agi, "BAD_REQUEST", str(exc), errf, hangup)
        return 1

    try:
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    except OSError as exc:
        _script_error(agi, "UNAVAILABLE", f"cannot create a UNIX socket: {exc}", errf, hangup)
        return 1
    try:
        sock.settimeout(connect_timeout)
        sock.connect(path)
        sock.settimeout(None)
    except OSError as exc:
        sock.close()
        reason = exc.strerror or type(exc).__name__
        _script_error(agi, "UNAVAILABLE", f"dispatcher unavailable at {path}: {reason}", errf, hangup)
        return 1

    client = _RelayClient(sock, hangup)
    try:
        return _relay_loop(agi, client, env, route, errf, hangup)
    finally:
        client.close()


def _relay_loop(agi: SyncAGISession, client: _RelayClient, env: AGIEnvironment, route: Route, errf: IO[str],
                hangup: _Hangup) -> int:
    try:
        client.send(relay.hello(route, env))
        while True:
            message = client.receive()  # relays a hang-up first, whenever it came
            if message is None:
                _script_error(agi, "DISPATCHER_LOST", "the dispatcher closed the connection", errf, hangup)
                return 1
            op = message["op"]
            if op == "end":
                return 1 if message.get("status") == "ERROR" else 0
            if op != "command":
                raise ProtocolError(f"unexpected relay message {op!r}")
            command = relay.command_from_message(message)
            try:
                reply = agi.transact(command)
            except ChannelHungUp:
                hangup()
                client.relay_hangup()
                return 0  # Asterisk closed our stdin: nothing more to do
            client.relay_hangup()  # a hang-up during the command goes before its reply
            client.send(relay.reply_message(reply))
    except ProtocolError as exc:
        _script_error(agi, "PROTOCOL", str(exc), errf, hangup)
        return 1
    except OSError as exc:  # TimeoutError included
        _script_error(agi, "DISPATCHER_LOST", f"relay connection failed: {exc}", errf, hangup)
        return 1
