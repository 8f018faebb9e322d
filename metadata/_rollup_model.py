"""The definition of a rollup (``RollupDef``), apart from its checks (``metadata._rollups``)
so that ``EntityDef`` can name it without importing them."""

from __future__ import annotations

import enum
from dataclasses import dataclass

PARENT = "_parent"
"""``via: _parent``: a line item's parent record; ``_parent__<field>`` in a ``where``."""


class RollupFunction(enum.StrEnum):
    SUM = "sum"
    COUNT = "count"
    MIN = "min"
    MAX = "max"


@dataclass(frozen=True, slots=True)
class RollupDef:
    """One rollup, as declared by its source entity."""

    source: str
    """Qualified name of the entity whose records are aggregated."""
    target: str
    """Qualified name of the entity whose field is kept."""
    field: str
    """The target's field kept."""
    via: str
    """The source's reference field to the target, or ``_parent`` (a line's parent)."""
    function: RollupFunction
    of: str | None = None
    """The source field aggregated; None for ``count``."""
    where: tuple[tuple[str, str], ...] = ()
    """Which source records count: list filters as query-string pairs
    (``("docstatus", "submitted")``, ``("_parent__docstatus", "submitted")``)."""
    origin: str = ""

    @property
    def kept(self) -> str:
        return f"{self.target}.{self.field}"

    @property
    def reads(self) -> frozenset[str]:
        """The source's own fields whose change may change the value."""
        names = {self.via} if self.via != PARENT else set()
        if self.of is not None:
            names.add(self.of)
        names.update(key.split("__")[0] for key, _ in self.where if not _on_parent(key))
        return frozenset(names)

    @property
    def parent_reads(self) -> frozenset[str]:
        """The fields of a line source's parent that ``where`` reads."""
        return frozenset(key.split("__")[1] for key, _ in self.where if _on_parent(key))


def _on_parent(key: str) -> bool:
    return key.startswith(PARENT + "__")
