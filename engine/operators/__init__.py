"""Filter operators: one class per operator, registered against the vocabulary of
``metadata/_operators.py``. See ``_base.py`` for the contract."""

from __future__ import annotations

from engine.operators import comparison, membership, null, text
from engine.operators._base import (
    Operator,
    operator,
    register,
    registered,
    same,
    split_csv,
    unimplemented,
)

__all__ = [
    "Operator",
    "comparison",
    "membership",
    "null",
    "operator",
    "register",
    "registered",
    "same",
    "split_csv",
    "text",
    "unimplemented",
]
