"""The engine's exception tree. The runtime renders these as problem details.

::

    EngineError
    ├── UnknownEntity            no such entity is enabled            (404)
    ├── RecordNotFound           no record with that id               (404)
    ├── BadQuery                 malformed list parameters            (400)
    ├── ValidationFailed         one or more field errors             (422)
    ├── Conflict                 unique or reference conflict         (409)
    ├── StaleVersion             If-Match does not match the version  (412)
    └── AppendOnly               a write of a ledger or a balance     (405)

Each class has a stable ``code`` that becomes the problem ``type`` URI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class FieldError:
    """One problem with one field of one record."""

    field: str
    code: str
    message: str
    index: int | None = None
    rule: str | None = None
    conflict: bool = False
    """A failed assert declared ``status: 409``: the record is fine, the state of others
    refuses the write (a payment allocated to an invoice being cancelled)."""

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"field": self.field, "code": self.code, "message": self.message}
        if self.index is not None:
            result["index"] = self.index
        if self.rule is not None:
            result["rule"] = self.rule
        return result

    def at_index(self, index: int) -> FieldError:
        return FieldError(self.field, self.code, self.message, index, self.rule, self.conflict)

    def within(self, parent_field: str, position: int) -> FieldError:
        suffix = f".{self.field}" if self.field else ""  # a rule that names no field
        return FieldError(
            f"{parent_field}[{position}]{suffix}",
            self.code,
            self.message,
            self.index,
            self.rule,
            self.conflict,
        )


class EngineError(Exception):
    code = "error"
    title = "Error"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class UnknownEntity(EngineError):
    code = "unknown-entity"
    title = "Unknown entity"


class RecordNotFound(EngineError):
    code = "not-found"
    title = "Record not found"


class BadQuery(EngineError):
    code = "bad-request"
    title = "Malformed request"


class Conflict(EngineError):
    code = "conflict"
    title = "Conflict"

    def __init__(
        self, detail: str, errors: list[FieldError] | None = None, *, code: str | None = None
    ) -> None:
        super().__init__(detail)
        self.errors = errors or []
        if code is not None:  # a more precise reason, e.g. "submitted" (a frozen document)
            self.code = code


class StaleVersion(EngineError):
    code = "stale"
    title = "Record was changed by someone else"


class AppendOnly(EngineError):
    """A client's create, update or delete of a ledger or a balance: only postings write
    them (docs/ledgers.md)."""

    code = "method-not-allowed"
    title = "Method not allowed"


class ValidationFailed(EngineError):
    code = "validation"
    title = "Validation failed"

    def __init__(self, errors: list[FieldError], *, code: str | None = None) -> None:
        count = len(errors)
        fields = len({e.field for e in errors})
        noun = "field is" if fields == 1 else "fields are"
        super().__init__(f"{fields} {noun} invalid" if count else "invalid record")
        self.errors = errors
        if code is None:  # the code rules declare (``code: over_delivery``), when shared
            codes = {e.code for e in errors if e.rule is not None}
            if len(codes) == 1 and all(e.rule is not None for e in errors):
                code = codes.pop()
        if code is not None and code != "rule":  # a more precise reason, e.g. "unbalanced"
            self.code = code
        self.conflict = bool(errors) and all(e.conflict for e in errors)
        """Every failure is an assert declared ``status: 409``: answered as a conflict."""


class SchemaChanged(EngineError):
    """The database schema changed under a prepared statement (a migration by another
    process); the request did nothing and can be retried as soon as the process has
    reloaded its definitions."""

    code = "schema-changed"
    title = "Schema changed"


def describe(error: EngineError) -> str:
    """One line for a log or a report: each field error as ``field: message``."""
    errors = getattr(error, "errors", None)
    if errors:
        return "; ".join(f"{e.field}: {e.message}" if e.field else e.message for e in errors)
    return error.detail
