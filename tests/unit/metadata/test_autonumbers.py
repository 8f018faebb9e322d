"""Autonumbers as definitions: ``assign`` (insert or submit), ``date_field`` and field
tokens in ``format`` load into the ``FieldDef``; every mistake is reported at its
file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import DefinitionError, NumberAssign, load_project

ENTITY = "packs/billing/entities/invoice.yaml"
NOTE = "packs/billing/entities/note.yaml"
HEADER = """\
document: true
fields:
  customer: {type: string}
  posting_date: {type: date}
  posted_at: {type: datetime}
  kind: {type: enum, values: [sale, refund]}
  total: {type: decimal}
"""


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write({"packs/billing/module.yaml": 'name: billing\nversion: "1.0.0"\n'})


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def problems(number: str, *, extra: dict[str, str] | None = None) -> list[str]:
    write({ENTITY: HEADER + f"  number: {number}\n", **(extra or {})})
    with pytest.raises(DefinitionError) as raised:
        load_project(["billing"], [Path("packs")])
    return [str(p) for p in raised.value.problems]


def test_assign_date_field_and_field_tokens_load_into_the_field() -> None:
    number = (
        '{type: autonumber, format: "{kind}-{YYYY}-{#####}", assign: submit, '
        "date_field: posting_date}"
    )
    write(
        {ENTITY: HEADER + f"  number: {number}\n  plain: {{type: autonumber, format: 'A-{{#}}'}}\n"}
    )
    entity = load_project(["billing"], [Path("packs")]).entity("billing.invoice")
    field = entity.fields["number"]
    assert (field.assign, field.date_field) == (NumberAssign.SUBMIT, "posting_date")
    plain = entity.fields["plain"]
    assert (plain.assign, plain.date_field) == (NumberAssign.INSERT, None)


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (
            '{type: autonumber, format: "I-{#}", assign: later}',
            "packs/billing/entities/invoice.yaml:8:55: "
            "fields.number.assign: 'later' is not one of: insert, submit",
        ),
        (
            '{type: autonumber, format: "I-{YYYY}-{#}", date_field: posting_dat}',
            "packs/billing/entities/invoice.yaml:8:66: date_field 'posting_dat': "
            "billing.invoice has no such field; did you mean 'posting_date'?",
        ),
        (
            '{type: autonumber, format: "I-{YYYY}-{#}", date_field: total}',
            "packs/billing/entities/invoice.yaml:8:66: date_field 'total': "
            "is a decimal field; it must be a date or datetime field",
        ),
        (
            '{type: autonumber, format: "I-{#}", date_field: posting_date}',
            "packs/billing/entities/invoice.yaml:8:59: date_field 'posting_date' is not used: "
            "the format has no date token ({YYYY}, {YY}, {MM} or {DD})",
        ),
        (
            '{type: autonumber, format: "{knd}-{#}"}',
            "packs/billing/entities/invoice.yaml:8:38: field token {knd}: "
            "billing.invoice has no such field; did you mean 'kind'?",
        ),
        (
            '{type: autonumber, format: "{total}-{#}"}',
            "packs/billing/entities/invoice.yaml:8:38: field token {total}: "
            "is a decimal field; it must be a string or enum field",
        ),
        (
            '{type: autonumber, format: "' + "X" * 60 + '{YYYY}{#}"}',
            "packs/billing/entities/invoice.yaml:8:38: autonumber format makes numbers of "
            "at least 65 characters; an autonumber holds at most 64",
        ),
        (
            "{type: autonumber, format: 'I-{#}', date_field: 3}",
            "packs/billing/entities/invoice.yaml:8:59: fields.number.date_field "
            "must be of type string",
        ),
    ],
)
def test_a_broken_autonumber_is_reported_at_its_key(number: str, expected: str) -> None:
    assert problems(number) == [expected]


def test_assign_submit_needs_a_document() -> None:
    note = """\
        fields:
          written_on: {type: date}
          number: {type: autonumber, format: "N-{#}", assign: submit}
        """
    reported = problems('{type: autonumber, format: "I-{#}"}', extra={NOTE: note})
    assert reported == [
        "packs/billing/entities/note.yaml:3:55: assign: submit numbers a document as it is "
        "submitted, and billing.note is not one: add 'document: true' to its entity file, "
        "or use assign: insert"
    ]


def test_assign_and_date_field_belong_to_autonumbers() -> None:
    write({NOTE: "fields:\n  title: {type: string, assign: submit, date_field: title}\n"})
    reported = problems('{type: autonumber, format: "I-{#}"}')
    assert reported == [
        "packs/billing/entities/note.yaml:2:25: "
        "key 'assign' does not apply to a field of type string",
        "packs/billing/entities/note.yaml:2:41: "
        "key 'date_field' does not apply to a field of type string",
    ]


def test_a_customization_may_add_a_submit_number_but_not_change_the_packs(
    tmp_path: Path,
) -> None:
    write(
        {
            ENTITY: HEADER + '  number: {type: autonumber, format: "I-{#}"}\n',
            "custom/billing/invoice.yaml": """\
                fields:
                  number: {assign: submit}
                  ref: {type: autonumber, format: "R-{YY}-{##}", assign: submit, date_field: nope}
                """,
        }
    )
    with pytest.raises(DefinitionError) as raised:
        load_project(["billing"], [Path("packs")], customizations=Path("custom"))
    assert [str(p) for p in raised.value.problems] == [
        "custom/billing/invoice.yaml:2:20: pack billing sets assign 'insert' on field "
        "'number'; a customization cannot change it",
        "custom/billing/invoice.yaml:3:78: date_field 'nope': billing.invoice has no such field",
    ]


def test_gapless_loads_true_unless_set_false() -> None:
    write(
        {
            ENTITY: HEADER
            + '  number: {type: autonumber, format: "I-{#}", gapless: false}\n'
            + '  ref: {type: autonumber, format: "R-{#}", gapless: true}\n'
            + '  plain: {type: autonumber, format: "P-{#}"}\n'
        }
    )
    fields = load_project(["billing"], [Path("packs")]).entity("billing.invoice").fields
    assert [fields[n].gapless for n in ("number", "ref", "plain")] == [False, True, True]


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (
            "{type: autonumber, format: 'I-{#}', gapless: 'no'}",
            "packs/billing/entities/invoice.yaml:8:56: fields.number.gapless "
            "must be of type boolean",
        ),
        (
            "{type: autonumber, format: 'I-{#}', gapless: 0}",
            "packs/billing/entities/invoice.yaml:8:56: fields.number.gapless "
            "must be of type boolean",
        ),
        (
            "{type: autonumber, format: 'I-{#}', gapless: null}",
            "packs/billing/entities/invoice.yaml:8:56: fields.number.gapless "
            "must be of type boolean",
        ),
    ],
)
def test_gapless_is_a_boolean(number: str, expected: str) -> None:
    assert problems(number) == [expected]


def test_gapless_belongs_to_autonumbers() -> None:
    write({NOTE: "fields:\n  title: {type: string, gapless: false}\n  n: {type: integer}\n"})
    reported = problems('{type: autonumber, format: "I-{#}"}')
    assert reported == [
        "packs/billing/entities/note.yaml:2:25: "
        "key 'gapless' does not apply to a field of type string",
    ]


def test_a_customization_may_change_gapless_of_a_pack_number() -> None:
    write(
        {
            ENTITY: HEADER
            + '  number: {type: autonumber, format: "I-{#}"}\n'
            + '  ref: {type: autonumber, format: "R-{#}", gapless: false}\n',
            "custom/billing/invoice.yaml": """\
                fields:
                  number: {gapless: false}
                  ref: {gapless: true}
                """,
        }
    )
    project = load_project(["billing"], [Path("packs")], customizations=Path("custom"))
    fields = project.entity("billing.invoice").fields
    assert (fields["number"].gapless, fields["ref"].gapless) == (False, True)
