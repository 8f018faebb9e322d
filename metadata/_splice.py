"""Splicing YAML text at node positions: insert, replace and remove one entry or key of a
file, leaving every other character as it was. The positions are those of ruamel.yaml's
composed nodes; the new values are rendered by ``metadata._roundtrip`` (which checks the
result and writes the file)."""

from __future__ import annotations

from typing import Any

from ruamel.yaml.error import YAMLError
from ruamel.yaml.nodes import CollectionNode, MappingNode, Node, ScalarNode, SequenceNode

from metadata._roundtrip import (
    _DEFAULT_INDENT,
    CannotSplice,
    _find,
    _new_yaml,
    _render_pair,
    canon,
    render_value,
)


def _compose(text: str) -> MappingNode:
    try:
        root = _new_yaml().compose(text)
    except YAMLError as exc:
        raise CannotSplice(f"an intermediate result is not valid YAML: {exc}") from None
    if not isinstance(root, MappingNode):
        raise CannotSplice("an intermediate result has no mapping at the top level")
    return root


def _entry(text: str, name: str) -> tuple[Node, MappingNode, int]:
    """The ``fields`` key node, its mapping node and the index of the entry of ``name``."""
    root = _compose(text)
    fields_index = _find(root, "fields")
    if fields_index is None:
        raise CannotSplice("'fields' was not found")
    fields_key, fields = root.value[fields_index]
    index = _find(fields, name) if isinstance(fields, MappingNode) else None
    if index is None or not isinstance(fields, MappingNode):
        raise CannotSplice(f"the entry of '{name}' was not found")
    _no_alias(*fields.value[index])
    return fields_key, fields, index


def _no_alias(key: Node, value: Node) -> None:
    if value.start_mark.index < key.end_mark.index:
        raise CannotSplice(f"the value of '{key.value}' is a YAML alias")


def _is_implicit_null(node: Node) -> bool:
    """``key:`` with nothing after it; its marks point at the next token, not here."""
    return (
        isinstance(node, ScalarNode)
        and node.value == ""
        and not node.style
        and node.start_mark.index == node.end_mark.index
    )


def _is_block_collection(node: Node) -> bool:
    return isinstance(node, CollectionNode) and not node.flow_style


def _is_empty(node: Node) -> bool:
    """A scalar (the data was checked: it is null) or an empty flow mapping."""
    return isinstance(node, ScalarNode) or (isinstance(node, MappingNode) and not node.value)


def _line_start(text: str, index: int) -> int:
    return text.rfind("\n", 0, index) + 1


def _next_line(text: str, index: int) -> int:
    """Offset just after the line break that ends the line holding ``index``."""
    end = text.find("\n", index)
    return len(text) if end < 0 else end + 1


def _colon_end(text: str, key: Node) -> int:
    index = int(key.end_mark.index)
    while index < len(text) and text[index] in " \t":
        index += 1
    if index >= len(text) or text[index] != ":":
        raise CannotSplice(f"the key '{key.value}' is not followed by ':'")
    return index + 1


def _node_end(text: str, node: Node) -> int:
    """Offset just after the last character of ``node``'s own text (not its comments)."""
    if isinstance(node, ScalarNode):
        end = int(node.end_mark.index)
        if node.style in ("|", ">"):  # a block scalar's mark includes the blank lines after it
            while end > node.start_mark.index and text[end - 1] in " \t\n":
                end -= 1
        return end
    if not isinstance(node, CollectionNode) or node.flow_style or not node.value:
        return int(node.end_mark.index)
    if isinstance(node, MappingNode):
        return _pair_end(text, *node.value[-1])
    return _node_end(text, node.value[-1])


def _pair_end(text: str, key: Node, value: Node) -> int:
    if value.start_mark.index < key.end_mark.index:  # an alias: ``key: *anchor``
        return _next_line(text, key.end_mark.index) - 1
    if _is_implicit_null(value):
        return _colon_end(text, key)
    return _node_end(text, value)


def _check_line_start(text: str, key: Node) -> int:
    start = _line_start(text, key.start_mark.index)
    if text[start : key.start_mark.index].strip():
        raise CannotSplice(f"the key '{key.value}' does not start its line")
    return start


def _insert_line(text: str, at: int, line: str) -> str:
    """Insert ``line`` (no line break) as a line of its own at line boundary ``at``."""
    prefix = "" if at == 0 or text[at - 1] == "\n" else "\n"
    return f"{text[:at]}{prefix}{line}\n{text[at:]}"


