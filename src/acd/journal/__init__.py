"""Command journals: durability and fail-over by replay (see DESIGN.md)."""

from .base import Journal, Record
from .engine import CALL_COMMANDS, COMMANDS, JournaledEngine, Observer
from .sqlite import SqliteJournal

__all__ = ("CALL_COMMANDS", "COMMANDS", "Journal", "JournaledEngine", "Observer", "Record", "SqliteJournal")
