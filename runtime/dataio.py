"""Bulk data in and out of an entity: imports (CSV, JSON lines), exports, fixtures.

Every record goes through the same store, validation and references as the REST API.
Imports commit in batches; a bad line is rolled back to its savepoint and reported with its
line number, the others are kept.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import orjson

from engine import EngineError, FieldError, ValidationFailed, WriteContext
from engine.errors import describe
from engine.query import ListQuery
from metadata import DOCSTATUS, FieldType, RuleEvent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
    from pathlib import Path

    from engine import Database, EngineModel, EntityStore
    from engine.database import Connection
    from engine.store import ListResult

    ReadPage = Callable[[Connection, ListQuery], Awaitable[ListResult]]
    from metadata import ProjectDef
    from runtime.formatting import Formats

BATCH_SIZE = 500


@dataclass(frozen=True, slots=True)
class SourceRow:
    line: int
    data: Any


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[str] = field(default_factory=list)


def read_rows(path: Path, fmt: str | None = None) -> Iterator[SourceRow]:
    """Rows of a CSV or JSON-lines file with their 1-based line numbers."""
    kind = fmt or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        if kind == "csv":
            reader = csv.DictReader(handle)
            for row in reader:
                yield SourceRow(reader.line_num, _csv_record(row))
        else:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    yield SourceRow(number, json.loads(line, parse_float=Decimal))
                except (ValueError, RecursionError) as exc:
                    yield SourceRow(number, _Unreadable(f"not valid JSON: {exc}"))


@dataclass(frozen=True, slots=True)
class _Unreadable:
    reason: str


def _csv_record(row: dict[str | None, Any]) -> dict[str, Any] | _Unreadable:
    """Empty cells are left out; ``account.name`` columns look references up by that field."""
    if None in row:
        return _Unreadable("the line has more cells than the header")
    record: dict[str, Any] = {}
    for column, value in row.items():
        if column is None or value is None or value == "":
            continue
        if "." in column:
            reference, key = column.split(".", 1)
            record[reference] = {key: value}
        else:
            record[column] = value
    return record


async def import_rows(
    database: Database,
    store: EntityStore,
    rows: Iterable[SourceRow],
    *,
    key: str | None = None,
    source: str = "",
    progress: Callable[[int], None] | None = None,
    ctx: WriteContext | None = None,
) -> ImportReport:
    report = ImportReport()
    ctx = ctx or WriteContext()
    batch: list[SourceRow] = []
    entity = store.entity
    if entity.append_only:  # only postings write them: an import would bypass every limit
        what = "a ledger" if entity.ledger is not None else "a balance"
        report.errors.append(
            f"{source or entity.qualified_name}: {entity.qualified_name} is {what}, written "
            "only by the postings of documents; import the documents and submit them instead"
        )
        return report

    async def flush() -> None:
        async with database.transaction() as conn:
            await store.load_references(
                conn, [r.data for r in batch if isinstance(r.data, dict)], ctx
            )
            for row in batch:
                await _import_one(conn, store, row, key, ctx, report, source)
        if progress:
            progress(len(batch))
        batch.clear()

    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH_SIZE:
            await flush()
    if batch:
        await flush()
    return report


async def _import_one(
    conn: Any,
    store: EntityStore,
    row: SourceRow,
    key: str | None,
    ctx: WriteContext,
    report: ImportReport,
    source: str,
) -> None:
    if isinstance(row.data, _Unreadable):
        report.errors.append(f"{source}:{row.line}: {row.data.reason}")
        return
    try:
        async with conn.savepoint():
            data, submit = _document_status(store, row.data)
            if key is None:
                record, created = await store.create(conn, data, ctx), True
            else:
                if not isinstance(data, dict) or data.get(key) in (None, ""):
                    raise _missing_key(key)
                if await _moved_on(conn, store, key, data[key]):
                    return  # a submitted or cancelled document stays as it is
                record, created = await store.upsert(conn, key, data[key], data, ctx)
            if submit:
                await store.transition(conn, int(record["id"]), RuleEvent.SUBMIT, ctx)
            if created:
                report.created += 1
            else:
                report.updated += 1
    except EngineError as exc:
        # A field name may echo an unpaired surrogate of the file: keep the report printable.
        reason = describe(exc).encode("utf-8", "backslashreplace").decode("utf-8")
        report.errors.append(f"{source}:{row.line}: {reason}")


def _document_status(store: EntityStore, data: Any) -> tuple[Any, bool]:
    """A document's row may say ``docstatus: submitted`` (or ``draft``): it is written as a
    draft, then submitted, its postings and rules run as a ``_submit``'s do."""
    if not store.entity.document or not isinstance(data, dict) or DOCSTATUS not in data:
        return data, False
    data = dict(data)
    status = data.pop(DOCSTATUS)
    if status not in ("draft", "submitted"):
        message = f"a document is imported as a draft or submitted, not {status!r}"
        raise ValidationFailed([FieldError(DOCSTATUS, "invalid", message)])
    return data, status == "submitted"


async def _moved_on(conn: Any, store: EntityStore, key: str, value: Any) -> bool:
    """Whether the document keyed ``value`` exists and is no longer a draft."""
    if not store.entity.document:
        return False
    ident = await store.records.id_by_unique(conn, key, value)
    if ident is None:
        return False
    record = (await store.records.get_many(conn, [ident])).get(str(ident))
    return record is not None and record.get(DOCSTATUS) != "draft"


