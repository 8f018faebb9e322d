"""Rollups as definitions: declared by the source entity, loaded into ``RollupDef``s, the
field kept made read-only (a sum starting at 0); every mistake reported at its
file:line:col."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from metadata import DefinitionError, load_project
from metadata._rollup_model import RollupFunction

PACKS = {
    "packs/crm/module.yaml": 'name: crm\nversion: "1.0.0"\n',
    "packs/crm/entities/account.yaml": """\
        fields:
          name: {type: string}
          lifetime_value: {type: decimal, scale: 2}
          invoices: {type: integer}
          last_date: {type: date}
          label: {type: string}
          best: {type: decimal, scale: 2, default: 1}
          parent: {type: reference, to: account}
        """,
    "packs/books/module.yaml": 'name: books\nversion: "1.0.0"\ndepends: [crm]\n',
    "packs/books/entities/invoice.yaml": """\
        document: true
        fields:
          account: {type: reference, to: crm.account}
          other: {type: reference, to: crm.account}
          posting_date: {type: date}
          total: {type: decimal, scale: 2}
          is_return: {type: boolean}
          line_total: {type: decimal, scale: 2}
          note: {type: string}
          lines: {type: children, entity: invoice_line}
        """,
    "packs/books/entities/invoice_line.yaml": """\
        fields:
          quantity: {type: integer}
          amount: {type: decimal, scale: 2}
        """,
}
INVOICE = "packs/books/entities/invoice.yaml"
LINE = "packs/books/entities/invoice_line.yaml"


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(PACKS)


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def with_rollups(path: str, rollups: str) -> None:
    write({path: textwrap.dedent(PACKS[path]) + textwrap.dedent(rollups)})


def problems(path: str, rollups: str) -> list[str]:
    with_rollups(path, rollups)
    with pytest.raises(DefinitionError) as raised:
        load_project(["books"], [Path("packs")])
    return [str(p) for p in raised.value.problems]


def test_rollups_load_and_the_fields_kept_become_read_only() -> None:
    with_rollups(
        INVOICE,
        """\
        rollups:
          - to: crm.account.lifetime_value
            via: account
            sum: total
            where: {docstatus: submitted, is_return: false, total__gt: 0}
          - {to: crm.account.invoices, via: account, count: true}
          - {to: crm.account.last_date, via: account, max: posting_date}
        """,
    )
    with_rollups(
        LINE,
        """\
        rollups:
          - {to: invoice.line_total, via: _parent, sum: amount,
             where: {_parent__docstatus__in: [draft, submitted]}}
        """,
    )
    project = load_project(["books"], [Path("packs")])
    kept, counted, latest = project.entity("books.invoice").rollups
    assert (kept.target, kept.field, kept.via, kept.function, kept.of) == (
        "crm.account",
        "lifetime_value",
        "account",
        RollupFunction.SUM,
        "total",
    )
    assert kept.where == (("docstatus", "submitted"), ("is_return", "false"), ("total__gt", "0"))
    assert kept.reads == {"account", "total", "docstatus", "is_return"}
    assert (counted.function, counted.of, latest.function) == (
        RollupFunction.COUNT,
        None,
        RollupFunction.MAX,
    )
    (line,) = project.entity("books.invoice_line").rollups
    assert line.parent_reads == {"docstatus"}
    assert line.reads == {"amount"}
    assert line.where == (("_parent__docstatus__in", "draft,submitted"),)
    account = project.entity("crm.account")
    assert account.fields["lifetime_value"].read_only
    assert Decimal(account.fields["lifetime_value"].default) == 0
    assert account.fields["invoices"].default == 0
    assert account.fields["last_date"].default is None
    assert account.fields["last_date"].read_only
    assert not account.fields["name"].read_only
    assert project.entity("books.invoice").fields["line_total"].read_only


@pytest.mark.parametrize(
    ("rollup", "message"),
    [
        ("{to: crm.account.lifetime_value, via: account}", "exactly one of sum, count"),
        (
            "{to: crm.account.lifetime_value, via: account, sum: total, max: total}",
            "exactly one of sum, count, min, max (this one has sum, max)",
        ),
        ("{to: crm.acount.lifetime_value, via: account, sum: total}", "did you mean"),
        ("{to: lifetime_value, via: account, sum: total}", "is not pack.entity.field"),
        ("{to: crm.account.lifetime, via: account, sum: total}", "not a field of crm.account"),
        ("{to: crm.account.label, via: account, sum: total}", "is string: a rollup keeps"),
        ("{to: crm.account.lifetime_value, via: acount, sum: total}", "did you mean 'account'"),
        ("{to: crm.account.lifetime_value, via: note, sum: total}", "'note' is not a reference"),
        ("{to: crm.account.lifetime_value, via: _parent, sum: total}", "is not a line"),
        ("{to: crm.account.lifetime_value, via: account, sum: note}", "sum takes numbers"),
        ("{to: crm.account.lifetime_value, via: account, sum: totl}", "did you mean 'total'"),
        ("{to: crm.account.invoices, via: account, sum: total}", "(decimal) cannot be kept"),
        ("{to: crm.account.last_date, via: account, sum: total}", "cannot be kept"),
        ("{to: crm.account.best, via: account, min: total}", "drop its required and default"),
        (
            "{to: crm.account.lifetime_value, via: account, sum: total, where: {stat: x}}",
            "'stat' is not a field of books.invoice",
        ),
        (
            "{to: crm.account.lifetime_value, via: account, sum: total, where: {total__gtx: 1}}",
            "unknown filter operator 'gtx'",
        ),
        (
            "{to: crm.account.lifetime_value, via: account, sum: total, where: {account__name: x}}",
            "reads the record's own fields",
        ),
        (
            "{to: crm.account.lifetime_value, via: account, sum: total,"
            " where: {note__gt: x, is_return__contains: x}}",
            "'contains' applies to text fields",
        ),
        (
            "{to: crm.account.lifetime_value, via: account, sum: total,"
            " where: {_parent__docstatus: draft}}",
            "is not a line item",
        ),
    ],
)
def test_every_mistake_is_reported_at_the_rollup(rollup: str, message: str) -> None:
    found = problems(INVOICE, f"rollups:\n  - {rollup}\n")
    assert any(message in p for p in found), found
    assert all(p.startswith(INVOICE + ":") for p in found), found
    position = found[0].split(":")
    assert int(position[1]) >= 12  # at the rollup, not the file's first line


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("{docstatus: posted}", "'docstatus': 'posted' is not one of draft, submitted, cancelled"),
        ("{docstatus__in: [draft, gone]}", "'gone' is not one of"),
        ("{is_return: maybe}", "'maybe' is not true or false"),
        ("{total__gt: 1e400000}", "is not a decimal of at most 38 digits"),
        ("{total__gt: .nan}", "is not a decimal of at most 38 digits"),
        ("{total__lt: abc}", "is not a valid decimal"),
        ("{posting_date__gte: '2026-02-30'}", "is not a valid date"),
        ("{posting_date__gte: 2026-02-30}", "'2026-02-30' is not a valid date or time"),
        ("{posting_date__gte: '99999-01-01'}", "is not a valid date"),
        ("{other: 99999999999999999999}", "is out of the 64-bit range"),
        ('{note: "a\\0b"}', "NUL character"),
        ('{note: "\\ud800"}', "invalid Unicode character escape"),
        ("{note__isnull: maybe}", "takes true or false"),
    ],
)
def test_where_values_are_checked_at_load_time(where: str, message: str) -> None:
    found = problems(
        INVOICE,
        "rollups:\n  - {to: crm.account.lifetime_value, via: account, sum: total, "
        f"where: {where}}}\n",
    )
    assert any(message in p for p in found), found
    assert all(p.startswith(INVOICE + ":") for p in found), found


def test_a_target_outside_the_depends_is_refused_with_the_fix() -> None:
    found = problems(
        "packs/crm/entities/account.yaml",
        "rollups:\n  - {to: books.invoice.total, via: parent, sum: lifetime_value}\n",
    )
    assert any("add 'books' to depends in module.yaml" in p for p in found), found


def test_a_field_is_kept_by_one_rollup_and_a_default_must_be_zero() -> None:
    found = problems(
        INVOICE,
        """\
        rollups:
          - {to: crm.account.lifetime_value, via: account, sum: total}
          - {to: crm.account.lifetime_value, via: other, sum: total}
        """,
    )
    assert any("already kept by a rollup of books.invoice" in p for p in found), found
    write(
        {
            "packs/crm/entities/account.yaml": textwrap.dedent(
                PACKS["packs/crm/entities/account.yaml"]
            ).replace("scale: 2}", "scale: 2, default: 5}")
        }
    )
    found = problems(
        INVOICE, "rollups:\n  - {to: crm.account.lifetime_value, via: account, sum: total}\n"
    )
    assert any("starts at 0" in p and "drop its default (5)" in p for p in found), found


def test_rollups_feeding_each_other_in_a_circle_are_refused() -> None:
    with_rollups(
        "packs/crm/entities/account.yaml",
        "rollups:\n  - {to: account.invoices, via: parent, sum: invoices}\n",
    )
    found = problems(INVOICE, "")
    assert found == [
        "packs/crm/entities/account.yaml:10:10: rollups feed each other in a circle: "
        "crm.account.invoices"
    ]
    with_rollups(
        "packs/crm/entities/account.yaml",
        "rollups:\n  - {to: account.invoices, via: parent, count: true}\n",
    )
    assert load_project(["books"], [Path("packs")]).entity("crm.account").rollups
