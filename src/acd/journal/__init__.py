"""Command journals: durability and fail-over by replay (see DESIGN.md)."""

from .engine import JournaledEngine
from .sqlite import SqliteJournal

__all__ = ("JournaledEngine", "SqliteJournal")
