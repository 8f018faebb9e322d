"""What a set of roles may do with each entity (SPEC §3.5), compiled once per role set.

A user holds roles; each role grants actions on entities, possibly only on the records a
``where`` selects, with fields hidden or read-only. Several grants for one entity combine
the way a user expects from Frappe or Salesforce: an action is allowed if any grant gives
it, on the records any of those grants covers (a grant without ``where`` covers all);
a field is hidden only if every grant that lets the user read hides it, and read-only
only if every grant that lets the user write protects it. ``admin`` may do everything.

The result is an ``EntityAccess`` per (entity, role set), cached; requests only look it up.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Float, Integer, Numeric, and_, bindparam, false, not_, or_, true

from engine.errors import EngineError, FieldError
from engine.fieldtypes import InvalidValue
from engine.fieldtypes.numeric import parse_decimal, scaled_integer
from engine.operators import operator
from metadata import (
    ADMIN_ROLE,
    AllOf,
    AnyOf,
    Constant,
    FieldComparison,
    NoneOf,
    Permission,
    UserValue,
)
from metadata._operators import Arity

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from sqlalchemy import ColumnElement, Table

    from engine.expressions import Actor
    from metadata import GrantDef, ProjectDef, RecordFilter


class Forbidden(EngineError):
    """The caller's roles do not allow this (403); ``errors`` name refused fields."""

    code = "forbidden"
    title = "Forbidden"

    def __init__(self, detail: str, errors: list[FieldError] | None = None) -> None:
        super().__init__(detail)
        self.errors = errors or []


@dataclass(frozen=True, slots=True)
class EntityAccess:
    entity: str
    permissions: Mapping[Permission, RecordFilter | None]
    """Allowed actions; the records each covers (None: all of them)."""
    hidden: frozenset[str] = frozenset()
    readonly: frozenset[str] = frozenset()
    """Fields the caller may not write (the hidden ones included)."""

    def allows(self, permission: Permission) -> bool:
        return permission in self.permissions

    def require(self, permission: Permission) -> RecordFilter | None:
        """The records ``permission`` covers, or ``Forbidden``."""
        if permission not in self.permissions:
            raise Forbidden(f"your roles do not allow you to {permission.value} {self.entity}")
        return self.permissions[permission]


FULL_ACCESS_PERMISSIONS: Mapping[Permission, RecordFilter | None] = dict.fromkeys(Permission)


class AccessPolicy:
    """The grants of a project, by entity; ``access(entity, roles)`` is cached."""

    def __init__(self, project: ProjectDef) -> None:
        self.project = project
        grants: dict[str, list[tuple[str, GrantDef]]] = {}
        for role in project.roles.values():
            for grant in role.grants:
                grants.setdefault(grant.entity, []).append((role.name, grant))
        self._grants = grants

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one policy per loaded project
    def access(self, entity: str, roles: frozenset[str]) -> EntityAccess:
        held = self.project.role_closure(roles)
        if ADMIN_ROLE in held:
            return EntityAccess(entity, FULL_ACCESS_PERMISSIONS)
        grants = [g for role, g in self._grants.get(entity, []) if role in held]
        return _combine(entity, grants)

    def wheres(self, entity: str, roles: frozenset[str], permission: Permission) -> list[str]:
        """The ``where`` texts of the grants giving ``permission`` (for messages)."""
        held = self.project.role_closure(roles)
        texts = [
            g.where
            for role, g in self._grants.get(entity, [])
            if role in held and permission in g.permissions and g.where
        ]
        return list(dict.fromkeys(texts))

    def readable_entities(self, roles: frozenset[str]) -> frozenset[str]:
        held = self.project.role_closure(roles)
        if ADMIN_ROLE in held:
            return frozenset(self.project.entities)
        return frozenset(
            entity
            for entity, grants in self._grants.items()
            if any(role in held and Permission.READ in g.permissions for role, g in grants)
        )


def _combine(entity: str, grants: list[GrantDef]) -> EntityAccess:
    permissions: dict[Permission, RecordFilter | None] = {}
    for permission in Permission:
        giving = [g for g in grants if permission in g.permissions]
        if not giving:
            continue
        filters = [g.where_filter for g in giving]
        if any(f is None for f in filters):
            permissions[permission] = None
        else:
            unique = tuple(dict.fromkeys(f for f in filters if f is not None))
            permissions[permission] = unique[0] if len(unique) == 1 else AnyOf(unique)
    readers = [g for g in grants if Permission.READ in g.permissions]
    writers = [g for g in grants if g.permissions & {Permission.CREATE, Permission.UPDATE}]
    hidden = _common(g.hidden_fields for g in readers)
    readonly = _common(g.hidden_fields | g.readonly_fields for g in writers) | hidden
    return EntityAccess(entity, permissions, hidden, readonly)


