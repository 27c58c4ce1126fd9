"""Checks on the files and directories the ``acd`` command writes (one-line errors, no traceback)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from .errors import InvalidInput

__all__ = ("check_output_file", "check_output_dir", "write_text")


def check_output_file(path: Union[str, Path], *, force: bool = False, what: str = "output file") -> Path:
    """``path`` as a file to be written: its directory exists and is writable; it is not a directory and,
    unless ``force``, does not exist yet.  Raises :class:`InvalidInput` naming the path."""
    p = Path(path)
    parent = p.parent if str(p.parent) else Path(".")
    if p.is_dir():
        raise InvalidInput(f"{what} {str(p)!r} is a directory")
    if p.exists() or p.is_symlink():
        if not force:
            raise InvalidInput(f"{what} {str(p)!r} already exists (--force to overwrite)")
        if not os.access(p, os.W_OK):
            raise InvalidInput(f"{what} {str(p)!r} is not writable")
    if not parent.is_dir():
        raise InvalidInput(f"cannot write {what} {str(p)!r}: directory {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInput(f"cannot write {what} {str(p)!r}: directory {str(parent)!r} is not writable")
    return p


def check_output_dir(directory: Union[str, Path], filename: str, *, force: bool = False,
                     what: str = "report") -> Path:
    """``directory/filename`` as a file to be written, ``directory`` created if its parent exists.

    Nothing is created here: only checked (before a long run starts)."""
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise InvalidInput(f"{what} directory {str(d)!r} is a file")
    if not d.exists():
        parent = d.parent if str(d.parent) else Path(".")
        if not parent.is_dir():
            raise InvalidInput(f"cannot create {what} directory {str(d)!r}: {str(parent)!r} does not exist")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InvalidInput(f"cannot create {what} directory {str(d)!r}: {str(parent)!r} is not writable")
        return d / filename
    return check_output_file(d / filename, force=force, what=what)


def write_text(path: Path, text: str, *, what: str = "output file") -> None:
    """Write ``text`` (UTF-8); an OS error becomes a one-line :class:`InvalidInput`."""
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as e:
        raise InvalidInput(f"cannot write {what} {str(path)!r}: {e.strerror or e}") from None
