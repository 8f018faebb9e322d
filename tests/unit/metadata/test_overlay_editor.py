"""Round-trip edits of customization files: only the intended lines change, every other byte
of a hand-written, commented file stays as it was, and concurrent writers lose nothing."""

from __future__ import annotations

import difflib
import multiprocessing
import re
import stat
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from metadata._yaml import SourceDocument
from metadata.overlay_editor import (
    OverlayEditError,
    add_field,
    append_item,
    read_overlay,
    remove_field,
    update_field,
)

if TYPE_CHECKING:
    from multiprocessing.synchronize import Barrier

HEADER = "# Customizations of contacts.account (written by Tessera; comments and order are kept)\n"

# Comments above keys, trailing comments, blank lines, aligned values, a block-style entry
# with a block scalar whose text contains a '#' line, a quoted string, flow lists and a
# sequence indented by four.
RICH = """\
# Customizations of contacts.account
# Maintained by the CRM team; ask before changing.

label: Customer   # shown in menus
title: "name"

fields:
  # Loyalty programme (ticket 42)
  loyalty_tier: {type: enum, values: [bronze, silver, gold], default: bronze}   # added field
  name:         {max_length: 80, label: 'Account name'}    # tightened for the call centre
  notes:
    type: text
    label: Notes   # block style
    help: |
      Free text.
      # kept: this line is part of the help, not a comment

  # Score, computed nightly
  score: { type: integer,  min: 0 }

# Rules below were written by hand
rules:
    - name: vip_check
      on: [create, update]
"""


@pytest.fixture
def overlay(tmp_path: Path) -> Path:
    path = tmp_path / "custom" / "contacts" / "account.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(RICH, encoding="utf-8")
    return path


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed, added) lines, difflib-style: every other line is byte-identical."""
    removed: list[str] = []
    added: list[str] = []
    for line in difflib.ndiff(before.splitlines(keepends=True), after.splitlines(keepends=True)):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def tessera_load(path: Path) -> Any:
    """The file as Tessera's definition loader reads it."""
    return SourceDocument.load(path, path.name).data


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# --- the intended lines change, nothing else -------------------------------------------------


def test_add_appends_one_flow_line_after_the_last_entry(overlay: Path) -> None:
    add_field(overlay, "vip", {"type": "boolean", "default": False, "label": "VIP"})

    after = overlay.read_text(encoding="utf-8")
    assert changed_lines(RICH, after) == (
        [],
        ["  vip: {type: boolean, default: false, label: VIP}\n"],
    )
    assert after == RICH.replace(
        "  score: { type: integer,  min: 0 }\n",
        "  score: { type: integer,  min: 0 }\n  vip: {type: boolean, default: false, label: VIP}\n",
    )
    assert files_in(overlay.parent) == [".account.yaml.lock", "account.yaml"]


def test_update_of_a_flow_entry_changes_only_its_line(overlay: Path) -> None:
    update_field(overlay, "name", {"max_length": 60, "label": None, "help": "Legal name"})

    after = overlay.read_text(encoding="utf-8")
    comment = "    # tightened for the call centre\n"
    old = "  name:         {max_length: 80, label: 'Account name'}" + comment
    new = "  name:         {max_length: 60, help: Legal name}" + comment
    assert changed_lines(RICH, after) == ([old], [new])
    assert after == RICH.replace(old, new)


