r"""Northwind sample data as records of the ``northwind`` test pack (``tests/packs/northwind``).

The data stays outside the repository: it is the PostgreSQL dump kept beside it, in
``<repo>/../shared/data/northwind/northwind.sql`` (see the README there). This module reads
that dump without a database and turns its rows into the records the pack's import path
takes: field names of the pack, references written as ``{"<unique field>": value}``, order
lines nested in their order as ``lines``, decimals as exact strings, dates as ``YYYY-MM-DD``.

Only what the dump uses is supported, and anything else is an error rather than a guess:

- ``CREATE TABLE name (...);`` blocks give each table's column names and types;
- ``INSERT INTO name VALUES (...);`` statements, one per line, give the rows. A value is a
  quoted string (``''`` is a quote; the dump sets ``standard_conforming_strings = on``, so a
  backslash is an ordinary character and ``'a\nb'`` keeps its backslash), ``NULL``, or a
  number. Strings are typed by their column: ``date`` becomes a ``datetime.date`` and
  ``bytea`` (hex format, ``'\x'`` is empty) becomes ``bytes``; numbers become ``int`` or an
  exact ``Decimal`` of the digits written, never a float.

Run it to print what it reads: ``.venv/bin/python -m tests.support.northwind_sql [OUT_DIR]``.
"""

from __future__ import annotations

import json
import re
import struct
import sys
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

__all__ = [
    "ENTITIES",
    "IMPORT_KEYS",
    "PACK",
    "Column",
    "Dump",
    "SqlSyntaxError",
    "default_sql_path",
    "expected_child_counts",
    "expected_counts",
    "parse_dump",
    "parse_values",
    "read_dump",
    "records",
    "write_jsonl",
]

SqlValue: TypeAlias = str | int | Decimal | date | bytes | None
Row: TypeAlias = dict[str, SqlValue]
Record: TypeAlias = dict[str, Any]

PACK = "northwind"
REPO_ROOT = Path(__file__).resolve().parents[2]

IMPORT_KEYS: dict[str, str] = {
    "region": "northwind_id",
    "territory": "code",
    "us_state": "northwind_id",
    "category": "northwind_id",
    "supplier": "northwind_id",
    "shipper": "northwind_id",
    "customer": "code",
    "employee": "northwind_id",
    "product": "northwind_id",
    "order": "northwind_id",
}
"""The unique field of each top-level entity that holds the original Northwind key."""

ENTITIES: tuple[str, ...] = tuple(IMPORT_KEYS)
"""Top-level entities of the pack, referenced entities first (the order to import them)."""


