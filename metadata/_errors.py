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

    from metadata._yaml import SourceDocument

PathItem = str | int


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
    """Accumulates problems during a load; resolves YAML paths to positions lazily."""

    problems: list[DefinitionProblem] = field(default_factory=list)

    def at(
        self, document: SourceDocument, path: Sequence[PathItem], message: str, *, key: bool = False
    ) -> None:
        line, column = document.position(path, key=key)
        self.problems.append(DefinitionProblem(document.display_name, line, column, message))

    def at_file(self, file: str, message: str, line: int = 1, column: int = 1) -> None:
        self.problems.append(DefinitionProblem(file, line, column, message))

    def raise_if_any(self) -> None:
        if self.problems:
            raise DefinitionError(self.problems)


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """A ``; did you mean 'x'?`` suffix, or an empty string when nothing is close."""
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""
