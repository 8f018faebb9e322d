"""``files:`` in ``tessera.yaml``: where uploaded files are kept and what is accepted.

::

    files:
      storage: folder            # folder (default) | memory | entry point name | module:Class
      path: files                # the folder store's folder, relative to the instance folder
      max_size: 10MB             # the largest file anywhere; a field's max_size may be lower
      content_types: [application/pdf, image/*, text/plain]   # default: any type
      options: {}                # keyword arguments of a storage class (bucket, endpoint, ...)

A storage other than ``folder`` and ``memory`` is a class implementing
``engine.files.FileStorage``, named by an entry point of the group ``tessera.file_storage``
(a package installed next to Tessera) or by ``module:Class``; it is built once per process
with ``options`` as keyword arguments (docs/files.md shows an S3-compatible one).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.files import FileStorage, FolderStorage, MemoryStorage
from metadata import DefinitionError, DefinitionProblem
from metadata._files import SIZE_HINT, content_type_problem, parse_size

if TYPE_CHECKING:
    from collections.abc import Callable

DEFAULT_MAX_SIZE = 10 * 1000**2
ENTRY_POINT_GROUP = "tessera.file_storage"
_KEYS = frozenset({"storage", "path", "max_size", "content_types", "options"})


@dataclass(frozen=True, slots=True)
class FileSettings:
    storage: str = "folder"
    path: Path = Path("files")
    """The folder store's folder (absolute once loaded)."""
    max_size: int = DEFAULT_MAX_SIZE
    content_types: tuple[str, ...] | None = None
    """Content types (``image/*`` patterns) accepted anywhere; None: any."""
    options: dict[str, Any] = field(default_factory=dict)
    _built: list[FileStorage] = field(default_factory=list, compare=False, repr=False)

    def store(self) -> FileStorage:
        """The storage, built on first use and kept for the life of the process (a memory
        store keeps its files across reloads of the definitions)."""
        if not self._built:
            self._built.append(_build(self))
        return self._built[0]


def _build(settings: FileSettings) -> FileStorage:
    if settings.storage == "folder":
        return FolderStorage(settings.path)
    if settings.storage == "memory":
        return MemoryStorage()
    factory = _factory(settings.storage)
    built = factory(**settings.options)
    if not isinstance(built, FileStorage):
        raise TypeError(
            f"files: storage '{settings.storage}' made a {type(built).__name__}, which lacks "
            "put, open, delete or exists (engine.files.FileStorage)"
        )
    return built


def _factory(name: str) -> Any:
    if ":" in name:
        module, _, attribute = name.partition(":")
        return getattr(importlib.import_module(module), attribute)
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name == name:
            return point.load()
    raise LookupError(
        f"files: no storage named '{name}': use folder, memory, module:Class or the name of "
        f"an installed entry point of the group {ENTRY_POINT_GROUP}"
    )


def _content_types(types: Any, problem: Callable[[str], DefinitionError]) -> tuple[str, ...] | None:
    if types is None:
        return None
    if not isinstance(types, list) or not types:
        raise problem("'content_types' must be a list such as [application/pdf, image/*]")
    for pattern in types:
        message = content_type_problem(pattern)
        if message is not None:
            raise problem(f"content_types: {message}")
    return tuple(types)


def file_settings(path: Path, raw: Any, instance_dir: Path) -> FileSettings:
    """``files:`` of the configuration at ``path``; ``DefinitionError`` when malformed."""

    def problem(message: str) -> DefinitionError:
        return DefinitionError([DefinitionProblem(str(path), 1, 1, f"files: {message}")])

    if raw is None:
        return FileSettings(path=instance_dir / "files")
    if not isinstance(raw, dict):
        raise problem("expected a mapping (storage, path, max_size, content_types, options)")
    unknown = sorted(str(k) for k in set(raw) - _KEYS)
    if unknown:
        raise problem(f"unknown key(s): {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
    storage = raw.get("storage", "folder")
    if not isinstance(storage, str) or not storage:
        raise problem("'storage' must be folder, memory, module:Class or an entry point name")
    folder = raw.get("path", "files")
    if not isinstance(folder, str) or not folder or "\x00" in folder:
        raise problem("'path' must be a folder name")
    max_size = parse_size(raw.get("max_size", DEFAULT_MAX_SIZE))
    if max_size is None:
        raise problem(f"'max_size' must be {SIZE_HINT}")
    types = _content_types(raw.get("content_types"), problem)
    options = raw.get("options") or {}
    if not isinstance(options, dict) or not all(isinstance(k, str) for k in options):
        raise problem("'options' must be a mapping of a storage class's keyword arguments")
    return FileSettings(
        storage=storage,
        path=(instance_dir / folder).resolve(),
        max_size=max_size,
        content_types=types,
        options=dict(options),
    )