def test_update_of_a_block_entry_changes_only_the_changed_keys(overlay: Path) -> None:
    update_field(overlay, "notes", {"label": "Remarks", "help": None, "required": True})

    after = overlay.read_text(encoding="utf-8")
    expected = """\
# Customizations of contacts.account
# Maintained by the CRM team; ask before changing.

label: Customer   # shown in menus
title: "name"

fields:
  # Loyalty programme (ticket 42)
  loyalty_tier: {type: enum, values: [bronze, silver, gold], default: bronze}   # added field
  name:         {max_length: 80, label: 'Account name'}    # tightened for the call centre
  notes:
    type: text
    label: Remarks   # block style
    required: true

  # Score, computed nightly
  score: { type: integer,  min: 0 }

# Rules below were written by hand
rules:
    - name: vip_check
      on: [create, update]
"""
    assert after == expected
    assert changed_lines(RICH, after) == (
        [
            "    label: Notes   # block style\n",
            "    help: |\n",
            "      Free text.\n",
            "      # kept: this line is part of the help, not a comment\n",
        ],
        ["    label: Remarks   # block style\n", "    required: true\n"],
    )


def test_remove_takes_the_entry_and_the_comment_directly_above_it(overlay: Path) -> None:
    remove_field(overlay, "score")

    after = overlay.read_text(encoding="utf-8")
    expected = """\
# Customizations of contacts.account
# Maintained by the CRM team; ask before changing.

label: Customer   # shown in menus
title: "name"

fields:
  # Loyalty programme (ticket 42)
  loyalty_tier: {type: enum, values: [bronze, silver, gold], default: bronze}   # added field
  name:         {max_length: 80, label: 'Account name'}    # tightened for the call centre
  notes:
    type: text
    label: Notes   # block style
    help: |
      Free text.
      # kept: this line is part of the help, not a comment

# Rules below were written by hand
rules:
    - name: vip_check
      on: [create, update]
"""
    assert after == expected
    assert changed_lines(RICH, after) == (
        ["  # Score, computed nightly\n", "  score: { type: integer,  min: 0 }\n", "\n"],
        [],
    )


def test_remove_of_a_block_entry_keeps_the_comments_that_follow_it(overlay: Path) -> None:
    remove_field(overlay, "notes")

    after = overlay.read_text(encoding="utf-8")
    removed = "".join(RICH.splitlines(keepends=True)[10:16])
    assert removed.startswith("  notes:\n")
    assert after == RICH.replace(removed, "")


def test_removing_every_entry_leaves_an_empty_fields_mapping(overlay: Path) -> None:
    for name in ("loyalty_tier", "name", "notes", "score"):
        remove_field(overlay, name)

    after = overlay.read_text(encoding="utf-8")
    assert (
        after
        == """\
# Customizations of contacts.account
# Maintained by the CRM team; ask before changing.

label: Customer   # shown in menus
title: "name"

fields: {}

# Rules below were written by hand
rules:
    - name: vip_check
      on: [create, update]
"""
    )
    assert read_overlay(overlay)["fields"] == {}

    add_field(overlay, "vip", {"type": "boolean"})
    assert "\nfields:\n  vip: {type: boolean}\n\n# Rules below" in overlay.read_text("utf-8")


# --- creating files and entries --------------------------------------------------------------


def test_add_creates_the_file_and_its_folders(tmp_path: Path) -> None:
    path = tmp_path / "custom" / "contacts" / "account.yaml"

    add_field(path, "loyalty_tier", {"type": "enum", "values": ["bronze", "gold"]})
    add_field(path, "code", {"type": "string", "max_length": 20})

    assert path.read_text(encoding="utf-8") == (
        HEADER
        + "fields:\n"
        + "  loyalty_tier: {type: enum, values: [bronze, gold]}\n"
        + "  code: {type: string, max_length: 20}\n"
    )
    assert files_in(path.parent) == [".account.yaml.lock", "account.yaml"]


def test_update_adds_an_entry_for_a_pack_field_customized_the_first_time(overlay: Path) -> None:
    update_field(overlay, "email", {"required": True, "label": "E-mail"})

    after = overlay.read_text(encoding="utf-8")
    assert changed_lines(RICH, after) == ([], ["  email: {required: true, label: E-mail}\n"])
    assert read_overlay(overlay)["fields"]["email"] == {"required": True, "label": "E-mail"}


