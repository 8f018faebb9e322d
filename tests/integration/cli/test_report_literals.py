"""A report's literal filter value that no record's field can hold (an enum value not
among the field's, a date that is none) and a parameter an expression cannot read (named
``none``, ``true``, ``false`` or a Jinja operator) are refused when the project loads, at
their ``file:line:col``: they matched nothing, or dropped the filters reading them, without
a word. Through ``tessera validate`` and the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import pack_instance, write_instance
from tests.support.cli import tessera

if TYPE_CHECKING:
    from pathlib import Path

FILES = {
    "module.yaml": 'name: shop\nversion: "1.0.0"\n',
    "entities/entry.yaml": """\
fields:
  day: {type: date, required: true}
  at: {type: datetime}
  kind: {type: enum, values: [income, expense]}
  amount: {type: decimal, scale: 2}
  hours: {type: integer}
  paid: {type: boolean}
  note: {type: string}
""",
    "roles.yaml": "roles:\n  bookkeeper:\n    grants:\n      - {entity: entry, actions: [read]}\n",
}
REPORT = """\
roles: [bookkeeper]
parameters:
  from: {type: date, default: "2026-01-01"}
sections:
  - name: income
    entity: entry
    filter: {kind: income, day__gte: "{{ from }}"}
    measure: amount__sum
  - name: other
    entity: entry
    filter:
      kind__in: "income,expense"
      day__lte: "2026-12-31"
      at__gte: "2026-01-01T00:00:00+01:00"
      hours__gt: 3
      paid: true
      amount__isnull: false
      note__contains: "c, not a date"
    measure: amount__sum
"""


def validate(db_url: str, tmp_path: Path, report: str) -> list[str]:
    """The problems ``tessera validate`` prints for the report (``result.yaml:L:C: ...``)."""
    for relative, text in {**FILES, "reports/result.yaml": report}.items():
        path = tmp_path / "packs" / "shop" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    instance = write_instance(tmp_path / "i", db_url, ["shop"], [tmp_path / "packs"])
    done = tessera("validate", cwd=instance.path)
    if done.returncode == 0:
        return []
    assert "Traceback" not in done.stderr
    return [
        line.split("result.yaml:", 1)[1]
        for line in done.stderr.splitlines()
        if "result.yaml:" in line
    ]


def test_literal_values_each_field_holds_load_and_filter(db_url: str, tmp_path: Path) -> None:
    assert validate(db_url, tmp_path, REPORT) == []
    instance = pack_instance(tmp_path / "run", db_url, "shop", {**FILES, "reports/r.yaml": REPORT})
    with instance.client() as client:
        for kind, amount in [("income", "10.00"), ("expense", "-4.00")]:
            body = {
                "day": "2026-03-01",
                "at": "2026-03-01T09:00:00Z",
                "kind": kind,
                "amount": amount,
                "hours": 5,
                "paid": True,
                "note": "c, not a date",
            }
            assert client.post("/api/v1/shop/entry", json=body).status_code == 201
        answer = client.get("/api/v1/shop/_reports/r")
        assert answer.status_code == 200, answer.text
        totals = {s["name"]: s["total"]["amount"] for s in answer.json()["data"]["sections"]}
        assert totals == {"income": "10.00", "other": "6.00"}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (
            ("kind: income,", "kind: c,"),
            "7:20: 'kind': 'c' is not one of kind's values (income, expense)",
        ),
        (
            ('kind__in: "income,expense"', 'kind__in: "income,expnse"'),
            "12:17: 'kind__in': 'expnse' is not one of kind's values (income, expense); "
            "did you mean 'expense'?",
        ),
        (
            ('day__lte: "2026-12-31"', "day__lte: end of year"),
            "13:17: 'day__lte': 'end of year' is not a date",
        ),
        (
            ('day__lte: "2026-12-31"', 'day__lte: "2026-12-31T10:00"'),
            "13:17: 'day__lte': '2026-12-31T10:00' is not a date",
        ),
        (
            ('at__gte: "2026-01-01T00:00:00+01:00"', 'at__gte: "2026-01-01"'),
            "14:16: 'at__gte': '2026-01-01' is not a datetime with an offset",
        ),
        (("hours__gt: 3", "hours__gt: three"), "15:18: 'hours__gt': 'three' is not a whole number"),
        (("paid: true", "paid: yes please"), "16:13: 'paid': 'yes please' is not true or false"),
        (
            ("amount__isnull: false", "amount__isnull: 0"),
            "17:23: 'amount__isnull' takes true or false, not '0'",
        ),
        (
            ("  from: {type: date,", "  none: {type: date,"),
            "3:9: a parameter cannot be named 'none': expressions read it as a constant",
        ),
        (
            ("  from: {type: date,", "  true: {type: date,"),
            "3:3: a parameter cannot be named 'true'",
        ),
        (
            ("  from: {type: date,", "  and: {type: date,"),
            "3:8: a parameter cannot be named 'and': expressions read it as an operator",
        ),
    ],
)
def test_a_literal_no_field_holds_and_an_unreadable_parameter_are_refused_at_load(
    db_url: str, tmp_path: Path, change: tuple[str, str], problem: str
) -> None:
    old, new = change
    assert old in REPORT
    report = REPORT.replace(old, new)
    if "none:" in new or "true:" in new or "and:" in new:
        name = new.split(":")[0].strip()
        report = report.replace('"{{ from }}"', '"{{ ' + name + ' }}"')
    found = validate(db_url, tmp_path, report)
    assert any(line.startswith(problem) for line in found), found
