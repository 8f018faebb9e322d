"""Assignment rules (``assign:`` in a rule, docs/rules.md#assignment): fill an empty user
or reference field with one of its candidates, by round robin, least load or the first an
expression selects. The first pass (``parse_assign``, from ``RuleChecker``) checks what a
rules file alone can tell; the second (``check_assignments``, once every entity and role is
built) checks the field's type against the candidates and the ``where`` filters against
the entities they select from. Every problem at its ``file:line:col``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from metadata._errors import did_you_mean
from metadata._expressions import expression_problems
from metadata._model import ADMIN_ROLE, AssignDef, AssignStrategy, FieldType
from metadata._roles import WhereError, parse_record_filter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import EntityDef, RoleDef
    from metadata._yaml import SourceDocument

ASSIGN_EVENTS = frozenset({"create", "update"})
CANDIDATE_NAME = "candidate"
"""The name a ``first`` rule's ``select`` reads the candidate by."""


@dataclass(frozen=True, slots=True)
class PendingAssign:
    """An assignment checked once every entity and role is built."""

    document: SourceDocument
    where: tuple[PathItem, ...]
    """The path of the rule's ``assign`` key."""
    entity: str
    assign: AssignDef


def parse_assign(
    raw: dict[str, Any],
    events: Iterable[str],
    fields: set[str],
    scope: set[str],
    error: Callable[[tuple[PathItem, ...], str], None],
) -> AssignDef | None:
    """The ``assign`` of one rule (``raw``, the rule) of an entity with ``fields`` whose
    expressions read ``scope``, its problems reported with ``error`` at paths inside the
    rule; None when it has any."""
    body = raw["assign"]
    ok = True
    for key in ("assert", "actions", "schedule"):
        if key in raw:
            error((key,), f"an assignment rule has no '{key}': make that a rule of its own")
            ok = False
    wrong = sorted(set(events) - ASSIGN_EVENTS)
    if wrong:
        error(("on",), f"an assignment runs on create or update, not on {', '.join(wrong)}")
        ok = False
    field_name = body["field"]
    if field_name not in fields:
        hint = did_you_mean(field_name, fields)
        error(("assign", "field"), f"field '{field_name}' is not a field{hint}")
        ok = False
    strategy = AssignStrategy(body["strategy"])
    select = body.get("select")
    ok = _select_ok(strategy, select, scope, error) and ok
    if "load" in body and strategy is not AssignStrategy.LEAST_LOAD:
        error(("assign", "load"), "'load' belongs to strategy 'least_load'")
        ok = False
    candidates = body["candidates"]
    users = tuple(candidates.get("users", ()))
    for position, name in enumerate(users):
        if users.index(name) != position:
            error(("assign", "candidates", "users", position), f"user '{name}' is listed twice")
            ok = False
    if not ok:
        return None
    return AssignDef(
        field=field_name,
        strategy=strategy,
        users=users,
        role=candidates.get("role"),
        records=candidates.get("records"),
        load=body.get("load"),
        select=select,
    )


def _select_ok(
    strategy: AssignStrategy,
    select: str | None,
    scope: set[str],
    error: Callable[[tuple[PathItem, ...], str], None],
) -> bool:
    if strategy is not AssignStrategy.FIRST:
        if select is not None:
            error(("assign", "select"), "'select' belongs to strategy 'first'")
        return select is None
    if select is None:
        message = "strategy 'first' needs 'select', the expression a candidate must satisfy"
        error(("assign", "strategy"), message)
        return False
    problems = expression_problems(select, scope | {CANDIDATE_NAME})
    for problem in problems:
        error(("assign", "select"), problem)
    return not problems


def check_assignments(
    pending: Iterable[PendingAssign],
    entities: Mapping[str, EntityDef],
    roles: Mapping[str, RoleDef],
    problems: ProblemCollector,
) -> None:
    """The second pass: the field's type fits the candidates (a user field takes users or a
    role, a reference field records of its target), the role exists, and ``records`` and
    ``load`` are ``where`` filters of the entities they select from."""
    for item in pending:
        entity = entities.get(item.entity)
        if entity is None:
            continue
        assign = item.assign

        def report(path: tuple[PathItem, ...], message: str, item: PendingAssign = item) -> None:
            problems.at(item.document, (*item.where, *path), message)

        field = entity.fields.get(assign.field)
        if field is None:
            continue
        if field.computed:
            report(("field",), f"'{assign.field}' is computed: an assignment cannot set it")
        if assign.records is not None:
            target = entities.get(field.to or "") if field.type is FieldType.REFERENCE else None
            if target is None:
                report(
                    ("field",),
                    f"candidates 'records' are records of the entity a reference field points "
                    f"at; '{assign.field}' is a {field.type.value} field",
                )
            else:
                _where_ok(assign.records, target, ("candidates", "records"), report)
        elif field.type is not FieldType.USER:
            report(
                ("field",),
                f"candidates 'users' and 'role' are users: '{assign.field}' must be a user "
                f"field (it is a {field.type.value} field)",
            )
        if assign.role is not None and assign.role not in roles and assign.role != ADMIN_ROLE:
            hint = did_you_mean(assign.role, [*roles, ADMIN_ROLE])
            message = f"role '{assign.role}' is not declared in any roles.yaml{hint}"
            report(("candidates", "role"), message)
        if assign.load is not None:
            _where_ok(assign.load, entity, ("load",), report)


def _where_ok(
    source: str,
    entity: EntityDef,
    path: tuple[PathItem, ...],
    report: Callable[[tuple[PathItem, ...], str], None],
) -> None:
    try:
        parse_record_filter(source, entity)
    except WhereError as exc:
        report(path, f"{exc} (a where over {entity.qualified_name}, as in roles.yaml)")
