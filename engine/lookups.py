"""Lookups (``lookup:`` on a field, docs/definitions.md#lookups): a value a write leaves empty
read from another entity's record, in the write's transaction, before the defaults and
computed fields that may use it.

Each field's lookup is compiled once, when the store is built, into one statement::

    SELECT rate FROM finance_currency_rate
    WHERE from_currency = $1 AND to_currency = $2 AND date <= $3
    ORDER BY date DESC, id DESC LIMIT 1

(a document's records count once submitted; without ``latest``, the newest record). Its
parameters are the lookup's expressions over the record as it will be stored — a line's
over the line, with its parent record as ``parent``.

When a lookup runs:

- on create, for every field the write does not send;
- on a line sent without the field (a line is sent whole: new, or kept with its ``id``);
- on update, for a field the write does not send, when the value of one of the lookup's
  expressions changes, and never on a submitted or cancelled document.

A lookup whose ``when`` does not hold, or whose inputs are empty, looks nothing up: the
field takes its default (on create, or when an update re-runs it). One that finds nothing
leaves the field empty, which a required field refuses with the lookup's ``code`` (422).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment
from sqlalchemy import bindparam, select

from engine.errors import FieldError
from engine.expressions import Expression, Scope, ValueTemplate, compile_expression
from engine.fieldtypes import InvalidValue, kind_of
from engine.fieldtypes.structured import id_text, parse_id
from engine.references import RecordRef, reference_id
from engine.sql import compile_sql
from engine.tables import PARENT_COLUMN
from metadata import DOCSTATUS, LOOKUP_PARENT, FieldType

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from sqlalchemy import MetaData
    from sqlalchemy.engine import Dialect

    from engine.database import Connection
    from engine.sql import CompiledSql
    from metadata import EntityDef, FieldDef, LookupDef, ProjectDef

_SUBMITTED = "submitted"
_EDITABLE = frozenset({None, "draft"})
"""The docstatus of a document whose lookups may run again (not submitted or cancelled)."""
_EMPTY = object()
"""A parameter for an empty input, or one that no record can hold."""


@dataclass(frozen=True, slots=True)
class _Key:
    """One condition of the SELECT: a field of the entity read equals an expression."""

    expression: Expression
    convert: Callable[[Any], Any]
    """The expression's value → the parameter (``_EMPTY`` when no record can match it)."""


class Lookup:
    """One field's lookup, compiled once."""

    def __init__(
        self,
        field_def: FieldDef,
        lookup: LookupDef,
        target: EntityDef,
        metadata: MetaData,
        *,
        dialect: Dialect,
        dialect_name: str,
    ) -> None:
        self.name = field_def.name
        self.required = field_def.required
        self.code = lookup.code
        self.message = lookup.message
        self.target = target.qualified_name
        self.when = compile_expression(lookup.when) if lookup.when else None
        self.keys = tuple(
            _Key(compile_expression(source), _key_converter(target, name, dialect_name))
            for name, source in lookup.where
        )
        self.described = tuple(name for name, _ in lookup.where)
        self.latest_by = lookup.latest_by
        self.latest: _Key | None = None
        if lookup.latest_by is not None and lookup.on_or_before is not None:
            convert = _date_converter(target, lookup.latest_by, dialect_name)
            self.latest = _Key(compile_expression(lookup.on_or_before), convert)
        self.sql = _statement(lookup, target, metadata, dialect)
        self.decode = _decoder(target, lookup.field, dialect_name)
        self.convert = kind_of(field_def).computed_converter(field_def)
        self.default = _default(field_def)

    def values(self, scope: Scope) -> list[Any] | None:
        """The values of the lookup's expressions over ``scope`` (its ``where`` values, then
        its ``on_or_before``); None when its ``when`` does not hold."""
        if self.when is not None and not self.when(scope):
            return None
        values = [_plain(key.expression(scope)) for key in self.keys]
        if self.latest is not None:
            values.append(_plain(self.latest.expression(scope)))
        return values

    def params(self, values: Sequence[Any]) -> dict[str, Any] | None:
        """The statement's parameters for ``values``; None when one is empty or cannot be
        held by its column (no record can match)."""
        params: dict[str, Any] = {}
        for i, key in enumerate(self.keys):
            params[f"k{i}"] = key.convert(values[i])
        if self.latest is not None:
            params["latest"] = self.latest.convert(values[-1])
        return None if any(p is _EMPTY for p in params.values()) else params

    async def find(self, conn: Connection, params: Mapping[str, Any]) -> Any:
        """The value read, converted to the field's type; None when no record matches."""
        row = await conn.fetchrow(self.sql.sql, self.sql.args(params))
        if row is None or row[0] is None:
            return None
        return self.convert(self.decode(row[0]))

    def not_found(self, values: Sequence[Any]) -> FieldError:
        if self.message:
            return FieldError(self.name, self.code, self.message)
        wanted = [
            f"{name} = {_shown(value)}" for name, value in zip(self.described, values, strict=False)
        ]
        if self.latest is not None:
            wanted.append(f"{self.latest_by} on or before {_shown(values[-1])}")
        return FieldError(
            self.name, self.code, f"no {self.target} record with {' and '.join(wanted)}"
        )


