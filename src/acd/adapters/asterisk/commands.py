"""AGI commands as helpers: argument checks, the command to send, and how to read its reply.

Each helper of :class:`Helpers` returns a *step*: the :class:`~.wire.Command`
to send and a function turning Asterisk's reply into a value (or an error).
The blocking and the asyncio sessions run the same steps, so both offer the
same ``answer``, ``stream_file``, ``say_number``, ``get_data``,
``wait_for_digit``, ``set_variable``, ``get_variable``, ``verbose``, ``exec``
and ``hangup`` with the same checks and errors.  :func:`check_reply` maps a
reply code to the error it means; :func:`error_commands` are the commands that
tell a channel about an error (``ACD_STATUS=ERROR``...).
"""

from __future__ import annotations

import math

from acd.errors import InvalidInput, ProtocolError

from .errors import AGICommandError, AGICommandFailed, AGIError, ChannelHungUp
from .lines import short
from .wire import DIGITS, LOWER, UPPER, WORD, AGIReply, Command, is_name, without_control

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Final, TypeVar

    _T = TypeVar("_T")
    Step = tuple[Command, Callable[[Command, AGIReply, bool], _T]]

__all__ = ("Helpers", "check_reply", "error_code", "error_commands", "ERROR_VARIABLES")

ERROR_VARIABLES = ("ACD_STATUS", "ACD_ERROR", "ACD_ERROR_DETAIL")


def check_reply(command: Command, reply: AGIReply) -> AGIReply:
    """Return a 200 reply; raise the matching error for any other code."""
    if reply.code == 200:
        return reply
    if reply.code == 511:
        raise ChannelHungUp(f"{command.name}: channel is hung up (511 {reply.message})", reply)
    if reply.code == 510:
        raise AGICommandError(f"{command.name}: Asterisk does not know this command (510 {reply.message})", reply)
    if reply.code == 520:
        raise AGICommandError(f"{command.name}: invalid command syntax (520)", reply)
    raise AGICommandError(f"{command.name}: unexpected reply {reply.code} {short(reply.message)!r}", reply)


# ------------------------------------------------------ reply interpretation


def _result_int(command: Command, reply: AGIReply) -> int:
    value = reply.result_int
    if value is None:
        raise ProtocolError(f"{command.name}: result {short(str(reply.result))!r} is not an integer")
    return value


def _failed(command: Command, reply: AGIReply, hung_up: bool) -> AGIError:
    if hung_up or reply.data == "hangup":
        return ChannelHungUp(f"{command.name}: channel hung up", reply)
    return AGICommandFailed(f"{command.name} failed (result={reply.result})", reply)


def _ok_int(command: Command, reply: AGIReply, hung_up: bool) -> int:
    value = _result_int(command, reply)
    if value < 0:
        raise _failed(command, reply, hung_up)
    return value


def _digit(command: Command, reply: AGIReply, hung_up: bool) -> str | None:
    value = _ok_int(command, reply, hung_up)
    if value == 0:
        return None
    if value > 0x10FFFF:
        raise ProtocolError(f"{command.name}: result {value} is not a character code")
    return chr(value)


_DTMF: Final = DIGITS | set("*#ABCD")
_DTMF_RESULT: Final = _DTMF | set("abcd")


def _get_data_result(command: Command, reply: AGIReply, hung_up: bool) -> str:
    result = reply.result or ""
    if result == "-1":
        raise _failed(command, reply, hung_up)
    if not all(c in _DTMF_RESULT for c in result):
        raise ProtocolError(f"{command.name}: result {short(result)!r} is not a digit string")
    return result


def _get_variable_result(command: Command, reply: AGIReply, hung_up: bool) -> str | None:
    value = _result_int(command, reply)
    if value == 1:
        return reply.data if reply.data is not None else ""
    return None


def _exec_result(command: Command, reply: AGIReply, hung_up: bool) -> int:
    value = _result_int(command, reply)
    if value == -2:
        raise AGICommandFailed(f"EXEC: no application {command.args[0]!r}", reply)
    return value


def _none(command: Command, reply: AGIReply, hung_up: bool) -> None:
    return None


# ------------------------------------------------------------ argument checks

def _is_variable(name: str) -> bool:
    """``NAME`` or ``FUNC(args)``: ``[A-Za-z_][A-Za-z0-9_]*`` then maybe ``(`` up to 256
    characters other than parentheses, blanks, ``"`` and ``\\`` ``)``."""
    head, paren, tail = name.partition("(")
    if not is_name(head, WORD, len(head)):
        return False
    if not paren:
        return True
    inner = tail[:-1]
    return tail.endswith(")") and len(inner) <= 256 and not any(c in '()"\\' or c.isspace() for c in inner)


def _escape(digits: str) -> str:
    if not isinstance(digits, str) or not all(c in _DTMF for c in digits):
        raise InvalidInput(f"escape_digits must be made of 0-9, *, #, A-D, got {digits!r}")
    return digits


def _text(name: str, value: object, *, empty: bool = False) -> str:
    if not isinstance(value, str) or (not empty and not value):
        raise InvalidInput(f"{name} must be a {'' if empty else 'non-empty '}str, got {value!r}")
    return value


