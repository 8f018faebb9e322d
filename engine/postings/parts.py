"""What a voucher works on once its postings are collected and checked
(``engine.postings.voucher``), or read back from its journal at cancel: the ledger rows to
append (``Row``, ``engine.postings.appending``) and the increments to apply, each naming
the row whose ``after`` fields it fills (``Increment``, ``engine.postings.moving``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from engine.fieldtypes import kind_of

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from decimal import Decimal

    from engine.postings.book import PostingStore
    from engine.postings.settling import Compute
    from engine.writes.context import WriteContext


@dataclass(slots=True)
class Row:
    """A ledger row to append."""

    store: PostingStore
    body: dict[str, Any]
    values: dict[str, Any]
    """``body`` validated (and then completed by ``compute``, if its balance has one)."""
    at: str
    ctx: WriteContext
    after: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    validated: dict[str, Any] = field(default_factory=dict)
    """``body`` as validated, untouched: its create need not validate it again."""

    def __post_init__(self) -> None:
        self.validated = dict(self.values)


@dataclass(slots=True)
class Increment:
    store: PostingStore
    kind: str
    deltas: dict[str, Decimal]
    at: str
    ctx: WriteContext
    key: dict[str, Any] | None = None
    id: int = 0
    row: Row | None = None
    after: Mapping[str, str] | None = None
    compute: Compute | None = None
    """Ledger fields worked out from the locked row (``settling``), then added by ``add``."""
    add: Mapping[str, str] | None = None
    rule: str = ""

    @property
    def reads_posted(self) -> bool:
        return self.compute is not None and self.compute.reads_posted


def _unbounded(field_def: Any) -> Any:
    """The field without ``min``/``max``: a delta may be negative (the sum is checked)."""
    return dataclasses.replace(field_def, min=None, max=None)


_COERCERS: dict[int, tuple[Any, Callable[[Any], Any]]] = {}


def unbounded_coercer(field_def: Any) -> Callable[[Any], Any]:
    """The coercer of ``_unbounded(field_def)``, made once per field definition (the
    definition is kept with it, so that its id is never reused while cached)."""
    cached = _COERCERS.get(id(field_def))
    if cached is None or cached[0] is not field_def:
        cached = _COERCERS[id(field_def)] = (
            field_def,
            kind_of(field_def).coercer(_unbounded(field_def)),
        )
    return cached[1]
