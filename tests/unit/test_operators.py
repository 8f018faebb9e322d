"""The filter-operator vocabulary is one registry: docs/api.md's table is generated from it,
every operator has one engine class, and role ``where`` filters read it (comparison symbols
and ``field is <operator>(value)`` tests)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.operators import registered
from metadata import FILTER_OPERATORS, EntityDef, FieldComparison, FieldDef, FieldType
from metadata._operators import BUILT_IN, markdown_table
from metadata._roles import WhereError, parse_record_filter

DOCS = Path(__file__).parents[2] / "docs" / "api.md"


def test_the_docs_table_is_the_registry() -> None:
    text = DOCS.read_text(encoding="utf-8")
    found = re.search(r"<!-- operators:[^>]*-->\n(.*?)<!-- /operators -->", text, re.S)
    assert found is not None
    assert found.group(1) == markdown_table(), "regenerate with metadata._operators"
    assert set(BUILT_IN) <= set(FILTER_OPERATORS) == registered() | set(FILTER_OPERATORS)
    assert set(BUILT_IN) <= registered()


def _entity() -> EntityDef:
    fields = {
        "name": FieldDef(name="name", type=FieldType.STRING, label="Name"),
        "qty": FieldDef(name="qty", type=FieldType.INTEGER, label="Qty"),
    }
    return EntityDef("p", "thing", "Thing", "Things", None, "name", fields)


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("name is startswith('A')", FieldComparison("name", "startswith", "A")),
        ("name is icontains 'x'", FieldComparison("name", "icontains", "x")),
        ("qty is isnull(false)", FieldComparison("qty", "isnull", False)),
        ("10 <= qty", FieldComparison("qty", "gte", 10)),
        ("qty not in [1, 2]", FieldComparison("qty", "nin", (1, 2))),
    ],
)
def test_where_reads_the_registry(where: str, expected: FieldComparison) -> None:
    assert parse_record_filter(where, _entity()) == expected


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("qty is contains('1')", "'contains' does not apply to 'qty' (integer)"),
        ("id is startswith('1')", "'startswith' does not apply to 'id' (a system field)"),
        ("name is contains(1)", "'is contains' takes str constants"),
        ("name is contains(user.id)", "takes a constant"),
        ("name is isnull('x')", "takes true or false"),
        ("name is contains('a', 'b')", "takes one value"),
        ("name is eq('a')", "only 'is none' tests"),
        ("name is nosuch('a')", "'is startswith(...)'"),
        ("name == 'a\x00b'", "must not contain NUL characters"),
        ("name is startswith('\ud800')", "must not contain unpaired surrogates"),
        ("qty > 9223372036854775808", "outside the 64-bit integer range"),
        ("qty in [1, 92233720368547758070]", "outside the 64-bit integer range"),
    ],
)
def test_where_refuses_what_an_operator_does_not_take(where: str, message: str) -> None:
    with pytest.raises(WhereError, match=re.escape(message)):
        parse_record_filter(where, _entity())
