"""Bytes in, bounded lines out: the line reader of AGI and of the relay.

AGI (environment, replies) and the relay protocol are both ``\\n``-terminated
lines.  :class:`LineBuffer` holds what was received and hands out complete
lines; it performs no I/O, so the blocking side (the classic script's stdin
and relay socket, :class:`~.blocking.SyncAGISession`) and the tests feed it
whatever ``read()`` returned.  A line longer than the buffer's bound raises
:class:`~acd.errors.ProtocolError` as soon as the bound is passed, so a peer
cannot make us buffer more than ``max_line`` bytes plus one read.  (The asyncio
sessions let ``StreamReader.readuntil`` cut lines, under the same bound; AMI
has its own reader so far.)

:func:`line_text` decodes one line and checks it (length, no embedded line
break); every AGI parser goes through it.
"""

from __future__ import annotations

from acd.errors import InvalidInput, ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ("LineBuffer", "line_text", "short", "read_line")


def short(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters for an error message."""
    return text if len(text) <= limit else text[:limit] + "..."


class LineBuffer:
    """Received bytes, cut into lines of at most ``max_line`` bytes (line end excluded).

    :meth:`feed` adds data, :meth:`feed_eof` records the end of input,
    :meth:`next_line` returns the next complete line (``\\n`` included) or
    None when more data is needed.  After the end of input, a partial last
    line is dropped (the peer left in the middle of it) and ``eof`` is true
    once every complete line was taken.
    """

    __slots__ = ("max_line", "_data", "_start", "_closed")

    def __init__(self, max_line: int) -> None:
        if isinstance(max_line, bool) or not isinstance(max_line, int) or max_line < 1:
            raise InvalidInput(f"max_line must be a positive int, got {max_line!r}")
        self.max_line = max_line
        self._data = bytearray()
        self._start = 0
        self._closed = False

    def feed(self, data: bytes) -> None:
        if self._closed:
            raise ProtocolError("data received after the end of input")
        self._data += data

    def feed_eof(self) -> None:
        self._closed = True

    @property
    def eof(self) -> bool:
        """True when the input ended and no complete line is left."""
        return self._closed and self._data.find(b"\n", self._start) < 0

    @property
    def pending(self) -> int:
        """Bytes received but not yet returned as a line."""
        return len(self._data) - self._start

    def next_line(self) -> bytes | None:
        data, start = self._data, self._start
        end = data.find(b"\n", start)
        if end < 0:
            # "\r\n" ends are allowed, so a line may hold max_line + 1 bytes before its "\n"
            if len(data) - start > self.max_line + 1:
                raise ProtocolError(f"line longer than {self.max_line} bytes")
            return None
        size = end - start
        if size > self.max_line and not (size == self.max_line + 1 and data[end - 1] == 0x0D):
            raise ProtocolError(f"line longer than {self.max_line} bytes ({size})")
        line = bytes(data[start:end + 1])
        self._start = end + 1
        if self._start > 65536 and self._start * 2 > len(data):
            del data[:self._start]  # drop what was consumed, now and then
            self._start = 0
        return line


def read_line(buf: LineBuffer, read: Callable[[], bytes]) -> bytes | None:
    """The next line from ``buf``, calling ``read()`` (blocking; b"" at the end) for more.

    Returns None at the end of input (a partial last line is dropped).
    """
    while True:
        line = buf.next_line()
        if line is not None:
            return line
        if buf.eof:
            return None
        data = read()
        if not data:
            buf.feed_eof()
        else:
            buf.feed(data)


def line_text(line: bytes | str, max_line: int) -> str:
    """Decode one received line and strip its line end; enforce the length bound."""
    if isinstance(line, (bytes, bytearray)):
        if line.endswith(b"\n"):
            line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if len(line) > max_line:
            raise ProtocolError(f"line of {len(line)} bytes exceeds the limit of {max_line}")
        text = bytes(line).decode("utf-8", "replace")
    elif isinstance(line, str):
        text = line[:-1] if line.endswith("\n") else line
        text = text[:-1] if text.endswith("\r") else text
        if len(text) > max_line:
            raise ProtocolError(f"line of {len(text)} characters exceeds the limit of {max_line}")
    else:
        raise InvalidInput(f"line must be bytes or str, got {type(line).__name__}")
    if "\n" in text or "\r" in text:
        raise ProtocolError(f"line contains an embedded line break: {short(text)!r}")
    return text
