"""What a field looks like on a screen: its input widget, its column, how its form value
becomes a record value. Decided once per field type; templates only render."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engine.fieldtypes import kind_of
from metadata import DOCSTATUS, DOCUMENT_FIELDS, FieldDef, FieldType
from metadata._fieldkeys import TYPE_TRAITS

if TYPE_CHECKING:
    from collections.abc import Iterable

    from engine.access import EntityAccess
    from metadata import EntityDef

LIST_COLUMNS = 6


@dataclass(frozen=True, slots=True)
class Widget:
    field: FieldDef
    kind: str
    """``input``, ``textarea``, ``checkbox``, ``select``, ``reference`` or ``children``."""
    input_type: str = "text"
    step: str | None = None
    editable: bool = True
    label: str = ""
    help: str | None = None
    columns: tuple[Widget, ...] = ()
    """A child table's columns: the widgets of its lines' fields."""

    @property
    def name(self) -> str:
        return self.field.name


def widget_for(
    field: FieldDef,
    *,
    editable: bool,
    label: str | None = None,
    help_text: str | None = None,
    columns: tuple[Widget, ...] = (),
) -> Widget:
    shown = kind_of(field).widget(field)
    return Widget(
        field,
        shown.kind,
        shown.input_type,
        shown.step,
        editable,
        label or field.label,
        help_text if help_text is not None else field.help,
        columns,
    )


def is_writable(field: FieldDef, access: EntityAccess) -> bool:
    """Whether a user may type into the field: not computed, not assigned by the engine,
    not read-only by definition or for the user's roles."""
    return not (
        field.read_only
        or field.computed is not None
        or not field.is_writable
        or field.name in access.readonly
    )


_SYSTEM_COLUMNS = {
    "created_at": FieldDef("created_at", FieldType.DATETIME, "Created"),
    "updated_at": FieldDef("updated_at", FieldType.DATETIME, "Updated"),
    "created_by": FieldDef("created_by", FieldType.STRING, "Created by"),
    "updated_by": FieldDef("updated_by", FieldType.STRING, "Updated by"),
    "version": FieldDef("version", FieldType.INTEGER, "Version"),
}


def column(entity: EntityDef, name: str) -> FieldDef | None:
    """A field of the entity, or one of its system fields, as a column."""
    return entity.fields.get(name) or _SYSTEM_COLUMNS.get(name)


def list_columns(entity: EntityDef, access: EntityAccess) -> list[FieldDef]:
    """The list's columns: those of ``views/<entity>.yaml``, or the title first and then
    the next fields that fit a table cell; never a field the user may not see. A
    document's status is always a column (the last, unless the view places it), so that
    a list tells drafts from submitted and cancelled documents."""
    if entity.view.list_columns:
        found = (column(entity, name) for name in entity.view.list_columns)
        columns = [f for f in found if f is not None and f.name not in access.hidden]
    else:
        visible = [
            f
            for f in entity.fields.values()
            if f.name not in access.hidden
            and TYPE_TRAITS[f.type].listed
            and not (entity.document and f.name in DOCUMENT_FIELDS)
        ]
        visible.sort(key=lambda f: f.name != entity.title)
        columns = visible[:LIST_COLUMNS]
    status = entity.fields.get(DOCSTATUS) if entity.document else None
    if status is not None and status not in columns and status.name not in access.hidden:
        columns.append(status)
    return columns


def display(value: Any, field: FieldDef | None = None) -> str:
    """A stored value as text for a table cell or a read-only field."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dict):
        return str(value.get("_title") or value.get("id") or "")
    return str(value)


def choice(value: Any) -> str:
    """An enum value as the screens show it: ``closed_won`` reads "closed won" (the value
    sent and stored stays ``closed_won``)."""
    return "" if value is None else str(value).replace("_", " ")


def input_value(value: Any, field: FieldDef) -> str:
    """A stored value as an input's ``value`` attribute."""
    if value is None:
        return ""
    if field.type is FieldType.DATETIME and isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M")
    if isinstance(value, dict):
        return str(value.get("id", ""))
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def record_from_form(
    form: Submitted, widgets: Iterable[Widget], *, new: bool = False
) -> dict[str, Any]:
    """The values a submitted form sets, typed enough for the engine's validation (which
    reports what is still wrong at its field). An emptied input clears its field, except
    one with a ``lookup``: left empty, it is not sent, so that the engine looks it up; and,
    in a ``new`` record (a line added on the form), one with a ``default``, so
    that the engine computes it (an opportunity line's rate from its item)."""
    values: dict[str, Any] = {}
    for widget in widgets:
        if not widget.editable:
            continue
        if widget.kind == "children":
            values[widget.name] = lines_from_form(form, widget)
            continue
        field = widget.field
        sent = form.getlist(field.name)
        if not sent:
            continue
        text = sent[-1]
        if not isinstance(text, str):
            continue
        if field.type is FieldType.BOOLEAN:
            values[field.name] = text == "true"
        elif text.strip() == "":
            if field.lookup is None and not (new and field.default is not None):
                values[field.name] = None
        elif field.type is FieldType.DATETIME:
            values[field.name] = _utc_datetime(text.strip())
        else:
            values[field.name] = text.strip() if field.type is not FieldType.TEXT else text
    return values


def _utc_datetime(text: str) -> str:
    """``datetime-local`` inputs send no offset; the UI shows and takes UTC."""
    if len(text) in {16, 19} and "T" in text:
        return text + ("+00:00" if len(text) == 19 else ":00+00:00")
    return text


_LINE_KEY = re.compile(
    r"^(?P<table>[a-z][a-z0-9_]*)\[(?P<index>\d{1,4})\]\.(?P<field>[a-z_][a-z0-9_]*)$"
)


def typed_lines(form: Submitted, name: str) -> dict[int, dict[str, str]]:
    """The text typed in each row of the child table ``name`` (``lines[0].qty``...), by the
    row's index on the form."""
    rows: dict[int, dict[str, str]] = {}
    for key, value in form.multi_items():
        match = _LINE_KEY.match(key)
        if match is None or match["table"] != name or not isinstance(value, str):
            continue
        rows.setdefault(int(match["index"]), {})[match["field"]] = value
    return rows


def lines_from_form(form: Submitted, widget: Widget) -> list[dict[str, Any]]:
    """A child table's rows, in the order of their indexes (``lines[0].qty``...). A row
    ticked for removal, or left entirely empty (the blank row for a new line), is left out;
    a row with the ``id`` of a stored line keeps that line."""
    rows = typed_lines(form, widget.name)
    lines = []
    for index in sorted(rows):
        sent = rows[index]
        if sent.get("_remove") == "true":
            continue
        line: dict[str, Any] = {}
        if sent.get("id"):
            line["id"] = sent["id"]
        fake = FormDataLike(sent)
        line.update(record_from_form(fake, widget.columns, new="id" not in line))
        if "id" not in line and all(v in (None, False) for v in line.values()):
            continue
        lines.append(line)
    return lines


class Submitted(Protocol):
    """What the form readers need of submitted values: every value sent under a name."""

    def getlist(self, key: str) -> list[Any]: ...

    def multi_items(self) -> list[tuple[str, Any]]: ...


class FormDataLike:
    """One child row's submitted values, read the way ``record_from_form`` reads a form."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values

    def getlist(self, key: str) -> list[Any]:
        return [self.values[key]] if key in self.values else []

    def multi_items(self) -> list[tuple[str, Any]]:
        return list(self.values.items())