def test_update_creates_a_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "contacts" / "account.yaml"

    update_field(path, "name", {"max_length": 80})

    assert path.read_text(encoding="utf-8") == HEADER + "fields:\n  name: {max_length: 80}\n"


def test_fields_is_added_when_the_file_has_none_with_the_files_indentation(
    tmp_path: Path,
) -> None:
    path = tmp_path / "contacts" / "account.yaml"
    path.parent.mkdir()
    path.write_text("label: Customer\nform:\n    columns: 2   # wide\n# end\n", encoding="utf-8")

    add_field(path, "vip", {"type": "boolean"})

    assert path.read_text(encoding="utf-8") == (
        "label: Customer\nform:\n    columns: 2   # wide\n"
        "fields:\n    vip: {type: boolean}\n"
        "# end\n"
    )


def test_a_null_entry_becomes_a_mapping(overlay: Path) -> None:
    overlay.write_text("fields:\n  name:   # reset\n  code: {label: Code}\n", encoding="utf-8")

    update_field(overlay, "name", {"label": "Name"})

    assert overlay.read_text("utf-8") == (
        "fields:\n  name: {label: Name}   # reset\n  code: {label: Code}\n"
    )


# --- removing keys ---------------------------------------------------------------------------


def test_none_removes_a_key(overlay: Path) -> None:
    update_field(overlay, "loyalty_tier", {"default": None})

    after = overlay.read_text(encoding="utf-8")
    assert changed_lines(RICH, after) == (
        [
            "  loyalty_tier: {type: enum, values: [bronze, silver, gold], default: bronze}"
            "   # added field\n"
        ],
        ["  loyalty_tier: {type: enum, values: [bronze, silver, gold]}   # added field\n"],
    )
    assert "default" not in read_overlay(overlay)["fields"]["loyalty_tier"]


def test_an_entry_left_empty_is_removed(overlay: Path) -> None:
    update_field(overlay, "name", {"max_length": None, "label": None})

    after = overlay.read_text(encoding="utf-8")
    assert changed_lines(RICH, after) == (
        [
            "  name:         {max_length: 80, label: 'Account name'}"
            "    # tightened for the call centre\n"
        ],
        [],
    )


def test_an_update_that_changes_nothing_does_not_write(overlay: Path, tmp_path: Path) -> None:
    before = overlay.stat().st_mtime_ns

    update_field(overlay, "name", {"label": "Account name", "help": None})
    update_field(overlay, "unknown", {"help": None})
    update_field(tmp_path / "other" / "missing.yaml", "name", {"help": None})

    assert overlay.read_text(encoding="utf-8") == RICH
    assert overlay.stat().st_mtime_ns == before
    assert not (tmp_path / "other" / "missing.yaml").exists()


# --- values ----------------------------------------------------------------------------------


def test_values_are_written_so_that_every_yaml_reader_reads_them_back(overlay: Path) -> None:
    definition: dict[str, Any] = {
        "type": "decimal",
        "min": Decimal("1.50"),
        "max": Decimal("1E+3"),
        "default": "yes",
        "label": "Rate: yearly, in %",
        "help": "two\nlines",
        "pattern": "^[A-Z]{3}$",
        "values": ("on", "1:20", "x"),
        "read_only": False,
        "huge": 1e20,
    }
    add_field(overlay, "rate", definition)

    lines = overlay.read_text(encoding="utf-8").splitlines()
    assert [line for line in lines if line.startswith("  rate:")] == [
        (
            "  rate: {type: decimal, min: 1.50, max: 1000, default: 'yes', "
            "label: 'Rate: yearly, in %', help: \"two\\nlines\", pattern: '^[A-Z]{3}$', "
            "values: ['on', '1:20', x], read_only: false, huge: 1.0e+20}"
        )
    ]
    expected = {**definition, "values": ["on", "1:20", "x"]}
    assert read_overlay(overlay)["fields"]["rate"] == expected
    # PyYAML reads YAML 1.1 (``yes`` and ``on`` are booleans, 1:20 is 80): still strings.
    assert yaml.safe_load(overlay.read_text("utf-8"))["fields"]["rate"] == expected


