"""The vocabulary of list filters and aggregates, shared by the engine (which runs them for
the API) and the definition language (which checks dashboards against it at load time).
Filter operators are in ``metadata/_operators.py``; which field types group and measure is
a trait of each type (``metadata/_fieldkeys.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from metadata._fieldkeys import types_where
from metadata._operators import FILTER_OPERATORS

if TYPE_CHECKING:
    from metadata._model import FieldType

__all__ = [
    "DATES",
    "DATE_BUCKETS",
    "FILTER_OPERATORS",
    "MEASURE_FUNCTIONS",
    "NUMBERS",
    "SUMMED",
    "UNGROUPABLE",
    "measurable",
]

DATE_BUCKETS = ("year", "month", "day")
MEASURE_FUNCTIONS = ("sum", "avg", "min", "max")
SUMMED = frozenset({"sum", "avg"})
"""Functions over numbers only; the others also take dates."""
NUMBERS = types_where(measure="number")
DATES = types_where(measure="date")
UNGROUPABLE = types_where(groupable=False)


def measurable(function: str) -> frozenset[FieldType]:
    """The field types ``function`` applies to."""
    return NUMBERS if function in SUMMED else NUMBERS | DATES
