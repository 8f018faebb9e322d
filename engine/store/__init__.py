"""Persistence of records: reading and writing the rows of one entity's table (and its line
items), numbering, and the errors a database constraint answers. Knows nothing of rules,
rights or the write pipeline (``engine.writes``), which is built on top of it."""

from __future__ import annotations

from engine.store.columns import SYSTEM_TAIL
from engine.store.integrity import MISSING_REFERENCE, unique_conflict
from engine.store.lines import at_line, write_lines
from engine.store.records import KeyTaken, ListResult, RecordRegistry, RecordStore

__all__ = [
    "MISSING_REFERENCE",
    "SYSTEM_TAIL",
    "KeyTaken",
    "ListResult",
    "RecordRegistry",
    "RecordStore",
    "at_line",
    "unique_conflict",
    "write_lines",
]