def _missing_key(key: str) -> ValidationFailed:
    from engine import FieldError

    return ValidationFailed([FieldError(key, "required", "the import key is missing")])


async def export_records(
    database: Database,
    store: EntityStore,
    *,
    query: ListQuery | None = None,
    read: ReadPage | None = None,
    page_size: int = 1000,
) -> AsyncIterator[dict[str, Any]]:
    """Every record ``query`` selects (all, in id order, by default), walked page by page
    with the keyset cursor, each page in a connection of its own. ``read`` is the store's
    ``list_page`` (the engine's own rights) or a guard's (a user's)."""
    read_page = read or store.list_page
    page = dataclasses.replace(
        query or ListQuery(),
        limit=page_size,
        offset=0,
        cursor=None,
        fields=None,
        expand=(),
        count=False,
    )
    while True:
        async with database.connection() as conn:
            result = await read_page(conn, page)
        for record in result.records:
            yield record
        if not result.has_more or result.next_cursor is None:
            return
        page = store.parser.after(page, result.next_cursor)


def export_columns(store: EntityStore, hidden: frozenset[str] = frozenset()) -> list[str]:
    """Columns of an export: the id, the entity's fields in definition order, the system
    fields; without the ones the reader may not see."""
    columns = [*store.columns[:1], *store.entity.fields, *store.columns[-5:]]
    return [c for c in columns if c not in hidden]


def csv_text(records: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for record in records:
        writer.writerow([_csv_cell(record.get(c)) for c in columns])
    return buffer.getvalue()


@dataclass(frozen=True, slots=True)
class PeopleCsv:
    """A CSV "for people" (``_export?for=people``, the web UI's Export button): a header of
    field labels, each value as the reader reads it (``1.450,00 €``, ``06.12.2026``, an
    enum by its label, a moment in their time zone), a byte order mark so that spreadsheet
    programs read it as UTF-8, and ``;`` between values where the decimal symbol is a comma
    (de_DE), as those programs expect. Machines read the default export, whose values are
    the API's; this one is not meant to be imported back."""

    store: EntityStore
    columns: tuple[str, ...]
    formats: Formats

    def __post_init__(self) -> None:
        # a record's lines are no cell people read (the list shows none either)
        fields = self.store.entity.fields
        shown = tuple(
            name
            for name in self.columns
            if name not in fields or fields[name].type is not FieldType.CHILDREN
        )
        object.__setattr__(self, "columns", shown)

    @property
    def delimiter(self) -> str:
        return ";" if self.formats.example.endswith(",56") else ","

    def header(self) -> str:
        labels = []
        for name in self.columns:
            found = self.store.entity.fields.get(name)
            labels.append(found.label if found is not None else _SYSTEM_LABELS.get(name, name))
        return "\ufeff" + self._line(labels)

    def row(self, record: dict[str, Any]) -> str:
        cells = []
        for name in self.columns:
            found = self.store.entity.fields.get(name)
            value = record.get(name)
            if name in _SYSTEM_MOMENTS:
                cells.append(self.formats.datetime(value))
            elif found is not None and found.type in _NUMERIC:
                cells.append(self.formats.value(value, found, record))  # ours: -1.450,00 €
            else:
                cells.append(_defused(self.formats.value(value, found, record)))
        return self._line(cells)

    def _line(self, cells: list[str]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, delimiter=self.delimiter, lineterminator="\r\n").writerow(cells)
        return buffer.getvalue()


_SYSTEM_LABELS = {
    "id": "ID",
    "version": "Version",
    "created_at": "Created",
    "updated_at": "Updated",
    "created_by": "Created by",
    "updated_by": "Updated by",
}
_SYSTEM_MOMENTS = frozenset({"created_at", "updated_at"})


def _defused(cell: str) -> str:
    """Text a spreadsheet would run as a formula (``=HYPERLINK(...)``, ``-2+3``, ``@SUM``)
    is written after an apostrophe, as OWASP advises for CSV files people open."""
    return "'" + cell if cell[:1] in _FORMULA_STARTS else cell


_FORMULA_STARTS = frozenset({"=", "+", "-", "@", "\t", "\r"})
_NUMERIC = frozenset({FieldType.INTEGER, FieldType.DECIMAL})


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return orjson.dumps(value, default=str).decode()
    if hasattr(value, "isoformat"):
        return str(value.isoformat())
    return str(value)


async def load_fixture_records(
    database: Database, model: EngineModel, project: ProjectDef, folder: str
) -> tuple[int, list[str]]:
    """Upsert the ``data/`` (or ``demo/``) records of every enabled pack, by their key."""
    from metadata import load_fixture_files

    total = 0
    errors: list[str] = []
    for fixture in load_fixture_files(project, folder):
        store = model.store_for(fixture.entity)
        rows = (SourceRow(i + 1, dict(r)) for i, r in enumerate(fixture.records))
        report = await import_rows(database, store, rows, key=fixture.key, source=fixture.source)
        total += report.created + report.updated
        errors.extend(
            e.replace(f"{fixture.source}:", f"{fixture.source}: record ", 1) for e in report.errors
        )
    return total, errors
