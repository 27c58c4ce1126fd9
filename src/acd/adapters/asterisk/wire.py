"""The AGI wire format: the environment, commands and replies, as Asterisk writes them.

* Asterisk first sends the environment, one ``agi_name: value`` line each,
  ended by an empty line.
* Each command is one line; arguments are separated by blanks, ``"`` toggles
  quoting and ``\\`` makes the next character literal.  We always quote.
  Asterisk reads a command into a 2 KiB buffer, so longer commands are refused
  here (:class:`~acd.errors.InvalidInput`).
* Replies: ``200 result=<token>[ (<data>)][ key=value ...]``; ``510 Invalid or
  unknown command``; ``511 Command Not Permitted on a dead channel``;
  ``520 Invalid command syntax.  Proper usage not available.`` or a multi-line
  ``520-Invalid command syntax.  Proper usage follows:`` ... ``520 End of
  proper usage.`` body.  ``result`` may be ``-1`` and, for ``GET DATA``, is the
  digit string (possibly empty).
* FastAGI: when the channel hangs up Asterisk writes a ``HANGUP`` line (unless
  the channel variable ``AGISIGHUP`` is ``no``) and then answers most commands
  with 511; ``SET VARIABLE``, ``GET VARIABLE`` and ``VERBOSE`` still work.  A
  classic AGI process receives ``SIGHUP`` instead.

Everything here is plain data and parsing: no I/O, no asyncio, not even
``re`` -- the classic script imports this module, and ``re`` (with the enum
module it needs) would double what its own modules cost it to start.  The
character classes below say in words what each check allows; the tests check
them against the equivalent regular expressions.  Malformed input raises
:class:`~acd.errors.ProtocolError` and leaves a parser as it was.
"""

from __future__ import annotations

from acd.errors import InvalidInput, ProtocolError

from .lines import line_text, short

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any, Final
else:
    from _collections_abc import Mapping  # what collections.abc re-exports, without importing collections

__all__ = (
    "MAX_LINE", "MAX_ENV_LINES", "MAX_USAGE_LINES", "MAX_COMMAND_BYTES", "MAX_ARGS",
    "Command", "quote_arg", "AGIReply", "ReplyParser", "parse_reply_line", "HANGUP_NOTICE",
    "AGIEnvironment", "EnvironmentParser", "parse_env_line",
)

MAX_LINE: Final = 8192
"""Longest line accepted from Asterisk, in bytes (without the line end)."""
MAX_ENV_LINES: Final = 256
"""Most ``agi_*`` environment lines accepted."""
MAX_USAGE_LINES: Final = 256
"""Most lines accepted in a 520 usage body."""
MAX_COMMAND_BYTES: Final = 2047
"""Longest command we send, newline included (res_agi reads into 2048 bytes)."""
MAX_ARGS: Final = 120

# ------------------------------------------------------------ character classes

DIGITS: Final = frozenset("0123456789")
UPPER: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
LOWER: Final = frozenset("abcdefghijklmnopqrstuvwxyz")
NAME_START: Final = UPPER | LOWER | {"_"}
"""``[A-Za-z_]``"""
WORD: Final = NAME_START | DIGITS
"""``[A-Za-z0-9_]``"""
_RESULT_CHARS: Final = WORD - {"_"} | set("*#+.-")
_KEY_CHARS: Final = WORD | {"-"}


def has_control(text: str) -> bool:
    """True when ``text`` holds a control character other than tab (``[\\x00-\\x08\\x0a-\\x1f\\x7f]``)."""
    if text.isprintable():
        return False
    return any(c == "\x7f" or (c < " " and c != "\t") for c in text)


def without_control(text: str) -> str:
    """``text`` with each control character (tab included) replaced by a blank."""
    if text.isprintable():
        return text
    return "".join(" " if c < " " or c == "\x7f" else c for c in text)


