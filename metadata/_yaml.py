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

PathItem = str | int
"""One step of a path into a document: a mapping key or a list index."""

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


def _checked_timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    """A date or timestamp that does not exist (``2026-02-30``) is a YAML error at its
    position, not a ``ValueError`` out of the constructor."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except (ValueError, OverflowError) as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"'{node.value}' is not a valid date or time: {exc}", node.start_mark
        ) from None


_StrictBoolLoader.add_constructor("tag:yaml.org,2002:timestamp", _checked_timestamp)


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
            if root is not None and (shape := _shape_problem(root, shared="&" in text)):
                problem, mark = shape[0], shape[1].start_mark
                raise YamlSyntaxError(f"invalid YAML: {problem}", mark.line + 1, mark.column + 1)
            data = loader.construct_document(root) if root is not None else None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            problem = exc.problem or exc.context or "invalid YAML"
            raise YamlSyntaxError(f"invalid YAML: {problem}", line, column) from None
        except yaml.reader.ReaderError as exc:  # a character YAML does not allow (NUL, ...)
            line, column = _line_column(text, exc.position)
            character = exc.character if isinstance(exc.character, int) else ord(exc.character)
            problem = f"{exc.reason} (character #x{character:04x})"
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


MAX_DEPTH = 100
"""How deeply a definition file may nest: far more than any needs, little enough for the
checks that walk it recursively."""
MAX_VALUES = 1_000_000
"""How many values a file may have once its aliases are expanded (a "billion laughs" file
is small but expands exponentially)."""


def _shape_problem(root: yaml.Node, *, shared: bool) -> tuple[str, yaml.Node] | None:
    """Why the node tree is unfit for the checks that walk it, and where; or None.
    Iterative. Without anchors (``shared`` False) it is a tree: only its depth can be a
    problem. With them, each node (an alias is the node it names) is measured once."""
    if not shared:
        return _depth_problem(root)
    measured: dict[int, tuple[int, int]] = {}
    """id(node) -> (values once expanded, depth)."""
    open_nodes: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        key = id(node)
        children = _node_children(node)
        if leaving:
            open_nodes.discard(key)
            size = 1 + sum(measured[id(child)][0] for child in children)
            depth = 1 + max((measured[id(child)][1] for child in children), default=0)
            if depth > MAX_DEPTH:
                return f"values nested more than {MAX_DEPTH} levels deep", node
            if size > MAX_VALUES:
                return f"aliases expand to more than {MAX_VALUES:,} values", node
            measured[key] = (size, depth)
        elif key in open_nodes:
            return "an alias refers to a value that contains it", node
        elif key not in measured:
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children)
    return None


def _depth_problem(root: yaml.Node) -> tuple[str, yaml.Node] | None:
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return f"values nested more than {MAX_DEPTH} levels deep", node
        if isinstance(node, yaml.MappingNode):
            stack.extend((value, depth + 1) for _, value in node.value)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, depth + 1) for item in node.value)
    return None


def _node_children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _line_column(text: str, position: int) -> tuple[int, int]:
    """1-based line and column of the character at ``position`` of ``text``."""
    position = max(0, min(position, len(text)))
    line_start = text.rfind("\n", 0, position) + 1
    return text.count("\n", 0, position) + 1, position - line_start + 1


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
