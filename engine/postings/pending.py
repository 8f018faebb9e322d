"""What the ``post`` and ``adjust`` actions of a submit collect (in the submit's
``WriteContext.postings``), before ``engine.postings`` applies them together."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.expressions import Scope
    from engine.postings.settling import Compute
    from engine.writes.context import WriteContext
    from metadata._posting_actions import BalanceMove  # the typed part of a PostAction


@dataclass(frozen=True, slots=True)
class Voucher:
    """The document that posts: its entity (``pack.entity``) and id."""

    entity: str
    id: int


@dataclass(frozen=True, slots=True)
class PendingPost:
    voucher: Voucher
    rule: str
    ledger: str
    values: Mapping[str, Any]
    balance: BalanceMove | None
    at: str
    """Where a refusal points: ``lines[2].quantity``."""
    ctx: WriteContext
    compute: Compute | None = None
    """The balance's ``compute``, compiled: ledger fields from the locked row."""


@dataclass(frozen=True, slots=True)
class PendingAdjust:
    voucher: Voucher
    rule: str
    entity: str
    key: Mapping[str, Any] | None
    id: Any
    add: Mapping[str, Any]
    at: str
    ctx: WriteContext


def line_at(scope: Scope, for_each: str | None, field: str | None) -> str:
    """The path a refusal of the action resolved over ``scope`` points at: the line the
    action runs for (``lines[2]``) and its ``field``, or the document's ``field``."""
    suffix = field or ""
    if for_each is None or "." in for_each:  # another record's lines: the document's field
        return suffix
    line = scope.names.get("line")
    lines = scope.names.get(for_each)
    position = next(
        (
            i
            for i, item in enumerate(lines if isinstance(lines, list | tuple) else ())
            if item is line
        ),
        0,
    )
    return f"{for_each}[{position}]" + (f".{suffix}" if suffix else "")
