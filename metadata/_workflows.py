"""Workflows (SPEC §3.4): ``workflows/<entity>.yaml`` in a pack, a state machine over one
enum field. Checked here against the entity (the field is an enum, every state is one of
its values, ``when`` parses and reads known names) and built into a ``WorkflowDef``; the
engine enforces it on every write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metadata._errors import did_you_mean
from metadata._expressions import SCOPE_NAMES, expression_problems
from metadata._model import SYSTEM_FIELDS, FieldType, TransitionDef, WorkflowDef

if TYPE_CHECKING:
    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import EntityDef
    from metadata._yaml import SourceDocument


class WorkflowChecker:
    def __init__(self, entity: EntityDef, problems: ProblemCollector) -> None:
        self.entity = entity
        self.problems = problems
        failed = problems.failed_fields.get(entity.qualified_name, set())
        self.scope = {*entity.fields, *SYSTEM_FIELDS, *SCOPE_NAMES, *failed}

    def build(self, document: SourceDocument | None) -> WorkflowDef | None:
        if document is None:
            return None
        self.document = document
        data: dict[str, Any] = document.data
        field = self.entity.fields.get(data["field"])
        if field is None:
            hint = did_you_mean(data["field"], self.entity.fields)
            self.problems.unknown(
                document,
                ("field",),
                f"'{data['field']}' is not a field of this entity{hint}",
                entity=self.entity.qualified_name,
                field_name=data["field"],
            )
            return None
        if field.type is not FieldType.ENUM or not field.values:
            self._error(("field",), f"a workflow's field must be an enum; '{field.name}' is not")
            return None
        states = tuple(field.values)
        initial = data.get("initial", field.default)
        ok = True
        if initial is None:
            self._error((), f"name the 'initial' state (or give '{field.name}' a default)")
            ok = False
        elif not self._is_state(("initial",), initial, states):
            ok = False
        transitions = []
        seen: dict[tuple[str, str], int] = {}
        """Unconditional moves by (from, to): the index of the transition allowing it."""
        for index, raw in enumerate(data["transitions"]):
            # None: the transition broke the schema (reported, left out)
            transition = None if raw is None else self._transition(index, raw, states, seen)
            if transition is None:
                ok = False
            else:
                transitions.append(transition)
        if not ok:
            return None
        assert initial is not None
        return WorkflowDef(field.name, initial, tuple(transitions), document.display_name)

    def _transition(
        self,
        index: int,
        raw: dict[str, Any],
        states: tuple[str, ...],
        seen: dict[tuple[str, str], int],
    ) -> TransitionDef | None:
        where: tuple[PathItem, ...] = ("transitions", index)
        sources = [raw["from"]] if isinstance(raw["from"], str) else list(raw["from"])
        places = (
            [(*where, "from")]
            if isinstance(raw["from"], str)
            else [(*where, "from", i) for i in range(len(sources))]
        )
        checked = [self._is_state(p, s, states) for p, s in zip(places, sources, strict=True)]
        ok = all(checked)  # every bad state is reported, not only the first
        ok = self._is_state((*where, "to"), raw["to"], states) and ok
        when = raw.get("when")
        if when is not None:
            ok = self._expression_ok((*where, "when"), when) and ok
        unconditional = when is None and "roles" not in raw
        for source in sources:
            key = (source, raw["to"])
            if source == raw["to"]:
                self._error((*where, "to"), f"a move from '{source}' to itself changes nothing")
                ok = False
            elif unconditional and key in seen:
                self._error(
                    (*where, "to"),
                    f"'{source}' -> '{raw['to']}' is already allowed by transition {seen[key] + 1}",
                )
                ok = False
            if unconditional:
                seen.setdefault(key, index)
        if not ok:
            return None
        return TransitionDef(
            sources=frozenset(sources),
            target=raw["to"],
            label=raw.get("label"),
            roles=frozenset(raw.get("roles", ())),
            when=when,
        )

    def _is_state(self, where: tuple[PathItem, ...], state: str, states: tuple[str, ...]) -> bool:
        if state in states:
            return True
        hint = did_you_mean(state, states)
        self._error(where, f"'{state}' is not a value of the workflow's field{hint}")
        return False

    def _expression_ok(self, where: tuple[PathItem, ...], source: str) -> bool:
        problems = expression_problems(source, self.scope)
        for problem in problems:
            self._error(where, problem)
        return not problems

    def _error(self, where: tuple[PathItem, ...], message: str) -> None:
        self.problems.at(self.document, where, message)
