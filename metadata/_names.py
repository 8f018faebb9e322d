"""What a definition's own names (packs, entities, fields, rules) may look like, and the
label a name gives when none is written."""

from __future__ import annotations

import re

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


def is_snake_case(name: str) -> bool:
    return bool(NAME_PATTERN.match(name)) and "__" not in name


def default_label(name: str) -> str:
    return name.replace("_", " ").capitalize()
