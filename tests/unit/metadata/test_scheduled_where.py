"""Which ``where`` of a scheduled rule becomes a record filter (run as SQL), and why the
others do not (``tessera validate`` advice)."""

from __future__ import annotations

import pytest

from metadata import EntityDef, FieldDef, FieldType, RuleDef
from metadata._scheduled_where import NotSql, scheduled_filter

TYPES = {
    "number": FieldType.STRING,
    "due_date": FieldType.DATE,
    "paid_at": FieldType.DATETIME,
    "paid": FieldType.BOOLEAN,
    "total": FieldType.DECIMAL,
    "customer": FieldType.REFERENCE,
}
ENTITY = EntityDef(
    pack="billing",
    name="invoice",
    label="Invoice",
    label_plural="Invoices",
    description=None,
    title="number",
    fields={name: FieldDef(name, kind, name) for name, kind in TYPES.items()},
)


def rule(where: str, when: str | None = None) -> RuleDef:
    return RuleDef("r", None, "", schedule="0 9 * * *", where=where, when=when)


@pytest.mark.parametrize(
    "where",
    [
        "not paid and due_date is not none and due_date < today()",
        "number in ['A', 'B'] or number is none",
        "total >= -5 and total != 0",
        "paid_at < now()",
        "today() > due_date",
        "customer is not none",
        "true",
    ],
)
def test_filters_that_run_as_sql(where: str) -> None:
    assert scheduled_filter(rule(where), ENTITY) is not None


@pytest.mark.parametrize(
    ("where", "reason"),
    [
        ("customer.name == 'x'", "'customer.name' reads another record"),
        ("due_date < today() - 1", "a comparison with something else than a constant"),
        ("number < 'B'", "'lt' on 'number' (string)"),
        ("paid_at < today()", "today() compared with a datetime field"),
        ("due_date == '2026-01-01'", "'2026-01-01' compared with a date field"),
        ("total > 1.5", "1.5 compared with a decimal field"),
        ("customer == 3", "'eq' on 'customer' (reference)"),
        ("number | length > 2", "a comparison without a field of the record"),
        ("nope == 1", "'nope' is not a stored field of the record"),
        ("1 < total < 3", "a chained comparison"),
        ("number", "'number' alone is no condition SQL can hold"),
    ],
)
def test_filters_that_do_not_say_why(where: str, reason: str) -> None:
    with pytest.raises(NotSql) as raised:
        scheduled_filter(rule(where), ENTITY)
    assert reason in str(raised.value)


def test_when_narrows_the_where() -> None:
    found = scheduled_filter(rule("paid", when="total > 0"), ENTITY)
    assert found is not None
    assert type(found).__name__ == "AllOf"
