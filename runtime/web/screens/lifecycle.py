"""What the screens need to know of a business document (``document: true``): its status,
the moves (Submit, Cancel, Amend) the user may make on it now, the amendment chain around
it, and which fields its state leaves editable on the form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.access import Forbidden, matches
from engine.errors import RecordNotFound
from engine.writes.documents import CANCELLED, DRAFT, SUBMITTED, status_of
from metadata import AMENDED_FROM, FieldType, Permission
from runtime.api.problems import ApiProblem
from runtime.web.screens.base import parse_record_id

if TYPE_CHECKING:
    from engine.database import Connection
    from engine.expressions import Actor
    from metadata import EntityDef, FieldDef
    from runtime.web.screens.base import Screen

AMENDMENTS_SHOWN = 20


@dataclass(frozen=True, slots=True)
class DocumentMove:
    """One of a document's moves as the screens offer it."""

    name: str
    """``submit``, ``cancel`` or ``amend``: the last segment of its URLs."""
    permission: Permission
    source: str
    """The status a document must have for the move."""
    label: str
    done: str
    """The message after the move (``?done=<name>``); ``{noun}`` is the entity's label."""
    style: str
    """The button's class: ``danger`` for the move that cannot be undone by an edit."""


MOVES: dict[str, DocumentMove] = {
    "submit": DocumentMove("submit", Permission.SUBMIT, DRAFT, "Submit", "Submitted.", ""),
    "cancel": DocumentMove(
        "cancel", Permission.CANCEL, SUBMITTED, "Cancel", "Cancelled.", "danger"
    ),
    "amend": DocumentMove(
        "amend",
        Permission.CREATE,
        CANCELLED,
        "Amend",
        "Amended: this is a new draft of the cancelled {noun}. Edit it, then submit it.",
        "",
    ),
}


def status(entity: EntityDef, record: dict[str, Any] | None) -> str | None:
    """A document's status (``draft``, ``submitted``, ``cancelled``); None for a record of
    another entity or a record not saved yet."""
    if not entity.document or not record:
        return None
    return status_of(record)


def editable_in(state: str | None, field: FieldDef) -> bool:
    """Whether a document's state leaves ``field`` editable: any field of a draft; on a
    submitted document only the fields declared ``allow_on_submit`` (never its lines); on a
    cancelled one nothing."""
    if state in (None, DRAFT):
        return True
    if state == SUBMITTED:
        return field.allow_on_submit and field.type is not FieldType.CHILDREN
    return False


def offered(screen: Screen, record: dict[str, Any], actor: Actor) -> list[DocumentMove]:
    """The moves the user may make on the stored ``record`` now: the one its status allows,
    if the user's grant (``submit``, ``cancel``; ``create`` to amend) covers the record."""
    state = status(screen.store.entity, record)
    moves = []
    for move in MOVES.values():
        if state != move.source or move.permission not in screen.access.permissions:
            continue
        covered = screen.access.permissions[move.permission]
        if move.permission is Permission.CREATE or matches(covered, record, actor):
            moves.append(move)
    return moves


async def chain(
    screen: Screen, conn: Connection, record: dict[str, Any]
) -> tuple[dict[str, str] | None, list[dict[str, str]]]:
    """The amendment chain around ``record``, as far as the user may read it: the document
    it amends (``amended_from``) and the documents that amend it (theirs is this one),
    each as ``{"id", "title"}``."""
    entity = screen.store.entity
    title_field = entity.title or "id"
    source = None
    original = record.get(AMENDED_FROM)
    if isinstance(original, dict):
        original = original.get("id")
    if original not in (None, "") and AMENDED_FROM not in screen.access.hidden:
        try:
            found = await screen.guard.get(conn, parse_record_id(str(original)))
            source = _linked(found, title_field)
        except (Forbidden, RecordNotFound, ApiProblem):  # not readable: its id alone
            source = {"id": str(original), "title": f"#{original}"}
    amendments: list[dict[str, str]] = []
    if AMENDED_FROM not in screen.access.hidden and screen.may(Permission.READ):
        pairs = [
            (AMENDED_FROM, str(record["id"])),
            ("limit", str(AMENDMENTS_SHOWN)),
            ("sort", "id"),
        ]
        result = await screen.guard.list_page(conn, screen.store.parser.parse(pairs))
        amendments = [_linked(r, title_field) for r in result.records]
    return source, amendments


def _linked(record: dict[str, Any], title_field: str) -> dict[str, str]:
    return {"id": str(record["id"]), "title": str(record.get(title_field) or f"#{record['id']}")}


def past(move: DocumentMove) -> str:
    """``submitted``, ``cancelled``, ``amended``: for messages."""
    return {"submit": "submitted", "cancel": "cancelled", "amend": "amended"}[move.name]
