"""Validation rules (SPEC §3.3): ``rules/<entity>.yaml`` in a pack, ``rules:`` in a
customization. Each rule is checked here (names, expressions, the field it points at) and
becomes a ``RuleDef``; the engine compiles and enforces them.

This release enforces ``assert`` rules. ``actions``, ``schedule`` and ``where`` belong to
the automation release and are refused with a message rather than silently ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from metadata._documents import YAML_SUFFIXES, display_name, load_document
from metadata._errors import did_you_mean
from metadata._expressions import SCOPE_NAMES, expression_names, expression_syntax_error
from metadata._fields import is_snake_case
from metadata._model import SYSTEM_FIELDS, RuleDef, RuleEvent

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable
    from pathlib import Path

    from metadata._errors import PathItem, ProblemCollector
    from metadata._yaml import SourceDocument

NOT_YET = ("actions", "schedule", "where")


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
    ) -> None:
        self.document = document
        self.base = base
        self.fields = set(field_names)
        self.scope = self.fields | set(SYSTEM_FIELDS) | SCOPE_NAMES
        self.problems = problems

    def build(self, raw_rules: list[dict[str, Any]], taken: dict[str, str]) -> list[RuleDef]:
        """``taken`` maps rule names already declared (by the pack) to their file."""
        rules = []
        for index, raw in enumerate(raw_rules):
            rule = self._rule(index, raw, taken)
            taken.setdefault(raw["name"], self.document.display_name)
            if rule is not None:
                rules.append(rule)
        return rules

    def _error(self, where: tuple[PathItem, ...], message: str, *, key: bool = False) -> None:
        self.problems.at(self.document, (*self.base, *where), message, key=key)

    def _rule(self, index: int, raw: dict[str, Any], taken: dict[str, str]) -> RuleDef | None:
        name = raw["name"]
        ok = True
        if name in taken:
            self._error((index, "name"), f"rule '{name}' is already declared in {taken[name]}")
            ok = False
        if not is_snake_case(name):
            self._error((index, "name"), f"rule name '{name}' must be snake_case")
            ok = False
        for key in NOT_YET:
            if key in raw:
                self._error(
                    (index, key),
                    f"'{key}' is not supported by this release: rules can only assert",
                    key=True,
                )
                ok = False
        if "assert" not in raw:
            self._error((index,), f"rule '{name}' needs an 'assert' expression")
            return None
        for key in ("when", "assert"):
            if key in raw and not self._expression_ok((index, key), raw[key]):
                ok = False
        field_name = raw.get("field")
        if field_name is not None and field_name not in self.fields:
            hint = did_you_mean(field_name, self.fields)
            self._error((index, "field"), f"field '{field_name}' is not a field{hint}")
            ok = False
        if not ok:
            return None
        events = raw.get("on", ["create", "update"])
        return RuleDef(
            name=name,
            assertion=raw["assert"],
            message=raw.get("message") or f"rule '{name}' is not satisfied",
            events=frozenset(
                RuleEvent(e) for e in ([events] if isinstance(events, str) else events)
            ),
            when=raw.get("when"),
            field=field_name,
            origin=self.document.display_name,
        )

    def _expression_ok(self, where: tuple[PathItem, ...], source: str) -> bool:
        problem = expression_syntax_error(source)
        if problem:
            self._error(where, problem)
            return False
        unknown = sorted(expression_names(source) - self.scope)
        for name in unknown:
            self._error(
                where, f"unknown name '{name}' in expression{did_you_mean(name, self.scope)}"
            )
        return not unknown
