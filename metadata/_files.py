"""What the definition language and ``tessera.yaml`` say of files: sizes (``10MB``) and
content-type patterns (``image/*``), read the same way for a ``file`` field's ``max_size``
and ``accept`` and for the instance's ``files:`` settings (docs/files.md)."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from metadata._model import FieldDef

_SIZE = re.compile(r"\s*(\d{1,12}(?:\.\d{1,6})?)\s*([kKmMgG]?)([iI]?)[bB]?\s*")
_UNITS = {"": 1, "k": 1000, "m": 1000**2, "g": 1000**3}
_BINARY_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/(\*|[a-z0-9][a-z0-9!#$&^_.+-]*)")
SIZE_HINT = "a size such as 10MB, 512kB, 2MiB or a number of bytes"


def parse_size(value: object) -> int | None:
    """Bytes from ``10MB``, ``512kB``, ``1.5GiB`` or a whole number above 0; None when it
    is none of these (the caller says where). ``MB`` is 1,000,000 bytes, ``MiB`` 2**20."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if 0 < value < 2**63 else None
    if not isinstance(value, str):
        return None
    match = _SIZE.fullmatch(value)
    if match is None:
        return None
    number, unit, binary = match.groups()
    scale = (_BINARY_UNITS if binary else _UNITS)[unit.lower()]
    size = int(float(number) * scale)
    return size if size > 0 else None


def content_type_problem(pattern: object) -> str | None:
    """Why ``pattern`` is not a content type (``application/pdf``) or a ``type/*``
    pattern, or None."""
    if not isinstance(pattern, str) or not _CONTENT_TYPE.fullmatch(pattern):
        return f"'{pattern}' is not a content type such as application/pdf or image/*"
    return None


class FieldChange(Protocol):
    """What a customization rule uses of ``metadata._overlays.FieldChange`` (named here by
    its shape: ``_overlays`` imports this module)."""

    field: FieldDef
    pack: str
    changes: dict[str, Any]
    ok: bool

    def error(
        self, key: str, message: str, *, item: int | None = None, at_key: bool = False
    ) -> None: ...

    def loosens(self, key: str, written: str, pack_value: str) -> None: ...


def covered(pattern: str, patterns: tuple[str, ...]) -> bool:
    """Whether every type ``pattern`` matches is one ``patterns`` matches too."""
    major = pattern.split("/", 1)[0]
    return any(p in (pattern, f"{major}/*", "*/*") for p in patterns)


def smaller_size(change: FieldChange, key: str, value: object) -> None:
    """Customization rule of ``max_size``: only lowered."""
    size = parse_size(value)
    if size is None:
        change.error(key, f"max_size must be {SIZE_HINT}, not '{value}'")
        return
    current = change.field.max_size
    if current is not None and size > current:
        change.loosens(key, str(value), f"{current} bytes")
    else:
        change.changes[key] = size


def narrower_types(change: FieldChange, key: str, value: list[str]) -> None:
    """Customization rule of ``accept``: only narrowed (each type one the pack accepts)."""
    current = change.field.accept
    for index, pattern in enumerate(value):
        problem = content_type_problem(pattern)
        if problem is None and current is not None and not covered(pattern, current):
            problem = (
                f"'{pattern}' is not among the types pack {change.pack} accepts "
                f"({', '.join(current)}); a customization may only narrow them"
            )
        if problem is not None:
            change.error(key, problem, item=index)
    if change.ok:
        change.changes[key] = tuple(value)
