"""Filter operators: one class per operator, registered against the vocabulary of
``metadata/_operators.py``. See ``_base.py`` for the contract.

An operator of a plugin (or a test) is one class::

    from engine.operators import Arity, Operator, OperatorSpec, register

    @register
    class EndsWith(Operator):
        spec = OperatorSpec("ends_with", Arity.ONE, "ends with the text", value_type=str)

        def sql(self, column, operands, values): ...
        def holds(self, actual, expected): ...
"""

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
from metadata._operators import Arity, OperatorSpec

__all__ = [
    "Arity",
    "Operator",
    "OperatorSpec",
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
