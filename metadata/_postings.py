"""Ledgers, balances and the checks of the actions that post to them (``post``,
``adjust``), at load time. The definitions are in ``metadata._ledger_model``; the actions
in ``metadata._posting_actions``; the engine side in ``engine.postings``.

Two hooks of the loader call in here: ``PostingParts.read`` while an entity is built (the
``ledger:``/``balance:`` keys, a ledger's system fields) and ``check_postings`` once every
entity exists (targets, lock entities, which rules may post).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, Protocol

from metadata._errors import did_you_mean
from metadata._expressions import expression_problems
from metadata._ledger_model import (
    IS_REVERSAL,
    LEDGER_FIELDS,
    VOUCHER_ID,
    VOUCHER_TYPE,
    BalancedDef,
    BalanceDef,
    LedgerDef,
    LimitDef,
    LockDef,
    RoundOffDef,
)
from metadata._model import SYSTEM_FIELDS, FieldDef, FieldType, RuleEvent, frozen_mapping
from metadata._posting_actions import AdjustAction, PostAction

if TYPE_CHECKING:
    from collections.abc import Mapping

    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import EntityDef
    from metadata._rules import PendingAction
    from metadata._yaml import SourceDocument

NUMERIC = frozenset({FieldType.INTEGER, FieldType.DECIMAL})
DATES = frozenset({FieldType.DATE, FieldType.DATETIME})


@dataclass(slots=True)
class PostingParts:
    """What ``ledger:`` and ``balance:`` of one entity file add to its entity."""

    ledger: LedgerDef | None = None
    balance: BalanceDef | None = None
    lock_target: str | None = None
    """The lock entity as written (checked once every entity exists)."""

    @classmethod
    def read(
        cls,
        document: SourceDocument,
        fields: dict[str, FieldDef],
        problems: ProblemCollector,
        *,
        pack: str,
    ) -> PostingParts:
        """The ledger or balance of an entity file (its system fields added to ``fields``);
        problems reported at their keys."""
        data = document.data
        parts = cls()
        reader = _Reader(document, fields, problems)
        if "ledger" in data and "balance" in data:
            reader.error(("balance",), "an entity is a ledger or a balance, not both", key=True)
            return parts
        for key in ("ledger", "balance"):
            if key in data and data.get("document"):
                reader.error(
                    (key,),
                    f"a document cannot be a {key}: {key}s are written by the postings of "
                    "documents",
                    key=True,
                )
                return parts
        raw_ledger = data.get("ledger")
        if raw_ledger is not None and raw_ledger is not False:
            parts.ledger = reader.ledger({} if raw_ledger is True else raw_ledger, pack)
        if data.get("balance") is not None:
            parts.balance = reader.balance(data["balance"])
        return parts

    def apply(self, entity: EntityDef) -> EntityDef:
        if self.ledger is not None:
            voucher = (VOUCHER_TYPE, VOUCHER_ID)
            return replace(entity, ledger=self.ledger, indexes=(*entity.indexes, voucher))
        if self.balance is not None:
            unique = entity.unique
            if self.balance.key not in unique:
                unique = (*unique, self.balance.key)
            return replace(entity, balance=self.balance, unique=unique)
        return entity


class _Reader:
    def __init__(
        self, document: SourceDocument, fields: dict[str, FieldDef], problems: ProblemCollector
    ) -> None:
        self.document = document
        self.fields = fields
        self.problems = problems

    def error(self, where: tuple[PathItem, ...], message: str, *, key: bool = False) -> None:
        self.problems.at(self.document, where, message, key=key)

    def field(
        self, where: tuple[PathItem, ...], name: str, types: frozenset[FieldType], what: str
    ) -> bool:
        field_def = self.fields.get(name)
        if field_def is None:
            hint = did_you_mean(name, self.fields)
            self.error(where, f"'{name}' is not a field of this entity{hint}")
            return False
        if field_def.type not in types:
            self.error(where, f"'{name}' is a {field_def.type.value} field; {what}")
            return False
        return True

    def ledger(self, raw: Mapping[str, Any], pack: str) -> LedgerDef | None:
        for name in LEDGER_FIELDS:
            if name in self.document.data["fields"]:
                self.error(
                    ("fields", name),
                    f"'{name}' is a system field of every ledger (ledger: true); choose "
                    "another name",
                    key=True,
                )
                return None
        ok = True
        numeric = [n for n, f in self.fields.items() if f.type in NUMERIC]
        amounts = raw.get("amounts", numeric)
        for index, name in enumerate(amounts):
            ok = (
                self.field(("ledger", "amounts", index), name, NUMERIC, "amounts are numbers")
                and ok
            )
        date = raw.get("date")
        if date is not None:
            ok = self.field(("ledger", "date"), date, DATES, "'date' is a date field") and ok
        balanced = self._balanced(raw.get("balanced"))
        lock = None
        if "lock" in raw:
            if date is None:
                self.error(("ledger", "lock"), "a period lock needs the ledger's 'date' field")
                ok = False
            target = raw["lock"]["entity"]
            lock = LockDef(target if "." in target else f"{pack}.{target}", raw["lock"]["field"])
        if not ok or ("balanced" in raw and balanced is None):
            return None
        self._add_voucher_fields()
        return LedgerDef(tuple(amounts), date, balanced, lock)

    def _balanced(self, raw: Mapping[str, Any] | None) -> BalancedDef | None:
        if raw is None:
            return None
        base = ("ledger", "balanced")
        decimal = frozenset({FieldType.DECIMAL})
        ok = self.field((*base, "debit"), raw["debit"], decimal, "debit is a decimal field")
        ok = self.field((*base, "credit"), raw["credit"], decimal, "credit is a decimal") and ok
        try:
            tolerance = Decimal(str(raw.get("tolerance", "0")))
            valid = tolerance.is_finite() and tolerance >= 0
        except InvalidOperation:
            valid = False
        if not valid:
            self.error((*base, "tolerance"), "tolerance is a decimal number of at least 0")
            return None
        round_off = None
        if "round_off" in raw:
            values = raw["round_off"]
            for name in values:
                if name not in self.fields or self.fields[name].type is FieldType.CHILDREN:
                    hint = did_you_mean(str(name), self.fields)
                    self.error((*base, "round_off", name), f"'{name}' is not a field{hint}")
                    ok = False
            round_off = RoundOffDef(frozen_mapping(values))
        if not ok:
            return None
        return BalancedDef(raw["debit"], raw["credit"], tolerance, round_off)

    def _add_voucher_fields(self) -> None:
        origin = self.document.display_name
        self.fields[VOUCHER_TYPE] = FieldDef(
            name=VOUCHER_TYPE,
            type=FieldType.STRING,
            label="Voucher type",
            max_length=200,
            read_only=True,
            origin=origin,
        )
        self.fields[VOUCHER_ID] = FieldDef(
            name=VOUCHER_ID, type=FieldType.INTEGER, label="Voucher", read_only=True, origin=origin
        )
        self.fields[IS_REVERSAL] = FieldDef(
            name=IS_REVERSAL,
            type=FieldType.BOOLEAN,
            label="Reversal",
            default=False,
            read_only=True,
            origin=origin,
        )

    def balance(self, raw: Mapping[str, Any]) -> BalanceDef | None:
        ok = True
        for index, name in enumerate(raw["key"]):
            field_def = self.fields.get(name)
            if field_def is None or not field_def.is_stored or field_def.type is FieldType.JSON:
                hint = did_you_mean(str(name), self.fields)
                self.error(("balance", "key", index), f"'{name}' cannot be a key field{hint}")
                ok = False
        if len(set(raw["key"])) != len(raw["key"]):
            self.error(("balance", "key"), "a key field is listed twice")
            ok = False
        limits = []
        for index, item in enumerate(raw.get("limits", ())):
            where = ("balance", "limits", index)
            if not self.field((*where, "field"), item["field"], NUMERIC, "limits bound numbers"):
                ok = False
                continue
            low, high = _number(item.get("min")), _number(item.get("max"))
            if low is None and high is None:
                self.error(where, "a limit needs 'min' or 'max' (a number)")
                ok = False
                continue
            if low is not None and high is not None and low > high:
                self.error((*where, "max"), f"max {high} is below min {low}")
                ok = False
                continue
            code = item.get("code", "insufficient_stock" if low is not None else "limit_exceeded")
            message = item.get("message") or (
                f"{item['field']} would go below {low}"
                if low is not None
                else f"{item['field']} would go above {high}"
            )
            limits.append(LimitDef(item["field"], low, high, code, message))
        if not ok:
            return None
        return BalanceDef(tuple(raw["key"]), tuple(limits))


def _number(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


class _Builder(Protocol):
    """What ``check_postings`` reads of the ``ProjectBuilder``."""

    pending_actions: list[PendingAction]
    child_owner: dict[str, str]
    posting_files: dict[str, SourceDocument]
    problems: ProblemCollector


def check_postings(builder: _Builder, entities: Mapping[str, EntityDef]) -> None:
    """Once every entity exists: line entities are no ledgers or balances; a lock names a
    date field of an entity; ``post`` targets a ledger (and a balance), ``adjust`` a
    balance by key or a record by id, only in a document's rules ``on: [submit]``; no other
    action writes a ledger or a balance."""
    pending = builder.pending_actions
    child_owner = builder.child_owner
    lock_sources = builder.posting_files
    problems = builder.problems
    for qualified, document in lock_sources.items():
        entity = entities.get(qualified)
        if entity is None:
            continue
        if qualified in child_owner and (entity.ledger or entity.balance):
            kind = "ledger" if entity.ledger else "balance"
            problems.at(
                document, (kind,), f"{qualified} is line items: it cannot be a {kind}", key=True
            )
        lock = entity.ledger.lock if entity.ledger is not None else None
        if lock is not None:
            _check_lock(entities, lock, document, problems)
    for action in pending:
        _check_action(entities, action, problems)


def _check_lock(
    entities: Mapping[str, EntityDef],
    lock: LockDef,
    document: SourceDocument,
    problems: ProblemCollector,
) -> None:
    where = ("ledger", "lock")
    target = entities.get(lock.entity)
    if target is None:
        hint = did_you_mean(lock.entity, entities)
        problems.at(document, (*where, "entity"), f"unknown entity '{lock.entity}'{hint}")
        return
    field_def = target.fields.get(lock.field)
    if field_def is None or field_def.type not in DATES:
        problems.at(
            document,
            (*where, "field"),
            f"'{lock.field}' is not a date field of {lock.entity}"
            f"{did_you_mean(lock.field, target.fields)}",
        )


def _rule_events(pending: PendingAction) -> set[str]:
    """The ``on`` of the rule declaring ``pending`` (read from its file)."""
    data: Any = pending.document.data
    for step in pending.where[:-2]:  # (..., rule index, "actions", position)
        try:
            data = data[step]
        except (KeyError, IndexError, TypeError):
            return set()
    events = data.get("on", ["create", "update"]) if isinstance(data, dict) else []
    return {events} if isinstance(events, str) else set(events)


def _check_action(
    entities: Mapping[str, EntityDef], pending: PendingAction, problems: ProblemCollector
) -> None:
    action = pending.action
    kind = action.kind
    base = (*pending.where, kind)
    if not isinstance(action, PostAction | AdjustAction):
        target = entities.get(getattr(action, "entity", None) or "")
        if target is not None and (target.ledger or target.balance):
            what = "a ledger" if target.ledger else "a balance"
            problems.at(
                pending.document,
                (*base, "entity"),
                f"{target.qualified_name} is {what}: only postings write it (use 'post' or "
                "'adjust' in a rule on: [submit] of a document)",
            )
        return
    source = entities.get(pending.entity)
    if _rule_events(pending) != {RuleEvent.SUBMIT.value} or (source and not source.document):
        problems.at(
            pending.document,
            pending.where,
            f"'{kind}' runs only in a rule 'on: [submit]' of a document (document: true); "
            "cancelling the document reverses it",
        )
        return
    if isinstance(action, PostAction):
        _check_post(entities, action, base, pending, problems)
    else:
        _check_adjust(entities, action, base, pending, problems)


def _check_post(
    entities: Mapping[str, EntityDef],
    action: PostAction,
    base: tuple[PathItem, ...],
    pending: PendingAction,
    problems: ProblemCollector,
) -> None:
    ledger = entities.get(action.entity or "")
    if ledger is None:
        return  # reported with the record action's checks
    if ledger.ledger is None:
        problems.at(
            pending.document,
            (*base, "ledger"),
            f"{ledger.qualified_name} is not a ledger: add 'ledger: true' to its entity file",
        )
        return
    move = action.balance
    if move is None:
        return
    balance = entities.get(move.entity)
    where = (*base, "balance")
    if balance is None or balance.balance is None:
        what = "unknown entity" if balance is None else "not a balance (balance: {key: ...})"
        problems.at(pending.document, (*where, "entity"), f"'{move.entity}': {what}")
        return
    missing = [k for k in balance.balance.key if k not in ledger.fields]
    if missing:
        problems.at(
            pending.document,
            (*where, "entity"),
            f"the balance's key {', '.join(missing)} must be fields of {ledger.qualified_name} "
            "too (the row moved is the one whose key equals the ledger row's)",
        )
    for name, source in move.add.items():
        _numeric(pending, (*where, "add", name), balance, name, problems)
        _numeric(pending, (*where, "add", name), ledger, source, problems)
    for name, source in move.after.items():
        _numeric(pending, (*where, "after", name), ledger, name, problems)
        _numeric(pending, (*where, "after", name), balance, source, problems)
    _check_compute(move.compute, ledger, balance, (*where, "compute"), pending, problems)


COMPUTE_NAMES = frozenset({"entry", "posted"})
"""Names a ``compute`` expression of a ``post``'s balance reads besides the balance row's
fields: the ledger row (``entry``) and the voucher's sums for the same line (``posted``)."""