def _append_pair(text: str, mapping: MappingNode, pair: str) -> str:
    """Add ``pair`` (``key: value``) after the last entry of a non-empty or flow mapping."""
    if mapping.flow_style:
        if not mapping.value:
            brace = text.index("{", mapping.start_mark.index) + 1
            return text[:brace] + pair + text[brace:]
        end = _pair_end(text, *mapping.value[-1])
        return f"{text[:end]}, {pair}{text[end:]}"
    first_key = mapping.value[0][0]
    _check_line_start(text, first_key)
    at = _next_line(text, _pair_end(text, *mapping.value[-1]))
    return _insert_line(text, at, " " * first_key.start_mark.column + pair)


def _remove_pair(text: str, mapping: MappingNode, index: int, owner: Node) -> str:
    """Remove entry ``index`` of ``mapping``, the value of key ``owner``."""
    key, value = mapping.value[index]
    if mapping.flow_style:
        return _remove_flow_pair(text, mapping, index)
    start = _check_line_start(text, key)
    floor = _colon_end(text, owner) if index == 0 else _pair_end(text, *mapping.value[index - 1])
    first_free_line = _next_line(text, floor)
    while start > first_free_line:  # the comment lines directly above belong to the entry
        above = _line_start(text, start - 1)
        if not text[above:start].lstrip().startswith("#"):
            break
        start = above
    end = _next_line(text, _pair_end(text, key, value))
    blank_before = start > 0 and not text[_line_start(text, start - 1) : start].strip()
    following = text[end : _next_line(text, end)]
    if blank_before and following and not following.strip():
        end += len(following)  # do not leave two blank lines where the entry was
    text = text[:start] + text[end:]
    if len(mapping.value) == 1:  # nothing left: keep the key, as an empty mapping
        colon = _colon_end(text, owner)
        text = f"{text[:colon]} {{}}{text[colon:]}"
    return text


def _remove_flow_pair(text: str, mapping: MappingNode, index: int) -> str:
    key, value = mapping.value[index]
    if index + 1 < len(mapping.value):  # ``key: value, `` up to the next key
        start, end = key.start_mark.index, mapping.value[index + 1][0].start_mark.index
    elif index > 0:  # ``, key: value`` after the previous value
        start, end = _pair_end(text, *mapping.value[index - 1]), _pair_end(text, key, value)
    else:
        start, end = key.start_mark.index, _pair_end(text, key, value)
    return text[:start] + text[end:]


def _replace_value(text: str, key: Node, value: Node, rendered: str) -> str:
    _no_alias(key, value)
    if _is_implicit_null(value) or _is_block_collection(value):
        start = _colon_end(text, key)
        end = start if _is_implicit_null(value) else _node_end(text, value)
        return f"{text[:start]} {rendered}{text[end:]}"
    start, end = value.start_mark.index, _node_end(text, value)
    return text[:start] + rendered + text[end:]


def _detect_indent(root: MappingNode | None) -> int:
    """The file's mapping indentation: how far a nested block mapping's keys are indented
    from their parent key; 2 when the file has no nested block mapping."""
    pending: list[Node] = [] if root is None else [root]
    while pending:
        node = pending.pop(0)
        if not isinstance(node, MappingNode) or node.flow_style:
            continue
        for key, value in node.value:
            if isinstance(value, MappingNode) and not value.flow_style and value.value:
                step = value.value[0][0].start_mark.column - key.start_mark.column
                if step > 0:
                    return int(step)
            pending.append(value)
    return _DEFAULT_INDENT


# --- the edits: entries of ``fields`` and items of block lists ------------------------


def add_entry(text: str, root: MappingNode | None, name: str, entry: dict[str, Any]) -> str:
    """Append the entry of ``name`` at the end of ``fields``, creating ``fields`` if need be."""
    pair = _render_pair(name, entry)
    indent = _detect_indent(root)
    if root is None:  # empty, or only comments
        return _insert_line(text, len(text), f"fields:\n{' ' * indent}{pair}")
    index = _find(root, "fields")
    if index is None:
        if root.flow_style:
            return _append_pair(text, root, f"fields: {{{pair}}}")
        column = root.value[0][0].start_mark.column
        return _append_pair(text, root, f"fields:\n{' ' * (column + indent)}{pair}")
    key, value = root.value[index]
    _no_alias(key, value)
    if root.flow_style and not isinstance(value, MappingNode):  # ``{fields: null}``
        return _replace_value(text, key, value, f"{{{pair}}}")
    if _is_empty(value) and not root.flow_style:  # ``fields:``, ``fields: {}``: a block
        colon = _colon_end(text, key)
        text = text[:colon] + text[_pair_end(text, key, value) :]
        at = _next_line(text, colon)
        return _insert_line(text, at, " " * (key.start_mark.column + indent) + pair)
    if not isinstance(value, MappingNode):
        raise CannotSplice("'fields' is not a mapping")
    return _append_pair(text, value, pair)


