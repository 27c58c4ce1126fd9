"""Shared by the AGI, FastAGI and service tests: an independent AGI argument splitter."""

from __future__ import annotations

from typing import List, Optional


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