def _ms(name: str, seconds: object, *, none_as: int) -> int:
    if seconds is None:
        return none_as
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds < 0 or seconds > 86400:
        raise InvalidInput(f"{name} must be a number of seconds in 0..86400 or None, got {seconds!r}")
    return int(round(seconds * 1000))


def _variable_name(name: object) -> str:
    if not isinstance(name, str) or not _is_variable(name):
        raise InvalidInput(f"variable name must look like NAME or FUNC(args), got {name!r}")
    return name


def _plain_int(name: str, value: object, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise InvalidInput(f"{name} must be an int in {lo}..{hi}, got {value!r}")
    return value


class Helpers:
    """Build (command, interpreter) steps for the helper methods of both front ends."""

    @staticmethod
    def answer() -> Step[int]:
        return Command("ANSWER"), _ok_int

    @staticmethod
    def stream_file(filename: str, escape_digits: str, offset: int | None) -> Step[str | None]:
        args: list[str | int] = [_text("filename", filename), _escape(escape_digits)]
        if offset is not None:
            args.append(_plain_int("offset", offset, 0, 2**31 - 1))
        return Command.build("STREAM FILE", *args), _digit

    @staticmethod
    def say_number(number: int, escape_digits: str, gender: str | None) -> Step[str | None]:
        args: list[str | int] = [_plain_int("number", number, -(2**31), 2**31 - 1), _escape(escape_digits)]
        if gender is not None:
            if gender not in ("f", "m", "c", "n"):
                raise InvalidInput(f"gender must be one of 'f', 'm', 'c', 'n' or None, got {gender!r}")
            args.append(gender)
        return Command.build("SAY NUMBER", *args), _digit

    @staticmethod
    def get_data(prompt: str, timeout: float | None, max_digits: int | None) -> Step[str]:
        args: list[str | int] = [_text("prompt", prompt)]
        # 0 ms lets Asterisk use its default digit timeout.
        args.append(_ms("timeout", timeout, none_as=0))
        if max_digits is not None:
            args.append(_plain_int("max_digits", max_digits, 1, 1024))
        return Command.build("GET DATA", *args), _get_data_result

    @staticmethod
    def wait_for_digit(timeout: float | None) -> Step[str | None]:
        return Command.build("WAIT FOR DIGIT", _ms("timeout", timeout, none_as=-1)), _digit

    @staticmethod
    def set_variable(name: str, value: str | int) -> Step[None]:
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise InvalidInput(f"variable value must be a str or an int, got {value!r}")
        return Command.build("SET VARIABLE", _variable_name(name), value), _none

    @staticmethod
    def get_variable(name: str) -> Step[str | None]:
        return Command.build("GET VARIABLE", _variable_name(name)), _get_variable_result

    @staticmethod
    def verbose(message: str, level: int) -> Step[None]:
        return Command.build("VERBOSE", _text("message", message, empty=True),
                             _plain_int("level", level, 1, 4)), _none

    @staticmethod
    def exec(application: str, args: tuple[str | int, ...]) -> Step[int]:
        if not isinstance(application, str) or not (0 < len(application) <= 64
                                                    and all(c in WORD for c in application)):
            raise InvalidInput(f"application must be a dialplan application name, got {application!r}")
        parts = []
        for arg in args:
            if isinstance(arg, bool) or not isinstance(arg, (str, int)):
                raise InvalidInput(f"application argument must be a str or an int, got {arg!r}")
            parts.append(str(arg))
        if parts:
            return Command.build("EXEC", application, ",".join(parts)), _exec_result
        return Command.build("EXEC", application), _exec_result

    @staticmethod
    def hangup(channel: str | None) -> Step[int]:
        if channel is None:
            return Command("HANGUP"), _ok_int
        return Command.build("HANGUP", _text("channel", channel)), _ok_int


# ------------------------------------------------------------ error reports

def error_code(exc: BaseException) -> str:
    """Short upper-case code for an error (``InvalidInput`` -> ``INVALID_INPUT``,
    ``AGITimeout`` -> ``AGI_TIMEOUT``): a ``_`` before each capital that follows a
    lower-case letter or a digit, or that starts a capitalised word after capitals."""
    name = type(exc).__name__
    out = []
    for i, c in enumerate(name):
        if i and c in UPPER:
            before, after = name[i - 1], name[i + 1:i + 2]
            if before in LOWER or before in DIGITS or (before in UPPER and after in LOWER and after):
                out.append("_")
        out.append(c)
    return "".join(out).upper()


def _detail(text: str, limit: int = 200) -> str:
    text = without_control(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_commands(code: str, detail: str) -> list[Command]:
    """The commands that report an error to the channel."""
    detail = _detail(detail)
    return [Command.build("SET VARIABLE", "ACD_STATUS", "ERROR"),
            Command.build("SET VARIABLE", "ACD_ERROR", code),
            Command.build("SET VARIABLE", "ACD_ERROR_DETAIL", detail),
            Command.build("VERBOSE", _detail(f"acd: {code}: {detail}", 400), 1)]
