"""Validation rules (SPEC §3.3): ``rules/<entity>.yaml`` in a pack, ``rules:`` in a
customization. Each rule is checked here (names, expressions, the field it points at) and
becomes a ``RuleDef``; the engine compiles and enforces them.

Rules with ``assert``, actions ``create``, ``update`` (in the write's transaction, or after
it with ``async: true``), ``email`` and ``webhook``, and scheduled rules (``schedule`` with
``where``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from metadata._actions import RecordAction, action_definition, action_kinds
from metadata._assignments import PendingAssign, parse_assign
from metadata._cron import CronError, CronSchedule
from metadata._documents import YAML_SUFFIXES, display_name, load_document
from metadata._errors import did_you_mean
from metadata._expressions import SCOPE_NAMES, expression_problems, is_template, template_problem
from metadata._model import (
    RUN_AS_SYSTEM,
    RUN_AS_USER,
    SYSTEM_FIELDS,
    RuleDef,
    RuleEvent,
)
from metadata._names import is_snake_case

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping
    from pathlib import Path

    from metadata._errors import PathItem, ProblemCollector
    from metadata._model import ActionDef, AssignDef
    from metadata._yaml import SourceDocument


@dataclass(frozen=True, slots=True)
class PendingRole:
    """A role a rule's ``run_as`` names, checked once every roles.yaml is read."""

    document: SourceDocument
    where: tuple[PathItem, ...]
    role: str


@dataclass(frozen=True, slots=True)
class PendingAction:
    """An action whose target is checked once every entity is built."""

    document: SourceDocument
    where: tuple[PathItem, ...]
    action: ActionDef
    entity: str
    """The entity whose rule declares the action."""
    pack: str | None = None
    """The pack whose rules file declares it (None: a customization): its target must be
    an entity of that pack or of one it depends on."""


def load_entity_files(
    pack_path: Path,
    folder: str,
    kind: str,
    entity_names: Collection[str],
    problems: ProblemCollector,
) -> dict[str, SourceDocument]:
    """A pack's per-entity files of one kind (``rules/<entity>.yaml``,
    ``forms/<entity>.yaml``) by entity name: parsed and schema-checked (first pass)."""
    directory = pack_path / folder
    if not directory.is_dir():
        return {}
    documents: dict[str, SourceDocument] = {}
    for path in sorted(directory.iterdir()):
        if path.suffix not in YAML_SUFFIXES or path.name.startswith("."):
            continue
        if path.stem not in entity_names:
            hint = did_you_mean(path.stem, entity_names)
            problems.at_file(
                display_name(path),
                f"{folder} for '{path.stem}', which is not an entity of this pack{hint}",
            )
            continue
        document = load_document(path, kind, problems)
        if document is not None:
            documents[path.stem] = document
    return documents


