"""What a caller on hold hears: music on hold, position and wait announcements.

Every prompt is best effort: a missing sound file or a refused command is
logged and the call goes on (a caller must never lose their place because
a recording is absent).
"""

from __future__ import annotations

import logging
import math
from typing import Any, Callable, List

from .._core import Announce
from ..adapters.asterisk.agi import AGICommandError, AGICommandFailed, AGISession
from .calls import CallWaiter
from .config import Prompts
from .logs import event

__all__ = ("music", "play", "say_number", "verbose", "announce")

log = logging.getLogger("acd.service")


async def music(session: AGISession, w: CallWaiter, prompts: Prompts, on: bool) -> None:
    """Music on hold on or off (only when it changes)."""
    cls = prompts.music_on_hold
    if not cls or w.music == on:
        return
    w.music = on
    try:
        if on:
            await session.command("SET MUSIC", "on", cls)
        else:
            await session.command("SET MUSIC", "off")
    except (AGICommandError, AGICommandFailed) as exc:
        log.debug("SET MUSIC failed: %s", exc)


async def play(session: AGISession, sound: str) -> None:
    try:
        await session.stream_file(sound)
    except AGICommandFailed as exc:
        event(log, logging.WARNING, "prompt_failed", f"cannot play {sound!r}: {exc}", sound=sound)


async def say_number(session: AGISession, number: int) -> None:
    try:
        await session.say_number(number)
    except AGICommandFailed as exc:
        log.debug("SAY NUMBER failed: %s", exc)


async def verbose(session: AGISession, text: str) -> None:
    try:
        await session.verbose(text, 2)
    except (AGICommandError, AGICommandFailed):
        pass


async def announce(session: AGISession, w: CallWaiter, prompts: Prompts, d: Announce) -> None:
    """Position (``youarenext``, or ``thereare`` N ``callswaiting``), then the expected
    wait in minutes (``holdtime`` N ``minutes``) when it is a minute or more; stops as
    soon as an agent is found."""
    p = prompts
    steps: List[Callable[[], Any]] = []
    if d.position <= 1:
        steps.append(lambda: play(session, p.youarenext))
    else:
        steps += [lambda: play(session, p.thereare), lambda: say_number(session, d.position),
                  lambda: play(session, p.callswaiting)]
    if math.isfinite(d.ewt) and d.ewt >= 60:
        minutes = int(math.ceil(d.ewt / 60))
        steps += [lambda: play(session, p.holdtime), lambda: say_number(session, minutes),
                  lambda: play(session, p.minutes)]
    await music(session, w, p, False)
    for step in steps:
        if w.has_terminal():
            break
        await step()
