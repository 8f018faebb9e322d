"""Files: the storage interface and its implementations, the checks an upload passes, and
the ``tessera_file`` catalog (docs/files.md). Nothing here knows HTTP."""

from __future__ import annotations

from engine.files.catalog import FileCatalog, FileRow, file_table
from engine.files.checks import OCTET_STREAM, accepted, safe_filename, sniff
from engine.files.storage import (
    FileMissing,
    FileStorage,
    FileTooLarge,
    FolderStorage,
    MemoryStorage,
    StoredBlob,
)

__all__ = [
    "OCTET_STREAM",
    "FileCatalog",
    "FileMissing",
    "FileRow",
    "FileStorage",
    "FileTooLarge",
    "FolderStorage",
    "MemoryStorage",
    "StoredBlob",
    "accepted",
    "file_table",
    "safe_filename",
    "sniff",
]
