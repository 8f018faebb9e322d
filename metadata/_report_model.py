"""The report definition (``reports/<name>.yaml``; loaded and checked by ``_reports``).

A report is a page of figures a user asks for with parameters (a period, a date): each
section is one aggregate over one entity, its filters reading the parameters; totals are
expressions over the sections' subtotals. Kept in a module of its own, as ``CalendarDef``
is, so that ``ProjectDef`` can name it without an import cycle.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any


class ParameterType(enum.StrEnum):
    DATE = "date"
    CHOICE = "choice"
    REFERENCE = "reference"


@dataclass(frozen=True, slots=True)
class ReportParameterDef:
    """One query parameter of a report (``?from=2026-01-01``)."""

    name: str
    type: ParameterType
    label: str
    default: Any = None
    """A literal, or one ``{{ expression }}`` (``{{ today() }}``) evaluated per request."""
    required: bool = True
    """A parameter without a value and without a default is refused; an optional one left
    out drops the filters that read it."""
    values: tuple[str, ...] = ()
    """A choice's values."""
    to: str | None = None
    """A reference's entity (qualified)."""


@dataclass(frozen=True, slots=True)
class ReportColumnDef:
    name: str
    label: str


@dataclass(frozen=True, slots=True)
class ReportSectionDef:
    """One aggregate of the report: a heading, a line per group, a subtotal."""

    name: str
    label: str
    entity: str
    """Qualified name."""
    measures: tuple[tuple[str, str], ...]
    """(column, measure) pairs: ``("amount", "balance__sum")``."""
    filter: tuple[tuple[str, Any], ...] = ()
    """List filters; a value is a literal or a ``{{ }}`` template over the parameters."""
    group_by: str | None = None
    """No grouping: the section is its subtotal alone."""
    sign: int = 1
    """-1 shows the aggregate negated (credit - debit for a sum of debit - credit)."""
    limit: int = 1000
    """Most lines shown; the subtotal always covers every record."""


@dataclass(frozen=True, slots=True)
class ReportTotalDef:
    """A computed line after the sections: ``value`` over the sections' subtotals and the
    totals before it, evaluated in each of ``columns`` (every column when empty)."""

    name: str
    label: str
    value: str
    columns: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class ReportCheckDef:
    """A condition the parameters must meet (``from <= to``); ``message`` when not."""

    condition: str
    message: str


@dataclass(frozen=True, slots=True)
class ReportDef:
    pack: str
    name: str
    label: str
    roles: tuple[str, ...]
    """Who may run it (a role or one inheriting it); the sections' entities' row access
    still applies."""
    columns: tuple[ReportColumnDef, ...]
    sections: tuple[ReportSectionDef, ...]
    parameters: tuple[ReportParameterDef, ...] = ()
    totals: tuple[ReportTotalDef, ...] = ()
    checks: tuple[ReportCheckDef, ...] = ()
    description: str | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.pack}.{self.name}"
