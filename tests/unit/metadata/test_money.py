"""Money fields as definitions (docs/locales.md "Money fields"): ``currency:`` names a string
or enum field of the record, ``company``, a code, or on a line item entity a field of its
parent (``parent.currency``); every mistake is reported at the key, file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import DefinitionError, load_project

INVOICE = "packs/shop/entities/invoice.yaml"
LINE = "packs/shop/entities/invoice_line.yaml"
NOTE = "packs/shop/entities/note.yaml"
PACKS = {
    "packs/shop/module.yaml": 'name: shop\nversion: "1.0.0"\n',
    INVOICE: """\
        document: true
        fields:
          account: {type: reference, to: account}
          currency: {type: string, max_length: 3}
          kind: {type: enum, values: [EUR, USD]}
          net_total: {type: decimal, scale: 2, currency: currency}
          lines: {type: children, entity: invoice_line}
        """,
    "packs/shop/entities/account.yaml": "fields:\n  currency: {type: string}\n",
    NOTE: "fields:\n  text: {type: string}\n  fee: {type: decimal, scale: 2}\n",
}
LINE_HEAD = "fields:\n  quantity: {type: decimal, scale: 3}\n"


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(PACKS)


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def line_with(currency: str) -> str:
    return LINE_HEAD + f"  amount: {{type: decimal, scale: 2, currency: {currency}}}\n"


def problems(files: dict[str, str], customizations: Path | None = None) -> list[str]:
    write(files)
    with pytest.raises(DefinitionError) as raised:
        load_project(["shop"], [Path("packs")], customizations=customizations)
    return [str(p) for p in raised.value.problems]


def test_a_lines_amount_may_take_its_parents_currency() -> None:
    write({LINE: line_with("parent.currency")})
    project = load_project(["shop"], [Path("packs")])
    line = project.entity("shop.invoice_line")
    assert line.parent == "shop.invoice"
    assert line.fields["amount"].currency == "parent.currency"
    write({LINE: line_with("parent.kind")})  # an enum field of codes too
    assert load_project(["shop"], [Path("packs")]).entity("shop.invoice_line")


@pytest.mark.parametrize(
    ("currency", "message"),
    [
        (
            "parent.curency",
            "3:47: currency 'parent.curency': 'curency' is not a field of shop.invoice "
            "(parent); did you mean 'currency'?",
        ),
        (
            "parent.net_total",
            "3:47: currency 'parent.net_total' is a decimal field of shop.invoice (parent); "
            "the field holding the currency code must be a string or enum field",
        ),
        (
            "parent.lines",  # the parent's lines: no code, and no way round back to a line
            "3:47: currency 'parent.lines' is a children field of shop.invoice (parent); "
            "the field holding the currency code must be a string or enum field",
        ),
        (
            "parent.account.currency",
            "3:47: currency 'parent.account.currency': a line reads its parent's own field "
            "('parent.<field>'), not through a reference",
        ),
        (
            "parent.",
            "3:47: currency 'parent.': '' is not a field of shop.invoice (parent) (its string "
            "and enum fields: currency, kind, docstatus)",
        ),
        (
            "_parent.currency",
            "3:47: currency '_parent.currency': a line takes its parent's currency as "
            "'parent.currency'",
        ),
        (
            "_parent__currency",
            "3:47: currency '_parent__currency': a line takes its parent's currency as "
            "'parent.currency'",
        ),
        (
            "amount",  # itself: a circle of one
            "3:47: currency 'amount' is a decimal field; the field holding the currency code "
            "must be a string or enum field",
        ),
        (
            "currency",  # the line has no currency of its own
            "3:47: currency 'currency' is not a field of shop.invoice_line, 'company' or a "
            "currency code (three capital letters: EUR)",
        ),
    ],
)
def test_a_lines_currency_mistakes_are_reported_at_the_key(currency: str, message: str) -> None:
    found = problems({LINE: line_with(currency)})
    assert [p.removeprefix(f"{LINE}:") for p in found if p.startswith(LINE)] == [message]
    assert len(found) == 1, found


def test_parent_is_only_for_line_item_entities() -> None:
    note = PACKS[NOTE].replace("scale: 2}", "scale: 2, currency: parent.currency}")
    write({LINE: LINE_HEAD})
    assert problems({NOTE: note}) == [
        f"{NOTE}:3:44: currency 'parent.currency': 'parent' is the record a line belongs to, "
        "and shop.note is not a line item entity (no 'children' field names it); name a "
        "field of the record, 'company' or a code"
    ]


def test_a_customization_is_checked_in_its_own_file() -> None:
    """A customization may give a pack's line field its parent's currency; a wrong one is
    reported in the customization's file."""
    write({LINE: LINE_HEAD + "  amount: {type: decimal, scale: 2}\n"})
    custom = "custom/shop/invoice_line.yaml"
    write({custom: "fields:\n  amount: {currency: parent.currency}\n"})
    project = load_project(["shop"], [Path("packs")], customizations=Path("custom"))
    assert project.entity("shop.invoice_line").fields["amount"].currency == "parent.currency"
    found = problems(
        {custom: "fields:\n  fee: {type: decimal, currency: parent.kindd}\n"},
        customizations=Path("custom"),
    )
    assert found == [
        f"{custom}:2:34: currency 'parent.kindd': 'kindd' is not a field of shop.invoice "
        "(parent); did you mean 'kind'?"
    ]
