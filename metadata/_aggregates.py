"""The vocabulary of list filters and aggregates, shared by the engine (which runs them for
the API) and the definition language (which checks dashboards against it at load time)."""

from __future__ import annotations

from metadata._model import FieldType

FILTER_OPERATORS = frozenset(
    {"eq", "ne", "gt", "gte", "lt", "lte", "in", "nin", "contains", "icontains", "startswith"}
    | {"isnull"}
)
DATE_BUCKETS = ("year", "month", "day")
MEASURE_FUNCTIONS = ("sum", "avg", "min", "max")
SUMMED = frozenset({"sum", "avg"})
"""Functions over numbers only; the others also take dates."""
NUMBERS = frozenset({FieldType.INTEGER, FieldType.DECIMAL})
DATES = frozenset({FieldType.DATE, FieldType.DATETIME})
UNGROUPABLE = frozenset({FieldType.TEXT, FieldType.JSON, FieldType.CHILDREN})


def measurable(function: str) -> frozenset[FieldType]:
    """The field types ``function`` applies to."""
    return NUMBERS if function in SUMMED else NUMBERS | DATES
