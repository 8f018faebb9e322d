"""Reports load with their pack; parameters, sections, totals and checks are checked
against the entities, the roles and each other, mistakes reported at their key
(file:line:col)."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from metadata import DefinitionError, ParameterType, load_project

PACK = {
    "packs/books/module.yaml": 'name: books\nversion: "1.0.0"\n',
    "packs/books/entities/entry.yaml": """\
        fields:
          day: {type: date}
          kind: {type: enum, values: [income, expense]}
          amount: {type: decimal, scale: 2}
          notes: {type: text}
        """,
    "packs/books/roles.yaml": """\
        roles:
          bookkeeper:
            grants:
              - {entity: entry, actions: [read]}
        """,
}
REPORT = "packs/books/reports/result.yaml"
GOOD = """\
    label: Result
    roles: [bookkeeper]
    parameters:
      from: {type: date, default: "{{ today().replace(month=1, day=1) }}"}
      to: {type: date, default: "{{ today() }}"}
      kind: {type: choice, values: [income, expense], required: false}
    checks:
      - {condition: "from <= to", message: "from after to"}
    sections:
      - name: income
        entity: entry
        filter: {kind: income, day__gte: "{{ from }}", day__lte: "{{ to }}"}
        group_by: day__month
        measure: amount__sum
      - name: expense
        label: Costs
        entity: books.entry
        filter: {kind: expense}
        measure: amount__sum
        sign: -1
    totals:
      - {name: net, label: Net, value: income + expense}
      - {name: half, value: net / 2}
    """


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(PACK)


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def problems(report: str) -> list[str]:
    write({REPORT: report})
    with pytest.raises(DefinitionError) as caught:
        load_project(["books"], [Path("packs")])
    return [str(p) for p in caught.value.problems]


def test_a_report_loads_with_its_parameters_sections_and_totals() -> None:
    write({REPORT: GOOD})
    report = load_project(["books"], [Path("packs")]).reports["books.result"]
    assert report.label == "Result"
    assert report.roles == ("bookkeeper",)
    assert [(p.name, p.type, p.required) for p in report.parameters] == [
        ("from", ParameterType.DATE, True),
        ("to", ParameterType.DATE, True),
        ("kind", ParameterType.CHOICE, False),
    ]
    income, expense = report.sections
    assert (income.entity, income.group_by, income.measures) == (
        "books.entry",
        "day__month",
        (("amount", "amount__sum"),),
    )
    assert income.filter[1] == ("day__gte", "{{ from }}")
    assert (expense.label, expense.sign, expense.group_by) == ("Costs", -1, None)
    assert [c.name for c in report.columns] == ["amount"]
    assert [(t.name, t.label, t.value) for t in report.totals] == [
        ("net", "Net", "income + expense"),
        ("half", "Half", "net / 2"),
    ]


def test_an_unknown_key_is_refused_at_its_position() -> None:
    found = problems(GOOD.replace("    label: Result\n", "    label: Result\n    colour: red\n"))
    assert len(found) == 1
    assert found[0].startswith("packs/books/reports/result.yaml:2:1:")
    assert "colour" in found[0]


def test_a_bad_parameter_type_is_refused() -> None:
    found = problems(GOOD.replace("kind: {type: choice,", "kind: {type: money,"))
    assert len(found) == 1
    assert found[0].startswith("packs/books/reports/result.yaml:6:")
    assert "money" in found[0]


@pytest.mark.parametrize(
    ("change", "line", "message"),
    [
        (
            ('"{{ today() }}"', '"{{ todya() }}"'),
            5,
            "unknown name 'todya' in template",
        ),
        (('"{{ to }}"', '"{{ too }}"'), 12, "unknown name 'too' in template"),
        # a default reads the parameters before it, not the ones after
        (('"{{ today() }}"', '"{{ kind }}"'), 5, "unknown name 'kind' in template"),
        (('"{{ to }}"', '"{{ to ) }}"'), 12, "template does not parse"),
        (("income + expense", "income + expenses"), 22, "unknown name 'expenses'"),
        (("net / 2", "half / 2"), 23, "unknown name 'half'"),  # a total reads earlier ones
        (("from <= to", "from <= untill"), 8, "unknown name 'untill'"),
        (("amount__sum\n      - name", "amout__sum\n      - name"), 14, "no field 'amout'"),
        (("group_by: day__month", "group_by: notes"), 13, "cannot group by 'notes'"),
        (("kind: income,", "knd: income,"), 12, "books.entry has no field 'knd'"),
        (("entity: books.entry", "entity: books.entri"), 17, "no entity 'books.entri'"),
        (("roles: [bookkeeper]", "roles: [bookeeper]"), 2, "did you mean 'bookkeeper'?"),
        (("name: half", "name: income"), 23, "the name 'income' is used already"),
        (('default: "{{ today() }}"', "default: 2026-02-30"), 5, "not a valid date"),
        (('default: "{{ today() }}"', "default: tomorrow"), 5, "'tomorrow' is not a date"),
    ],
)
def test_mistakes_are_reported_at_their_key(
    change: tuple[str, str], line: int, message: str
) -> None:
    old, new = change
    assert old in GOOD
    found = problems(GOOD.replace(old, new, 1))
    assert len(found) == 1, found
    assert found[0].startswith(f"packs/books/reports/result.yaml:{line}:"), found
    assert message in found[0]


def test_columns_need_a_measure_each() -> None:
    report = GOOD.replace(
        "    sections:\n",
        "    columns: [{name: debit}, {name: credit}]\n    sections:\n",
    )
    found = problems(report)
    assert len(found) == 2, found
    assert all("give a measure per column" in p for p in found)
    fixed = report.replace(
        "measure: amount__sum\n      - name",
        "measure: {debit: amount__sum, credt: amount__max}\n      - name",
    )
    found = problems(fixed)
    assert any("no column 'credt'; did you mean 'credit'?" in p for p in found), found


def test_parameter_shapes_are_checked() -> None:
    found = problems(GOOD.replace("{type: choice, values: [income, expense],", "{type: choice,"))
    assert len(found) == 1, found
    assert found[0].startswith("packs/books/reports/result.yaml:6:")
    assert "a choice parameter needs values" in found[0]
    reference = "kind: {type: reference, to: entri"
    found = problems(GOOD.replace("kind: {type: choice, values: [income, expense]", reference))
    assert len(found) == 1, found
    assert "no entity 'books.entri' is enabled; did you mean 'books.entry'?" in found[0]
    found = problems(GOOD.replace("kind: {type: choice,", "format: {type: choice,"))
    assert len(found) == 1, found
    assert "'format'" in found[0]  # the query parameter choosing JSON or CSV


def test_a_literal_date_default_is_a_date() -> None:
    write({REPORT: GOOD.replace('default: "{{ today() }}"', "default: 2026-06-30")})
    report = load_project(["books"], [Path("packs")]).reports["books.result"]
    assert report.parameters[1].default == dt.date(2026, 6, 30)
