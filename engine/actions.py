"""Rule actions (SPEC §3.3): ``create`` a record of another entity, ``update`` the record
written. They run after the write, in its transaction, so a failure in any action rolls the
whole write back; a write made by an action runs that entity's rules in turn (cascades).

A cascade that comes back to a rule already running for the same record is a cycle: it is
stopped at once with an error naming the chain, and the write is rolled back.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import FieldError, ValidationFailed
from engine.expressions import Expression, Scope, compile_expression, environment, scope_names
from metadata import ActionKind, RuleEvent, expression_names

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from jinja2 import Template

    from metadata import ActionDef, RuleDef

MAX_CASCADE = 16
_SINGLE_EXPRESSION = re.compile(r"^\{\{(?P<expression>(?:(?!\}\}).)*)\}\}$", re.DOTALL)


@dataclass(frozen=True, slots=True)
class CascadeStep:
    entity: str
    record_id: str
    rule: str

    def __str__(self) -> str:
        return f"{self.entity}#{self.record_id}:{self.rule}"


class _Value:
    """An action value: a literal, one ``{{ expression }}`` (keeps its type), or a template
    rendered to text (converted by the target field like any input)."""

    __slots__ = ("_expression", "_literal", "_template")

    def __init__(self, value: Any) -> None:
        self._literal = value
        self._expression: Expression | None = None
        self._template: Template | None = None
        if isinstance(value, str) and "{{" in value:
            single = _SINGLE_EXPRESSION.match(value.strip())
            if single:
                self._expression = compile_expression(single["expression"])
            else:
                self._template = environment().from_string(value)

    def resolve(self, scope: Scope, names: Mapping[str, Any]) -> Any:
        if self._expression is not None:
            return self._expression(scope)
        if self._template is not None:
            return self._template.render(names)
        return self._literal


@dataclass(frozen=True, slots=True)
class _Action:
    kind: ActionKind
    entity: str | None
    values: tuple[tuple[str, _Value], ...]


@dataclass(frozen=True, slots=True)
class _Trigger:
    rule: RuleDef
    when: Expression | None
    actions: tuple[_Action, ...]


def _compile_action(action: ActionDef) -> _Action:
    values = tuple((name, _Value(value)) for name, value in action.values.items())
    return _Action(action.kind, action.entity, values)


class Triggers:
    """The rules of an entity that have actions, compiled once, by event."""

    def __init__(self, rules: Iterable[RuleDef], assigned_by_database: Iterable[str]) -> None:
        late = set(assigned_by_database)
        compiled = [
            _Trigger(
                rule,
                compile_expression(rule.when) if rule.when else None,
                tuple(_compile_action(a) for a in rule.actions),
            )
            for rule in rules
            if rule.actions
        ]
        self._by_event = {
            event: tuple(t for t in compiled if event in t.rule.events) for event in RuleEvent
        }
        creating = self._by_event[RuleEvent.CREATE]
        self._when_needs_the_insert = any(
            t.rule.when is None or expression_names(t.rule.when) & late for t in creating
        )

    def runs_on(self, event: RuleEvent) -> bool:
        return bool(self._by_event[event])

    def due_before_insert(self, scope: Scope) -> bool | None:
        """Whether a create trigger can fire, judged before the INSERT: None when a ``when``
        reads what the database assigns (or a trigger has none), so only the inserted
        record can tell."""
        if self._when_needs_the_insert:
            return None
        for trigger in self._by_event[RuleEvent.CREATE]:
            try:
                if trigger.when is not None and trigger.when(scope):
                    return True
            except Exception:  # noqa: BLE001 - the error is raised where the trigger runs
                return True
        return False

    def due(
        self,
        event: RuleEvent,
        record: Mapping[str, Any],
        old: Mapping[str, Any] | None,
        user: str | None,
    ) -> list[tuple[RuleDef, list[tuple[_Action, dict[str, Any]]]]]:
        """The triggers whose ``when`` holds, with their actions' values resolved over the
        record as written (all resolved before any action runs)."""
        triggers = self._by_event[event]
        if not triggers:
            return []
        scope = Scope(record, old, user)
        names = scope_names(record, old, user)
        due = []
        for trigger in triggers:
            try:
                if trigger.when is not None and not trigger.when(scope):
                    continue
                resolved = [
                    (action, {name: value.resolve(scope, names) for name, value in action.values})
                    for action in trigger.actions
                ]
            except Exception as exc:  # noqa: BLE001 - the write is rejected, with the reason
                message = f"rule '{trigger.rule.name}' could not run: {exc}"
                raise ValidationFailed(
                    [FieldError("", "rule", message, rule=trigger.rule.name)]
                ) from None
            due.append((trigger.rule, resolved))
        return due


def cascade_error(chain: tuple[CascadeStep, ...], step: CascadeStep) -> ValidationFailed | None:
    """The error for running ``step`` after ``chain``, when it would loop or go too deep."""
    if step in chain:
        path = " -> ".join(str(s) for s in (*chain[chain.index(step) :], step))
        message = f"rules trigger each other in a cycle: {path}"
    elif len(chain) >= MAX_CASCADE:
        message = f"rules trigger each other more than {MAX_CASCADE} levels deep"
    else:
        return None
    return ValidationFailed([FieldError("", "rule_cycle", message, rule=step.rule)])
