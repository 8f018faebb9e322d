"""Adding, changing and removing the entries of customization files (overlays, SPEC §3.6).

Admins write ``<customizations>/<pack>/<entity>.yaml`` by hand and the meta API and the
designer add, change and remove field entries (and append rules and role grants) in the
same files, so an edit must leave every part of the file it does not change exactly as the
admin wrote it. The operations here say *what* changes (an entry of ``fields``, an item of
a list) and refuse what must not happen (a second entry for one field, removing an entry
that is not there); the text edits underneath, their checks, the file lock and the atomic
write are ``metadata._roundtrip``'s (the splicing itself ``metadata._splice``'s).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

from metadata._roundtrip import (
    BY_HAND,
    CannotSplice,
    Document,
    Edit,
    OverlayEditError,
    canon,
    check_keys,
    clean,
    clean_mapping,
    edit_file,
    key_position,
    parse,
    read_text,
    render_value,
)
from metadata._splice import (
    add_entry,
    append_to_list,
    change_entry,
    remove_entry,
    replace_entry,
)

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

__all__ = [
    "OverlayEditError",
    "add_field",
    "append_item",
    "read_overlay",
    "remove_field",
    "update_field",
]

_HEADER = "# Customizations of {pack}.{entity} (written by Tessera; comments and order are kept)\n"


def _header(path: Path) -> str:
    """The comment that starts a new overlay file."""
    return _HEADER.format(pack=path.parent.name, entity=path.stem)


def read_overlay(path: Path) -> dict[str, Any]:
    """The overlay as plain dicts, lists and scalars; ``{}`` when the file does not exist.

    Needs no lock: writers replace the file atomically, so a reader sees the old or the new
    bytes, never a mix.
    """
    read = read_text(path)
    if read is None:
        return {}
    return parse(read[0], str(path)).data


def add_field(path: Path, name: str, definition: Mapping[str, Any]) -> None:
    """Append ``name: {definition}`` (one line, flow style) at the end of ``fields``.

    Creates the file, with a header comment, and its folders when missing, and ``fields:``
    when the file has none. Raises ``OverlayEditError`` when the overlay already has an
    entry for ``name``: changing an entry is ``update_field``'s job, so a second add never
    silently overwrites an admin's customization.
    """
    where = str(path)
    _check_name(name, where)
    entry = clean_mapping(definition, where, f"fields.{name}")

    def edit(doc: Document) -> Edit:
        fields = _fields_data(doc, where)
        if name in fields:
            line, column = key_position(doc.root, "fields", name)
            raise OverlayEditError(
                where,
                f"the overlay already has an entry for field '{name}'; change that entry "
                "instead of adding the field again",
                line,
                column,
            )
        text = add_entry(doc.text, doc.root, name, entry)
        return Edit(text, _with_fields(doc.data, {**fields, name: entry}))

    edit_file(path, edit, create=True, header=_header(path))


def append_item(
    path: Path, keys: tuple[str, ...], item: Mapping[str, Any], *, header: str | None = None
) -> None:
    """Append ``item`` (one line, flow style) to the block list at ``keys`` (``("rules",)``,
    ``("roles", "clerk", "grants")``), creating the list and the mappings above it when
    missing. The rest of the file keeps its text. ``header`` starts a file that is new."""
    where = str(path)
    entry = clean_mapping(item, where, ".".join(keys))

    def edit(doc: Document) -> Edit:
        expected: dict[str, Any] = copy.deepcopy(dict(doc.data or {}))
        holder = expected
        for key in keys[:-1]:
            if holder.get(key) is None:
                holder[key] = {}
            holder = holder[key]
            if not isinstance(holder, dict):
                raise CannotSplice(f"'{key}' is not a mapping")
        items = holder.get(keys[-1])
        if items is None:
            items = holder[keys[-1]] = []
        if not isinstance(items, list):
            raise CannotSplice(f"'{keys[-1]}' is not a list")
        items.append(entry)
        return Edit(append_to_list(doc.text, keys, render_value(entry)), expected)

    edit_file(path, edit, create=True, header=header or _header(path))


def update_field(path: Path, name: str, changes: Mapping[str, Any]) -> None:
    """Set keys on the entry of ``name``; a value of ``None`` removes that key.

    A pack field customized for the first time has no entry yet: one is added holding only
    the changes (and the file is created when missing). An entry left empty is removed, so
    the field falls back to its pack definition. Keys whose value does not change keep
    their text (quoting included); nothing is written when nothing changes.
    """
    where = str(path)
    _check_name(name, where)
    cleaned = {
        key: None if value is None else clean(value, where, f"fields.{name}.{key}")
        for key, value in check_keys(changes, where, f"fields.{name}").items()
    }

    def edit(doc: Document) -> Edit | None:
        fields = _fields_data(doc, where)
        current = fields.get(name)
        if current is not None and not isinstance(current, dict):
            line, column = key_position(doc.root, "fields", name)
            raise OverlayEditError(
                where,
                f"the entry of field '{name}' is not a mapping, so it cannot be changed "
                f"key by key; {BY_HAND}",
                line,
                column,
            )
        before: dict[str, Any] = current or {}
        after = {k: v for k, v in before.items() if cleaned.get(k, v) is not None}
        after.update({k: v for k, v in cleaned.items() if v is not None})
        if canon(after) == canon(before) and (name in fields or not after):
            return None
        if not after:
            text = remove_entry(doc.text, name)
            return Edit(text, _with_fields(doc.data, _without(fields, name)))
        if name not in fields:
            text = add_entry(doc.text, doc.root, name, after)
        elif current is None:
            text = replace_entry(doc.text, name, after)
        else:
            text = change_entry(doc.text, name, before, cleaned)
        return Edit(text, _with_fields(doc.data, {**fields, name: after}))

    edit_file(path, edit, create=True, header=_header(path))


def remove_field(path: Path, name: str) -> None:
    """Remove the entry of ``name`` with the comment lines directly above it.

    The field falls back to its pack definition (or, for an added field, goes away). When
    ``fields`` becomes empty it is kept as ``fields: {}``. Raises ``OverlayEditError`` when
    there is no entry, so a caller never believes it removed a customization that a
    concurrent edit already removed.
    """
    where = str(path)
    _check_name(name, where)

    def edit(doc: Document) -> Edit:
        fields = _fields_data(doc, where)
        if name not in fields:
            raise OverlayEditError(
                where, f"the overlay has no entry for field '{name}'; nothing was removed"
            )
        text = remove_entry(doc.text, name)
        return Edit(text, _with_fields(doc.data, _without(fields, name)))

    edit_file(path, edit, create=False, header=_header(path))


def _fields_data(doc: Document, where: str) -> dict[str, Any]:
    fields = doc.data.get("fields")
    if fields is None:
        return {}
    if not isinstance(fields, dict):
        line, column = key_position(doc.root, "fields")
        raise OverlayEditError(
            where, "'fields' must be a mapping of field names to their entries", line, column
        )
    return fields


def _with_fields(data: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    return {**data, "fields": fields}


def _without(mapping: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k != key}


def _check_name(name: object, where: str) -> None:
    if not isinstance(name, str) or not name:
        raise OverlayEditError(where, f"a field name must be a non-empty string, not {name!r}")
