"""Which parts of a record's form show and which fields are required, for the values being
edited: a form's ``visible_if`` (sections and fields) and the fields' ``required_if``,
compiled once per entity and judged as the user types, before anything is saved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.expressions import Scope, compile_expression
from engine.fieldtypes import InvalidValue, kind_of
from metadata import FieldType

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from engine.expressions import Actor, Expression
    from metadata import EntityDef


@dataclass(frozen=True, slots=True)
class FormState:
    hidden_sections: frozenset[str]
    hidden_fields: frozenset[str]
    required: frozenset[str]
    """Fields whose ``required_if`` holds (not those declared ``required``); a line's as
    ``<children field>[<index>].<field>``."""


class FormConditions:
    def __init__(self, entity: EntityDef, lines: Mapping[str, EntityDef] | None = None) -> None:
        """``lines``: the line entity of each ``children`` field, whose ``required_if`` is
        judged on each line typed."""
        self._sections = tuple(
            (s.name, compile_expression(s.visible_if)) for s in entity.form.sections if s.visible_if
        )
        self._fields = tuple(
            (f.field, compile_expression(f.visible_if))
            for s in entity.form.sections
            for f in s.fields
            if f.visible_if
        )
        self._required = tuple(
            (f.name, compile_expression(f.required_if))
            for f in entity.fields.values()
            if f.required_if
        )
        self._coercers: dict[str, Callable[[Any], Any]] = {
            f.name: kind_of(f).coercer(f)
            for f in entity.fields.values()
            if f.type
            not in {FieldType.CHILDREN, FieldType.REFERENCE, FieldType.JSON, FieldType.FILE}
        }
        self._lines = {
            name: FormConditions(line)
            for name, line in (lines or {}).items()
            if any(f.required_if for f in line.fields.values())
        }

    def __bool__(self) -> bool:
        return bool(self._sections or self._fields or self._required or self._lines)

    def judge(
        self,
        values: Mapping[str, Any],
        user: Actor | None,
        lines: Mapping[str, Mapping[int, Mapping[str, Any]]] | None = None,
    ) -> FormState:
        """The state for ``values`` as typed (text from a form is typed here; what cannot
        be read yet counts as empty), and for ``lines`` (each children field's lines as
        typed, by their index on the form). A condition that cannot be evaluated (it
        reaches into a referenced record, say) shows its part and requires nothing."""
        record = {name: self._typed(name, value) for name, value in values.items()}
        scope = Scope(record, None, user)
        required = {name for name, when in self._required if _holds(when, scope, False)}
        for name, conditions in self._lines.items():
            for index, line in ((lines or {}).get(name) or {}).items():
                state = conditions.judge(line, user)
                required.update(f"{name}[{index}].{field}" for field in state.required)
        return FormState(
            frozenset(name for name, when in self._sections if not _holds(when, scope, True)),
            frozenset(name for name, when in self._fields if not _holds(when, scope, True)),
            frozenset(required),
        )

    def _typed(self, name: str, value: Any) -> Any:
        if value in ("", None):
            return None
        coerce = self._coercers.get(name)
        if coerce is None:
            return value
        try:
            return coerce(value)
        except (InvalidValue, ValueError, TypeError):
            return None


def _holds(condition: Expression, scope: Scope, otherwise: bool) -> bool:
    try:
        return bool(condition(scope))
    except Exception:  # noqa: BLE001 - the form stays usable; saving checks for real
        return otherwise