class RuleChecker:
    """Builds the rules one file declares for one entity, reporting at their keys."""

    def __init__(
        self,
        document: SourceDocument,
        base: tuple[PathItem, ...],
        field_names: Iterable[str],
        problems: ProblemCollector,
        *,
        entity: str,
        templates: Path | None = None,
    ) -> None:
        self.entity = entity
        self.templates = templates
        """The pack's ``templates/`` folder, where e-mail templates are looked up."""
        self.pack = entity.split(".", 1)[0]
        self.pending: list[PendingAction] = []
        self.pending_roles: list[PendingRole] = []
        self.pending_assigns: list[PendingAssign] = []
        self.document = document
        self.base = base
        self.fields = set(field_names)
        self.scope = self.fields | set(SYSTEM_FIELDS) | SCOPE_NAMES
        self.problems = problems
        self._line = False
        """Whether the action being parsed runs per line (``for_each``): ``line`` in scope."""

    def build(self, raw_rules: list[dict[str, Any] | None], taken: dict[str, str]) -> list[RuleDef]:
        """``taken`` maps rule names already declared (by the pack) to their file."""
        rules = []
        for index, raw in enumerate(raw_rules):
            if raw is None:  # broke the schema: reported, left out (metadata/_documents.py)
                continue
            rule = self._rule(index, raw, taken)
            taken.setdefault(raw["name"], self.document.display_name)
            if rule is not None:
                rules.append(rule)
        return rules

    def error(self, where: tuple[PathItem, ...], message: str, *, key: bool = False) -> None:
        self.problems.at(self.document, (*self.base, *where), message, key=key)

    def _rule(self, index: int, raw: dict[str, Any], taken: dict[str, str]) -> RuleDef | None:
        name = raw["name"]
        ok = self._name_ok(index, name, taken)
        if "schedule" in raw:
            ok = self._schedule_ok(index, raw) and ok
        elif "where" in raw:
            self.error(
                (index, "where"),
                "'where' selects the records of a scheduled rule; add a 'schedule'",
                key=True,
            )
            ok = False
        ok = self._assert_keys_ok(index, raw) and ok
        if "assert" not in raw and "actions" not in raw and "assign" not in raw:
            self.error(
                (index,), f"rule '{name}' needs an 'assert' expression, 'actions' or 'assign'"
            )
            return None
        assign = self._assign(index, raw) if "assign" in raw else None
        ok = ("assign" not in raw or assign is not None) and ok
        for key in ("when", "assert", "where"):
            if key in raw and not self._expression_ok((index, key), raw[key]):
                ok = False
        run_as = raw.get("run_as", RUN_AS_SYSTEM)
        if run_as != RUN_AS_SYSTEM:
            ok = self._run_as_ok(index, raw, run_as) and ok
        field_name = raw.get("field")
        if field_name is not None and field_name not in self.fields:
            hint = did_you_mean(field_name, self.fields)
            self.error((index, "field"), f"field '{field_name}' is not a field{hint}")
            ok = False
        actions = []
        for position, raw_action in enumerate(raw.get("actions", [])):
            action = self._action((index, "actions", position), raw_action)
            if action is None:
                ok = False
            else:
                actions.append(action)
        if not ok:
            return None
        events = raw.get("on", ["create"] if assign is not None else ["create", "update"])
        return RuleDef(
            name=name,
            assertion=raw.get("assert"),
            message=raw.get("message") or f"rule '{name}' is not satisfied",
            events=frozenset(
                RuleEvent(e) for e in ([events] if isinstance(events, str) else events)
            ),
            when=raw.get("when"),
            field=field_name,
            actions=tuple(actions),
            origin=self.document.display_name,
            schedule=raw.get("schedule"),
            where=raw.get("where"),
            run_as=run_as,
            code=raw.get("code", "rule"),
            status=raw.get("status", 422),
            assign=assign,
        )

    def _assign(self, index: int, raw: dict[str, Any]) -> AssignDef | None:
        """The rule's ``assign`` (checked again once every entity is built)."""
        assign = parse_assign(
            raw,
            _listed(raw.get("on", ["create"])),
            self.fields,
            self.scope,
            lambda path, message: self.error((index, *path), message),
        )
        if assign is not None:
            at = (*self.base, index, "assign")
            self.pending_assigns.append(PendingAssign(self.document, at, self.entity, assign))
        return assign

    def _assert_keys_ok(self, index: int, raw: dict[str, Any]) -> bool:
        """``code`` and ``status`` describe a failed ``assert``: none without one."""
        ok = True
        for key in ("code", "status"):
            if key in raw and "assert" not in raw:
                self.error((index, key), f"'{key}' is the {key} of a failed 'assert'", key=True)
                ok = False
        return ok

    def _name_ok(self, index: int, name: str, taken: dict[str, str]) -> bool:
        ok = True
        if name in taken:
            self.error((index, "name"), f"rule '{name}' is already declared in {taken[name]}")
            ok = False
        if not is_snake_case(name):
            self.error((index, "name"), f"rule name '{name}' must be snake_case")
            ok = False
        return ok

    def _run_as_ok(self, index: int, raw: dict[str, Any], run_as: str) -> bool:
        if "actions" not in raw:
            message = "'run_as' sets the rights of a rule's actions; this rule has none"
        elif any(isinstance(a, dict) and a.get("async") for a in raw["actions"]):
            message = (
                "an async action is applied after the commit with the system's rights; "
                "'run_as' cannot limit it: drop 'async' or 'run_as'"
            )
        elif run_as == RUN_AS_USER and "schedule" in raw:
            message = "a scheduled rule has no writing user: use run_as: system or a role"
        else:
            if run_as != RUN_AS_USER:
                self.pending_roles.append(
                    PendingRole(self.document, (*self.base, index, "run_as"), run_as)
                )
            return True
        self.error((index, "run_as"), message, key=True)
        return False

    def _action(self, where: tuple[PathItem, ...], raw: dict[str, Any]) -> ActionDef | None:
        raw = dict(raw)
        deferred = bool(raw.pop("async", False))
        for_each = raw.pop("for_each", None)
        condition = raw.pop("when", None)
        if len(raw) != 1:
            self.error(where, f"an action has exactly one of: {', '.join(action_kinds())}")
            return None
        ((kind, body),) = raw.items()
        if for_each is not None and deferred:
            self.error((*where, "for_each"), "'for_each' cannot be async", key=True)
            return None
        self._line = for_each is not None
        try:
            action = action_definition(kind).parse(body, self, (*where, kind), deferred=deferred)
            if condition is not None:
                if not self._expression_ok((*where, "when"), condition):
                    return None
                if action is not None:
                    action = replace(action, when=condition)
                    self._retarget(where, action)
        finally:
            self._line = False
        if action is None or for_each is None:
            return action
        if isinstance(action, RecordAction) and action.lines is not None:
            self.error(
                (*where, "for_each"),
                "a create with 'lines' maps every line already: drop 'for_each'",
                key=True,
            )
            return None
        if isinstance(action, RecordAction) and action.set is not None:
            self.error(
                (*where, "for_each"),
                "a create with 'set' fills one field of the record: drop 'for_each'",
                key=True,
            )
            return None
        action = replace(action, for_each=for_each)
        if not isinstance(action, RecordAction):  # a record action is checked with its target
            self.pending.append(
                PendingAction(self.document, (*self.base, *where), action, self.entity)
            )
        else:
            self._retarget(where, action)
        return action

    def _retarget(self, where: tuple[PathItem, ...], action: ActionDef) -> None:
        """The pending check of the action at ``where`` sees ``action`` as it now is."""
        self.pending = [
            replace(p, action=action) if p.where == (*self.base, *where) else p
            for p in self.pending
        ]

    def target_later(self, where: tuple[PathItem, ...], action: ActionDef) -> None:
        """``action``'s target and fields are checked once every entity is built."""
        if isinstance(action, RecordAction):
            pending = PendingAction(self.document, (*self.base, *where), action, self.entity)
            self.pending.append(pending)

    def _schedule_ok(self, index: int, raw: dict[str, Any]) -> bool:
        ok = True
        try:
            CronSchedule.parse(raw["schedule"])
        except CronError as exc:
            self.error((index, "schedule"), f"schedule '{raw['schedule']}': {exc}")
            ok = False
        for key in ("on", "assert"):
            if key in raw:
                self.error(
                    (index, key),
                    f"a scheduled rule runs on its schedule, not on writes: it cannot have '{key}'",
                    key=True,
                )
                ok = False
        if "actions" not in raw:
            self.error((index,), f"scheduled rule '{raw['name']}' needs 'actions'")
            ok = False
        return ok

    def templates_ok(
        self, where: tuple[PathItem, ...], values: Mapping[str, Any], *, line: bool = False
    ) -> bool:
        ok = True
        scope = self.scope | {"line"} if line or self._line else self.scope
        for key, value in values.items():
            if isinstance(value, dict):
                ok = self.templates_ok((*where, key), value, line=line) and ok
            elif is_template(value):
                problem = template_problem(value, scope)
                if problem:
                    self.error((*where, key), problem)
                    ok = False
        return ok

    def template_source(self, where: tuple[PathItem, ...], name: str) -> str | None:
        folder = self.templates
        path = (folder / name).resolve() if folder is not None else None
        if folder is None or path is None or not path.is_relative_to(folder.resolve()):
            self.error(where, f"template '{name}' must be a file in the pack's templates/ folder")
            return None
        if not path.is_file():
            self.error(where, f"template '{name}' not found in {display_name(folder)}")
            return None
        source = path.read_text("utf-8")
        problem = template_problem(source, self.scope)
        if problem:
            self.error(where, f"{name}: {problem}")
            return None
        return source

    def print_template(self, where: tuple[PathItem, ...], name: str) -> bool:
        folder = self.templates
        if folder is None or not (folder / name).is_file() or "/" in name:
            self.error(where, f"print format '{name}' not found in the pack's templates/ folder")
            return False
        return True

    def _expression_ok(self, where: tuple[PathItem, ...], source: str) -> bool:
        scope = self.scope | {"line"} if self._line else self.scope
        problems = expression_problems(source, scope)
        for problem in problems:
            self.error(where, problem)
        return not problems


