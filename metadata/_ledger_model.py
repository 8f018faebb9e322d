"""Typed definitions of ledgers and balances (``ledger:`` and ``balance:`` of an entity).

A *ledger* is an append-only entity written only by postings (``post`` actions of a
document's ``on: [submit]`` rules); cancelling the document appends reversing rows. A
*balance* is a stored number per key (stock per item and warehouse) kept by postings, with
limits it may never cross. See docs/ledgers.md.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping
    from decimal import Decimal

VOUCHER_TYPE = "voucher_type"
VOUCHER_ID = "voucher_id"
IS_REVERSAL = "is_reversal"
LEDGER_FIELDS: tuple[str, ...] = (VOUCHER_TYPE, VOUCHER_ID, IS_REVERSAL)
"""System fields of a ledger entity: the document that posted the row (``pack.entity`` and
its id) and whether the row reverses one (written when that document was cancelled)."""


@dataclass(frozen=True, slots=True)
class RoundOffDef:
    """The row a balanced voucher gets for a difference within the tolerance: these field
    values (literals), the difference in the debit or credit field."""

    values: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class BalancedDef:
    """Every voucher's ``debit`` sum equals its ``credit`` sum, exactly; a difference of at
    most ``tolerance`` goes to a round-off row when ``round_off`` is declared."""

    debit: str
    credit: str
    tolerance: Decimal
    round_off: RoundOffDef | None = None


@dataclass(frozen=True, slots=True)
class LockDef:
    """Period lock: no posting dated on or before the latest ``field`` of ``entity``'s
    records (a settings record's ``books_closed_until``)."""

    entity: str
    """Qualified name."""
    field: str


@dataclass(frozen=True, slots=True)
class LedgerDef:
    amounts: tuple[str, ...]
    """The fields a reversing row negates."""
    date: str | None = None
    """The posting date field (what a period lock compares)."""
    balanced: BalancedDef | None = None
    lock: LockDef | None = None


@dataclass(frozen=True, slots=True)
class LimitDef:
    """A bound a balance field may never cross: a posting that would is refused with 409
    ``code`` (its line named), nothing written."""

    field: str
    min: Decimal | None
    max: Decimal | None
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class BalanceDef:
    key: tuple[str, ...]
    """The fields identifying one row (unique together); rows are made on first use."""
    limits: tuple[LimitDef, ...] = ()

    def limits_of(self, field_name: str) -> tuple[LimitDef, ...]:
        return tuple(limit for limit in self.limits if limit.field == field_name)