class _Refused(Exception):
    def __init__(self, error: FieldError) -> None:
        super().__init__(error.message)
        self.error = error


class Lookups:
    """The lookups of one entity's fields, compiled once with its store."""

    def __init__(
        self,
        entity: EntityDef,
        project: ProjectDef,
        metadata: MetaData,
        *,
        dialect: Dialect,
        dialect_name: str,
    ) -> None:
        self.document = entity.document
        self.fields = tuple(
            Lookup(
                field_def,
                field_def.lookup,
                project.entity(field_def.lookup.entity),
                metadata,
                dialect=dialect,
                dialect_name=dialect_name,
            )
            for field_def in entity.fields.values()
            if field_def.lookup is not None and field_def.lookup.entity in project.entities
        )

    def __bool__(self) -> bool:
        return bool(self.fields)

    async def fill(
        self,
        conn: Connection,
        sent: dict[str, Any],
        scope: Scope,
        old_scope: Scope | None,
        errors: list[FieldError],
    ) -> dict[str, Any]:
        """Look up the fields ``sent`` leaves empty (on an update, ``old_scope`` given: those
        whose inputs changed); what is filled is set in ``sent`` and in the scope, and
        returned. Failures are added to ``errors``."""
        filled: dict[str, Any] = {}
        for lookup in self.fields:
            if lookup.name in sent:
                continue
            try:
                values = lookup.values(scope)
                if old_scope is not None and values == lookup.values(old_scope):
                    continue  # nothing it reads changed: the stored value stays
            except Exception as exc:  # noqa: BLE001 - reported at the field, the write rejected
                errors.append(FieldError(lookup.name, "lookup", f"cannot be looked up: {exc}"))
                continue
            try:
                value = await self._value(conn, lookup, values, scope)
            except _Refused as refused:
                errors.append(refused.error)
                continue
            except InvalidValue as exc:
                errors.append(FieldError(lookup.name, exc.code, f"looked-up value {exc.message}"))
                continue
            filled[lookup.name] = value
            sent[lookup.name] = value
            scope.set(lookup.name, value)
        return filled

    @staticmethod
    async def _value(
        conn: Connection, lookup: Lookup, values: list[Any] | None, scope: Scope
    ) -> Any:
        """The field's value: what the lookup reads, or its default when it does not run
        (its ``when`` does not hold, or an input is empty)."""
        if values is None or any(value is None or value == "" for value in values):
            value = lookup.default(scope) if lookup.default is not None else None
            if value is None and lookup.required:
                raise _Refused(FieldError(lookup.name, "required", "is required"))
            return value
        params = lookup.params(values)
        value = None if params is None else await lookup.find(conn, params)
        if value is None and lookup.required:
            raise _Refused(lookup.not_found(values))
        return value

    def rerun(self, old: Mapping[str, Any]) -> bool:
        """Whether an update of ``old`` may look its fields up again: not once a document
        is submitted or cancelled."""
        return not self.document or old.get(DOCSTATUS) in _EDITABLE


