"""JSON for the relay protocol, without the json module.

The classic script exchanges a handful of small JSON messages with the
dispatcher.  ``import json`` would bring ``re`` and ``enum`` with it, which
cost the script more to import than all of its own modules, so it uses
:func:`dumps` and :func:`loads` here instead: plain recursive descent over
RFC 8259, at most :data:`MAX_DEPTH` levels deep.  :func:`dumps` writes what
``json.dumps(obj, ensure_ascii=True, separators=(",", ":"))`` writes;
:func:`loads` accepts a subset of what ``json.loads`` accepts (not ``NaN``,
``Infinity``, or duplicate keys; a key repeated is an error) and returns the
same value.  The tests check both against the json module.
"""

from __future__ import annotations

from acd.errors import InvalidInput, ProtocolError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Final

__all__ = ("dumps", "loads", "MAX_DEPTH")

MAX_DEPTH: Final = 32
_WHITESPACE: Final = " \t\n\r"
_SHORT_ESCAPES: Final = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}
_UNESCAPES: Final = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_HEX: Final = frozenset("0123456789abcdefABCDEF")
_DIGITS: Final = frozenset("0123456789")


class _Escapes(dict[int, str]):
    """``str.translate`` table: each character as it appears in ASCII-only JSON (cached)."""

    def __missing__(self, code: int) -> str:
        char = chr(code)
        if char in _SHORT_ESCAPES:
            out = _SHORT_ESCAPES[char]
        elif 0x20 <= code < 0x7F:
            out = char
        elif code < 0x10000:
            out = f"\\u{code:04x}"
        else:
            high, low = divmod(code - 0x10000, 0x400)
            out = f"\\u{0xD800 + high:04x}\\u{0xDC00 + low:04x}"
        self[code] = out
        return out


_ESCAPES = _Escapes()


def _string(text: str) -> str:
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return f'"{text.translate(_ESCAPES)}"'


def dumps(obj: Any) -> str:
    """``obj`` (str, int, bool, None, and lists, tuples and str-keyed dicts of them) as compact ASCII JSON."""
    if isinstance(obj, str):
        return _string(obj)
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, int):
        return int.__repr__(obj)
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join(dumps(x) for x in obj) + "]"
    if isinstance(obj, dict):
        parts = []
        for key, value in obj.items():
            if not isinstance(key, str):
                raise InvalidInput(f"JSON object keys must be strings, got {key!r}")
            parts.append(_string(key) + ":" + dumps(value))
        return "{" + ",".join(parts) + "}"
    raise InvalidInput(f"cannot write {type(obj).__name__} as relay JSON: {obj!r}")


