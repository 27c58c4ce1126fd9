"""What every command journal provides (SQLite today, PostgreSQL for a standby pair).

A journal is an append-only, totally ordered log of records ``(seq, op,
args)``: ``seq`` increases by one per record from 1, ``op`` is an engine
command name, ``"add_skill"``/``"add_queue"`` (configuration) or ``"note"``
(a fact of the service's, not applied to the engine), and ``args`` is a
tuple of JSON values.  Beside the log, a small key/value ``meta`` table.
"""

from __future__ import annotations

from typing import Any, ContextManager, Iterator, Protocol, Tuple

__all__ = ("Journal", "Record")

#: one journal record: (seq, op, args)
Record = Tuple[int, str, Tuple[Any, ...]]


class Journal(Protocol):
    #: where it lives, for messages (a file path or a URL without its password)
    path: str

    @property
    def journal_id(self) -> str:
        """A random id given to the journal when it was created (names side effects it asked for)."""

    @property
    def last_seq(self) -> int:
        """The seq of the last record appended (durable or, inside a batch, buffered)."""

    def append(self, op: str, args: Tuple[Any, ...]) -> int:
        """Record one command and return its seq; durable when this returns unless inside :meth:`batch`.
        Raises :class:`~acd.errors.JournalError` (nothing was recorded, and a buffered batch is dropped)."""

    def batch(self) -> ContextManager[Any]:
        """Group commit: the records appended in the block become durable together at its end."""

    def records(self, after: int = 0) -> Iterator[Record]:
        """Durable records with ``seq > after``, in order."""

    def get_meta(self, key: str, default: Any = None) -> Any: ...

    def set_meta(self, key: str, value: Any) -> None: ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...