def parent_traversed(parent: EntityDef, lines: Iterable[EntityDef]) -> dict[str, str]:
    """The reference fields of ``parent`` whose targets the lookups of its line entities
    read (``account`` in ``parent.account.price_list``), by target entity: the parent's
    write loads them with the others."""
    references = {name: f.to for name, f in parent.fields.items() if f.to is not None}
    found: dict[str, str] = {}
    environment = ImmutableSandboxedEnvironment()
    for line in lines:
        for field_def in line.fields.values():
            for source in field_def.lookup.sources() if field_def.lookup else ():
                tree = environment.parse("{{ (" + source + ") }}")
                for node in tree.find_all(nodes.Getattr):
                    inner = node.node
                    if (
                        isinstance(inner, nodes.Getattr)
                        and isinstance(inner.node, nodes.Name)
                        and inner.node.name == LOOKUP_PARENT
                        and inner.attr in references
                    ):
                        found[inner.attr] = references[inner.attr]
    return found


def _statement(
    lookup: LookupDef, target: EntityDef, metadata: MetaData, dialect: Dialect
) -> CompiledSql:
    table = metadata.tables[f"{target.pack}_{target.name}"]
    columns = table.c
    conditions = [columns[name] == bindparam(f"k{i}") for i, (name, _) in enumerate(lookup.where)]
    if target.document:
        conditions.append(columns[DOCSTATUS] == _SUBMITTED)
    order = [columns.id.desc()]
    if lookup.latest_by is not None:
        conditions.append(columns[lookup.latest_by] <= bindparam("latest"))
        order.insert(0, columns[lookup.latest_by].desc())
    statement = select(columns[lookup.field]).where(*conditions).order_by(*order).limit(1)
    return compile_sql(statement, dialect)


def _key_converter(target: EntityDef, name: str, dialect_name: str) -> Callable[[Any], Any]:
    """A ``where`` value → the parameter compared with the column ``name`` of ``target``
    (``_EMPTY`` for an empty value, or one that no record can hold: its field refuses it)."""
    if name in ("id", PARENT_COLUMN) or target.fields[name].type is FieldType.REFERENCE:
        return _id_param
    field_def = target.fields[name]
    convert = kind_of(field_def).computed_converter(field_def)
    to_db = kind_of(field_def).to_db(field_def, dialect_name)

    def key(value: Any) -> Any:
        if value is None or value == "":
            return _EMPTY
        try:
            converted = convert(value)
        except (InvalidValue, ValueError, TypeError, ArithmeticError):
            return _EMPTY
        return to_db(converted) if to_db is not None else converted

    return key


def _id_param(value: Any) -> Any:
    ident = reference_id(value)
    if ident is None:
        return _EMPTY
    try:
        return parse_id(ident)
    except InvalidValue:
        return _EMPTY


def _date_converter(target: EntityDef, name: str, dialect_name: str) -> Callable[[Any], Any]:
    """An ``on_or_before`` value → the parameter compared with a date or datetime column;
    a date compared with a datetime column means the end of that day (UTC)."""
    key = _key_converter(target, name, dialect_name)
    if target.fields[name].type is not FieldType.DATETIME:
        return key

    def end_of_day(value: Any) -> Any:
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime.combine(value, dt.time.max, tzinfo=dt.UTC)
        return key(value)

    return end_of_day


def _decoder(target: EntityDef, name: str, dialect_name: str) -> Callable[[Any], Any]:
    if name == "id":
        return id_text
    field_def = target.fields[name]
    decode = kind_of(field_def).from_db(field_def, dialect_name)
    return decode if decode is not None else _same


def _same(value: Any) -> Any:
    return value


def _default(field_def: FieldDef) -> Callable[[Scope], Any] | None:
    """The field's default as a lookup that does not run gives it: a constant, or a
    template over the record (None: the field has none)."""
    if field_def.default is None:
        return None
    convert = kind_of(field_def).computed_converter(field_def)
    template = ValueTemplate(field_def.default)

    def default(scope: Scope) -> Any:
        value = template.resolve(scope)
        return None if value is None or value == "" else convert(value)

    return default


def _plain(value: Any) -> Any:
    """A traversed reference as its id; anything else as it is."""
    return value.id if isinstance(value, RecordRef) else value


def _shown(value: Any) -> str:
    return repr(value.isoformat() if isinstance(value, dt.date) else str(value))