class SqlSyntaxError(ValueError):
    """The dump holds something this reader does not understand; it names the line."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    sql_type: str


@dataclass(frozen=True, slots=True)
class Dump:
    """Tables of the dump: their columns in order, and their rows keyed by column name."""

    columns: Mapping[str, tuple[Column, ...]]
    rows: Mapping[str, list[Row]]

    def table(self, name: str) -> list[Row]:
        return self.rows.get(name, [])


# --------------------------------------------------------------------------------------------
# Reading the dump


def default_sql_path(repo_root: Path | None = None) -> Path:
    """Where the dump lives: ``shared/data/northwind`` beside the repository folder."""
    return Path(repo_root or REPO_ROOT).parent / "shared/data/northwind/northwind.sql"


_CREATE = re.compile(r"^CREATE TABLE (\w+) \($")
_COLUMN = re.compile(r"^\s+(\w+) ([a-z][a-z ]*(?:\(\d+\))?)(?: NOT NULL)?,?$")
_INSERT = re.compile(r"^INSERT INTO (\w+) VALUES \((.*)\);$")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?")


def parse_values(text: str) -> list[str | int | Decimal | None]:
    """The values of one ``VALUES (...)`` list, given without its parentheses.

    Strings come back as ``str`` (still untyped), numbers as ``int`` or ``Decimal``.
    """
    values: list[str | int | Decimal | None] = []
    position, end = 0, len(text)
    while True:
        while position < end and text[position] == " ":
            position += 1
        if text.startswith("'", position):
            value, position = _read_string(text, position)
            values.append(value)
        elif text.startswith("NULL", position):
            values.append(None)
            position += len("NULL")
        elif match := _NUMBER.match(text, position):
            digits = match.group()
            values.append(int(digits) if digits.lstrip("-").isdigit() else Decimal(digits))
            position = match.end()
        else:
            raise SqlSyntaxError(f"unexpected value at column {position + 1}: {text[position:]!r}")
        while position < end and text[position] == " ":
            position += 1
        if position == end:
            return values
        if text[position] != ",":
            raise SqlSyntaxError(f"expected ',' at column {position + 1}: {text[position:]!r}")
        position += 1


def _read_string(text: str, start: int) -> tuple[str, int]:
    parts: list[str] = []
    position = start + 1
    while True:
        quote = text.find("'", position)
        if quote < 0:
            raise SqlSyntaxError(f"unterminated string starting at column {start + 1}")
        parts.append(text[position:quote])
        if text.startswith("''", quote):
            parts.append("'")
            position = quote + 2
        else:
            return "".join(parts), quote + 1


def _typed(value: str | int | Decimal | None, column: Column) -> SqlValue:
    if isinstance(value, str):
        if column.sql_type == "date":
            return date.fromisoformat(value)
        if column.sql_type == "bytea":
            if not value.startswith("\\x"):
                raise SqlSyntaxError(f"{column.name}: bytea value is not in hex format")
            return bytes.fromhex(value[2:])
    return value


def parse_dump(text: str) -> Dump:
    """Tables, columns and rows of a dump's text."""
    columns: dict[str, tuple[Column, ...]] = {}
    rows: dict[str, list[Row]] = {}
    lines = iter(enumerate(text.splitlines(), start=1))
    for number, line in lines:
        if line.startswith("SET standard_conforming_strings") and not line.endswith("= on;"):
            raise SqlSyntaxError(f"line {number}: only standard_conforming_strings = on is read")
        if created := _CREATE.match(line):
            columns[created.group(1)] = tuple(_read_columns(lines))
        elif inserted := _INSERT.match(line):
            table = inserted.group(1)
            if table not in columns:
                raise SqlSyntaxError(f"line {number}: INSERT INTO {table} before its CREATE TABLE")
            try:
                values = parse_values(inserted.group(2))
                if len(values) != len(columns[table]):
                    raise SqlSyntaxError(
                        f"{len(values)} values for the {len(columns[table])} columns of {table}"
                    )
                row = {c.name: _typed(v, c) for c, v in zip(columns[table], values, strict=True)}
            except (SqlSyntaxError, ValueError) as exc:
                raise SqlSyntaxError(f"line {number}: {exc}") from exc
            rows.setdefault(table, []).append(row)
        elif line.startswith("INSERT"):
            raise SqlSyntaxError(f"line {number}: not a one-line INSERT ... VALUES (...);")
    return Dump(columns, rows)


def _read_columns(lines: Iterator[tuple[int, str]]) -> Iterator[Column]:
    for number, line in lines:
        if line == ");":
            return
        column = _COLUMN.match(line)
        if column is None:
            raise SqlSyntaxError(f"line {number}: not a column definition: {line!r}")
        yield Column(column.group(1), column.group(2))
    raise SqlSyntaxError("CREATE TABLE without its closing ');'")


@cache
def read_dump(path: Path | None = None) -> Dump:
    """The parsed dump at ``path`` (default: :func:`default_sql_path`), read once per path."""
    return parse_dump((path or default_sql_path()).read_text(encoding="utf-8"))


# --------------------------------------------------------------------------------------------
# Converting rows to records of the pack


def _text(value: SqlValue) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"expected a string, got {value!r}")


def _int(value: SqlValue) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    raise TypeError(f"expected a whole number, got {value!r}")


def _iso(value: SqlValue) -> str | None:
    if value is None:
        return None
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"expected a date, got {value!r}")


def _float32(number: Decimal) -> float:
    packed: float = struct.unpack("<f", struct.pack("<f", float(number)))[0]
    return packed


def _real(value: SqlValue, *, scale: int = 2) -> str | None:
    """A ``real`` (float4) column as the exact decimal it was meant to hold.

    The dump writes float4 values with their binary noise (``9.80000019`` for 9.80). Rounding
    to ``scale`` places removes only that noise: the result must be the same float4, or the
    value truly had more places and this raises instead of silently losing them.
    """
    if value is None:
        return None
    if not isinstance(value, (int, Decimal)) or isinstance(value, bool):
        raise TypeError(f"expected a number, got {value!r}")
    number = Decimal(value)
    exact = number.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_EVEN)
    if _float32(exact) != _float32(number):
        raise ValueError(f"{value} does not fit {scale} decimal places")
    return str(exact)