def test_read_overlay_returns_plain_data(overlay: Path, tmp_path: Path) -> None:
    data = read_overlay(overlay)

    assert data == tessera_load(overlay)
    name = data["fields"]["name"]
    assert type(data) is dict
    assert type(name) is dict
    assert type(name["label"]) is str
    assert type(name["max_length"]) is int
    assert type(data["fields"]["loyalty_tier"]["values"]) is list
    assert read_overlay(tmp_path / "missing.yaml") == {}


def test_line_endings_byte_order_mark_and_file_mode_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "contacts" / "account.yaml"
    path.parent.mkdir()
    path.write_bytes(b"\xef\xbb\xbflabel: Customer\r\nfields:\r\n  name: {label: Name}\r\n")
    path.chmod(0o640)

    add_field(path, "vip", {"type": "boolean"})

    assert path.read_bytes() == (
        b"\xef\xbb\xbflabel: Customer\r\nfields:\r\n  name: {label: Name}\r\n"
        b"  vip: {type: boolean}\r\n"
    )
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


# --- refused edits leave the file alone --------------------------------------------------------


def test_adding_a_field_twice_is_refused(overlay: Path) -> None:
    with pytest.raises(OverlayEditError, match=r"account\.yaml:10:3: .*entry for field 'name'"):
        add_field(overlay, "name", {"type": "string"})

    assert overlay.read_text(encoding="utf-8") == RICH


def test_removing_a_missing_entry_is_refused(overlay: Path, tmp_path: Path) -> None:
    with pytest.raises(OverlayEditError, match="no entry for field 'email'"):
        remove_field(overlay, "email")
    with pytest.raises(OverlayEditError, match="no entry for field 'email'"):
        remove_field(tmp_path / "nowhere" / "account.yaml", "email")

    assert overlay.read_text(encoding="utf-8") == RICH
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("label: Customer\nfields:\n  a: {type: string\n", ":4:1:", "invalid YAML"),
        ("fields:\n  a: {type: string}\n  a: {type: text}\n", ":3:3:", "duplicate key"),
        ("label: [a\n", ":2:1:", "invalid YAML"),
        ("- label\n- fields\n", ":1:1:", "top level of an overlay must be a mapping"),
        ("fields: [a, b]\n", ":1:1:", "'fields' must be a mapping"),
        ("fields:\n  name: string\n", ":2:3:", "not a mapping"),
    ],
)
def test_a_broken_file_is_reported_at_its_place_and_left_unchanged(
    overlay: Path, text: str, position: str, message: str
) -> None:
    overlay.write_text(text, encoding="utf-8")

    with pytest.raises(OverlayEditError) as raised:
        update_field(overlay, "name", {"label": "Name"})

    assert str(raised.value).startswith(str(overlay) + position), str(raised.value)
    assert message in str(raised.value)
    assert overlay.read_text(encoding="utf-8") == text
    assert files_in(overlay.parent) == [".account.yaml.lock", "account.yaml"]


def test_an_edit_that_would_change_other_entries_is_refused(overlay: Path) -> None:
    text = "fields:\n  base: &base {type: string}\n  copy: *base\n"
    overlay.write_text(text, encoding="utf-8")

    with pytest.raises(OverlayEditError, match="YAML alias"):
        update_field(overlay, "copy", {"label": "Copy"})
    with pytest.raises(OverlayEditError, match="without disturbing other parts"):
        update_field(overlay, "base", {"label": "Base"})  # would change 'copy' too
    with pytest.raises(OverlayEditError, match="without disturbing other parts"):
        remove_field(overlay, "base")  # would leave '*base' undefined

    assert overlay.read_text(encoding="utf-8") == text


