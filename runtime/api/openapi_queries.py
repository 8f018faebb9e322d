"""The query parameters of the generated list, ``_aggregate`` and ``_export`` operations in
the OpenAPI document: each filter with the operators its column type takes, field and sort
names as patterns, and the limits the server enforces (runtime/api/openapi.py)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.aggregate import MAX_GROUPS
from engine.fieldtypes import ID_SCHEMA, kind_of_type
from engine.query import DEFAULT_LIMIT, MAX_LIMIT, MAX_SORT_KEYS
from metadata import FILTER_OPERATORS, FieldType

if TYPE_CHECKING:
    from collections.abc import Iterable

    from engine import EntityStore

INT64 = {"minimum": -(2**63), "maximum": 2**63 - 1}
MAX_OFFSET = 10**9


def query_parameter(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema,
        "description": description,
    }


def _filter_schema(store: EntityStore, name: str, column_type: FieldType | None) -> dict[str, Any]:
    """What the list parser accepts as ``name=value`` (engine/query.py): typed values,
    decimals that fit the column, any text; each field type says (``filter_schema``)."""
    if column_type is None:
        return dict(ID_SCHEMA)
    return kind_of_type(column_type).filter_schema(store.entity.fields.get(name))


def _operators_of(column_type: FieldType | None) -> list[str]:
    """The operators a filter of ``column_type`` takes (besides ``eq``, which is bare), from
    the registry: those of every field first, then those of some types only."""
    specs = [s for s in FILTER_OPERATORS.values() if s.name != "eq" and s.applies_to(column_type)]
    return [s.name for s in specs if s.types is None] + [
        s.name for s in specs if s.types is not None
    ]


def _names_pattern(names: Iterable[str]) -> str:
    """Comma-separated ``names`` (``fields``, ``expand``)."""
    name = f"({'|'.join(names)})"
    return f"^{name}(,{name})*$"


def _sort_pattern(names: Iterable[str]) -> str:
    """Empty, or up to ``MAX_SORT_KEYS`` comma-separated ``names``, each with an optional
    leading -, none twice (the lookahead)."""
    name = f"-?({'|'.join(names)})"
    twice = r"(?!(.*,)?-?([a-z0-9_]+),(.*,)?-?\2(,|$))"
    return f"^{twice}({name}(,{name}){{0,{MAX_SORT_KEYS - 1}}})?$"


def list_parameters(store: EntityStore) -> list[dict[str, Any]]:
    columns = store.query_columns
    parameters = [
        query_parameter(
            "limit",
            {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
            "Page size.",
        ),
        query_parameter(
            "offset", {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}, "Records to skip."
        ),
        query_parameter("cursor", {"type": "string"}, "meta.next_cursor of the previous page."),
        query_parameter(
            "sort",
            {"type": "string", "pattern": _sort_pattern(columns.columns)},
            f"Up to {MAX_SORT_KEYS} comma-separated fields, each once; a leading - sorts "
            f"descending. Sortable: {', '.join(columns.columns)}.",
        ),
        query_parameter(
            "fields",
            {"type": "string", "pattern": _names_pattern(columns.all_fields)},
            f"Comma-separated fields to return: {', '.join(columns.all_fields)}.",
        ),
        query_parameter(
            "count", {"type": "boolean"}, "Add meta.count, the number of matching records."
        ),
        query_parameter(
            "q",
            {"type": "string", "maxLength": 200},
            f"Text search over: {', '.join(columns.search) or 'nothing'}.",
        ),
    ]
    if columns.expandable:
        parameters.append(
            query_parameter(
                "expand",
                {"type": "string", "pattern": _names_pattern(columns.expandable)},
                "Comma-separated reference fields to return as the records they name: "
                f"{', '.join(columns.expandable)}.",
            )
        )
    for name, column in columns.columns.items():
        parameters.append(
            query_parameter(
                name,
                _filter_schema(store, name, column.type),
                f"Records whose {name} equals this. Operators: {name}__"
                + ", __".join(_operators_of(column.type))
                + ".",
            )
        )
    for name, kind in columns.uncompared:
        if kind is FieldType.FILE:
            parameters.append(
                query_parameter(
                    f"{name}__isnull",
                    {"type": "boolean"},
                    f"false: records whose {name} holds a file; true: those whose does not "
                    "(a file field filters on nothing else, and is not sorted on).",
                )
            )
    return parameters


def aggregate_parameters(store: EntityStore) -> list[dict[str, Any]]:
    """The list's filters, ``q`` and ``limit`` (of groups), plus the aggregate's own."""
    own = {"offset", "cursor", "fields", "expand", "count", "sort"}
    parameters = [p for p in list_parameters(store) if p["name"] not in own]
    text = {"type": "string"}
    for name, description in [
        (
            "group_by",
            f"Up to {MAX_GROUPS} comma-separated fields; a date or datetime may be bucketed: "
            "close_date__month (year, month, day).",
        ),
        (
            "measures",
            "Comma-separated FIELD__FUNCTION (sum, avg, min, max), e.g. amount__sum; "
            "count is always returned.",
        ),
        ("sort", "Comma-separated group keys or measures; a leading - sorts descending."),
    ]:
        parameters.append(query_parameter(name, text, description))
    return parameters


def export_parameters(store: EntityStore) -> list[dict[str, Any]]:
    """The list's filters, ``q``, ``sort`` and ``fields`` (every page: no paging), plus
    ``format`` and ``for``."""
    paging = {"limit", "offset", "cursor", "expand", "count"}
    parameters = [p for p in list_parameters(store) if p["name"] not in paging]
    parameters.append(
        query_parameter(
            "format",
            {"type": "string", "enum": ["csv", "jsonl"], "default": "csv"},
            "csv (a header line, then one line per record) or jsonl.",
        )
    )
    parameters.append(
        query_parameter(
            "for",
            {"type": "string", "enum": ["machines", "people"], "default": "machines"},
            "machines: the API's values (to import back). people: a CSV as the caller reads "
            "it (field labels, 1.450,00 €, dates in their locale, ';' where the decimal "
            "symbol is a comma; docs/locales.md).",
        )
    )
    return parameters