def remove_entry(text: str, name: str) -> str:
    fields_key, fields, index = _entry(text, name)
    return _remove_pair(text, fields, index, fields_key)


def replace_entry(text: str, name: str, entry: dict[str, Any]) -> str:
    """``name:`` (null) becomes ``name: {entry}``."""
    _, fields, index = _entry(text, name)
    key, value = fields.value[index]
    return _replace_value(text, key, value, render_value(entry))


def _entry_mapping(text: str, name: str) -> tuple[Node, MappingNode]:
    _, fields, index = _entry(text, name)
    key, value = fields.value[index]
    if not isinstance(value, MappingNode):
        raise CannotSplice(f"the entry of '{name}' is not a mapping")
    return key, value


def change_entry(text: str, name: str, before: dict[str, Any], changes: dict[str, Any]) -> str:
    """Set and remove keys of an existing entry, each in place: new keys first, so that a
    block entry never passes through an empty state; unchanged values keep their text."""
    for key, value in changes.items():
        if value is None or (key in before and canon(before[key]) == canon(value)):
            continue
        entry = _entry_mapping(text, name)[1]
        index = _find(entry, key)
        if index is None:
            text = _append_pair(text, entry, _render_pair(key, value))
        else:
            old_key, old_value = entry.value[index]
            text = _replace_value(text, old_key, old_value, render_value(value))
    for key, value in changes.items():
        if value is not None or key not in before:
            continue
        entry_key, entry = _entry_mapping(text, name)
        index = _find(entry, key)
        if index is None:
            raise CannotSplice(f"the key '{key}' of '{name}' was not found")
        text = _remove_pair(text, entry, index, entry_key)
    return text


def append_to_list(text: str, keys: tuple[str, ...], item: str) -> str:
    indent = (
        _detect_indent(_compose(text)) if text.strip() and _has_mapping(text) else _DEFAULT_INDENT
    )
    node: MappingNode | None = _compose(text) if _has_mapping(text) else None
    for depth, key in enumerate(keys):
        if node is None:  # nothing yet: the whole path as a block at the end of the file
            return _insert_line(text, len(text), _block(keys[depth:], item, 0, indent))
        if node.flow_style:
            raise CannotSplice(f"'{key}' sits in a flow mapping")
        index = _find(node, key)
        if index is None:
            column = node.value[0][0].start_mark.column if node.value else 0
            block = _block(keys[depth:], item, column, indent)
            return (
                _append_pair(text, node, block.lstrip(" "))
                if node.value
                else _insert_line(text, len(text), block)
            )
        key_node, value = node.value[index]
        _no_alias(key_node, value)
        if depth < len(keys) - 1:
            if _is_empty(value):
                colon = _colon_end(text, key_node)
                text = text[:colon] + text[_pair_end(text, key_node, value) :]
                rest = _block(keys[depth + 1 :], item, key_node.start_mark.column + indent, indent)
                return _insert_line(text, _next_line(text, colon), rest)
            if not isinstance(value, MappingNode):
                raise CannotSplice(f"'{key}' is not a mapping")
            node = value
            continue
        if _is_empty(value):  # ``rules:`` with nothing: a block list under it
            colon = _colon_end(text, key_node)
            text = text[:colon] + text[_pair_end(text, key_node, value) :]
            line = " " * (key_node.start_mark.column + indent) + "- " + item
            return _insert_line(text, _next_line(text, colon), line)
        if not isinstance(value, SequenceNode) or value.flow_style or not value.value:
            raise CannotSplice(f"'{key}' is not a block list")
        dash = value.start_mark.column
        at = _next_line(text, _node_end(text, value.value[-1]))
        return _insert_line(text, at, " " * dash + "- " + item)
    raise CannotSplice("no key to append to")


def _has_mapping(text: str) -> bool:
    try:
        return isinstance(_new_yaml().compose(text), MappingNode)
    except YAMLError:
        return False


def _block(keys: tuple[str, ...], item: str, column: int, indent: int) -> str:
    """``keys`` as nested block keys from ``column``, the last holding a list of ``item``."""
    lines = [" " * (column + depth * indent) + f"{key}:" for depth, key in enumerate(keys)]
    lines.append(" " * (column + len(keys) * indent) + "- " + item)
    return "\n".join(lines)
