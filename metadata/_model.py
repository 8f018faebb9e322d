"""Typed, immutable definition objects produced by the loader.

The engine and runtime only ever see these objects, never raw YAML dictionaries.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping
    from decimal import Decimal
    from pathlib import Path

    from metadata._calendar_model import CalendarDef
    from metadata._errors import PathItem
    from metadata._ledger_model import BalanceDef, LedgerDef
    from metadata._lookup_model import LookupDef
    from metadata._report_model import ReportDef
    from metadata._rollup_model import RollupDef


class FieldType(enum.StrEnum):
    STRING = "string"
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    BOOLEAN = "boolean"
    DATE = "date"
    DATETIME = "datetime"
    EMAIL = "email"
    URL = "url"
    PHONE = "phone"
    ENUM = "enum"
    REFERENCE = "reference"
    CHILDREN = "children"
    JSON = "json"
    AUTONUMBER = "autonumber"
    USER = "user"
    """A user of the instance (``tessera_user``): stored as the user's id."""
    FILE = "file"
    """A file uploaded to the record (docs/files.md): written by its upload endpoint."""


class NumberAssign(enum.StrEnum):
    """When an autonumber draws its number (``assign:``)."""

    INSERT = "insert"
    """When the record is created (the default)."""
    SUBMIT = "submit"
    """When the document is submitted: drafts have none (``document: true`` entities)."""


class OnDelete(enum.StrEnum):
    RESTRICT = "restrict"
    CASCADE = "cascade"
    SET_NULL = "set_null"


SYSTEM_FIELDS: tuple[str, ...] = (
    "id",
    "created_at",
    "updated_at",
    "created_by",
    "updated_by",
    "version",
)
DOCSTATUS = "docstatus"
AMENDED_FROM = "amended_from"
DOCUMENT_FIELDS: tuple[str, ...] = (DOCSTATUS, AMENDED_FROM)
"""System fields of a document entity (``document: true``): added by the loader as
read-only fields, so tables, JSON Schema and lists know them; written only by ``_submit``,
``_cancel`` and ``_amend``."""
DOCSTATUSES: tuple[str, ...] = ("draft", "submitted", "cancelled")
RESERVED_PACK_NAMES = frozenset({"auth"})
"""Pack names that would shadow the API's own paths."""
RESERVED_PARAMETERS: tuple[str, ...] = (
    "sort",
    "limit",
    "offset",
    "cursor",
    "fields",
    "expand",
    "count",
    "q",
)


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One declared field of an entity, with every key of the definition language resolved."""

    name: str
    type: FieldType
    label: str
    help: str | None = None
    required: bool = False
    required_if: str | None = None
    unique: bool = False
    index: bool = False
    default: Any = None
    min: Decimal | None = None
    max: Decimal | None = None
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    values: tuple[str, ...] = ()
    to: str | None = None
    on_delete: OnDelete | None = None
    entity: str | None = None
    computed: str | None = None
    read_only: bool = False
    allow_on_submit: bool = False
    """A document's field that may still change once the document is submitted."""
    precision: int | None = None
    scale: int | None = None
    currency: str | None = None
    """A decimal that is an amount of money (docs/locales.md): the field of the record that
    holds its currency code, ``company`` (the company currency) or a code (``EUR``). Only
    how people read it changes (``1.450,00 €``); the API's value stays a plain decimal."""
    format: str | None = None
    assign: NumberAssign = NumberAssign.INSERT
    """An autonumber's moment: at insert, or at a document's submit."""
    date_field: str | None = None
    """The date or datetime field an autonumber's date tokens come from (else today, UTC)."""
    gapless: bool = True
    """An autonumber's numbers leave no gap (drawn in the write's transaction, so a refused
    write gives its number back) or, ``gapless: false``, are drawn and committed at once
    (no wait on other writes of the series; a refused write leaves a gap)."""
    renamed_from: str | None = None
    """The field's previous name: the schema migration renames its column and keeps the data."""
    accept: tuple[str, ...] | None = None
    """A file field's allowed content types (``image/*`` patterns); None: the instance's."""
    max_size: int | None = None
    """A file field's largest file in bytes; None: the instance's limit."""
    lookup: LookupDef | None = None
    """``lookup:``: the value read from another entity's record when a write leaves the
    field empty (docs/definitions.md#lookups)."""
    origin: str = ""
    """Display path of the file that declared the field: its pack file, or a customization."""

    @property
    def is_stored(self) -> bool:
        """Whether the field is a column of its entity's table (children live elsewhere)."""
        return self.type is not FieldType.CHILDREN

    @property
    def default_is_expression(self) -> bool:
        """``default: "{{ today() }}"``: evaluated when a record is created without it."""
        return isinstance(self.default, str) and "{{" in self.default

    @property
    def is_writable(self) -> bool:
        return not (
            self.read_only
            or self.computed
            or self.type is FieldType.AUTONUMBER
            or self.type is FieldType.FILE  # uploaded, never written in a record's body
        )


