"""Which handler a call runs: the script name and its arguments.

FastAGI names it in the URL (``agi://host:4573/enqueue?queue=support&priority=2``),
a classic AGI call in its first argument (``AGI(acd-agi,enqueue?queue=support)``);
further dialplan arguments of the form ``key=value`` are added in both cases.
:func:`validate_route` checks what the relay's hello carries as well.

The query string is split as :func:`urllib.parse.parse_qsl` does with
``keep_blank_values=True, strict_parsing=True`` (``+`` is a blank, ``%XX``
escapes are UTF-8), by :func:`parse_query` here: urllib.parse costs the
classic script more to import than all its own modules.
"""

from __future__ import annotations

from acd.errors import InvalidInput

from .lines import short
from .wire import WORD, AGIEnvironment, Record, has_control, is_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Final
else:
    from _collections_abc import Mapping  # what collections.abc re-exports, without importing collections

__all__ = ("Route", "parse_route", "validate_route", "parse_query", "MAX_ROUTE_ARGS", "MAX_ARG_VALUE")

MAX_ROUTE_ARGS: Final = 32
MAX_ARG_VALUE: Final = 1024
_NAME_CHARS: Final = WORD | {".", "-"}
_HEX: Final = frozenset("0123456789abcdefABCDEF")


def _is_script_name(name: str) -> bool:
    """1 to 8 parts separated by ``/``, each ``[A-Za-z0-9_]`` then up to 63 of ``[A-Za-z0-9_.-]``."""
    parts = name.split("/")
    return len(parts) <= 8 and all(0 < len(p) <= 64 and p[0] in WORD and all(c in _NAME_CHARS for c in p[1:])
                                   for p in parts)


class Route(Record):
    """Which handler to run (``script``) and its validated arguments."""

    __slots__ = ("script", "args")
    script: str
    args: Mapping[str, str]

    def __init__(self, script: str, args: Mapping[str, str]) -> None:
        super().__init__(script, args)

    def __hash__(self) -> int:
        return hash((self.script, tuple(sorted(self.args.items()))))


def validate_route(script: object, args: object) -> Route:
    """Check a script name and its arguments; raise InvalidInput with the reason."""
    if not isinstance(script, str) or not _is_script_name(script):
        raise InvalidInput(f"script name must be letters, digits, '_', '.', '-' (and '/'), got {short(str(script))!r}")
    if not isinstance(args, Mapping):
        raise InvalidInput(f"script arguments must be a mapping, got {type(args).__name__}")
    if len(args) > MAX_ROUTE_ARGS:
        raise InvalidInput(f"too many script arguments: {len(args)}, at most {MAX_ROUTE_ARGS} allowed")
    out: dict[str, str] = {}
    for key, value in args.items():
        if not isinstance(key, str) or not is_name(key, _NAME_CHARS):
            raise InvalidInput(f"bad argument name {short(str(key))!r}")
        if not isinstance(value, str):
            raise InvalidInput(f"argument {key} must be text, got {type(value).__name__}")
        if len(value) > MAX_ARG_VALUE or has_control(value):
            raise InvalidInput(f"bad value for argument {key}: {short(value)!r}")
        out[key] = value
    return Route(script, out)


def _unquote(text: str) -> str:
    """``%XX`` escapes decoded as UTF-8 (invalid bytes become U+FFFD), like urllib.parse.unquote.

    Consecutive escapes are decoded together (one character may take several);
    a ``%`` not followed by two hex digits stays as it is."""
    if "%" not in text:
        return text
    parts = text.split("%")
    out = [parts[0]]
    escaped = bytearray()
    for part in parts[1:]:
        if len(part) >= 2 and part[0] in _HEX and part[1] in _HEX:
            escaped.append(int(part[:2], 16))
            literal = part[2:]
        else:
            literal = "%" + part
        if literal:
            if escaped:
                out.append(escaped.decode("utf-8", "replace"))
                escaped.clear()
            out.append(literal)
    if escaped:
        out.append(escaped.decode("utf-8", "replace"))
    return "".join(out)


def parse_query(query: str, max_fields: int = MAX_ROUTE_ARGS) -> list[tuple[str, str]]:
    """``a=1&b=x+y`` -> ``[("a", "1"), ("b", "x y")]``; raise InvalidInput when malformed.

    The same pairs as ``urllib.parse.parse_qsl(query, keep_blank_values=True,
    strict_parsing=True, max_num_fields=max_fields)`` (checked by the tests).
    """
    if not query:
        return []
    fields = query.split("&")
    if len(fields) > max_fields:
        raise InvalidInput(f"too many script arguments in {short(query)!r}: {len(fields)}, at most {max_fields} allowed")
    pairs = []
    for field in fields:
        name, sep, value = field.partition("=")
        if not sep:
            raise InvalidInput(f"malformed query string {short(query)!r}: bad query field: {short(field)!r}")
        pairs.append((_unquote(name.replace("+", " ")), _unquote(value.replace("+", " "))))
    return pairs


def _add_args(args: dict[str, str], pairs: list[tuple[str, str]], where: str) -> None:
    for key, value in pairs:
        if key in args:
            raise InvalidInput(f"argument {short(key)!r} given twice ({where})")
        if len(args) >= MAX_ROUTE_ARGS:
            raise InvalidInput(f"too many script arguments, at most {MAX_ROUTE_ARGS} allowed")
        args[key] = value


def _kv_args(values: tuple[str, ...]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        key, sep, val = value.partition("=")
        if not sep:
            raise InvalidInput(f"argument {short(value)!r} is not of the form key=value")
        pairs.append((key, val))
    return pairs


def parse_route(env: AGIEnvironment, *, classic: bool = False) -> Route:
    """Find the script name and its arguments in the environment.

    FastAGI (``classic=False``): the path and query of ``agi_request``
    (``agi://host:4573/enqueue?queue=support&priority=2``), falling back on
    ``agi_network_script``; dialplan arguments (``agi_arg_N``) of the form
    ``key=value`` are added.  Classic AGI (``classic=True``): the first
    dialplan argument is the script (optionally with ``?query``), the others
    are ``key=value``.  Raises InvalidInput.
    """
    dial_args = env.arguments
    if classic:
        if not dial_args:
            raise InvalidInput("no script named: pass it as the first AGI argument, e.g. AGI(acd-agi,enqueue)")
        target, extra = dial_args[0], dial_args[1:]
        path, _, query = target.partition("?")
    else:
        from urllib.parse import urlsplit  # FastAGI only: the classic script does without it

        extra = dial_args
        request = env.request
        try:
            parts = urlsplit(request)
        except ValueError as exc:
            raise InvalidInput(f"malformed agi_request {short(request)!r}: {exc}") from None
        if parts.scheme in ("agi", "hagi"):
            path, query = parts.path, parts.query
        else:
            script = env.network_script
            if script is None:
                raise InvalidInput(f"cannot find the script: agi_request {short(request)!r} is not an agi:// URL "
                                   "and agi_network_script is missing")
            path, _, query = script.partition("?")
    script_name = path.strip("/")
    args: dict[str, str] = {}
    _add_args(args, parse_query(query), "in the query")
    _add_args(args, _kv_args(extra), "in the dialplan arguments")
    return validate_route(script_name, args)