def test_values_that_are_not_yaml_data_are_refused(overlay: Path) -> None:
    with pytest.raises(OverlayEditError, match=r"fields\.vip\.default: cannot write a object"):
        add_field(overlay, "vip", {"type": "boolean", "default": object()})
    with pytest.raises(OverlayEditError, match="keys must be non-empty strings"):
        update_field(overlay, "name", {1: "x"})  # type: ignore[dict-item]

    assert overlay.read_text(encoding="utf-8") == RICH


# --- concurrent writers ----------------------------------------------------------------------


def _add_many(path: str, prefix: str, barrier: Barrier) -> None:
    barrier.wait(timeout=60)
    for number in range(25):
        add_field(Path(path), f"{prefix}_{number:02d}", {"type": "integer", "min": number})


def test_concurrent_writers_lose_no_field(overlay: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(2)
    writers = [
        context.Process(target=_add_many, args=(str(overlay), prefix, barrier))
        for prefix in ("a", "b")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=120)
        if writer.is_alive():
            writer.kill()
    assert [writer.exitcode for writer in writers] == [0, 0]

    text = overlay.read_text(encoding="utf-8")
    fields = read_overlay(overlay)["fields"]
    expected = {
        f"{prefix}_{n:02d}": {"type": "integer", "min": n} for prefix in "ab" for n in range(25)
    }
    assert {name: fields[name] for name in expected if name in fields} == expected
    assert len(fields) == 4 + 50
    assert tessera_load(overlay) == read_overlay(overlay)
    added = re.compile(r"  [ab]_\d\d: \{type: integer, min: \d+\}\n")
    kept = [line for line in text.splitlines(keepends=True) if not added.fullmatch(line)]
    assert "".join(kept) == RICH
    assert files_in(overlay.parent) == [".account.yaml.lock", "account.yaml"]


def test_append_item_adds_one_line_to_a_block_list_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "deal.yaml"
    original = (
        "# mine\n"
        "label: X   # keep\n"
        "rules:\n"
        "  # the first\n"
        "  - name: one\n"
        "    assert: 'true'\n"
        "\n"
        "# tail comment\n"
        "fields:\n"
        "  extra: {type: string}\n"
    )
    path.write_text(original, encoding="utf-8")
    append_item(path, ("rules",), {"name": "two", "assert": "amount > 0"})
    diff = [
        line
        for line in difflib.ndiff(original.splitlines(), path.read_text().splitlines())
        if line[:1] in "+-"
    ]
    assert diff == ["+   - {name: two, assert: amount > 0}"]
    assert [r["name"] for r in yaml.safe_load(path.read_text())["rules"]] == ["one", "two"]


def test_append_item_creates_the_nested_keys_it_needs(tmp_path: Path) -> None:
    path = tmp_path / "roles.yaml"
    append_item(
        path,
        ("roles", "clerk", "grants"),
        {"entity": "crm.deal", "actions": ["read"]},
        header="# r\n",
    )
    append_item(path, ("roles", "clerk", "grants"), {"entity": "crm.account", "actions": ["read"]})
    append_item(path, ("roles", "boss", "grants"), {"entity": "crm.deal", "actions": ["delete"]})
    assert path.read_text() == (
        "# r\n"
        "roles:\n"
        "  clerk:\n"
        "    grants:\n"
        "      - {entity: crm.deal, actions: [read]}\n"
        "      - {entity: crm.account, actions: [read]}\n"
        "  boss:\n"
        "    grants:\n"
        "      - {entity: crm.deal, actions: [delete]}\n"
    )


def test_append_item_refuses_what_it_cannot_splice(tmp_path: Path) -> None:
    path = tmp_path / "deal.yaml"
    path.write_text("rules: [{name: one, assert: 'true'}]\n", encoding="utf-8")
    with pytest.raises(OverlayEditError, match="by hand"):
        append_item(path, ("rules",), {"name": "two", "assert": "true"})
    assert path.read_text() == "rules: [{name: one, assert: 'true'}]\n"
