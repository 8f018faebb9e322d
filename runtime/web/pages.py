"""The Jinja2 environment of the screens: templates from this package, autoescaped, strict
about undefined names, with the display helpers as globals. Built once per app.

The display helpers read values the way the signed-in reader does: each page is rendered
with ``formats`` (runtime/formatting.py: the user's locale and time zone), which
``display``, ``choice`` and ``input_value`` use; a page without one (an error page before
sign-in) shows values as the instance's default locale would."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any

import jinja2

from runtime.formatting import DEFAULT_LOCALE, Formats, choice_label, formats_for
from runtime.web.widgets import cell_class, input_value

TEMPLATES = Path(__file__).parent / "templates"


def _with_params(query: str, **changes: Any) -> str:
    """``query`` (a URL query string) with some parameters replaced or removed (None)."""
    pairs = [(k, v) for k, v in urllib.parse.parse_qsl(query) if k not in changes]
    pairs += [(k, str(v)) for k, v in changes.items() if v is not None and v != ""]
    return urllib.parse.urlencode(pairs)


def _field_id(name: str) -> str:
    """The id of a field's input: ``amount`` → ``f-amount``, ``lines[0].qty`` →
    ``f-lines-0-qty``."""
    return "f-" + re.sub(r"[\[\].]+", "-", name).strip("-")


def _field_label(entity: Any, name: str) -> str:
    """A field's label for messages; a line's field as ``Lines, line 1: Qty``."""
    match = re.match(r"^(\w+)\[(\d+)\]\.(\w+)$", name)
    if match is None:
        field = entity.fields.get(name)
        return str(field.label) if field is not None else name
    table = entity.fields.get(match[1])
    return f"{table.label if table else match[1]}, line {int(match[2]) + 1}: {match[3]}"


def _formats(context: Any) -> Formats:
    found = context.get("formats")
    return found if isinstance(found, Formats) else formats_for(DEFAULT_LOCALE, "UTC")


@jinja2.pass_context
def _display(
    context: Any, value: Any, field: Any = None, record: Any = None, parent: Any = None
) -> str:
    """A stored value as text for a table cell or a read-only field: of ``field`` (its
    type, scale, currency, labels) in ``record`` when given, else by the value's type; a
    line's cell with ``parent``, the record the line belongs to (whose currency a line's
    amount may be in: ``currency: parent.currency``)."""
    return _formats(context).value(value, field, record, parent)


@jinja2.pass_context
def _input_value(context: Any, value: Any, field: Any) -> str:
    return input_value(value, field, _formats(context))


class Pages:
    def __init__(self) -> None:
        self.environment = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.environment.globals.update(
            display=_display,
            choice=choice_label,
            input_value=_input_value,
            cell_class=cell_class,
            with_params=_with_params,
            field_id=_field_id,
            field_label=_field_label,
        )

    def render(self, template: str, **context: Any) -> str:
        return self.environment.get_template(template).render(**context)
