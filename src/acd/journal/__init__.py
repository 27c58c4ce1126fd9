"""Command journals: durability and fail-over by replay (see DESIGN.md)."""

from .base import Journal, Record
from .engine import COMMANDS, JournaledEngine, Observer
from .sqlite import SqliteJournal

__all__ = ("COMMANDS", "Journal", "JournaledEngine", "Observer", "Record", "SqliteJournal")
