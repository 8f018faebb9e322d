"""Definition errors that point at the YAML source.

Every problem found while loading definitions is collected (not raised on the first one), so
`tessera validate` can show all of them at once, each as ``file:line:col: message``.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from metadata._yaml import PathItem as PathItem
    from metadata._yaml import SourceDocument


@dataclass(frozen=True, slots=True)
class DefinitionProblem:
    """One problem in one definition file; line and column are 1-based."""

    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class DefinitionError(Exception):
    """Raised when definitions cannot be loaded; carries every problem found."""

    def __init__(self, problems: Sequence[DefinitionProblem]) -> None:
        self.problems = tuple(sorted(problems, key=lambda p: (p.file, p.line, p.column)))
        super().__init__("\n".join(str(p) for p in self.problems))


@dataclass
class ProblemCollector:
    """Accumulates problems during a load; resolves YAML paths to positions lazily.

    It also remembers what failed the first pass (a file that does not parse or breaks its
    schema, a field that breaks it), so that the second pass can go on checking everything
    else without follow-on problems: a reference to an entity whose file failed is not an
    "unknown entity", a field that failed is not "not a field" where it is used. The
    failure itself is reported where it is.
    """

    problems: list[DefinitionProblem] = field(default_factory=list)
    failed_entities: set[str] = field(default_factory=set)
    """Qualified entities whose file could not be used at all; any field name is taken."""
    failed_fields: dict[str, set[str]] = field(default_factory=dict)
    """Fields that failed their schema check, by qualified entity name."""
    partly_failed: set[str] = field(default_factory=set)
    """Entities a customization of which failed: any field name may be one it adds."""

    def at(
        self, document: SourceDocument, path: Sequence[PathItem], message: str, *, key: bool = False
    ) -> None:
        line, column = document.position(path, key=key)
        self.problems.append(DefinitionProblem(document.display_name, line, column, message))

    def has_failed(self, entity: str, field_name: str | None = None) -> bool:
        """Whether ``entity`` (or its field ``field_name``) failed the first pass, so that
        what cannot be found of it is not a problem of its own."""
        if entity in self.failed_entities:
            return True
        if field_name is None:
            return False
        return entity in self.partly_failed or field_name in self.failed_fields.get(entity, ())

    def unknown(
        self,
        document: SourceDocument,
        path: Sequence[PathItem],
        message: str,
        *,
        entity: str,
        field_name: str | None = None,
        key: bool = False,
    ) -> None:
        """Report that ``entity`` (or its ``field_name``) does not exist, unless it failed
        the first pass: then it exists but is broken, reported at its own file."""
        if not self.has_failed(entity, field_name):
            self.at(document, path, message, key=key)

    def at_file(self, file: str, message: str, line: int = 1, column: int = 1) -> None:
        self.problems.append(DefinitionProblem(file, line, column, message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise DefinitionError(self.problems)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ``; did you mean 'x'?`` suffix, or an empty string when nothing is close."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
