"""The compiled record validator and the generated JSON Schema agree.

For every field of the kitchen-sink entity, a table of values: each value the JSON Schema
accepts must be accepted by the validator, and each value the schema rejects must be
rejected by it — except for two documented differences: the validator also accepts text
forms of numbers and booleans (CSV imports), and it enforces rules that JSON Schema only
annotates (``format`` of e-mail, URL and phone; calendar-valid dates).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from engine.errors import ValidationFailed
from engine.jsonschema import record_schema
from engine.validation import RecordValidator
from metadata import load_project

PACKS = Path(__file__).resolve().parents[2] / "packs"
PROJECT = load_project(["kitchen"], [PACKS])
ITEM = PROJECT.entity("kitchen.item")
VALIDATOR = RecordValidator(ITEM, {"lines": RecordValidator(PROJECT.entity("kitchen.item_line"))})
SCHEMA = Draft202012Validator(
    record_schema(ITEM, PROJECT, "create"), format_checker=Draft202012Validator.FORMAT_CHECKER
)

SAMPLES: dict[str, list[Any]] = {
    "code": ["AB-1", "ab", "A" * 20, "A" * 21, 5, None],
    "notes": ["", "x" * 10_000, 3, ["a"]],
    "quantity": [0, 7, -1, 2**63, 1.5, True, "x", "12"],
    "price": [
        "0.00",
        "12.50",
        "12.505",
        "-1.00",
        "123456789012.34",
        "1234567890123.00",
        "abc",
        "12",
        12,
        True,
    ],
    "rate": ["0.000001", "1.0000001", "999.999999"],
    "active": [True, False, "yes", 1, None],
    "due": ["2026-01-31", "2026-1-31", "31/01/2026", 20260131, "2026-02-30"],
    "seen_at": ["2026-01-31T10:00:00+01:00", "2026-01-31T10:00:00Z", "2026-01-31", "noon"],
    "email": ["a@b.io", "a@b", "not an email"],
    "website": ["https://x.io/a", "ftp://x.io", "x.io"],
    "phone": ["+49 30 1234567", "(171) 555-7788", "call me"],
    "status": ["draft", "done", "Draft", "", 1],
    "category": ["1", "0", "x", {"name": "Tools"}, {"a": 1, "b": 2}],
    "attributes": [{"a": [1, 2.5, None]}, "text", 3, None],
    "lines": [[], [{"description": "d", "qty": 1}], [{"qty": 1}], "x", [1]],
}
TEXT_COERCIONS = {("quantity", "12"), ("active", "yes")}
NOT_EXPRESSIBLE = {
    ("email", "a@b"),
    ("website", "ftp://x.io"),
    ("phone", "call me"),
    ("price", "-1.00"),
}
"""E-mail needs a dot in the domain, URLs need http(s), phones a digit pattern, and the
``min`` of a decimal cannot apply to its string form."""
CASES = [(field, value) for field, values in SAMPLES.items() for value in values]


def _accepted_by_validator(field: str, value: Any) -> bool:
    try:
        VALIDATOR.validate({"name": "x", field: value})
    except ValidationFailed:
        return False
    return True


@pytest.mark.parametrize(("field", "value"), CASES, ids=[f"{f}={v!r}"[:40] for f, v in CASES])
def test_validator_agrees_with_json_schema(field: str, value: Any) -> None:
    by_schema = SCHEMA.is_valid({"name": "x", field: value})
    by_validator = _accepted_by_validator(field, value)
    key = (field, repr(value) if isinstance(value, (list, dict)) else value)
    if key in TEXT_COERCIONS:
        assert by_validator
        assert not by_schema
    elif key in NOT_EXPRESSIBLE:
        assert by_schema
        assert not by_validator
    else:
        assert by_validator == by_schema