def _check_compute(
    compute: Mapping[str, str],
    ledger: EntityDef,
    balance: EntityDef,
    where: tuple[PathItem, ...],
    pending: PendingAction,
    problems: ProblemCollector,
) -> None:
    """Each ``compute`` target is a stored field of the ledger that no ``after`` fills, and
    its expression parses and reads the balance row's fields, ``entry`` and ``posted``."""
    scope = {*balance.fields, *SYSTEM_FIELDS, *COMPUTE_NAMES}
    for name, source in compute.items():
        field_def = ledger.fields.get(name)
        if name in LEDGER_FIELDS:
            message = f"'{name}' is a system field of {ledger.qualified_name}, filled by the engine"
            problems.at(pending.document, (*where, name), message)
            continue
        if field_def is None or not field_def.is_stored:
            hint = did_you_mean(name, ledger.fields)
            problems.at(
                pending.document,
                (*where, name),
                f"'{name}' is not a field of {ledger.qualified_name} a posting may fill{hint}",
            )
            continue
        for problem in expression_problems(source, scope):
            problems.at(pending.document, (*where, name), problem)


def _check_adjust(
    entities: Mapping[str, EntityDef],
    action: AdjustAction,
    base: tuple[PathItem, ...],
    pending: PendingAction,
    problems: ProblemCollector,
) -> None:
    target = entities.get(action.entity or "")
    if target is None:
        return
    if target.ledger is not None:
        message = f"{target.qualified_name} is a ledger: use 'post'"
        problems.at(pending.document, (*base, "entity"), message)
        return
    if target.balance is not None:
        if action.key is None and action.where is not None:
            message = f"{target.qualified_name} is a balance: name its row with 'key', not 'where'"
            problems.at(pending.document, (*base, "where"), message)
        elif action.key is None:
            message = f"{target.qualified_name} is a balance: name its row with 'key'"
            problems.at(pending.document, base, message)
        elif set(action.key) != set(target.balance.key):
            wanted = ", ".join(target.balance.key)
            message = f"the key of {target.qualified_name} is {wanted}"
            problems.at(pending.document, (*base, "key"), message)
    elif action.id is None and action.where is None:
        message = f"{target.qualified_name} is not a balance: name the record with 'id' or 'where'"
        problems.at(pending.document, base, message)
    for name in action.add:
        _numeric(pending, (*base, "add", name), target, name, problems)


def _numeric(
    pending: PendingAction,
    where: tuple[PathItem, ...],
    entity: EntityDef,
    name: str,
    problems: ProblemCollector,
) -> None:
    field_def = entity.fields.get(name)
    if field_def is None or field_def.type not in NUMERIC:
        what = "not a field" if field_def is None else "not a number field"
        problems.at(
            pending.document,
            where,
            f"'{name}' is {what} of {entity.qualified_name}{did_you_mean(name, entity.fields)}",
        )
