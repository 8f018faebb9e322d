"""Record forms: ``forms/<entity>.yaml`` lays out an entity in sections; a customization's
``form:`` relabels, moves, adds and hides by section name, and keeps applying when the
pack's form changes underneath."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import DefinitionError, EntityDef, load_project

DEAL = """\
    label: Deal
    fields:
      name: {type: string, required: true}
      amount: {type: decimal}
      stage: {type: enum, values: [open, won, lost], default: open}
      close_date: {type: date}
      notes: {type: text}
    """
FORM = """\
    # the deal form
    sections:
      - name: main
        label: Deal
        columns: 2
        fields: [name, amount, {field: stage, label: Status}]
      - name: closing
        label: Closing
        visible_if: "stage != 'open'"
        fields: [close_date]
    """
OVERLAY = "custom/sales/deal.yaml"


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(
        {
            "packs/sales/module.yaml": 'name: sales\nversion: "1.0.0"\n',
            "packs/sales/entities/deal.yaml": DEAL,
        }
    )


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def deal() -> EntityDef:
    project = load_project(["sales"], [Path("packs")], customizations=Path("custom"))
    return project.entity("sales.deal")


def layout(entity: EntityDef) -> list[tuple[str, str | None, list[str]]]:
    return [(s.name, s.label, [f.field for f in s.fields]) for s in entity.form.sections]


def problems() -> list[str]:
    with pytest.raises(DefinitionError) as raised:
        deal()
    return [str(p) for p in raised.value.problems]


def test_without_a_form_file_every_field_is_on_one_section() -> None:
    assert layout(deal()) == [("main", "Deal", ["name", "amount", "stage", "close_date", "notes"])]


def test_a_pack_form_is_loaded_as_written() -> None:
    write({"packs/sales/forms/deal.yaml": FORM})
    entity = deal()
    assert layout(entity) == [
        ("main", "Deal", ["name", "amount", "stage"]),
        ("closing", "Closing", ["close_date"]),
    ]
    main, closing = entity.form.sections
    assert main.columns == 2
    assert main.fields[2].label == "Status"
    assert closing.visible_if == "stage != 'open'"


def test_a_customization_moves_adds_relabels_and_hides_by_section_name() -> None:
    write(
        {
            "packs/sales/forms/deal.yaml": FORM,
            OVERLAY: """\
                fields:
                  region: {type: string}
                  segment: {type: string}
                form:
                  sections:
                    - name: closing          # a pack section: relabelled, gets a field
                      label: Won or lost
                      fields: [amount]       # moved here from main
                    - name: ours             # a new section, at the end
                      label: Sales ops
                      fields: [region]
                  hide: [notes]
                """,
        }
    )
    assert layout(deal()) == [
        ("main", "Deal", ["name", "stage"]),
        ("closing", "Won or lost", ["close_date", "amount"]),
        # segment is placed nowhere: it goes at the end, so a new field is never invisible
        ("ours", "Sales ops", ["region", "segment"]),
    ]


def test_the_customization_survives_a_new_pack_form() -> None:
    write(
        {
            "packs/sales/forms/deal.yaml": FORM,
            OVERLAY: "form:\n  sections:\n    - {name: closing, fields: [notes]}\n",
        }
    )
    assert layout(deal())[1] == ("closing", "Closing", ["close_date", "notes"])
    # The pack's next version reorders its form and adds a section; ours still applies.
    upgraded = FORM.rstrip(" ").replace(
        "fields: [name, amount,", "fields: [amount, name,"
    ) + textwrap.indent("- name: extra\n  fields: [notes]\n", "      ")
    write({"packs/sales/forms/deal.yaml": upgraded})
    assert layout(deal()) == [
        ("main", "Deal", ["amount", "name", "stage"]),
        ("closing", "Closing", ["close_date", "notes"]),
        ("extra", None, []),
    ]


def test_form_mistakes_are_reported_at_their_keys() -> None:
    write(
        {
            "packs/sales/forms/deal.yaml": """\
                sections:
                  - name: main
                    fields: [nmae, amount, amount, {field: stage, visible_if: "stgae == 1"}]
                """,
            OVERLAY: "form:\n  hide: [name, nope]\n",
        }
    )
    form_file = "packs/sales/forms/deal.yaml"
    assert problems() == [
        f"{OVERLAY}:2:10: required field 'name' cannot be hidden: "
        "records could not be created from the form",
        f"{OVERLAY}:2:16: 'nope' is not a field of sales.deal; did you mean 'notes'?",
        f"{form_file}:1:1: required field 'name' is not on the form: "
        "records could not be created from it",
        f"{form_file}:3:14: 'nmae' is not a field of sales.deal; did you mean 'name'?",
        f"{form_file}:3:28: field 'amount' is on the form twice",
        f"{form_file}:3:63: unknown name 'stgae' in expression; did you mean 'stage'?",
    ]
