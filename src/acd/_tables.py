"""Reading validated TOML tables (scenario files, service configuration)."""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from .errors import InvalidInput

__all__ = ("TomlTable",)


class TomlTable:
    """A TOML table being read: known keys are popped, leftovers are an error.

    ``document`` names the whole file in messages about its top-level table.
    """

    document = "the document"

    def __init__(self, where: str, data: object) -> None:
        if not isinstance(data, Mapping):
            raise InvalidInput(f"{where} must be a table, got {data!r}")
        self.where = where
        self.d = dict(data)

    def path(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def pop(self, key: str, default: Any = dataclasses.MISSING) -> Any:
        if key in self.d:
            return self.d.pop(key)
        if default is dataclasses.MISSING:
            raise InvalidInput(f"{self.path(key)} is required")
        return default

    def done(self) -> None:
        if self.d:
            raise InvalidInput(f"unknown field(s) in {self.where or self.document}: {sorted(self.d)!r}")