def _ref(key: str, value: SqlValue) -> dict[str, SqlValue] | None:
    return None if value is None else {key: value}


def _record(**fields: Any) -> Record:
    """A record without its empty fields (absent = NULL in the source)."""
    return {name: value for name, value in fields.items() if value is not None}


def _address(row: Row, prefix: str = "") -> Record:
    return {
        f"{prefix}address": _text(row[f"{prefix}address"]),
        f"{prefix}city": _text(row[f"{prefix}city"]),
        f"{prefix}region": _text(row[f"{prefix}region"]),
        f"{prefix}postal_code": _text(row[f"{prefix}postal_code"]),
        f"{prefix}country": _text(row[f"{prefix}country"]),
    }


def regions(dump: Dump) -> list[Record]:
    return [
        _record(northwind_id=_int(r["region_id"]), name=_text(r["region_description"]))
        for r in dump.table("region")
    ]


def territories(dump: Dump) -> list[Record]:
    return [
        _record(
            code=_text(r["territory_id"]),
            name=_text(r["territory_description"]),
            region=_ref("northwind_id", r["region_id"]),
        )
        for r in dump.table("territories")
    ]


def us_states(dump: Dump) -> list[Record]:
    return [
        _record(
            northwind_id=_int(r["state_id"]),
            name=_text(r["state_name"]),
            abbreviation=_text(r["state_abbr"]),
            region=_text(r["state_region"]),
        )
        for r in dump.table("us_states")
    ]


def categories(dump: Dump) -> list[Record]:
    # picture: the dump's bytea values are all empty ('\x'); the pack has no field for them.
    return [
        _record(
            northwind_id=_int(r["category_id"]),
            name=_text(r["category_name"]),
            description=_text(r["description"]),
        )
        for r in dump.table("categories")
    ]


def suppliers(dump: Dump) -> list[Record]:
    return [
        _record(
            northwind_id=_int(r["supplier_id"]),
            company_name=_text(r["company_name"]),
            contact_name=_text(r["contact_name"]),
            contact_title=_text(r["contact_title"]),
            **_address(r),
            phone=_text(r["phone"]),
            fax=_text(r["fax"]),
            homepage=_text(r["homepage"]),
        )
        for r in dump.table("suppliers")
    ]


def shippers(dump: Dump) -> list[Record]:
    return [
        _record(
            northwind_id=_int(r["shipper_id"]),
            company_name=_text(r["company_name"]),
            phone=_text(r["phone"]),
        )
        for r in dump.table("shippers")
    ]


def customers(dump: Dump) -> list[Record]:
    return [
        _record(
            code=_text(r["customer_id"]),
            company_name=_text(r["company_name"]),
            contact_name=_text(r["contact_name"]),
            contact_title=_text(r["contact_title"]),
            **_address(r),
            phone=_text(r["phone"]),
            fax=_text(r["fax"]),
        )
        for r in dump.table("customers")
    ]


def employees(dump: Dump) -> list[Record]:
    """Employees, each after the one they report to, so an import resolves ``reports_to``.

    ``employee_territories`` rows are nested in their employee as ``territories``.
    """
    assigned: dict[int, list[Record]] = {}
    for r in dump.table("employee_territories"):
        employee_id = _int(r["employee_id"])
        if employee_id is None:
            raise ValueError("employee_territories row without an employee_id")
        assigned.setdefault(employee_id, []).append(
            _record(territory=_ref("code", r["territory_id"]))
        )
    # photo: the dump's bytea values are all empty ('\x'); the pack has no field for them.
    records = [
        _record(
            northwind_id=_int(r["employee_id"]),
            last_name=_text(r["last_name"]),
            first_name=_text(r["first_name"]),
            title=_text(r["title"]),
            title_of_courtesy=_text(r["title_of_courtesy"]),
            birth_date=_iso(r["birth_date"]),
            hire_date=_iso(r["hire_date"]),
            **_address(r),
            home_phone=_text(r["home_phone"]),
            extension=_text(r["extension"]),
            notes=_text(r["notes"]),
            reports_to=_ref("northwind_id", r["reports_to"]),
            photo_path=_text(r["photo_path"]),
            territories=assigned.pop(_int(r["employee_id"]) or 0, []),
        )
        for r in dump.table("employees")
    ]
    if assigned:
        raise ValueError(f"employee_territories rows for missing employees: {sorted(assigned)}")
    return _managers_first(records)


