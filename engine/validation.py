"""Record validation: client input → typed Python values, every problem collected.

A ``RecordValidator`` is compiled once per entity from its definition (one coercer per
field, closed over that field's constraints); validating a record is then a single pass
over the input with no schema interpretation at request time. The same definitions
generate the entity's JSON Schema (``engine.jsonschema``); a conformance test keeps the two
in agreement (tests/unit/engine/test_validation_conformance.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engine.errors import FieldError, ValidationFailed
from engine.fieldtypes import InvalidValue, kind_of, parse_id
from metadata import SYSTEM_FIELDS, FieldType
from metadata._errors import did_you_mean

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from metadata import EntityDef, FieldDef

_IGNORED_ON_INPUT = frozenset(SYSTEM_FIELDS)


@dataclass(frozen=True, slots=True)
class _FieldPlan:
    name: str
    coerce: Callable[[Any], Any]
    required: bool
    writable: bool
    has_default: bool
    default: Any
    textual: bool
    children: RecordValidator | None


class RecordValidator:
    """Validates and coerces records of one entity (and its children, recursively)."""

    def __init__(
        self, entity: EntityDef, children: Mapping[str, RecordValidator] | None = None
    ) -> None:
        self.entity = entity
        children = children or {}
        self._plans = {
            field.name: _plan(field, children.get(field.name)) for field in entity.fields.values()
        }
        self._on_create = tuple(
            p
            for p in self._plans.values()
            if (p.required or p.has_default)
            and not entity.fields[p.name].default_is_expression
            and entity.fields[p.name].lookup is None  # filled, or refused, by its lookup
        )

    def validate(
        self, data: Any, *, partial: bool = False, keep_id: bool = False
    ) -> dict[str, Any]:
        """Typed values for the fields present in ``data`` (plus defaults when creating).

        Raises ``ValidationFailed`` listing every invalid field at once.
        """
        if not isinstance(data, dict):
            raise ValidationFailed([FieldError("", "type", "a record must be a JSON object")])
        errors: list[FieldError] = []
        values: dict[str, Any] = {}
        for key, value in data.items():
            plan = self._plans.get(key)
            if plan is None:
                self._unplanned(key, value, keep_id, values, errors)
            else:
                self._field(plan, value, values, errors)
        if not partial:
            self._complete(data, values, errors)
        if errors:
            raise ValidationFailed(errors)
        return values

    def _unplanned(
        self,
        key: str,
        value: Any,
        keep_id: bool,
        values: dict[str, Any],
        errors: list[FieldError],
    ) -> None:
        if key == "id" and keep_id and value is not None:
            self._coerce_id(value, values, errors)
        elif key not in _IGNORED_ON_INPUT:
            hint = did_you_mean(str(key), self._plans)
            message = f"{self.entity.qualified_name} has no field '{key}'{hint}"
            errors.append(FieldError(str(key), "unknown_field", message))

    def _field(
        self, plan: _FieldPlan, value: Any, values: dict[str, Any], errors: list[FieldError]
    ) -> None:
        key = plan.name
        if not plan.writable:
            errors.append(FieldError(key, "read_only", "is read-only"))
        elif value is None or (value == "" and plan.textual and plan.required):
            if plan.required:
                errors.append(FieldError(key, "required", "is required"))
            else:
                values[key] = [] if plan.children else None
        elif plan.children is not None:
            values[key] = self._children(plan, value, errors)
        else:
            try:
                values[key] = plan.coerce(value)
            except InvalidValue as exc:
                errors.append(FieldError(key, exc.code, exc.message))

    def _complete(
        self, data: dict[str, Any], values: dict[str, Any], errors: list[FieldError]
    ) -> None:
        """Defaults and required fields, when creating; and for a line item sent with its
        id (a kept line), except its read-only fields, which no client sends and which keep
        what the engine stored (a rollup, a quantity a posting adjusted)."""
        kept = "id" in values
        for plan in self._on_create:
            if plan.name in values or plan.name in data:
                continue
            if kept and not plan.writable:
                continue
            if plan.has_default:
                values[plan.name] = plan.coerce(plan.default)
            else:
                errors.append(FieldError(plan.name, "required", "is required"))

    @staticmethod
    def _coerce_id(value: Any, values: dict[str, Any], errors: list[FieldError]) -> None:
        try:
            values["id"] = parse_id(value)
        except InvalidValue as exc:
            errors.append(FieldError("id", exc.code, exc.message))

    @staticmethod
    def _children(plan: _FieldPlan, value: Any, errors: list[FieldError]) -> list[dict[str, Any]]:
        try:
            items = plan.coerce(value)
        except InvalidValue as exc:
            errors.append(FieldError(plan.name, exc.code, exc.message))
            return []
        assert plan.children is not None
        result = []
        for position, item in enumerate(items):
            try:
                result.append(plan.children.validate(item, keep_id=True))
            except ValidationFailed as failed:
                errors.extend(e.within(plan.name, position) for e in failed.errors)
        return result


def _plan(field: FieldDef, children: RecordValidator | None) -> _FieldPlan:
    return _FieldPlan(
        name=field.name,
        coerce=kind_of(field).coercer(field),
        required=field.required and field.type is not FieldType.AUTONUMBER,
        writable=field.is_writable,
        has_default=field.default is not None and not field.default_is_expression,
        default=field.default,
        textual=kind_of(field).blank_is_empty,
        children=children,
    )