def is_name(text: str, rest: frozenset[str] = WORD, max_len: int = 64) -> bool:
    """``[A-Za-z_]`` then up to ``max_len - 1`` characters of ``rest``."""
    return 0 < len(text) <= max_len and text[0] in NAME_START and all(c in rest for c in text[1:])


def is_int_token(text: str) -> bool:
    """``-?[0-9]{1,18}``"""
    digits = text[1:] if text[:1] == "-" else text
    return 0 < len(digits) <= 18 and all(c in DIGITS for c in digits)


def is_result_token(text: str) -> bool:
    """What may follow ``result=``: ``[0-9A-Za-z*#+.-]*``"""
    return all(c in _RESULT_CHARS for c in text)


def is_command_name(text: str) -> bool:
    """Upper-case words separated by single blanks: ``[A-Z]+( [A-Z]+)*``"""
    return all(word and all(c in UPPER for c in word) for word in text.split(" "))


class Record:
    """Immutable value object with ``__slots__`` (what ``@dataclass(frozen=True, slots=True)``
    gives, without importing dataclasses: the classic script must start fast)."""

    __slots__: tuple[str, ...] = ()

    def __init__(self, *values: Any) -> None:
        for name, value in zip(self.__slots__, values):
            object.__setattr__(self, name, value)

    def _values(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash((self.__class__, self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{self.__class__.__name__}({fields})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"cannot assign to field {name!r} of an immutable {self.__class__.__name__}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"cannot delete field {name!r} of an immutable {self.__class__.__name__}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, self._values())


# ------------------------------------------------------------------- commands

def quote_arg(value: str) -> str:
    """Quote one argument the way res_agi splits them (``"`` quoting, ``\\`` escapes)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Command(Record):
    """One AGI command: ``name`` (upper-case words) and its arguments.

    Arguments are always quoted on the wire, so any text without a line break
    or NUL is sent as exactly one argument.
    """

    __slots__ = ("name", "args")
    name: str
    args: tuple[str, ...]

    def __init__(self, name: str, args: tuple[str, ...] = ()) -> None:
        if not isinstance(name, str) or not is_command_name(name):
            raise InvalidInput(f"AGI command name must be upper-case words, got {name!r}")
        if not isinstance(args, tuple):
            raise InvalidInput(f"AGI command args must be a tuple, got {args!r}")
        if len(args) > MAX_ARGS:
            raise InvalidInput(f"AGI command {name} has {len(args)} arguments, at most {MAX_ARGS} allowed")
        for arg in args:
            if not isinstance(arg, str):
                raise InvalidInput(f"AGI command argument must be a str, got {arg!r}")
            if "\n" in arg or "\r" in arg or "\x00" in arg:
                raise InvalidInput(f"AGI command argument must not contain a line break or NUL, got {short(arg)!r}")
        super().__init__(name, args)
        try:
            size = len(self.encode())
        except UnicodeEncodeError:
            raise InvalidInput(f"AGI command {name} has an argument that is not valid text") from None
        if size > MAX_COMMAND_BYTES:
            raise InvalidInput(f"AGI command {name} is {size} bytes long, at most {MAX_COMMAND_BYTES} allowed")

    @classmethod
    def build(cls, name: str, *args: str | int) -> Command:
        """Build a command; ``int`` arguments are formatted in decimal (``bool`` refused)."""
        out = []
        for arg in args:
            if isinstance(arg, bool) or not isinstance(arg, (str, int)):
                raise InvalidInput(f"AGI command argument must be a str or an int, got {arg!r}")
            out.append(str(arg))
        return cls(name, tuple(out))

    def encode(self) -> bytes:
        """The command line, newline included."""
        parts = [self.name, *(quote_arg(a) for a in self.args)]
        return (" ".join(parts) + "\n").encode("utf-8")

    def __str__(self) -> str:
        return self.encode().decode("utf-8").rstrip("\n")


# -------------------------------------------------------------------- replies

_USAGE_END = "520 End of proper usage."


class AGIReply(Record):
    """One reply from Asterisk.

    ``result`` is the raw token after ``result=`` (200 replies only; may be
    ``""``), ``data`` the text in parentheses, ``extra`` the ``key=value``
    pairs after it (``endpos``...), ``message`` any other text (the text after
    the code for non-200 replies), ``usage`` the body of a multi-line 520.
    """

    __slots__ = ("code", "result", "data", "extra", "message", "usage")
    code: int
    result: str | None
    data: str | None
    extra: tuple[tuple[str, str], ...]
    message: str
    usage: str | None

    def __init__(self, code: int, result: str | None = None, data: str | None = None,
                 extra: tuple[tuple[str, str], ...] = (), message: str = "", usage: str | None = None) -> None:
        super().__init__(code, result, data, extra, message, usage)

    @property
    def ok(self) -> bool:
        return self.code == 200

    @property
    def result_int(self) -> int | None:
        """``result`` as an int, or None when it is not a (short) integer."""
        if self.result is None or not is_int_token(self.result):
            return None
        return int(self.result)

    def get(self, key: str, default: str | None = None) -> str | None:
        """The first ``key=value`` pair after the result (``reply.get("endpos")``)."""
        for k, v in self.extra:
            if k == key:
                return v
        return default

    @property
    def endpos(self) -> int | None:
        value = self.get("endpos")
        return int(value) if value is not None and is_int_token(value) else None

    def __str__(self) -> str:
        if self.code != 200:
            return f"{self.code} {self.message}"
        text = f"200 result={self.result}"
        if self.data is not None:
            text += f" ({self.data})"
        if self.message:
            text += " " + self.message
        for k, v in self.extra:
            text += f" {k}={v}"
        return text


def _key_follows(text: str, pos: int) -> bool:
    """Blanks, then ``key=`` at ``pos`` (``\\s+[A-Za-z_][A-Za-z0-9_-]*=``)."""
    n = len(text)
    i = pos
    while i < n and text[i].isspace():
        i += 1
    if i == pos or i == n or text[i] not in NAME_START:
        return False
    i += 1
    while i < n and text[i] in _KEY_CHARS:
        i += 1
    return i < n and text[i] == "="


def _find_data_end(inner: str) -> int:
    """Index of the ``)`` that closes the reply data, or -1.

    The data is not escaped by Asterisk (a variable may contain parentheses),
    so take the last ``)`` that is followed by nothing or by ``key=...``.
    """
    idx = len(inner)
    while True:
        idx = inner.rfind(")", 0, idx)
        if idx < 0:
            return -1
        end = idx + 1
        if end == len(inner) or inner[end:].isspace() or _key_follows(inner, end):
            return idx


def _parse_tail(text: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    words: list[str] = []
    extra: list[list[str]] = []
    for token in text.split():
        key, sep, value = token.partition("=")
        if sep and is_name(key, _KEY_CHARS, len(key)):
            extra.append([key, value])
        elif extra:
            extra[-1][1] += " " + token  # "results=foo bar": values may hold blanks
        else:
            words.append(token)
    return " ".join(words), tuple((k, v) for k, v in extra)


def _reply_head(text: str) -> tuple[int, str, str] | None:
    """``NNN`` then a blank or ``-``, then the rest: ``(code, separator, rest)``."""
    if len(text) < 4 or text[3] not in " -" or not all(c in DIGITS for c in text[:3]):
        return None
    return int(text[:3]), text[3], text[4:]


def _single_reply(code: int, rest: str) -> AGIReply:
    if code != 200:
        return AGIReply(code, message=rest)
    if not rest.startswith("result="):
        raise ProtocolError(f"200 reply without result=: {short(rest)!r}")
    tail = rest[7:]
    token = tail.split(None, 1)[0] if tail and not tail[0].isspace() else ""
    if not is_result_token(token):
        raise ProtocolError(f"malformed result {short(token)!r} in 200 reply")
    after = tail[len(token):]
    data = None
    if after.startswith(" ("):
        inner = after[2:]
        close = _find_data_end(inner)
        if close < 0:
            raise ProtocolError(f"unterminated (data) in 200 reply: {short(rest)!r}")
        data = inner[:close]
        after = inner[close + 1:]
    message, extra = _parse_tail(after)
    return AGIReply(200, token, data, extra, message)


class _Hangup:
    __slots__ = ()

    def __repr__(self) -> str:
        return "HANGUP"


HANGUP_NOTICE: Final = _Hangup()
"""Returned by :meth:`ReplyParser.feed` for a ``HANGUP`` notification line."""


def parse_reply_line(line: bytes | str, max_line: int = MAX_LINE) -> AGIReply:
    """Parse one complete single-line reply (not ``HANGUP``, not a 520 body)."""
    text = line_text(line, max_line)
    head = _reply_head(text)
    if head is None or head[1] != " ":
        raise ProtocolError(f"malformed AGI reply line: {short(text)!r}")
    return _single_reply(head[0], head[2])


class ReplyParser:
    """Assemble replies from lines, including multi-line 520 bodies.

    :meth:`feed` returns an :class:`AGIReply` when one is complete,
    :data:`HANGUP_NOTICE` for a ``HANGUP`` line, else None.  A line that is not
    a reply raises :class:`ProtocolError` and changes nothing.
    """

    def __init__(self, max_line: int = MAX_LINE, max_body_lines: int = MAX_USAGE_LINES) -> None:
        self.max_line = max_line
        self.max_body_lines = max_body_lines
        self._body: list[str] | None = None
        self._code = 0
        self._head = ""

    @property
    def in_body(self) -> bool:
        """True while inside a multi-line (``520-``) reply."""
        return self._body is not None

    def feed(self, line: bytes | str) -> AGIReply | _Hangup | None:
        text = line_text(line, self.max_line)
        if self._body is not None:
            return self._feed_body(text)
        if text == "HANGUP":
            return HANGUP_NOTICE
        head = _reply_head(text)
        if head is None:
            raise ProtocolError(f"malformed AGI reply line: {short(text)!r}")
        code, sep, rest = head
        if sep == "-":
            if code != 520:  # only usage help is ever sent on several lines
                raise ProtocolError(f"unexpected multi-line {code} reply: {short(text)!r}")
            self._body, self._code, self._head = [], code, rest
            return None
        return _single_reply(code, rest)

    def _feed_body(self, text: str) -> AGIReply | None:
        body = self._body
        assert body is not None
        if text.startswith("520 "):
            pass
        elif text.endswith(_USAGE_END):
            # Some usage texts lack a final newline, gluing the end marker on.
            body.append(text[: -len(_USAGE_END)])
        else:
            if len(body) >= self.max_body_lines:
                self._body = None
                raise ProtocolError(f"multi-line 520 reply longer than {self.max_body_lines} lines")
            body.append(text)
            return None
        self._body = None
        return AGIReply(self._code, message=self._head, usage="\n".join(body))


# ---------------------------------------------------------------- environment

_REQUIRED_ENV: Final = ("agi_request", "agi_channel")


def is_env_key(key: str) -> bool:
    """``agi_`` then 1 to 64 of ``[A-Za-z0-9_]``"""
    return key.startswith("agi_") and 0 < len(key) - 4 <= 64 and all(c in WORD for c in key[4:])


def parse_env_line(line: bytes | str, max_line: int = MAX_LINE) -> tuple[str, str]:
    """Parse ``agi_name: value`` into ``(name, value)``; raise ProtocolError otherwise."""
    text = line_text(line, max_line)
    key, sep, rest = text.partition(":")
    if not sep or not is_env_key(key) or (rest and rest[0] != " "):
        raise ProtocolError(f"malformed AGI environment line {short(text)!r} (expected 'agi_name: value')")
    value = rest[1:]
    if has_control(value):
        raise ProtocolError(f"control character in AGI environment value of {key}")
    return key, value


class AGIEnvironment(Mapping[str, str]):
    """The ``agi_*`` variables Asterisk sent, keyed by their full names."""

    __slots__ = ("_vars",)

    def __init__(self, variables: Mapping[str, str]) -> None:
        vars_ = dict(variables)
        if len(vars_) > MAX_ENV_LINES:
            raise ProtocolError(f"AGI environment has {len(vars_)} variables, at most {MAX_ENV_LINES} allowed")
        for key, value in vars_.items():
            if not isinstance(key, str) or not is_env_key(key):
                raise ProtocolError(f"malformed AGI environment name {short(str(key))!r}")
            if not isinstance(value, str) or len(value) > MAX_LINE or has_control(value):
                raise ProtocolError(f"malformed AGI environment value for {key}")
        missing = [k for k in _REQUIRED_ENV if k not in vars_]
        if missing:
            raise ProtocolError(f"incomplete AGI environment: missing {', '.join(missing)}")
        self._vars = vars_

    def __getitem__(self, key: str) -> str:
        return self._vars[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._vars)

    def __len__(self) -> int:
        return len(self._vars)

    def __repr__(self) -> str:
        return f"AGIEnvironment(channel={self.channel!r}, request={self.request!r})"

    @property
    def request(self) -> str:
        return self._vars["agi_request"]

    @property
    def channel(self) -> str:
        return self._vars["agi_channel"]

    @property
    def uniqueid(self) -> str | None:
        return self._vars.get("agi_uniqueid")

    @property
    def callerid(self) -> str | None:
        return self._vars.get("agi_callerid")

    @property
    def calleridname(self) -> str | None:
        return self._vars.get("agi_calleridname")

    @property
    def language(self) -> str | None:
        return self._vars.get("agi_language")

    @property
    def context(self) -> str | None:
        return self._vars.get("agi_context")

    @property
    def extension(self) -> str | None:
        return self._vars.get("agi_extension")

    @property
    def network(self) -> bool:
        return self._vars.get("agi_network", "").lower() == "yes"

    @property
    def network_script(self) -> str | None:
        return self._vars.get("agi_network_script")

    @property
    def arguments(self) -> tuple[str, ...]:
        """``agi_arg_1``, ``agi_arg_2``... in order, up to the first missing one."""
        out = []
        n = 1
        while f"agi_arg_{n}" in self._vars:
            out.append(self._vars[f"agi_arg_{n}"])
            n += 1
        return tuple(out)


class EnvironmentParser:
    """Collect environment lines until the blank line (bounded in count and length,
    and in total size -- line ends included -- when ``max_bytes`` is given)."""

    def __init__(self, max_line: int = MAX_LINE, max_lines: int = MAX_ENV_LINES, *,
                 max_bytes: int | None = None) -> None:
        self.max_line = max_line
        self.max_lines = max_lines
        self.max_bytes = max_bytes
        self.size = 0  # bytes (or characters, for str lines) accepted so far, line ends included
        self._vars: dict[str, str] = {}
        self.done = False

    def feed(self, line: bytes | str) -> AGIEnvironment | None:
        if self.done:
            raise ProtocolError("the AGI environment is already complete")
        text = line_text(line, self.max_line)
        size = self.size + len(line)
        if self.max_bytes is not None and size > self.max_bytes:
            raise ProtocolError(f"AGI environment longer than {self.max_bytes} bytes")
        if text == "":
            if not self._vars:
                raise ProtocolError("missing AGI environment (got an empty line first)")
            env = AGIEnvironment(self._vars)
            self.done = True
            return env
        key, value = parse_env_line(text, self.max_line)
        if key in self._vars:
            raise ProtocolError(f"duplicate AGI environment variable {key}")
        if len(self._vars) >= self.max_lines:
            raise ProtocolError(f"AGI environment longer than {self.max_lines} lines")
        self._vars[key] = value
        self.size = size
        return None