def check_line_rules(
    document: SourceDocument,
    base: tuple[PathItem, ...],
    raw_rules: Any,
    entity: str,
    parent: str,
    problems: ProblemCollector,
) -> None:
    """The rules of a line item entity (``entity``, the ``children`` of ``parent``) run with
    the writes of the parent that send its lines: ``assert`` (with ``when``) on ``create``
    and ``update``. Actions, schedules and ``on: delete`` would never run there: each is a
    problem at its key rather than a rule silently ignored."""
    if not isinstance(raw_rules, list):
        return
    lines = f"{entity} is the line items of {parent}"
    for index, raw in enumerate(raw_rules):
        if not isinstance(raw, dict):
            continue
        key = "schedule" if "schedule" in raw else "actions" if "actions" in raw else None
        if key is not None:
            what = "scheduled rules" if key == "schedule" else "actions"
            problems.at(
                document,
                (*base, index, key),
                f"{lines}: {what} are not supported on line items, only 'assert' rules run "
                f"with its writes; put this rule on {parent} (its lines are in scope there)",
                key=True,
            )
        events = raw.get("on", [])
        if RuleEvent.DELETE.value in ([events] if isinstance(events, str) else events):
            problems.at(
                document,
                (*base, index, "on"),
                f"{lines}: 'on: delete' is not supported on line items (a line is removed "
                f"by a write of {parent}); use a rule of {parent}, whose 'old' has the lines "
                "as they were",
                key=True,
            )


def _listed(events: str | list[str]) -> list[str]:
    return [events] if isinstance(events, str) else list(events)