class RuleEvent(enum.StrEnum):
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    SUBMIT = "submit"
    """A document's ``_submit`` (``document: true`` entities only)."""
    CANCEL = "cancel"
    """A document's ``_cancel``."""


class ActionChecker(Protocol):
    """What a kind's ``parse`` may use of the rules file being checked."""

    pack: str
    """The pack declaring the rule (to qualify a bare entity name)."""

    def error(self, where: tuple[PathItem, ...], message: str, *, key: bool = False) -> None:
        """Report a problem at ``where`` (a path from the action's body)."""

    def templates_ok(
        self, where: tuple[PathItem, ...], values: Mapping[str, Any], *, line: bool = False
    ) -> bool:
        """Whether every ``{{ }}`` template in ``values`` (nested too) is a valid one over
        the record's names (and ``line``, a line of the record, when ``line``); the problems
        are reported."""

    def template_source(self, where: tuple[PathItem, ...], name: str) -> str | None:
        """The text of the pack's template file ``name`` (checked), or None (reported)."""

    def print_template(self, where: tuple[PathItem, ...], name: str) -> bool:
        """Whether ``name`` is a print format file of the pack's templates/ (reported if not)."""

    def target_later(self, where: tuple[PathItem, ...], action: ActionDef) -> None:
        """Check ``action``'s target entity and the fields it sets once every entity is
        built (``where``: the action, without its kind)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionDef:
    """What a rule does after a write; one subclass per kind."""

    kind: ClassVar[str]
    schema: ClassVar[Mapping[str, Any]]
    """The JSON Schema of the action's body (under its kind's key)."""
    for_each: str | None = None
    """``for_each: <children field>``: the action runs once per line of the record written,
    the line in scope as ``line``."""
    when: str | None = None
    """An expression: the action runs only when it holds (with ``for_each``, judged per
    line, the line in scope: only the lines it holds for)."""

    @classmethod
    def parse(
        cls, body: Any, checker: ActionChecker, where: tuple[PathItem, ...], *, deferred: bool
    ) -> ActionDef | None:
        """The definition from a body the schema accepted, or None (problems reported at
        ``where``, the body's path); ``deferred``: the action says ``async: true``."""
        raise NotImplementedError

    def templates(self) -> Iterator[str]:
        """Every template (``{{ }}``) and template file the action renders over the record."""
        return iter(())

    def describe(self) -> dict[str, Any]:
        """The action as ``GET /api/v1/meta`` describes it: ``{kind: {...}}``."""
        return {self.kind: {}}


class AssignStrategy(enum.StrEnum):
    """How an assignment rule picks among its candidates (``assign: {strategy: ...}``)."""

    ROUND_ROBIN = "round_robin"
    """Each in turn: the one after the last picked (a cursor kept per rule)."""
    LEAST_LOAD = "least_load"
    """The one holding the fewest records of the entity that ``load`` selects (ties: in
    turn, as round robin)."""
    FIRST = "first"
    """The first, in order, for which the ``select`` expression holds."""


@dataclass(frozen=True, slots=True)
class AssignDef:
    """What an assignment rule sets (``assign:``): the user or reference ``field``, to one
    of its candidates: users by name (``users``), the active users holding ``role``, or
    the records of the referenced entity that ``records`` (a ``where``) selects."""

    field: str
    strategy: AssignStrategy
    users: tuple[str, ...] = ()
    role: str | None = None
    records: str | None = None
    load: str | None = None
    """least_load: which of this entity's records count as a candidate's load (a
    ``where``; default: all of them)."""
    select: str | None = None
    """first: the expression a candidate must satisfy (``candidate`` is in scope)."""


@dataclass(frozen=True, slots=True)
class RuleDef:
    """A rule of an entity: ``assertion`` must hold for a write (``events``) to be
    accepted; ``actions`` run after it when ``when`` holds. A rule has one or both."""

    name: str
    assertion: str | None
    message: str
    events: frozenset[RuleEvent] = frozenset({RuleEvent.CREATE, RuleEvent.UPDATE})
    when: str | None = None
    field: str | None = None
    actions: tuple[ActionDef, ...] = ()
    origin: str = ""
    schedule: str | None = None
    """Cron schedule of a scheduled rule, which runs its actions on the records ``where``
    selects instead of on writes."""
    where: str | None = None
    """Display path of the file that declared the rule: a pack's rules file or a
    customization."""
    run_as: str = "system"
    """Whose rights the rule's create and update actions have: ``system`` (all), ``user``
    (the writer's roles) or the name of a role."""
    code: str = "rule"
    """The code of the error a failed ``assert`` gives (``over_delivery``)."""
    status: int = 422
    """The HTTP status of a write the failed ``assert`` refuses: 422, or 409 when it is the
    state of other records that refuses it (``status: 409``)."""
    assign: AssignDef | None = None
    """An assignment rule: the field it fills when empty (``docs/rules.md#assignment``)."""


@dataclass(frozen=True, slots=True)
class TransitionDef:
    """One allowed move of a workflow: from any of ``sources`` to ``target``."""

    sources: frozenset[str]
    target: str
    label: str | None = None
    roles: frozenset[str] = frozenset()
    """Empty: anyone who may update the record."""
    when: str | None = None


@dataclass(frozen=True, slots=True)
class WorkflowDef:
    """A state machine over the enum ``field`` (SPEC §3.4)."""

    field: str
    initial: str
    transitions: tuple[TransitionDef, ...]
    origin: str = ""

    def moves_from(self, state: str | None) -> tuple[TransitionDef, ...]:
        return tuple(t for t in self.transitions if state in t.sources)


@dataclass(frozen=True, slots=True)
class FormField:
    field: str
    label: str | None = None
    help: str | None = None
    visible_if: str | None = None
    read_only: bool = False


@dataclass(frozen=True, slots=True)
class FormSection:
    name: str
    label: str | None = None
    columns: int = 1
    visible_if: str | None = None
    fields: tuple[FormField, ...] = ()


@dataclass(frozen=True, slots=True)
class FormDef:
    """The layout of an entity's record form: sections of fields, in order."""

    sections: tuple[FormSection, ...] = ()

    def field_names(self) -> list[str]:
        return [f.field for section in self.sections for f in section.fields]


@dataclass(frozen=True, slots=True)
class ViewDef:
    """How the web UI lists an entity's records (``views/<entity>.yaml``); empty: defaults."""

    list_columns: tuple[str, ...] = ()
    list_sort: str | None = None
    kanban_group_by: str | None = None
    kanban_card: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class EntityDef:
    """An entity: a table, an endpoint family and a form, described once."""

    pack: str
    name: str
    label: str
    label_plural: str
    description: str | None
    title: str | None
    fields: Mapping[str, FieldDef]
    indexes: tuple[tuple[str, ...], ...] = ()
    unique: tuple[tuple[str, ...], ...] = ()
    source: str = ""
    parent: str | None = field(default=None)
    """Qualified name of the entity whose ``children`` field owns this one, if any."""
    customization: str | None = None
    """Display path of the customization (overlay) file applied to this entity, if any."""
    rules: tuple[RuleDef, ...] = ()
    form: FormDef = FormDef()
    view: ViewDef = ViewDef()
    """The pack's ``forms/<entity>.yaml`` (or one section of every field), customized."""
    workflow: WorkflowDef | None = None
    document: bool = False
    """``document: true``: a lifecycle (``docstatus`` draft → submitted → cancelled, and
    ``amended_from``), see docs/documents.md."""
    rollups: tuple[RollupDef, ...] = ()
    """The fields of referenced records this entity's records keep (docs/rollups.md)."""
    ledger: LedgerDef | None = None
    """``ledger:``: append-only, written by postings (docs/ledgers.md)."""
    balance: BalanceDef | None = None
    """``balance:``: a stored number per key kept by postings (docs/ledgers.md)."""

    @property
    def append_only(self) -> bool:
        """Whether clients may only read it: a ledger or a balance."""
        return self.ledger is not None or self.balance is not None

    @property
    def qualified_name(self) -> str:
        return f"{self.pack}.{self.name}"

    @property
    def is_child(self) -> bool:
        return self.parent is not None

    def field(self, name: str) -> FieldDef:
        return self.fields[name]

    def unique_fields(self) -> tuple[str, ...]:
        """Fields that identify one record on their own (usable for upsert and lookups)."""
        singles = {f.name for f in self.fields.values() if f.unique}
        singles.update(group[0] for group in self.unique if len(group) == 1)
        return tuple(name for name in self.fields if name in singles)


@dataclass(frozen=True, slots=True)
class ModuleDef:
    name: str
    label: str
    version: str
    depends: tuple[str, ...]
    description: str | None
    path: Path
    entities: tuple[str, ...]
    """Qualified names of the entities this pack declares."""


class Permission(enum.StrEnum):
    READ = "read"
    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"
    SUBMIT = "submit"
    CANCEL = "cancel"
    """``submit`` and ``cancel`` move a document (``document: true``); ``_amend`` is a
    create (of the copy) and needs ``create``."""


ADMIN_ROLE = "admin"
RUN_AS_SYSTEM = "system"
"""A rule's actions have every right (the default ``run_as``)."""
RUN_AS_USER = "user"
"""A rule's actions have the rights of the user whose write triggered it."""
"""The built-in role that may do everything; no roles.yaml may define it."""


class CompareOp(enum.StrEnum):
    """Names of the operators a ``where`` writes as comparisons (``==`` is ``eq``), for code
    that builds record filters; the vocabulary itself is ``metadata._operators``."""

    EQ = "eq"
    NE = "ne"
    LT = "lt"
    LTE = "lte"
    GT = "gt"
    GTE = "gte"
    IN = "in"
    NOT_IN = "nin"


@dataclass(frozen=True, slots=True)
class UserValue:
    """A property of the signed-in user in a record filter: ``user.id`` or ``user.username``
    (``user`` alone is its id)."""

    attribute: str


@dataclass(frozen=True, slots=True)
class FieldComparison:
    """``field <op> value``; ``op`` names a filter operator (``metadata/_operators.py``),
    ``value`` is a constant, a tuple of constants (``in``), or a ``UserValue``.
    ``field is none`` is ``eq None``."""

    field: str
    op: str
    value: Any


@dataclass(frozen=True, slots=True)
class AllOf:
    parts: tuple[RecordFilter, ...]


@dataclass(frozen=True, slots=True)
class AnyOf:
    parts: tuple[RecordFilter, ...]


@dataclass(frozen=True, slots=True)
class NoneOf:
    """``not (part)``."""

    part: RecordFilter


@dataclass(frozen=True, slots=True)
class Constant:
    value: bool


RecordFilter = FieldComparison | AllOf | AnyOf | NoneOf | Constant
"""A grant's ``where`` as a tree the engine turns into SQL."""


@dataclass(frozen=True, slots=True)
class GrantDef:
    entity: str
    """Qualified name."""
    permissions: frozenset[Permission]
    where: str | None = None
    where_filter: RecordFilter | None = None
    hidden_fields: frozenset[str] = frozenset()
    readonly_fields: frozenset[str] = frozenset()
    origin: str = ""


@dataclass(frozen=True, slots=True)
class RoleDef:
    name: str
    label: str
    description: str | None = None
    inherits: tuple[str, ...] = ()
    grants: tuple[GrantDef, ...] = ()
    origins: tuple[str, ...] = ()
    """The files that declare or extend it (packs, then customizations)."""


class TileKind(enum.StrEnum):
    NUMBER = "number"
    BAR = "bar"
    LINE = "line"
    TABLE = "table"


@dataclass(frozen=True, slots=True)
class TileDef:
    """One tile of a dashboard: an aggregate of one entity, as a figure or a chart."""

    label: str
    entity: str
    """Qualified name."""
    kind: TileKind
    measure: str = "count"
    group_by: str | None = None
    filter: tuple[tuple[str, str], ...] = ()
    """List filters as query-string pairs (``("status", "open")``)."""
    limit: int = 12
    columns: str | None = None
    """A table tile's second grouping: its values are the columns, ``group_by``'s the rows."""


@dataclass(frozen=True, slots=True)
class DashboardDef:
    pack: str
    name: str
    label: str
    tiles: tuple[TileDef, ...]
    description: str | None = None

    @property
    def qualified_name(self) -> str:
        return f"{self.pack}.{self.name}"


@dataclass(frozen=True, slots=True)
class ProjectDef:
    """Everything enabled in one instance, with dependencies resolved and checked."""

    modules: Mapping[str, ModuleDef]
    entities: Mapping[str, EntityDef]
    roles: Mapping[str, RoleDef] = field(default_factory=lambda: MappingProxyType({}))
    dashboards: Mapping[str, DashboardDef] = field(default_factory=lambda: MappingProxyType({}))
    """By qualified name (``pack.name``), in pack order."""
    calendars: Mapping[str, CalendarDef] = field(default_factory=lambda: MappingProxyType({}))
    """Working calendars by name (``calendars/<name>.yaml`` of the packs)."""
    reports: Mapping[str, ReportDef] = field(default_factory=lambda: MappingProxyType({}))
    """By qualified name (``pack.name``): ``reports/<name>.yaml`` of the packs."""
    instance_names: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """Names every expression sees whose values the instance sets (``company_currency``
    from ``company: {currency: …}`` in ``tessera.yaml``); see ``INSTANCE_NAMES``."""

    def role_closure(self, roles: Iterable[str]) -> frozenset[str]:
        """``roles`` and every role they inherit, directly or not (unknown names kept)."""
        found: set[str] = set()
        pending = list(roles)
        while pending:
            name = pending.pop()
            if name in found:
                continue
            found.add(name)
            role = self.roles.get(name)
            if role is not None:
                pending.extend(role.inherits)
        return frozenset(found)

    def entity(self, qualified_name: str) -> EntityDef:
        return self.entities[qualified_name]

    def top_level_entities(self) -> Iterator[EntityDef]:
        return (e for e in self.entities.values() if not e.is_child)


def frozen_mapping(items: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(items))
