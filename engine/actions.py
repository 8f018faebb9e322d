"""Rule actions (SPEC §3.3): ``create`` a record of another entity, ``update`` the record
written. They run after the write, in its transaction, so a failure in any action rolls the
whole write back; a write made by an action runs that entity's rules in turn (cascades).

``email`` and ``webhook`` actions are rendered here too, over the same record, but are not
sent: they become outbox events in the same transaction (``engine.outbox``), delivered
after commit.

A cascade that comes back to a rule already running for the same record is a cycle: it is
stopped at once with an error naming the chain, and the write is rolled back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import FieldError, ValidationFailed
from engine.expressions import (
    Actor,
    Expression,
    Scope,
    ValueTemplate,
    compile_expression,
    environment,
)
from metadata import ActionKind, CronSchedule, RuleEvent, expression_names

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from jinja2 import Template

    from metadata import ActionDef, RuleDef

MAX_CASCADE = 16


@dataclass(frozen=True, slots=True)
class CascadeStep:
    entity: str
    record_id: str
    rule: str

    def __str__(self) -> str:
        return f"{self.entity}#{self.record_id}:{self.rule}"


def _compile_values(values: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Each value compiled once; nested mappings (a webhook's payload) keep their shape."""
    return tuple(
        (name, _compile_values(value) if isinstance(value, dict) else ValueTemplate(value))
        for name, value in values.items()
    )


def _resolve_values(values: tuple[tuple[str, Any], ...], scope: Scope) -> dict[str, Any]:
    return {
        name: value.resolve(scope)
        if isinstance(value, ValueTemplate)
        else _resolve_values(value, scope)
        for name, value in values
    }


@dataclass(frozen=True, slots=True)
class _Action:
    kind: ActionKind
    entity: str | None
    values: tuple[tuple[str, Any], ...]
    template: Template | None = None
    deferred: bool = False

    def resolve(self, scope: Scope) -> dict[str, Any]:
        resolved = _resolve_values(self.values, scope)
        if self.kind is ActionKind.EMAIL:
            return _email(resolved, self.template.render(scope.names) if self.template else None)
        if self.kind is ActionKind.WEBHOOK:
            return {"url": str(resolved["url"]), "data": resolved.get("payload")}
        return resolved


def _addresses(value: Any) -> list[str]:
    if value is None:
        return []
    items = value if isinstance(value, list | tuple) else str(value).split(",")
    return [text for item in items if (text := str(item).strip())]


def _email(values: Mapping[str, Any], rendered: str | None) -> dict[str, Any]:
    """The message as it will be sent: a template file whose first line is ``Subject: ...``
    gives the subject unless the action sets one."""
    subject = values.get("subject")
    body = str(values.get("body") or "")
    if rendered is not None:
        first, _, rest = rendered.partition("\n")
        if first.lower().startswith("subject:"):
            subject = subject or first.split(":", 1)[1].strip()
            rendered = rest.lstrip("\n")
        body = rendered
    to = _addresses(values.get("to"))
    if not to:
        raise ValueError("the e-mail has no recipient ('to' is empty)")
    return {
        "to": to,
        "cc": _addresses(values.get("cc")),
        "subject": str(subject or "").strip(),
        "body": body,
    }


@dataclass(frozen=True, slots=True)
class _Trigger:
    rule: RuleDef
    when: Expression | None
    actions: tuple[_Action, ...]


def _compile_action(action: ActionDef) -> _Action:
    template = (
        environment().from_string(action.template_source)
        if action.template_source is not None
        else None
    )
    return _Action(
        action.kind, action.entity, _compile_values(action.values), template, action.deferred
    )


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
            if rule.actions and rule.schedule is None
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
        user: Actor | None,
    ) -> list[tuple[RuleDef, list[tuple[_Action, dict[str, Any]]]]]:
        """The triggers whose ``when`` holds, with their actions' values resolved over the
        record as written (all resolved before any action runs)."""
        triggers = self._by_event[event]
        if not triggers:
            return []
        scope = Scope(record, old, user)
        due = []
        for trigger in triggers:
            try:
                if trigger.when is not None and not trigger.when(scope):
                    continue
                resolved = [(action, action.resolve(scope)) for action in trigger.actions]
            except Exception as exc:  # noqa: BLE001 - the write is rejected, with the reason
                message = f"rule '{trigger.rule.name}' could not run: {exc}"
                raise ValidationFailed(
                    [FieldError("", "rule", message, rule=trigger.rule.name)]
                ) from None
            due.append((trigger.rule, resolved))
        return due


class ScheduledActions:
    """An entity's scheduled rules: their schedule, record filter and actions, compiled
    once. The filter is ``where`` (and ``when``, if the rule has one too)."""

    def __init__(self, rules: Iterable[RuleDef]) -> None:
        self._rules = {
            rule.name: _Trigger(
                rule,
                _selector(rule),
                tuple(_compile_action(a) for a in rule.actions),
            )
            for rule in rules
            if rule.schedule is not None
        }
        self.schedules = {
            name: CronSchedule.parse(t.rule.schedule or "") for name, t in self._rules.items()
        }

    def rule(self, name: str) -> RuleDef:
        return self._rules[name].rule

    def resolve(
        self, name: str, record: Mapping[str, Any], user: Actor | None
    ) -> list[tuple[_Action, dict[str, Any]]] | None:
        """The rule's actions with their values over ``record``, or None when the rule's
        filter leaves the record out."""
        trigger = self._rules[name]
        scope = Scope(record, None, user)
        if trigger.when is not None and not trigger.when(scope):
            return None
        return [(action, action.resolve(scope)) for action in trigger.actions]


def _selector(rule: RuleDef) -> Expression | None:
    conditions = [c for c in (rule.where, rule.when) if c]
    if not conditions:
        return None
    return compile_expression(" and ".join(f"({c})" for c in conditions))


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
