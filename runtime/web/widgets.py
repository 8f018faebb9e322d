"""What a field looks like on a screen: its input widget, its column, how its form value
becomes a record value. Decided once per field type; templates only render."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from metadata import FieldType

if TYPE_CHECKING:
    from collections.abc import Iterable

    from starlette.datastructures import FormData

    from engine.access import EntityAccess
    from metadata import EntityDef, FieldDef

_INPUT_TYPES = {
    FieldType.STRING: "text",
    FieldType.EMAIL: "email",
    FieldType.URL: "url",
    FieldType.PHONE: "tel",
    FieldType.INTEGER: "number",
    FieldType.DECIMAL: "number",
    FieldType.DATE: "date",
    FieldType.DATETIME: "datetime-local",
}
_WIDGETS = {
    FieldType.TEXT: "textarea",
    FieldType.JSON: "textarea",
    FieldType.BOOLEAN: "checkbox",
    FieldType.ENUM: "select",
    FieldType.REFERENCE: "reference",
    FieldType.CHILDREN: "children",
}
_NOT_IN_LISTS = frozenset({FieldType.TEXT, FieldType.JSON, FieldType.CHILDREN})
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

    @property
    def name(self) -> str:
        return self.field.name


def widget_for(
    field: FieldDef, *, editable: bool, label: str | None = None, help_text: str | None = None
) -> Widget:
    kind = _WIDGETS.get(field.type, "input")
    step = None
    if field.type is FieldType.INTEGER:
        step = "1"
    elif field.type is FieldType.DECIMAL:
        scale = field.scale if field.scale is not None else 2
        step = str(Decimal(1).scaleb(-scale)) if scale else "1"
    return Widget(
        field,
        kind,
        _INPUT_TYPES.get(field.type, "text"),
        step,
        editable,
        label or field.label,
        help_text if help_text is not None else field.help,
    )


def is_writable(field: FieldDef, access: EntityAccess) -> bool:
    """Whether a user may type into the field: not computed, not assigned by the engine,
    not read-only by definition or for the user's roles."""
    return not (
        field.read_only
        or field.computed is not None
        or field.type is FieldType.AUTONUMBER
        or field.name in access.readonly
    )


def list_columns(entity: EntityDef, access: EntityAccess) -> list[FieldDef]:
    """Default list columns: the title first, then the next fields that fit a table cell."""
    visible = [
        f
        for f in entity.fields.values()
        if f.name not in access.hidden and f.type not in _NOT_IN_LISTS
    ]
    visible.sort(key=lambda f: f.name != entity.title)
    return visible[:LIST_COLUMNS]


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


def record_from_form(form: FormData, widgets: Iterable[Widget]) -> dict[str, Any]:
    """The values a submitted form sets, typed enough for the engine's validation (which
    reports what is still wrong at its field). An emptied input clears its field."""
    values: dict[str, Any] = {}
    for widget in widgets:
        if not widget.editable or widget.kind == "children":
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
