"""Enforcing an entity's workflow (SPEC §3.4) on its writes.

A new record starts in the workflow's initial state; a write that changes the state field
must follow a transition from the old state to the new one whose ``roles`` include one of
the writer's (when the writer is known) and whose ``when`` holds over the record as it
will be stored. Everything else is a 422 at the state field, on every write path: the
checks sit in the store, under the API, bulk, upsert, import and rule actions alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import FieldError, ValidationFailed
from engine.expressions import Expression, Scope, compile_expression
from metadata import ADMIN_ROLE

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from metadata import TransitionDef, WorkflowDef


@dataclass(frozen=True, slots=True)
class Move:
    """A transition as seen from one record: whether this writer may take it now."""

    target: str
    label: str | None
    allowed: bool
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Transition:
    definition: TransitionDef
    when: Expression | None


class Workflow:
    def __init__(self, definition: WorkflowDef) -> None:
        self.definition = definition
        self.field = definition.field
        self.initial = definition.initial
        self._transitions = tuple(
            _Transition(t, compile_expression(t.when) if t.when else None)
            for t in definition.transitions
        )

    def check_create(self, sent: Any, values: dict[str, Any]) -> None:
        """New records start in the initial state: set it, or refuse another one sent."""
        state = sent.get(self.field) if isinstance(sent, dict) else None
        if state is not None and state != self.initial:
            raise ValidationFailed(
                [
                    FieldError(
                        self.field,
                        "transition",
                        f"a new record starts as '{self.initial}', not '{state}'",
                    )
                ]
            )
        values[self.field] = self.initial

    def check_move(
        self, old_state: Any, new_state: Any, scope: Scope, roles: Iterable[str] | None
    ) -> None:
        """Raise unless some transition allows ``old_state`` -> ``new_state`` for this
        writer over ``scope`` (the record as it will be stored)."""
        candidates = [t for t in self._from(old_state) if t.definition.target == new_state]
        if not candidates:
            raise self._refusal(old_state, f"cannot move from '{old_state}' to '{new_state}'")
        reasons = []
        for transition in candidates:
            reason = self._blocked(transition, scope, roles)
            if reason is None:
                return
            reasons.append(reason)
        raise self._refusal(
            old_state,
            f"cannot move from '{old_state}' to '{new_state}': {'; or '.join(reasons)}",
            listing=False,
        )

    def moves(
        self, record: Mapping[str, Any], scope: Scope, roles: Iterable[str] | None
    ) -> list[Move]:
        """Every transition out of the record's state, and whether this writer may take it
        now (for the UI's buttons)."""
        moves = []
        for transition in self._from(record.get(self.field)):
            reason = self._blocked(transition, scope, roles)
            definition = transition.definition
            moves.append(Move(definition.target, definition.label, reason is None, reason))
        return moves

    def _from(self, state: Any) -> list[_Transition]:
        return [t for t in self._transitions if state in t.definition.sources]

    @staticmethod
    def _blocked(transition: _Transition, scope: Scope, roles: Iterable[str] | None) -> str | None:
        definition = transition.definition
        if definition.roles and roles is not None:
            held = set(roles)
            if ADMIN_ROLE not in held and not held & definition.roles:
                return f"needs the role {' or '.join(sorted(definition.roles))}"
        if transition.when is not None:
            try:
                holds = bool(transition.when(scope))
            except Exception as exc:  # noqa: BLE001 - reported as the reason
                return f"'{definition.when}' cannot be evaluated: {exc}"
            if not holds:
                return f"only when {definition.when}"
        return None

    def _refusal(self, state: Any, message: str, *, listing: bool = True) -> ValidationFailed:
        if listing:
            targets = sorted({t.definition.target for t in self._from(state)})
            allowed = ", ".join(f"'{t}'" for t in targets)
            message += (
                f"; from '{state}' the workflow allows: {allowed}"
                if targets
                else (f"; '{state}' is a final state")
            )
        return ValidationFailed([FieldError(self.field, "transition", message)])
