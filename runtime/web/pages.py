"""The Jinja2 environment of the screens: templates from this package, autoescaped, strict
about undefined names, with the display helpers as globals. Built once per app."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path
from typing import Any

import jinja2

from runtime.web.widgets import choice, display, input_value

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
            display=display,
            choice=choice,
            input_value=input_value,
            with_params=_with_params,
            field_id=_field_id,
            field_label=_field_label,
        )

    def render(self, template: str, **context: Any) -> str:
        return self.environment.get_template(template).render(**context)