class _Parser:
    __slots__ = ("text", "pos")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def fail(self, what: str) -> ProtocolError:
        return ProtocolError(f"{what} at character {self.pos}")

    def skip(self) -> None:
        text, pos = self.text, self.pos
        while pos < len(text) and text[pos] in _WHITESPACE:
            pos += 1
        self.pos = pos

    def value(self, depth: int) -> Any:
        self.skip()
        text, pos = self.text, self.pos
        if pos >= len(text):
            raise self.fail("expected a value")
        char = text[pos]
        if char == '"':
            return self.string()
        if char == "{" or char == "[":
            if depth >= MAX_DEPTH:
                raise self.fail(f"nested deeper than {MAX_DEPTH} levels")
            return self.obj(depth + 1) if char == "{" else self.array(depth + 1)
        for word, value in (("true", True), ("false", False), ("null", None)):
            if text.startswith(word, pos):
                self.pos = pos + len(word)
                return value
        if char == "-" or char in _DIGITS:
            return self.number()
        raise self.fail("expected a value")

    def obj(self, depth: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        self.pos += 1
        self.skip()
        if self.text[self.pos:self.pos + 1] == "}":
            self.pos += 1
            return out
        while True:
            self.skip()
            if self.text[self.pos:self.pos + 1] != '"':
                raise self.fail("expected a string key")
            key = self.string()
            if key in out:
                raise self.fail(f"duplicate key {key!r}")
            self.skip()
            if self.text[self.pos:self.pos + 1] != ":":
                raise self.fail("expected ':'")
            self.pos += 1
            out[key] = self.value(depth)
            self.skip()
            sep = self.text[self.pos:self.pos + 1]
            self.pos += 1
            if sep == "}":
                return out
            if sep != ",":
                self.pos -= 1
                raise self.fail("expected ',' or '}'")

    def array(self, depth: int) -> list[Any]:
        out: list[Any] = []
        self.pos += 1
        self.skip()
        if self.text[self.pos:self.pos + 1] == "]":
            self.pos += 1
            return out
        while True:
            out.append(self.value(depth))
            self.skip()
            sep = self.text[self.pos:self.pos + 1]
            self.pos += 1
            if sep == "]":
                return out
            if sep != ",":
                self.pos -= 1
                raise self.fail("expected ',' or ']'")

    def string(self) -> str:
        text = self.text
        pos = self.pos + 1
        parts = []
        while True:
            end = text.find('"', pos)
            if end < 0:
                raise self.fail("unterminated string")
            backslash = text.find("\\", pos, end)
            chunk = text[pos:end if backslash < 0 else backslash]
            if not chunk.isprintable() and any(c < " " for c in chunk):
                raise self.fail("control character in a string")
            parts.append(chunk)
            if backslash < 0:
                self.pos = end + 1
                return "".join(parts)
            pos = backslash + 1
            esc = text[pos:pos + 1]
            if esc == "u":
                code = self._hex4(pos + 1)
                pos += 5
                if 0xD800 <= code < 0xDC00 and text.startswith("\\u", pos):
                    low = self._hex4(pos + 2)
                    if 0xDC00 <= low < 0xE000:
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                        pos += 6
                parts.append(chr(code))
            elif esc in _UNESCAPES:
                parts.append(_UNESCAPES[esc])
                pos += 1
            else:
                self.pos = pos
                raise self.fail("invalid escape" if esc else "unterminated string")

    def _hex4(self, pos: int) -> int:
        digits = self.text[pos:pos + 4]
        if len(digits) != 4 or not all(c in _HEX for c in digits):
            self.pos = pos
            raise self.fail("invalid \\u escape")
        return int(digits, 16)

    def number(self) -> int | float:
        text = self.text
        start = pos = self.pos
        if text[pos] == "-":
            pos += 1
        if text[pos:pos + 1] == "0":
            pos += 1
        elif text[pos:pos + 1] in _DIGITS:
            while pos < len(text) and text[pos] in _DIGITS:
                pos += 1
        else:
            raise self.fail("malformed number")
        is_float = False
        if text[pos:pos + 1] == ".":
            pos += 1
            if not text[pos:pos + 1] or text[pos] not in _DIGITS:
                raise self.fail("malformed number")
            while pos < len(text) and text[pos] in _DIGITS:
                pos += 1
            is_float = True
        if text[pos:pos + 1] in ("e", "E"):
            pos += 1
            if text[pos:pos + 1] in ("+", "-"):
                pos += 1
            if not text[pos:pos + 1] or text[pos] not in _DIGITS:
                raise self.fail("malformed number")
            while pos < len(text) and text[pos] in _DIGITS:
                pos += 1
            is_float = True
        self.pos = pos
        try:
            return float(text[start:pos]) if is_float else int(text[start:pos])
        except ValueError:  # more digits than int() converts (sys.get_int_max_str_digits)
            raise self.fail("number too long") from None


def loads(text: str) -> Any:
    """The value of one JSON text; ProtocolError when it is not valid JSON."""
    parser = _Parser(text)
    value = parser.value(0)
    parser.skip()
    if parser.pos != len(text):
        raise parser.fail("extra data")
    return value
