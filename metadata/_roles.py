"""Roles (SPEC §3.5): ``roles.yaml`` in a pack, and in the customizations folder.

Every file may declare roles and add grants to roles declared elsewhere: the grants of one
role name are collected from all enabled packs and then the instance's own file, so an
overlay can widen or add roles without editing a pack. A grant's ``where`` is parsed here
into a ``RecordFilter`` tree (a comparison language the engine can turn into SQL); anything
outside that language is an error at its position, not a surprise at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jinja2 import TemplateSyntaxError, nodes
from jinja2.parser import Parser

from metadata._errors import did_you_mean
from metadata._expressions import _environment
from metadata._fieldkeys import TYPE_TRAITS
from metadata._model import (
    ADMIN_ROLE,
    DOCSTATUS,
    SYSTEM_FIELDS,
    AllOf,
    AnyOf,
    Constant,
    FieldComparison,
    FieldType,
    GrantDef,
    NoneOf,
    Permission,
    RecordFilter,
    RoleDef,
    UserValue,
)
from metadata._operators import FILTER_OPERATORS, Arity, where_symbols

if TYPE_CHECKING:
    from collections.abc import Mapping

    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import EntityDef
    from metadata._operators import OperatorSpec
    from metadata._yaml import SourceDocument

ROLES_FILE = "roles.yaml"
_USER_ATTRIBUTES = frozenset({"id", "username"})


class WhereError(ValueError):
    """The ``where`` is outside the language of record filters."""

    def __init__(self, message: str, *, field_name: str | None = None) -> None:
        super().__init__(message)
        self.field_name = field_name
        """The name the ``where`` uses that is not a field of the entity, if that is why."""


@dataclass
class _RoleParts:
    label: str | None = None
    description: str | None = None
    inherits: list[str] = field(default_factory=list)
    grants: list[GrantDef] = field(default_factory=list)
    origins: list[str] = field(default_factory=list)
    declared_at: tuple[SourceDocument, tuple[PathItem, ...]] | None = None


class RolesBuilder:
    """Collects the roles of every ``roles.yaml``, then checks inheritance as a whole."""

    def __init__(self, entities: Mapping[str, EntityDef], problems: ProblemCollector) -> None:
        self.entities = entities
        self.problems = problems
        self._roles: dict[str, _RoleParts] = {}
        self._inherit_position: dict[
            tuple[str, str], tuple[SourceDocument, tuple[PathItem, ...]]
        ] = {}

    def add(self, document: SourceDocument, pack: str | None) -> None:
        """One file's roles; ``pack`` resolves bare entity names (None: customizations,
        where names must be qualified)."""
        for name, raw in (document.data.get("roles") or {}).items():
            where: tuple[PathItem, ...] = ("roles", name)
            if name == ADMIN_ROLE:
                self.problems.at(
                    document, where, "'admin' is built in (it may do everything)", key=True
                )
                continue
            parts = self._roles.setdefault(name, _RoleParts())
            parts.origins.append(document.display_name)
            if parts.declared_at is None:
                parts.declared_at = (document, where)
            raw = raw or {}
            parts.label = parts.label or raw.get("label")
            parts.description = parts.description or raw.get("description")
            for index, inherited in enumerate(raw.get("inherits", [])):
                if inherited not in parts.inherits:
                    parts.inherits.append(inherited)
                    self._inherit_position[(name, inherited)] = (
                        document,
                        (*where, "inherits", index),
                    )
            for index, grant in enumerate(raw.get("grants", [])):
                if grant is None:  # broke the schema: reported, left out
                    continue
                built = self._grant(document, (*where, "grants", index), grant, pack)
                if built is not None:
                    parts.grants.append(built)

    def build(self) -> dict[str, RoleDef]:
        known = set(self._roles) | {ADMIN_ROLE}
        for name, parts in self._roles.items():
            for inherited in parts.inherits:
                if inherited not in known:
                    document, where = self._inherit_position[(name, inherited)]
                    hint = did_you_mean(inherited, known)
                    self.problems.at(document, where, f"unknown role '{inherited}'{hint}")
        self._report_cycles()
        return {
            name: RoleDef(
                name=name,
                label=parts.label or name.replace("_", " ").capitalize(),
                description=parts.description,
                inherits=tuple(i for i in parts.inherits if i in known),
                grants=tuple(parts.grants),
                origins=tuple(parts.origins),
            )
            for name, parts in sorted(self._roles.items())
        }

    def _report_cycles(self) -> None:
        done: set[str] = set()

        def visit(name: str, path: list[str]) -> None:
            if name in path:
                cycle = [*path[path.index(name) :], name]
                document, where = self._inherit_position[(path[-1], name)]
                self.problems.at(document, where, f"roles inherit in a cycle: {' -> '.join(cycle)}")
                return
            if name in done or name not in self._roles:
                return
            for inherited in self._roles[name].inherits:
                visit(inherited, [*path, name])
            done.add(name)

        for name in sorted(self._roles):
            visit(name, [])

    def _grant(
        self,
        document: SourceDocument,
        where: tuple[PathItem, ...],
        raw: dict[str, Any],
        pack: str | None,
    ) -> GrantDef | None:
        entity = self._entity(document, (*where, "entity"), raw["entity"], pack)
        if entity is None:
            return None
        ok = True
        hidden = frozenset(raw.get("hidden_fields", []))
        readonly = frozenset(raw.get("readonly_fields", []))
        for key, names in (
            ("hidden_fields", raw.get("hidden_fields", [])),
            ("readonly_fields", raw.get("readonly_fields", [])),
        ):
            for index, name in enumerate(names):
                problem = _field_problem(entity, name)
                if problem is not None:
                    if not self.problems.has_failed(entity.qualified_name, name):
                        self.problems.at(document, (*where, key, index), problem)
                    ok = False
        for name in sorted(hidden & readonly):
            index = raw["readonly_fields"].index(name)
            self.problems.at(
                document,
                (*where, "readonly_fields", index),
                f"'{name}' is hidden already (hidden fields are never writable)",
            )
            ok = False
        record_filter = None
        if raw.get("where") is not None:
            try:
                record_filter = parse_record_filter(raw["where"], entity)
            except WhereError as exc:
                name = exc.field_name
                if name is None or not self.problems.has_failed(entity.qualified_name, name):
                    self.problems.at(document, (*where, "where"), str(exc))
                ok = False
        moves = [a for a in raw["actions"] if a in {Permission.SUBMIT, Permission.CANCEL}]
        if moves and not entity.document:
            self.problems.at(
                document,
                (*where, "actions"),
                f"'{moves[0]}' applies only to documents, and {entity.qualified_name} is not "
                "one: add 'document: true' to its entity file, or remove the action",
            )
            ok = False
        if not ok:
            return None
        return GrantDef(
            entity=entity.qualified_name,
            permissions=frozenset(Permission(a) for a in raw["actions"]),
            where=raw.get("where"),
            where_filter=record_filter,
            hidden_fields=hidden,
            readonly_fields=readonly,
            origin=document.display_name,
        )

    def _entity(
        self, document: SourceDocument, where: tuple[PathItem, ...], name: str, pack: str | None
    ) -> EntityDef | None:
        qualified = name if "." in name or pack is None else f"{pack}.{name}"
        entity = self.entities.get(qualified)
        if entity is None or entity.is_child:
            hint = did_you_mean(qualified, [e for e, d in self.entities.items() if not d.is_child])
            extra = "" if pack is not None or "." in name else " (write pack.entity here)"
            message = f"unknown entity '{name}'{extra}{hint}"
            if entity is None:
                self.problems.unknown(document, where, message, entity=qualified)
            else:
                self.problems.at(document, where, message)
            return None
        return entity


def _field_problem(entity: EntityDef, name: str) -> str | None:
    if entity.document and name == DOCSTATUS:
        # every answer about a document tells its state (409 ``submitted``, the web badge)
        return (
            f"'{name}' is a document's lifecycle state; grants cannot hide or protect it "
            "(a submit or an edit answers with the state whether it is hidden or not)"
        )
    if name in entity.fields:
        return None
    if name in SYSTEM_FIELDS:
        return f"'{name}' is a system field; grants cannot hide or protect it"
    return f"'{name}' is not a field of {entity.qualified_name}{did_you_mean(name, entity.fields)}"


def parse_record_filter(source: str, entity: EntityDef) -> RecordFilter:
    """``source`` as a record filter over ``entity``; ``WhereError`` says what is wrong."""
    try:
        parser = Parser(_environment(), source, state="variable")
        expression = parser.parse_expression()
        if not parser.stream.eos:
            raise WhereError("expression does not parse: unexpected text after the expression")
    except TemplateSyntaxError as exc:
        raise WhereError(f"expression does not parse: {exc.message}") from None
    return _FilterParser(entity).node(expression)


class _FilterParser:
    def __init__(self, entity: EntityDef) -> None:
        self.entity = entity

    def node(self, node: nodes.Node) -> RecordFilter:
        if isinstance(node, nodes.And):
            return AllOf(
                (*_flat(self.node(node.left), AllOf), *_flat(self.node(node.right), AllOf))
            )
        if isinstance(node, nodes.Or):
            return AnyOf(
                (*_flat(self.node(node.left), AnyOf), *_flat(self.node(node.right), AnyOf))
            )
        if isinstance(node, nodes.Not):
            inner = self.node(node.node)
            if isinstance(inner, FieldComparison) and inner.op == "eq" and inner.value is None:
                return FieldComparison(inner.field, "ne", None)
            return NoneOf(inner)
        if isinstance(node, nodes.Test):
            return self.test(node)
        if isinstance(node, nodes.Compare):
            return self.comparison(node)
        if isinstance(node, nodes.Const) and isinstance(node.value, bool):
            return Constant(node.value)
        if (
            isinstance(node, nodes.Name)
            and node.name in self.entity.fields
            and self.entity.fields[node.name].type is FieldType.BOOLEAN
        ):
            return FieldComparison(node.name, "eq", True)
        raise WhereError(
            "a where compares fields with constants or user.id / user.username, joined by "
            "and, or, not (e.g. \"created_by == user.id and status != 'closed'\")",
            field_name=_unknown_name(node, self.entity),
        )

    def comparison(self, node: nodes.Compare) -> FieldComparison:
        if len(node.ops) != 1:
            raise WhereError("write chained comparisons (a < b < c) as two joined by 'and'")
        operand = node.ops[0]
        spec = where_symbols().get(operand.op)
        if spec is None:
            raise WhereError(f"the operator '{operand.op}' is not allowed in a where")
        left, right = node.expr, operand.expr
        if not self._is_field(left) and self._is_field(right) and spec.mirror is not None:
            left, right = right, left
            spec = FILTER_OPERATORS[spec.mirror]
        name = self.field(left, spec)
        value = self.value(right, many=spec.arity is Arity.MANY)
        found = self.entity.fields.get(name)
        if found is not None and found.type is FieldType.USER and value == UserValue("username"):
            value = UserValue("id")  # a user field holds the id: the same user
        return FieldComparison(name, spec.name, value)

    def test(self, node: nodes.Test) -> FieldComparison:
        """``field is none``, or ``field is <operator>(constant)`` for an operator without
        a comparison symbol (``name is startswith('A')``, ``phone is isnull(false)``)."""
        if node.name == "none" and not node.args and not node.kwargs and not node.dyn_args:
            return FieldComparison(self.field(node.node), "eq", None)
        spec = FILTER_OPERATORS.get(node.name)
        if spec is None or spec.where is not None:
            tests = ", ".join(
                f"'is {name}(...)'" for name, s in FILTER_OPERATORS.items() if s.where is None
            )
            raise WhereError(
                f"only 'is none' tests and the operator tests {tests} are allowed in a "
                f"where, not 'is {node.name}'"
            )
        if len(node.args) != 1 or node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise WhereError(f"'is {spec.name}' takes one value: is {spec.name}(...)")
        name = self.field(node.node, spec)
        value = self.value(node.args[0], many=spec.arity is Arity.MANY)
        if isinstance(value, UserValue) or value is None:
            raise WhereError(f"'is {spec.name}' takes a constant ('open', 100, true)")
        if spec.arity is Arity.FLAG and not isinstance(value, bool):
            raise WhereError(f"'is {spec.name}' takes true or false")
        wanted = spec.value_type
        many = value if isinstance(value, tuple) else (value,)
        if wanted is not None and not all(
            isinstance(item, wanted) and not isinstance(item, bool) for item in many
        ):
            raise WhereError(f"'is {spec.name}' takes {wanted.__name__} constants")
        return FieldComparison(name, spec.name, value)

    def _is_field(self, node: nodes.Node) -> bool:
        return isinstance(node, nodes.Name) and node.name != "user"

    def field(self, node: nodes.Node, spec: OperatorSpec | None = None) -> str:
        if not isinstance(node, nodes.Name) or node.name == "user":
            raise WhereError("each comparison needs a field of the record on one side")
        name = node.name
        if name in SYSTEM_FIELDS:
            if spec is not None and not spec.applies_to(None):
                raise WhereError(f"'{spec.name}' does not apply to '{name}' (a system field)")
            return name
        found = self.entity.fields.get(name)
        if found is None:
            hint = did_you_mean(name, [*self.entity.fields, *SYSTEM_FIELDS])
            raise WhereError(
                f"'{name}' is not a field of {self.entity.qualified_name}{hint}", field_name=name
            )
        if not TYPE_TRAITS[found.type].scalar or not found.is_stored:
            raise WhereError(f"'{name}' ({found.type.value}) cannot be used in a where")
        if spec is not None and not spec.applies_to(found.type):
            raise WhereError(f"'{spec.name}' does not apply to '{name}' ({found.type.value})")
        return name

    def value(self, node: nodes.Node, *, many: bool) -> Any:
        if many:
            if not isinstance(node, nodes.List | nodes.Tuple) or not node.items:
                raise WhereError("'in' and 'not in' take a list of constants: in ['a', 'b']")
            return tuple(self.value(item, many=False) for item in node.items)
        if isinstance(node, nodes.Const) and (
            node.value is None or isinstance(node.value, str | int | float | bool)
        ):
            return _storable(node.value)
        if isinstance(node, nodes.Name) and node.name == "user":
            return UserValue("id")
        if (
            isinstance(node, nodes.Getattr)
            and isinstance(node.node, nodes.Name)
            and node.node.name == "user"
            and node.attr in _USER_ATTRIBUTES
        ):
            return UserValue(node.attr)
        raise WhereError(
            "compare with a constant ('open', 100, true, none) or user.id / user.username"
        )


_INT64 = range(-(2**63), 2**63)


def _storable(value: Any) -> Any:
    """``value``, if both databases can compare a column with it (else the grant would fail
    on every request): text without NUL or unpaired surrogates, whole numbers of 64 bits."""
    if isinstance(value, str):
        if "\x00" in value:
            raise WhereError("a text constant must not contain NUL characters (\\u0000)")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise WhereError("a text constant must not contain unpaired surrogates") from None
    elif isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
        raise WhereError(f"{value} is outside the 64-bit integer range")
    return value


def _unknown_name(node: nodes.Node, entity: EntityDef) -> str | None:
    """A bare name that is no field of ``entity`` (perhaps a boolean field that failed)."""
    if isinstance(node, nodes.Name) and node.name not in {*entity.fields, *SYSTEM_FIELDS, "user"}:
        return node.name
    return None


def _flat(part: RecordFilter, kind: type[AllOf] | type[AnyOf]) -> tuple[RecordFilter, ...]:
    return part.parts if isinstance(part, kind) else (part,)
