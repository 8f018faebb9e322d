"""Fast YAML loading that keeps node positions for error messages.

PyYAML's C loader parses once into a node tree; values are constructed from it and the tree
is kept so that an error found later (schema or semantic check) can be reported at the exact
line and column of the offending key or value. YAML 1.1 booleans such as ``on``/``yes`` are
*not* booleans here: ``on: [create]`` in a rule and ``values: [yes, no]`` in an enum must stay
strings, as YAML 1.2 and every user expects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from metadata._errors import PathItem

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictBoolLoader(_BaseLoader):  # type: ignore[misc, valid-type]
    """Safe loader whose booleans are only true/false (YAML 1.2 core schema)."""


_StrictBoolLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in _BaseLoader.yaml_implicit_resolvers.copy().items()
}
_StrictBoolLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool",
    re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"),
    list("tTfF"),
)


class YamlSyntaxError(Exception):
    """A file that is not valid YAML; carries the 1-based position."""

    def __init__(self, message: str, line: int, column: int) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


@dataclass(frozen=True, slots=True)
class DuplicateKey:
    path: tuple[PathItem, ...]
    key: str


class SourceDocument:
    """A parsed YAML file: its data plus the node tree used to locate paths."""

    def __init__(self, path: Path, display_name: str, data: Any, root: yaml.Node | None) -> None:
        self.path = path
        self.display_name = display_name
        self.data = data
        self._root = root
        self.broken_fields: set[str] = set()

    @classmethod
    def load(cls, path: Path, display_name: str) -> SourceDocument:
        text = path.read_text(encoding="utf-8")
        loader = _StrictBoolLoader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = exc.problem or exc.context or "invalid YAML"
            raise YamlSyntaxError(f"invalid YAML: {problem}", line, column) from None
        finally:
            loader.dispose()
        return cls(path, display_name, data, root)

    def duplicate_keys(self) -> list[DuplicateKey]:
        found: list[DuplicateKey] = []
        _find_duplicates(self._root, (), found)
        return found

    def position(self, path: Sequence[PathItem], *, key: bool = False) -> tuple[int, int]:
        """1-based (line, column) of the value at ``path`` (or of its key when ``key``)."""
        node = self._root
        key_node: yaml.Node | None = None
        for item in path:
            child = _child(node, item)
            if child is None:
                break
            key_node, node = child
        target = key_node if key and key_node is not None else node
        if target is None:
            return 1, 1
        return target.start_mark.line + 1, target.start_mark.column + 1


def _child(node: yaml.Node | None, item: PathItem) -> tuple[yaml.Node | None, yaml.Node] | None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in reversed(node.value):
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == str(item):
                return key_node, value_node
    elif isinstance(node, yaml.SequenceNode) and isinstance(item, int) and item < len(node.value):
        return None, node.value[item]
    return None


def _find_duplicates(
    node: yaml.Node | None, path: tuple[PathItem, ...], found: list[DuplicateKey]
) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            if key in seen:
                found.append(DuplicateKey(path, key))
            seen.add(key)
            _find_duplicates(value_node, (*path, key), found)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _find_duplicates(item, (*path, index), found)
