"""Autonumber formats: their tokens (read by the loader and by the engine, which numbers
with them), and the checks of an autonumber against the rest of its entity once the entity
is whole (its customization applied): the moment it numbers (``assign: submit`` needs a
document), the field its date tokens come from (``date_field``) and the fields its field
tokens name (``{type}``). Each problem is reported at the key that causes it."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from metadata._errors import did_you_mean
from metadata._model import FieldType, NumberAssign

if TYPE_CHECKING:
    from collections.abc import Mapping

    from metadata._errors import ProblemCollector
    from metadata._model import EntityDef, FieldDef
    from metadata._yaml import SourceDocument

AUTONUMBER_TOKEN = re.compile(r"\{(YYYY|YY|MM|DD|#+|[a-z][a-z0-9_]*)\}")
"""The tokens of an autonumber's ``format``: date parts, a counter (``{####}``) and field
tokens (``{type}``: the value of that field of the record); the loader checks formats with
it and the engine numbers with it."""
DATE_TOKEN_WIDTHS = {"YYYY": 4, "YY": 2, "MM": 2, "DD": 2}
AUTONUMBER_MAX_LENGTH = 64
"""The longest number an autonumber column holds (``VARCHAR(64)``)."""


def autonumber_field_tokens(fmt: str) -> tuple[str, ...]:
    """The fields a format's field tokens name, in order (``{type}`` → ``type``)."""
    return tuple(
        token
        for token in AUTONUMBER_TOKEN.findall(fmt)
        if token[0] != "#" and token not in DATE_TOKEN_WIDTHS
    )


DATE_SOURCES = frozenset({FieldType.DATE, FieldType.DATETIME})
TOKEN_SOURCES = frozenset({FieldType.STRING, FieldType.ENUM})
"""The types a field token may name: short text, such as a code or an enum's value."""


def check_autonumbers(
    entity: EntityDef, documents: Mapping[str, SourceDocument], problems: ProblemCollector
) -> None:
    for field in entity.fields.values():
        document = documents.get(field.origin)
        if field.type is FieldType.AUTONUMBER and field.format and document is not None:
            _AutonumberCheck(entity, field, document, problems).run()


class _AutonumberCheck:
    def __init__(
        self,
        entity: EntityDef,
        field: FieldDef,
        document: SourceDocument,
        problems: ProblemCollector,
    ) -> None:
        self.entity = entity
        self.field = field
        self.document = document
        self.problems = problems

    def error(self, key: str, message: str) -> None:
        self.problems.at(self.document, ("fields", self.field.name, key), message)

    def run(self) -> None:
        field = self.field
        name = self.entity.qualified_name
        if field.assign is NumberAssign.SUBMIT and not self.entity.document:
            self.error(
                "assign",
                f"assign: submit numbers a document as it is submitted, and {name} is not "
                "one: add 'document: true' to its entity file, or use assign: insert",
            )
        if field.date_field is not None:
            self._check_date_field(field.date_field)
        for token in dict.fromkeys(autonumber_field_tokens(field.format or "")):
            problem = self._source_problem(token, TOKEN_SOURCES, "a string or enum")
            if problem:
                self.error("format", f"field token {{{token}}}: {problem}")

    def _check_date_field(self, date_field: str) -> None:
        problem = self._source_problem(date_field, DATE_SOURCES, "a date or datetime")
        if problem:
            self.error("date_field", f"date_field '{date_field}': {problem}")
        elif not any(
            t in DATE_TOKEN_WIDTHS for t in AUTONUMBER_TOKEN.findall(self.field.format or "")
        ):
            self.error(
                "date_field",
                f"date_field '{date_field}' is not used: the format has no date token "
                "({YYYY}, {YY}, {MM} or {DD})",
            )

    def _source_problem(self, name: str, types: frozenset[FieldType], wanted: str) -> str | None:
        """Why the field ``name`` cannot give a number its value (of one of ``types``)."""
        source = self.entity.fields.get(name)
        if source is None:
            if self.problems.has_failed(self.entity.qualified_name, name):
                return None  # reported where it failed
            choices = [f.name for f in self.entity.fields.values() if f.type in types]
            hint = did_you_mean(name, choices)
            return f"{self.entity.qualified_name} has no such field{hint}"
        if source.type not in types:
            return f"is a {source.type} field; it must be {wanted} field"
        return None
