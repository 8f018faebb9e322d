"""Business documents (``document: true``): the lifecycle draft → submitted → cancelled,
the amendment of a cancelled document as a new draft, and what a document's state refuses.

A refusal because of a document's state is a 409 whose ``code`` is that state:
``submitted`` (a frozen document), ``cancelled`` (it never changes again) or ``draft`` (a
draft cannot be cancelled). See docs/documents.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.errors import Conflict
from metadata import DOCSTATUS, DOCUMENT_FIELDS, FieldType, RuleEvent

if TYPE_CHECKING:
    from collections.abc import Mapping

    from engine.database import Connection
    from engine.errors import FieldError
    from engine.writes.context import WriteContext
    from metadata import EntityDef

DRAFT, SUBMITTED, CANCELLED = "draft", "submitted", "cancelled"
MOVES = {RuleEvent.SUBMIT: (DRAFT, SUBMITTED), RuleEvent.CANCEL: (SUBMITTED, CANCELLED)}
"""The status a document must have for the event, and the one it gets."""


def check_move(entity: EntityDef, old: Mapping[str, Any], event: RuleEvent) -> tuple[str, str]:
    """The move ``event`` makes from ``old``'s status: (before, after); 409 (``code`` the
    status) when the document is not in the status the event starts from."""
    source, target = MOVES[event]
    status = status_of(old)
    if status != source:
        raise Conflict(
            f"only a {source} {entity.qualified_name} can be {target}; this one is {status}",
            code=status,
        )
    return status, target


def check_amend(entity: EntityDef, old: Mapping[str, Any]) -> None:
    """Only a cancelled document may be amended (409 otherwise, ``code`` its status)."""
    status = status_of(old)
    if status != CANCELLED:
        raise Conflict(
            f"only a cancelled {entity.qualified_name} can be amended; this one is {status}",
            code=status,
        )


def status_of(record: Mapping[str, Any]) -> str:
    return str(record.get(DOCSTATUS) or DRAFT)


def check_update(
    entity: EntityDef, old: Mapping[str, Any] | None, data: Any, ctx: WriteContext
) -> None:
    """An update of a document: anything goes on a draft; on a submitted one only fields
    declared ``allow_on_submit`` (409 ``submitted`` naming the others); nothing on a
    cancelled one (409 ``cancelled``). Except the actions of the document's own rules ``on:
    [submit]`` (``[cancel]``) in that submit's (cancel's) transaction: they may fill the
    document's fields as it is submitted (cancelled)."""
    if not entity.document or old is None:
        return
    status = status_of(old)
    if status == DRAFT or _own_move(entity, old, status, ctx):
        return
    name = entity.qualified_name
    if status == CANCELLED:
        raise Conflict(f"this {name} is cancelled: it can never change again", code=CANCELLED)
    keys = data.keys() if isinstance(data, dict) else ()
    frozen = sorted(
        str(key)
        for key in keys
        if key not in entity.fields or not entity.fields[key].allow_on_submit
    )
    if frozen:
        raise Conflict(
            f"this {name} is submitted: only fields declared allow_on_submit may change; "
            f"not {', '.join(frozen)} (cancel it and amend the copy instead)",
            code=SUBMITTED,
        )


def _own_move(entity: EntityDef, old: Mapping[str, Any], status: str, ctx: WriteContext) -> bool:
    """Whether this write is an action of the rule that runs on this document's move into
    ``status``."""
    event = RuleEvent.SUBMIT if status == SUBMITTED else RuleEvent.CANCEL
    record_id = str(old.get("id"))
    return any(
        step.entity == entity.qualified_name
        and step.record_id == record_id
        and step.event == event.value
        for step in ctx.cascade
    )


def check_delete(entity: EntityDef, old: Mapping[str, Any] | None) -> None:
    """Only a draft document may be deleted."""
    if entity.document and old is not None and status_of(old) != DRAFT:
        status = status_of(old)
        raise Conflict(
            f"this {entity.qualified_name} is {status}: only a draft can be deleted "
            "(cancel a submitted document instead)",
            code=status,
        )


def amendment(entity: EntityDef, children: Mapping[str, EntityDef], old: Mapping[str, Any]) -> Any:
    """The body of a cancelled document's amendment: its writable fields and lines (the
    lines without their ids), as a client would post them; optional unique fields are
    left out (the original keeps the value)."""
    body: dict[str, Any] = {}
    for name, field in entity.fields.items():
        if name in DOCUMENT_FIELDS or not field.is_writable or name not in old:
            continue
        if field.unique and not field.required:
            continue  # the original keeps its value: the copy starts without one
        if field.type is FieldType.CHILDREN:
            child = children[name]
            body[name] = [
                {
                    key: value
                    for key, value in line.items()
                    if key in child.fields and child.fields[key].is_writable
                }
                for line in old[name] or ()
            ]
        else:
            body[name] = old[name]
    return body


async def line_failures(
    conn: Connection,
    children: Mapping[str, Any],
    record: Mapping[str, Any],
    event: RuleEvent,
    ctx: WriteContext,
) -> list[FieldError]:
    """The rules ``on`` a document's ``event`` (submit, cancel) of its line entities
    (``children``: their stores, by children field), on
    each of its lines, with the records they traverse read now (the stock an item has at
    submit, not when the line was written): every failure, at ``lines[i].field``."""
    failures: list[FieldError] = []
    for name, child in children.items():
        lines = record.get(name) or []
        if not lines or not child.rules.runs_on(event):
            continue
        if child.traversed:
            await child.load_references(conn, lines, ctx)
        for position, line in enumerate(lines):
            view = child.references.view(line, ctx)
            found = child.rules.failures(event, view, view, ctx.user)
            failures.extend(failure.within(name, position) for failure in found)
    return failures
