"""What a field looks like on a screen: its input widget, its column, how its form value
becomes a record value. Decided once per field type; templates only render."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from engine.errors import FieldError, ValidationFailed
from engine.fieldtypes import kind_of
from metadata import DOCSTATUS, DOCUMENT_FIELDS, FieldDef, FieldType
from metadata._fieldkeys import TYPE_TRAITS
from runtime.formatting import (
    DEFAULT_LOCALE,
    AsTyped,
    Formats,
    InputError,
    choice_label,
    formats_for,
)

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
    inputmode: str | None = None
    """A number's keyboard on phones (``decimal``, ``numeric``): a number is typed as text
    in the reader's locale (``1.450,50``), which ``<input type=number>`` refuses."""

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
    localized = shown.input_type == "number" and field.type in _NUMBERS
    return Widget(
        field,
        shown.kind,
        "text" if localized else shown.input_type,
        None if localized else shown.step,
        editable,
        label or field.label,
        help_text if help_text is not None else field.help,
        columns,
        _NUMBERS.get(field.type) if localized else None,
    )


_NUMBERS = {FieldType.INTEGER: "numeric", FieldType.DECIMAL: "decimal"}
_RIGHT_ALIGNED = frozenset({FieldType.INTEGER, FieldType.DECIMAL})


def cell_class(field: FieldDef | None) -> str:
    """The class of a list's cell and header for a field: ``num`` right-aligns numbers (so
    that digits line up); every cell is ``t-<type>``."""
    if field is None:
        return ""
    kind = f"t-{field.type.value}"
    return f"num {kind}" if field.type in _RIGHT_ALIGNED else kind


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


def _default_formats() -> Formats:
    return formats_for(DEFAULT_LOCALE, "UTC")


def display(value: Any, field: FieldDef | None = None, formats: Formats | None = None) -> str:
    """A stored value as text for a table cell or a read-only field, as the reader of
    ``formats`` reads it (runtime/formatting.py)."""
    return (formats or _default_formats()).value(value, field)


def choice(value: Any) -> str:
    """An enum value as the screens show it: ``closed_won`` reads "Closed won" (the value
    sent and stored stays ``closed_won``)."""
    return choice_label(value)


def input_value(value: Any, field: FieldDef, formats: Formats | None = None) -> str:
    """A stored value as an input's ``value`` attribute: a number as the reader writes it
    (``1.450,50``), a moment in the reader's time zone."""
    if value is None:
        return ""
    shown = formats or _default_formats()
    if field.type is FieldType.DATETIME and isinstance(value, dt.datetime):
        return shown.input_datetime(value)
    if field.type in _NUMBERS and not isinstance(value, (bool, dict)):
        return shown.input_number(value, field)
    if isinstance(value, dict):
        return str(value.get("id", ""))
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def record_from_form(
    form: Submitted,
    widgets: Iterable[Widget],
    *,
    new: bool = False,
    formats: Formats | None = None,
    problems: list[FieldError] | None = None,
    prefix: str = "",
) -> dict[str, Any]:
    """The values a submitted form sets, typed enough for the engine's validation (which
    reports what is still wrong at its field). An emptied input clears its field, except
    one with a ``lookup``: left empty, it is not sent, so that the engine looks it up; and,
    in a ``new`` record (a line added on the form), one with a ``default``, so
    that the engine computes it (an opportunity line's rate from its item).

    Numbers are read as the reader of ``formats`` writes them (``1.450,50`` in de_DE) and
    moments in their time zone; a number that is not one in that locale is kept as typed
    (the form shows it again) and reported in ``problems`` at its field (``lines[0].qty``
    with ``prefix``), never guessed at. Without ``problems``, a ``ValidationFailed``."""
    shown = formats or _default_formats()
    found: list[FieldError] = [] if problems is None else problems
    values: dict[str, Any] = {}
    for widget in widgets:
        if not widget.editable:
            continue
        if widget.kind == "children":
            values[widget.name] = lines_from_form(form, widget, shown, found)
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
        else:
            values[field.name] = _typed(widget, text, shown, found, prefix)
    if problems is None and found:
        raise ValidationFailed(found)
    return values


def _typed(
    widget: Widget, text: str, formats: Formats, problems: list[FieldError], prefix: str
) -> Any:
    """A filled input's value for the engine: a moment with the reader's offset, a number
    in the engine's notation (or, if it is none in the reader's locale, as typed, with the
    problem noted), other text as typed."""
    field = widget.field
    if field.type is FieldType.DATETIME:
        try:
            return formats.parse_datetime(text.strip())
        except InputError as exc:
            problems.append(FieldError(prefix + field.name, "local_time", str(exc)))
            return AsTyped(text.strip())
    if widget.inputmode is not None:
        try:
            return formats.parse_number(text, field)
        except InputError as exc:
            problems.append(FieldError(prefix + field.name, "locale_number", str(exc)))
            return AsTyped(text.strip())
    return text.strip() if field.type is not FieldType.TEXT else text


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


def lines_from_form(
    form: Submitted,
    widget: Widget,
    formats: Formats | None = None,
    problems: list[FieldError] | None = None,
) -> list[dict[str, Any]]:
    """A child table's rows, in the order of their indexes (``lines[0].qty``...). A row
    ticked for removal, or left entirely empty (the blank row for a new line), is left out;
    a row with the ``id`` of a stored line keeps that line."""
    rows = typed_lines(form, widget.name)
    lines: list[dict[str, Any]] = []
    for index in sorted(rows):
        sent = rows[index]
        if sent.get("_remove") == "true":
            continue
        line: dict[str, Any] = {}
        if sent.get("id"):
            line["id"] = sent["id"]
        fake = FormDataLike(sent)
        line.update(
            record_from_form(
                fake,
                widget.columns,
                new="id" not in line,
                formats=formats,
                problems=problems if problems is not None else [],
                prefix=f"{widget.name}[{len(lines)}].",
            )
        )
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
