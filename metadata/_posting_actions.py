"""The rule actions that post: ``post`` (a ledger row, optionally moving a balance) and
``adjust`` (an increment of a balance row by key, or of any record's numeric fields by id).

Both run only in a document's rules ``on: [submit]`` (``metadata._postings`` checks it once
every entity exists) and are collected, then applied together in a fixed lock order when
the rule's actions have run (``engine.postings``); cancelling the document reverses exactly
what its submit did.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from metadata._actions import RecordAction, action_kind
from metadata._expressions import is_template
from metadata._model import frozen_mapping

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from metadata._errors import PathItem
    from metadata._model import ActionChecker, ActionDef

_FIELD = {
    "type": "string",
    "description": "The field a refusal points at: of the line with for_each (e.g. quantity "
    "gives lines[2].quantity), else of the document.",
}


@dataclass(frozen=True, slots=True)
class BalanceMove:
    """``balance:`` of a ``post``: the balance row whose key fields equal the ledger row's
    same-named fields moves by ``add`` (balance field → ledger field); ``after`` copies the
    balance after the move into the ledger row (ledger field → balance field); ``compute``
    fills ledger fields from the balance row as locked, before the move (ledger field →
    expression over the row's fields, ``entry`` and ``posted``: docs/ledgers.md)."""

    entity: str
    add: Mapping[str, str]
    after: Mapping[str, str]
    compute: Mapping[str, str] = dataclasses.field(default_factory=lambda: frozen_mapping({}))


def _qualified(checker: ActionChecker, name: str) -> str:
    return name if "." in name else f"{checker.pack}.{name}"


def _strings(values: Mapping[str, Any]) -> Iterator[str]:
    for value in values.values():
        if isinstance(value, str) and "{{" in value:
            yield value


@action_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class PostAction(RecordAction):
    """Append one row to the ledger ``entity`` (``values``: templates); the engine fills its
    voucher fields."""

    kind: ClassVar[str] = "post"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["ledger", "values"],
        "description": "Append a row to a ledger when the document is submitted (reversed "
        "when it is cancelled), optionally moving a balance.",
        "properties": {
            "ledger": {"type": "string", "description": "pack.entity of a ledger entity."},
            "values": {
                "type": "object",
                "description": "Fields of the ledger row: literals, or templates over the "
                "document (and 'line' with for_each).",
            },
            "balance": {
                "type": "object",
                "additionalProperties": False,
                "required": ["entity", "add"],
                "properties": {
                    "entity": {"type": "string", "description": "pack.entity of a balance."},
                    "add": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {"type": "string"},
                        "description": "balance field: the ledger field added to it.",
                    },
                    "after": {
                        "type": "object",
                        "additionalProperties": {"type": "string"},
                        "description": "ledger field: the balance field after the move.",
                    },
                    "compute": {
                        "type": "object",
                        "minProperties": 1,
                        "additionalProperties": {"type": "string"},
                        "description": "ledger field: an expression over the balance row as "
                        "locked, before the move (its fields by name), 'entry' (the ledger "
                        "row) and 'posted' (sums of the amounts of this voucher's rows for "
                        "the same line, settled before); evaluated when the row is locked.",
                    },
                },
            },
            "field": _FIELD,
        },
    }
    balance: BalanceMove | None = None
    field: str | None = None

    @classmethod
    def parse(
        cls, body: Any, checker: ActionChecker, where: tuple[PathItem, ...], *, deferred: bool
    ) -> ActionDef | None:
        if not checker.templates_ok((*where, "values"), body["values"]):
            return None
        move = body.get("balance")
        action = cls(
            values=frozen_mapping(dict(body["values"])),
            entity=_qualified(checker, body["ledger"]),
            balance=BalanceMove(
                _qualified(checker, move["entity"]),
                frozen_mapping(dict(move["add"])),
                frozen_mapping(dict(move.get("after", {}))),
                frozen_mapping(dict(move.get("compute", {}))),
            )
            if move is not None
            else None,
            field=body.get("field"),
        )
        checker.target_later(where[:-1], action)
        return action

    def describe(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ledger": self.entity, "values": dict(self.values)}
        if self.balance is not None:
            body["balance"] = {
                "entity": self.balance.entity,
                "add": dict(self.balance.add),
                "after": dict(self.balance.after),
            }
            if self.balance.compute:
                body["balance"]["compute"] = dict(self.balance.compute)
        return {self.kind: body}


@action_kind
@dataclass(frozen=True, slots=True, kw_only=True)
class AdjustAction(RecordAction):
    """Add to numeric fields of a balance row (``key``) or of a record (``id``, as an
    update of that record: its rules, computed fields and audit run). ``where`` selects the
    record by field values when ``id`` is absent or empty (an order line matched by item),
    and is what the record ``id`` names must match otherwise."""

    kind: ClassVar[str] = "adjust"
    schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "required": ["entity", "add"],
        "description": "Increment numeric fields of a balance row (by key) or of a record (by "
        "id) when the document is submitted; cancelling it takes the increments back.",
        "properties": {
            "entity": {"type": "string", "description": "pack.entity of the row to adjust."},
            "key": {
                "type": "object",
                "minProperties": 1,
                "description": "A balance's key fields: literals or templates.",
            },
            "id": {
                "type": ["string", "integer"],
                "description": "The record to adjust (a template such as '{{ line.order_line "
                "}}'); an empty value skips the adjustment (or, with 'where', finds it).",
            },
            "where": {
                "type": "object",
                "minProperties": 1,
                "description": "Field values (literals or templates; _parent: a line's "
                "parent id) selecting the one record to adjust when 'id' is not given or "
                "is empty, and that the record 'id' names must have otherwise; none or "
                "several matching records refuse the submit.",
            },
            "add": {
                "type": "object",
                "minProperties": 1,
                "description": "field: the amount added (a template; negative to subtract).",
            },
            "field": _FIELD,
        },
    }
    key: Mapping[str, Any] | None = None
    add: Mapping[str, Any] = dataclasses.field(default_factory=lambda: frozen_mapping({}))
    field: str | None = None

    @classmethod
    def parse(
        cls, body: Any, checker: ActionChecker, where: tuple[PathItem, ...], *, deferred: bool
    ) -> ActionDef | None:
        ok = checker.templates_ok((*where, "add"), body["add"])
        key = body.get("key")
        ident = str(body["id"]) if "id" in body else None
        selector = body.get("where")
        if key is not None:
            ok = checker.templates_ok((*where, "key"), key) and ok
        if ident is not None:
            ok = checker.templates_ok(where, {"id": ident}) and ok
        if selector is not None:
            ok = checker.templates_ok((*where, "where"), selector) and ok
        if (key is None) == (ident is None and selector is None):
            checker.error(
                where, "give 'key' (a balance's row) or 'id' and/or 'where' (a record), not both"
            )
            ok = False
        if not ok:
            return None
        action = cls(
            values=frozen_mapping({}),
            entity=_qualified(checker, body["entity"]),
            id=ident,
            key=frozen_mapping(dict(key)) if key is not None else None,
            where=frozen_mapping(dict(selector)) if selector is not None else None,
            add=frozen_mapping(dict(body["add"])),
            field=body.get("field"),
        )
        checker.target_later(where[:-1], action)
        return action

    def templates(self) -> Iterator[str]:
        yield from _strings(self.add)
        if self.key is not None:
            yield from _strings(self.key)
        if self.id is not None and is_template(self.id):
            yield self.id
        if self.where is not None:
            yield from _strings(self.where)

    def describe(self) -> dict[str, Any]:
        body: dict[str, Any] = {"entity": self.entity, "add": dict(self.add)}
        if self.key is not None:
            body["key"] = dict(self.key)
        if self.id is not None:
            body["id"] = self.id
        if self.where is not None:
            body["where"] = dict(self.where)
        return {self.kind: body}