def _managers_first(records: list[Record]) -> list[Record]:
    ordered: list[Record] = []
    placed: set[int] = set()
    pending = list(records)
    while pending:
        ready = [
            r for r in pending if "reports_to" not in r or r["reports_to"]["northwind_id"] in placed
        ]
        if not ready:
            raise ValueError("employees.reports_to has a cycle or names a missing employee")
        ordered.extend(ready)
        placed.update(r["northwind_id"] for r in ready)
        pending = [r for r in pending if r not in ready]
    return ordered


def products(dump: Dump) -> list[Record]:
    return [
        _record(
            northwind_id=_int(r["product_id"]),
            name=_text(r["product_name"]),
            supplier=_ref("northwind_id", r["supplier_id"]),
            category=_ref("northwind_id", r["category_id"]),
            quantity_per_unit=_text(r["quantity_per_unit"]),
            unit_price=_real(r["unit_price"]),
            units_in_stock=_int(r["units_in_stock"]),
            units_on_order=_int(r["units_on_order"]),
            reorder_level=_int(r["reorder_level"]),
            discontinued=bool(_int(r["discontinued"])),
        )
        for r in dump.table("products")
    ]


def orders(dump: Dump) -> list[Record]:
    """Orders with their ``order_details`` rows nested as ``lines``, in dump order."""
    lines: dict[int, list[Record]] = {}
    for r in dump.table("order_details"):
        order_id = _int(r["order_id"])
        if order_id is None:
            raise ValueError("order_details row without an order_id")
        lines.setdefault(order_id, []).append(
            _record(
                product=_ref("northwind_id", r["product_id"]),
                unit_price=_real(r["unit_price"]),
                quantity=_int(r["quantity"]),
                discount=_real(r["discount"]),
            )
        )
    records = [
        _record(
            northwind_id=_int(r["order_id"]),
            customer=_ref("code", r["customer_id"]),
            employee=_ref("northwind_id", r["employee_id"]),
            order_date=_iso(r["order_date"]),
            required_date=_iso(r["required_date"]),
            shipped_date=_iso(r["shipped_date"]),
            shipper=_ref("northwind_id", r["ship_via"]),
            freight=_real(r["freight"]),
            ship_name=_text(r["ship_name"]),
            **_address(r, "ship_"),
            lines=lines.pop(_int(r["order_id"]) or 0, []),
        )
        for r in dump.table("orders")
    ]
    if lines:
        raise ValueError(f"order_details rows for missing orders: {sorted(lines)}")
    return records


_CONVERTERS: dict[str, Callable[[Dump], list[Record]]] = {
    "region": regions,
    "territory": territories,
    "us_state": us_states,
    "category": categories,
    "supplier": suppliers,
    "shipper": shippers,
    "customer": customers,
    "employee": employees,
    "product": products,
    "order": orders,
}
assert tuple(_CONVERTERS) == ENTITIES


# --------------------------------------------------------------------------------------------
# Public entry points


def records(sql_path: Path | None = None) -> dict[str, list[Record]]:
    """Records of every top-level entity of the pack, in :data:`ENTITIES` order."""
    dump = read_dump(sql_path)
    return {entity: convert(dump) for entity, convert in _CONVERTERS.items()}


def write_jsonl(out_dir: Path, *, sql_path: Path | None = None) -> dict[str, Path]:
    """Write ``<entity>.jsonl`` per top-level entity; return their paths in import order."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for entity, rows in records(sql_path).items():
        path = out_dir / f"{entity}.jsonl"
        with path.open("w", encoding="utf-8", newline="\n") as out:
            for row in rows:
                out.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")
        written[entity] = path
    return written


def expected_counts(sql_path: Path | None = None) -> dict[str, int]:
    """How many records of each top-level entity an import of the dump creates."""
    return {entity: len(rows) for entity, rows in records(sql_path).items()}


def expected_child_counts(sql_path: Path | None = None) -> dict[str, int]:
    """How many child records an import creates, by child entity."""
    data = records(sql_path)
    return {
        "employee_territory": sum(len(e["territories"]) for e in data["employee"]),
        "order_line": sum(len(o["lines"]) for o in data["order"]),
    }


def _main(argv: list[str]) -> int:
    counts = expected_counts()
    for entity, count in {**counts, **expected_child_counts()}.items():
        print(f"{entity:20} {count:5}")
    if argv:
        for entity, path in write_jsonl(Path(argv[0])).items():
            print(f"wrote {path} ({counts[entity]} records)")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