def _common(sets: Iterable[frozenset[str]]) -> frozenset[str]:
    result: frozenset[str] | None = None
    for names in sets:
        result = names if result is None else result & names
    return result or frozenset()


# -- record filters as SQL ------------------------------------------------------------------


USER_PARAMETERS = {"id": "u_id", "username": "u_username"}


def filter_clause(
    record_filter: RecordFilter, table: Table, prefix: str = "r", dialect_name: str = ""
) -> ColumnElement[bool]:
    """``record_filter`` over ``table``; the user's id and name are the bound parameters
    ``u_id`` / ``u_username`` (``u_id_int`` where compared with a whole-number column),
    constants are parameters named ``<prefix><n>`` (one prefix per clause of a statement).
    On SQLite a constant compared with a decimal column is bound as the column holds it
    (a scaled integer: ``engine.fieldtypes.numeric.scaled_integer``)."""
    return _Clauses(table, prefix, dialect_name == "sqlite").build(record_filter)


class _Clauses:
    def __init__(self, table: Table, prefix: str, scaled: bool = False) -> None:
        self.table = table
        self.prefix = prefix
        self.scaled = scaled
        self._constants = 0

    def build(self, node: RecordFilter) -> ColumnElement[bool]:
        if isinstance(node, AllOf):
            return and_(*(self.build(part) for part in node.parts))
        if isinstance(node, AnyOf):
            return or_(*(self.build(part) for part in node.parts))
        if isinstance(node, NoneOf):
            return not_(self.build(node.part))
        if isinstance(node, Constant):
            return true() if node.value else false()
        return self.comparison(node)

    def operand(self, column: Any, value: Any) -> Any:
        if isinstance(value, UserValue):
            name = USER_PARAMETERS[value.attribute]
            if value.attribute == "id" and isinstance(column.type, Integer):
                name += "_int"
            return bindparam(name)
        self._constants += 1
        if self.scaled and isinstance(column.type, Numeric) and not isinstance(column.type, Float):
            value = _scaled(value, column.type.scale or 0)
        return bindparam(f"{self.prefix}{self._constants}", value=value)

    def comparison(self, node: FieldComparison) -> ColumnElement[bool]:
        column = self.table.c[node.field]
        found = operator(node.op)
        values = node.value if found.spec.arity is Arity.MANY else (node.value,)
        if found.spec.arity is Arity.FLAG:
            return found.sql(column, (), values)
        operands = [
            self.operand(column, v if isinstance(v, UserValue) else found.operand(v))
            for v in values
        ]
        return found.sql(column, operands, values)


def _scaled(value: Any, scale: int) -> Any:
    """A constant as a SQLite decimal column holds it (a number with more places than the
    column as a double of its scaled value: SQLite compares an integer with a double
    exactly); a value that is no number stays as it is."""
    try:
        number = parse_decimal(value)
    except InvalidValue:
        return value
    try:
        return scaled_integer(number, scale)
    except InvalidValue:
        return float(number.scaleb(scale))


def user_parameters(user_id: str | None, username: str | None) -> dict[str, Any]:
    """Values of the user parameters of ``filter_clause``."""
    as_int = int(user_id) if user_id is not None and user_id.isdigit() else None
    return {"u_id": user_id, "u_id_int": as_int, "u_username": username}


def matches(record_filter: RecordFilter | None, record: Mapping[str, Any], user: Any) -> bool:
    """Whether ``record`` is one of the records ``record_filter`` covers, judged like the
    SQL of ``filter_clause`` (a comparison with an empty value is false, except ``!=``
    and ``not in``, which hold for it). ``user`` is the caller (``.id``, ``.username``)."""
    if record_filter is None:
        return True
    if isinstance(record_filter, AllOf):
        return all(matches(part, record, user) for part in record_filter.parts)
    if isinstance(record_filter, AnyOf):
        return any(matches(part, record, user) for part in record_filter.parts)
    if isinstance(record_filter, NoneOf):
        return not matches(record_filter.part, record, user)
    if isinstance(record_filter, Constant):
        return record_filter.value
    return _compare(record_filter, record.get(record_filter.field), user)


def _compare(node: FieldComparison, actual: Any, user: Any) -> bool:
    def resolve(value: Any) -> Any:
        if isinstance(value, UserValue):
            return getattr(user, value.attribute, None) if user is not None else None
        return value

    found = operator(node.op)
    if found.spec.arity is Arity.MANY:
        return found.holds(actual, tuple(resolve(v) for v in node.value))
    return found.holds(actual, resolve(node.value))


@dataclass(frozen=True, slots=True)
class Caller:
    """A signed-in user as the engine sees them: who, and with which roles."""

    actor: Actor
    roles: frozenset[str]
    policy: AccessPolicy

    def access(self, entity: str) -> EntityAccess:
        return self.policy.access(entity, self.roles)

    def parameters(self) -> tuple[tuple[str, Any], ...]:
        return tuple(user_parameters(self.actor.id, self.actor.username).items())
