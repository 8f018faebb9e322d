"""The expression sandbox: definitions' expressions evaluate over the names in scope and
cannot reach Python internals or ask for unbounded work."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from jinja2.exceptions import SecurityError

from engine.expressions import Scope, compile_expression


def evaluate(source: str, **names: object) -> object:
    return compile_expression(source)(Scope(names))


def test_expressions_see_the_names_in_scope() -> None:
    assert evaluate("amount * probability / 100", amount=Decimal("200.00"), probability=50) == 100
    assert evaluate("close_date is none or close_date >= today", close_date=None, today=1)
    lines = [{"quantity": 2}, {"quantity": 3}]
    assert evaluate("lines | sum(attribute='quantity')", lines=lines) == 5
    assert evaluate("account.name", account={"name": "Acme"}) == "Acme"
    assert evaluate("d.year", d=dt.date(2026, 11, 23)) == 2026


@pytest.mark.parametrize(
    "source",
    [
        "().__class__.__mro__",
        "''.__class__.__base__.__subclasses__()",
        "cycler.__init__.__globals__",
        "lines.append(1)",
        "d.update({'a': 1})",
        "code.startswith('x') and '{0.__class__.__mro__}'.format(code)",
        "'x' * 1000000",
        "[1, 2] * 60000",
        "2 ** 100000",
        "(10 ** 1000) ** 1000",
    ],
)
def test_escapes_and_unbounded_work_are_refused(source: str) -> None:
    for _ in range(2):  # the sandbox remembers its verdicts: the second time must hold too
        with pytest.raises(SecurityError):
            evaluate(source, lines=[], d={}, code="xyz")


@pytest.mark.parametrize(
    "source",
    [
        "'{0.__class__}'.format(d)",
        "'{x.__class__}'.format_map({'x': d})",
        "('{0.__class__}' | attr('format'))(d)",
        "'{0.__class__.__mro__}'.format(code)",
    ],
)
def test_format_strings_cannot_reach_internals(source: str) -> None:
    for _ in range(2):
        try:
            text = evaluate(source, d={}, code="xyz")
        except SecurityError:
            continue
        assert "class" not in str(text)
        assert "dict" not in str(text)


def test_methods_of_plain_values_and_scope_functions_are_callable() -> None:
    for _ in range(2):
        assert evaluate("code.startswith('DL-') and code.upper() == 'DL-1'", code="dl-1") is False
        assert evaluate("code.upper()", code="dl-1") == "DL-1"
        assert evaluate("'{} {}'.format(a, b)", a=1, b="x") == "1 x"
        assert evaluate("d.replace(day=1).day + today().year * 0", d=dt.date(2026, 5, 9)) == 1
        assert evaluate("amount.quantize(cent)", amount=Decimal("2.555"), cent=Decimal("0.1")) == (
            Decimal("2.6")
        )


def test_unsafe_attributes_read_as_undefined() -> None:
    """Reading (not calling) an unsafe attribute yields Jinja's undefined, which is falsy:
    a rule asserting it fails rather than reaching the class."""
    value = evaluate("lines.__class__", lines=[])
    assert value is not list
    assert not value


def test_expressions_of_one_write_share_a_scope() -> None:
    scope = Scope({"price": Decimal("2.50"), "quantity": 4}, old={"quantity": 3})
    amount = compile_expression("price * quantity")
    assert amount(scope) == Decimal("10.00")
    scope.set("amount", amount(scope))
    assert compile_expression("amount > 5 and changed('quantity')")(scope) is True
    assert compile_expression("old.quantity")(scope) == 3
    assert compile_expression("today() <= now().date()")(scope) is True


def test_ranges_are_capped() -> None:
    with pytest.raises(OverflowError):
        evaluate("range(10 ** 9) | list")
