"""The second pass's checks of rule actions that write records (``create``, ``update``):
once every entity is built, each action's target, the fields it sets, selects (``where``,
``match``) and fills (``set``), its ``lines`` mapping and ``for_each``, and that a pack's
rule writes only entities of its dependencies. A mixin of ``ProjectBuilder``
(``metadata._project_builder``), which holds the state these read."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metadata._actions import RecordAction
from metadata._errors import did_you_mean
from metadata._fieldkeys import TYPE_TRAITS
from metadata._model import DOCUMENT_FIELDS, FieldType
from metadata._rollup_model import PARENT

if TYPE_CHECKING:
    from collections.abc import Mapping

    from metadata._actions import LineMap
    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import EntityDef
    from metadata._rules import PendingAction


class ActionChecks:
    """Checks of the pending record actions (see the module's docstring)."""

    problems: ProblemCollector
    closure: dict[str, set[str]]
    _entities: Mapping[str, EntityDef]

    def _check_action(self, pending: PendingAction, entities: Mapping[str, EntityDef]) -> None:
        """The target of a rule's action and the fields it sets, once every entity exists."""
        action = pending.action
        kind = action.kind
        source = entities.get(pending.entity)
        if action.for_each is not None and source is not None:
            self._for_each_ok(pending, (*pending.where, "for_each"), source, action.for_each)
        if not isinstance(action, RecordAction):
            return
        qualified = action.entity or pending.entity
        target = entities.get(qualified)
        if target is not None and not self._depends_ok(pending, target):
            return
        if target is None:
            hint = did_you_mean(action.entity or "", entities)
            self.problems.unknown(
                pending.document,
                (*pending.where, kind, "entity"),
                f"unknown entity '{action.entity}'{hint}",
                entity=qualified,
            )
            return
        self._values_ok(
            pending,
            (*pending.where, kind, "values"),
            target,
            action.values,
            read_only=not action.creates,
        )
        if action.where is not None:
            self._selector_ok(pending, (*pending.where, kind, "where"), target, action.where)
        if action.lines is not None and source is not None:
            self._lines_ok(pending, (*pending.where, kind, "lines"), source, target, action.lines)
        if action.match is not None:
            self._selector_ok(pending, (*pending.where, kind, "match"), target, action.match)
        if action.set is not None and source is not None:
            self._set_ok(pending, (*pending.where, kind, "set"), source, target, action.set)
        if action.creates:
            missing = [
                f.name
                for f in target.fields.values()
                if f.required
                and f.default is None
                and f.is_writable
                and f.name not in action.values
                and not (action.lines is not None and f.name == action.lines.target)
            ]
            if missing:
                self.problems.at(
                    pending.document,
                    (*pending.where, kind, "values"),
                    f"the record created needs {', '.join(missing)} "
                    f"(required by {target.qualified_name})",
                )

    def _selector_ok(
        self,
        pending: PendingAction,
        base: tuple[PathItem, ...],
        target: EntityDef,
        values: Mapping[str, Any],
    ) -> None:
        """An update's ``where``: fields of the target that a record can be selected by
        (and ``_parent``, a line's parent id, on a line entity)."""
        for field_name in values:
            if field_name == PARENT and target.is_child:
                continue
            field_def = target.fields.get(field_name)
            if field_def is None:
                hint = did_you_mean(field_name, target.fields)
                message = f"'{field_name}' is not a field of {target.qualified_name}{hint}"
            elif not field_def.is_stored or not TYPE_TRAITS[field_def.type].scalar:
                message = (
                    f"field '{field_name}' ({field_def.type.value}) of "
                    f"{target.qualified_name} cannot select records"
                )
            else:
                continue
            self.problems.at(pending.document, (*base, field_name), message, key=True)

    def _set_ok(
        self,
        pending: PendingAction,
        where: tuple[PathItem, ...],
        source: EntityDef,
        target: EntityDef,
        name: str,
    ) -> None:
        """A create's ``set``: a reference field of the record written, to the target."""
        field_def = source.fields.get(name)
        if field_def is None:
            hint = did_you_mean(name, source.fields)
            message = f"'{name}' is not a field of {source.qualified_name}{hint}"
        elif field_def.type is not FieldType.REFERENCE or field_def.to != target.qualified_name:
            message = (
                f"field '{name}' of {source.qualified_name} is not a reference to "
                f"{target.qualified_name}: 'set' stores the id of the record created there"
            )
        elif field_def.computed:
            message = f"field '{name}' of {source.qualified_name} is computed: it cannot be set"
        else:
            return
        self.problems.at(pending.document, where, message)

    def _depends_ok(self, pending: PendingAction, target: EntityDef) -> bool:
        """A pack's rule writes only entities of the pack or of the packs it depends on."""
        if pending.pack is None:
            return True
        target_pack = target.qualified_name.split(".", 1)[0]
        if target_pack in self.closure.get(pending.pack, {pending.pack}):
            return True
        self.problems.at(
            pending.document,
            (*pending.where, pending.action.kind, "entity"),
            f"entity '{target.qualified_name}' belongs to pack '{target_pack}', which pack "
            f"'{pending.pack}' does not depend on: add '{target_pack}' to depends in "
            f"module.yaml",
        )
        return False

    def _children_ok(
        self, pending: PendingAction, where: tuple[PathItem, ...], entity: EntityDef, name: str
    ) -> EntityDef | None:
        """The line entity of ``entity``'s children field ``name`` (or None, reported)."""
        field_def = entity.fields.get(name)
        if field_def is None or field_def.type is not FieldType.CHILDREN:
            children = [f.name for f in entity.fields.values() if f.type is FieldType.CHILDREN]
            what = "not a field" if field_def is None else "not a children field"
            self.problems.at(
                pending.document,
                where,
                f"'{name}' is {what} of {entity.qualified_name}"
                f"{did_you_mean(name, children)}"
                f" (its children fields: {', '.join(children) or 'none'})",
            )
            return None
        return self._entities.get(field_def.entity or "")

    def _for_each_ok(
        self, pending: PendingAction, where: tuple[PathItem, ...], entity: EntityDef, name: str
    ) -> None:
        """``for_each`` names a children field of ``entity``, or ``<reference>.<children
        field>``: the lines of the record a reference of ``entity`` points at."""
        reference, dot, children = name.partition(".")
        if not dot:
            self._children_ok(pending, where, entity, name)
            return
        field_def = entity.fields.get(reference)
        if field_def is None or field_def.type is not FieldType.REFERENCE:
            references = [f.name for f in entity.fields.values() if f.type is FieldType.REFERENCE]
            what = "not a field" if field_def is None else "not a reference field"
            self.problems.at(
                pending.document,
                where,
                f"'{reference}' is {what} of {entity.qualified_name}"
                f"{did_you_mean(reference, references)}"
                f" (for_each: <children field> or <reference>.<children field>)",
            )
            return
        target = self._entities.get(field_def.to or "")
        if target is not None:
            self._children_ok(pending, where, target, children)

    def _lines_ok(
        self,
        pending: PendingAction,
        where: tuple[PathItem, ...],
        source: EntityDef,
        target: EntityDef,
        lines: LineMap,
    ) -> None:
        self._children_ok(pending, (*where, "from"), source, lines.source)
        line_entity = self._children_ok(pending, (*where, "to"), target, lines.target)
        if line_entity is not None:
            self._values_ok(pending, (*where, "map"), line_entity, lines.values)

    def _values_ok(
        self,
        pending: PendingAction,
        base: tuple[PathItem, ...],
        target: EntityDef,
        values: Mapping[str, Any],
        *,
        read_only: bool = False,
    ) -> None:
        """The fields an action sets exist and can be set: by an ``update``
        (``read_only``), read-only ones too (clients cannot write them; a rule may), but
        never computed fields, autonumbers, line items or a document's system fields."""
        for field_name in values:
            where = (*base, field_name)
            field_def = target.fields.get(field_name)
            if (
                read_only
                and field_def is not None
                and field_def.read_only
                and not field_def.computed
                and field_def.type is not FieldType.AUTONUMBER
                and field_def.is_stored
                and field_name not in DOCUMENT_FIELDS
            ):
                continue
            if field_def is None:
                hint = did_you_mean(field_name, target.fields)
                message = f"'{field_name}' is not a field of {target.qualified_name}{hint}"
                self.problems.unknown(
                    pending.document,
                    where,
                    message,
                    entity=target.qualified_name,
                    field_name=field_name,
                    key=True,
                )
            elif not field_def.is_writable or not field_def.is_stored:
                self.problems.at(
                    pending.document,
                    where,
                    f"field '{field_name}' of {target.qualified_name} cannot be set by an "
                    "action (read-only, computed, autonumber or line items)",
                    key=True,
                )
