"""The Jinja2 environment of the screens: templates from this package, autoescaped, strict
about undefined names, with the display helpers as globals. Built once per app."""

from __future__ import annotations

import urllib.parse
from pathlib import Path
from typing import Any

import jinja2

from runtime.web.widgets import display, input_value

TEMPLATES = Path(__file__).parent / "templates"


def _with_params(query: str, **changes: Any) -> str:
    """``query`` (a URL query string) with some parameters replaced or removed (None)."""
    pairs = [(k, v) for k, v in urllib.parse.parse_qsl(query) if k not in changes]
    pairs += [(k, str(v)) for k, v in changes.items() if v is not None and v != ""]
    return urllib.parse.urlencode(pairs)


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
            display=display, input_value=input_value, with_params=_with_params
        )

    def render(self, template: str, **context: Any) -> str:
        return self.environment.get_template(template).render(**context)
