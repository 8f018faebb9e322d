"""Enforcing an entity's validation rules (SPEC §3.3) on its writes.

Rules run inside the write's transaction, on the record as it will be stored (defaults,
autonumbers and line items included) and, for updates and deletes, on the record as it was
(``old``). Every failing rule is reported at once, each at its field, and the transaction is
rolled back.

The rules of a line item entity (one used only as the ``children`` of a parent) run on every
write of the parent that sends lines: ``create`` rules on each new line, ``update`` rules on
each line sent with its id (``old`` being the line as it was), each on the line as stored,
their failures at ``<children field>[<position>].<field>`` together with the parent's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from jinja2.exceptions import SecurityError

from engine.errors import FieldError, ValidationFailed
from engine.expressions import Actor, Expression, Scope, compile_checks, compile_expression
from metadata import RuleEvent, expression_names

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from metadata import FieldDef, RuleDef

log = logging.getLogger("tessera.rules")


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    rule: RuleDef
    when: Expression | None
    assertion: Expression


class RuleSet:
    """An entity's rules, compiled at start-up and grouped by the event they run on.

    Create rules that read nothing the database assigns (``id``, timestamps, autonumbers)
    run before the INSERT, over the same scope as the computed fields, so such a create
    stays one statement; the others run on the inserted record, inside the transaction.
    """

    def __init__(
        self,
        rules: Iterable[RuleDef],
        assigned_by_database: Iterable[str],
        *,
        before_insert: bool = True,
    ) -> None:
        """``before_insert``: False runs every create rule on the inserted record: the rules
        of line items (checked on each line as stored) and of a parent whose lines have
        rules (so that the parent's failures and its lines' are reported together)."""
        late = set(assigned_by_database)
        compiled = [
            _CompiledRule(
                rule,
                compile_expression(rule.when) if rule.when else None,
                compile_expression(rule.assertion),
            )
            for rule in rules
            if rule.assertion is not None
        ]
        by_event = {
            event: tuple(c for c in compiled if event in c.rule.events) for event in RuleEvent
        }
        creating = by_event[RuleEvent.CREATE]
        early = {id(c) for c in creating if before_insert and not _reads(c.rule) & late}
        self.before_insert = _RuleGroup(tuple(c for c in creating if id(c) in early))
        by_event[RuleEvent.CREATE] = tuple(c for c in creating if id(c) not in early)
        self._by_event = {event: _RuleGroup(rules) for event, rules in by_event.items()}

    def runs_on(self, event: RuleEvent) -> bool:
        """Whether rules run on the stored record of this event (after the statement)."""
        return bool(self._by_event[event])

    def check_before_insert(self, scope: Scope) -> None:
        self.before_insert.check(scope)

    def check(
        self,
        event: RuleEvent,
        record: Mapping[str, Any],
        old: Mapping[str, Any] | None,
        user: Actor | None,
    ) -> None:
        """Raise ``ValidationFailed`` with every rule the write breaks."""
        errors = self.failures(event, record, old, user)
        if errors:
            raise ValidationFailed(errors)

    def failures(
        self,
        event: RuleEvent,
        record: Mapping[str, Any],
        old: Mapping[str, Any] | None,
        user: Actor | None,
    ) -> list[FieldError]:
        """Every rule of ``event`` (run after the statement) that the write breaks."""
        rules = self._by_event[event]
        return rules.failures(Scope(record, old, user)) if rules else []


def _reads(rule: RuleDef) -> set[str]:
    return expression_names(rule.assertion or "") | (
        expression_names(rule.when) if rule.when else set()
    )


class _RuleGroup:
    """Rules that run together: evaluated as one expression, and one by one (for their
    messages) only when that finds a failure or cannot be evaluated."""

    __slots__ = ("_all", "rules")

    def __init__(self, rules: tuple[_CompiledRule, ...]) -> None:
        self.rules = rules
        self._all = (
            compile_checks([(c.rule.when, c.rule.assertion or "") for c in rules])
            if rules
            else None
        )

    def __bool__(self) -> bool:
        return bool(self.rules)

    def check(self, scope: Scope) -> None:
        errors = self.failures(scope)
        if errors:
            raise ValidationFailed(errors)

    def failures(self, scope: Scope) -> list[FieldError]:
        if self._all is None:
            return []
        try:
            if all(self._all(scope)):
                return []
        except Exception:  # noqa: BLE001, S110 - the rules are evaluated one by one below
            pass
        return [error for rule in self.rules if (error := _failure(rule, scope)) is not None]


def _failure(compiled: _CompiledRule, scope: Scope) -> FieldError | None:
    rule = compiled.rule
    try:
        if compiled.when is not None and not compiled.when(scope):
            return None
        if compiled.assertion(scope):
            return None
        message = rule.message
    except SecurityError as exc:
        message = f"rule '{rule.name}' was stopped: {exc}"
    except Exception as exc:  # noqa: BLE001 - a rule that cannot be evaluated rejects the write
        log.warning("rule %s (%s) could not be evaluated: %s", rule.name, rule.origin, exc)
        message = f"rule '{rule.name}' could not be evaluated: {exc}"
    return FieldError(
        rule.field or "", rule.code, message, rule=rule.name, conflict=rule.status == 409
    )


class RequiredIf:
    """Fields declared ``required_if: <expression>``: required whenever it holds."""

    def __init__(self, fields: Iterable[FieldDef]) -> None:
        self._fields = tuple(
            (f.name, f.required_if, compile_expression(f.required_if))
            for f in fields
            if f.required_if
        )

    def __bool__(self) -> bool:
        return bool(self._fields)

    def check(self, record: Mapping[str, Any], scope: Scope) -> None:
        """``record`` as it will be stored; ``scope`` the write's names over it."""
        errors = []
        for name, source, condition in self._fields:
            if record.get(name) not in (None, "", []):
                continue
            try:
                required = bool(condition(scope))
            except Exception as exc:  # noqa: BLE001 - reported at the field
                errors.append(
                    FieldError(name, "required", f"required_if cannot be evaluated: {exc}")
                )
                continue
            if required:
                errors.append(FieldError(name, "required", f"is required when {source}"))
        if errors:
            raise ValidationFailed(errors)
