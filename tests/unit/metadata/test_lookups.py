"""Lookups as definitions: ``lookup:`` on a field loads into a ``LookupDef`` (with an index
on the columns it selects by added to the entity it reads); every mistake reported at its
file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from metadata import DefinitionError, LookupDef, load_project

PACKS = {
    "packs/rates/module.yaml": 'name: rates\nversion: "1.0.0"\n',
    "packs/rates/entities/currency_rate.yaml": """\
        fields:
          from_currency: {type: string, max_length: 3}
          to_currency: {type: string, max_length: 3}
          date: {type: date}
          rate: {type: decimal, scale: 6}
          note: {type: text}
          data: {type: json}
        """,
    "packs/other/module.yaml": 'name: other\nversion: "1.0.0"\n',
    "packs/other/entities/thing.yaml": "fields:\n  rate: {type: decimal}\n",
    "packs/books/module.yaml": 'name: books\nversion: "1.0.0"\ndepends: [rates]\n',
    "packs/books/entities/price_list.yaml": "fields:\n  name: {type: string}\n",
    "packs/books/entities/item.yaml": "fields:\n  name: {type: string}\n",
    "packs/books/entities/item_price.yaml": """\
        fields:
          price_list: {type: reference, to: price_list}
          item: {type: reference, to: item}
          rate: {type: decimal, scale: 2}
        unique: [[price_list, item]]
        """,
    "packs/books/entities/account.yaml": """\
        fields:
          name: {type: string}
          price_list: {type: reference, to: price_list}
        """,
    "packs/books/entities/invoice_line.yaml": """\
        fields:
          item: {type: reference, to: item}
          rate:
            type: decimal
            lookup:
              entity: item_price
              field: rate
              where: {price_list: parent.account.price_list, item: item}
        """,
}
INVOICE = "packs/books/entities/invoice.yaml"
HEAD = """\
document: true
fields:
  account: {type: reference, to: account}
  currency: {type: string, max_length: 3}
  posting_date: {type: date}
  label: {type: string}
  lines: {type: children, entity: invoice_line}
"""
GOOD = """\
  exchange_rate:
    type: decimal
    scale: 6
    default: 1
    lookup:
      entity: rates.currency_rate
      field: rate
      where: {from_currency: currency, to_currency: company_currency}
      latest: {by: date, on_or_before: posting_date}
      when: "currency != company_currency"
      code: no_exchange_rate
"""


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write(PACKS)


def write(files: dict[str, str]) -> None:
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def problems(field: str, *, head: str = HEAD) -> list[str]:
    write({INVOICE: head + field})
    with pytest.raises(DefinitionError) as raised:
        load_project(["books", "other"], [Path("packs")])
    return [str(p) for p in raised.value.problems]


def test_a_lookup_loads_and_indexes_the_columns_it_selects_by() -> None:
    write({INVOICE: HEAD + GOOD})
    project = load_project(["books"], [Path("packs")])
    lookup = project.entity("books.invoice").fields["exchange_rate"].lookup
    assert lookup == LookupDef(
        entity="rates.currency_rate",
        field="rate",
        where=(("from_currency", "currency"), ("to_currency", "company_currency")),
        latest_by="date",
        on_or_before="posting_date",
        when="currency != company_currency",
        code="no_exchange_rate",
    )
    assert project.entity("rates.currency_rate").indexes == (
        ("from_currency", "to_currency", "date"),
    )
    line = project.entity("books.invoice_line").fields["rate"].lookup
    assert line is not None
    assert line.where == (("price_list", "parent.account.price_list"), ("item", "item"))
    assert line.code == "no_match"
    assert project.entity("books.item_price").indexes == ()  # the unique constraint serves


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        (
            GOOD.replace("rates.currency_rate", "rates.curency_rate"),
            "13:15: unknown entity 'rates.curency_rate'; did you mean 'rates.currency_rate'?",
        ),
        (
            GOOD.replace("rates.currency_rate", "other.thing"),
            "13:15: entity 'other.thing' belongs to pack 'other', which pack 'books' does not "
            "depend on; add it to depends in module.yaml",
        ),
        (
            GOOD.replace("field: rate", "field: rat"),
            "14:14: 'rat' is not a field of rates.currency_rate; did you mean 'rate'?",
        ),
        (
            GOOD.replace("field: rate", "field: note"),
            "14:14: field 'note' of rates.currency_rate is a text: it does not fit "
            "books.invoice.exchange_rate, a decimal",
        ),
        (
            GOOD.replace("field: rate", "field: data"),
            "14:14: a lookup cannot take a json field's value",
        ),
        (
            GOOD.replace("from_currency: currency", "from_curency: currency"),
            "15:15: 'from_curency' is not a field of rates.currency_rate; did you mean "
            "'from_currency'?",
        ),
        (
            GOOD.replace("from_currency: currency", "from_currency: curency"),
            "15:30: unknown name 'curency' in expression; did you mean 'currency'?",
        ),
        (
            GOOD.replace("by: date", "by: rate"),
            "16:20: 'rate' is a decimal field of rates.currency_rate; 'latest' needs a date "
            "or datetime field",
        ),
        (
            GOOD.replace("on_or_before: posting_date", "on_or_before: posting_date +"),
            "16:40: expression does not parse: unexpected 'end of template'",
        ),
        (
            GOOD.replace('"currency != company_currency"', '"parent.currency"'),
            "17:13: unknown name 'parent' in expression; 'parent' is in scope only in the "
            "lookups of a line item entity",
        ),
        (
            GOOD.replace("code: no_exchange_rate", "code: No-Rate"),
            "18:13: fields.exchange_rate.lookup.code: 'No-Rate' does not match",
        ),
        (
            GOOD.replace("      latest", "      lates"),
            "16:7: unknown key 'lates'; did you mean 'latest'?",
        ),
        (
            "  total:\n    type: decimal\n    computed: '1'\n"
            "    lookup: {entity: rates.currency_rate, field: rate, where: {date: posting_date}}\n",
            "11:13: a computed field cannot have a lookup: it is always computed",
        ),
        (
            "  rate:\n    type: decimal\n    lookup: {entity: rates.currency_rate, field: rate}\n",
            "10:13: a lookup needs 'where', 'latest' or both: which record to read",
        ),
        (
            "  price:\n    type: reference\n    to: item\n"
            "    lookup: {entity: item_price, field: id, where: {item: label}}\n",
            "11:41: the id of a books.item_price record fits only a reference to books.item_price",
        ),
        (
            "  doc:\n    type: json\n    lookup: {entity: item_price, field: rate}\n",
            "10:5: key 'lookup' does not apply to a field of type json",
        ),
        (
            "  price:\n    type: reference\n    to: item_price\n"
            "    lookup: {entity: item_price, field: id, where: {_parent: id, item: label}}\n",
            "11:53: '_parent' selects the lines of a record: books.item_price is not a line "
            "item entity",
        ),
    ],
)
def test_mistakes_are_reported_at_their_place(field: str, expected: str) -> None:
    found = problems(field)
    assert any(p.startswith(INVOICE) and expected in p for p in found), found


def test_a_lines_lookup_may_read_its_parents_fields_and_nothing_else() -> None:
    line = "packs/books/entities/invoice_line.yaml"
    text = textwrap.dedent(PACKS[line])
    write({INVOICE: HEAD + GOOD, line: text.replace("parent.account.", "parent.acount.")})
    with pytest.raises(DefinitionError) as raised:
        load_project(["books"], [Path("packs")])
    assert [str(p) for p in raised.value.problems] == [
        f"{line}:8:27: 'acount' is not a field of books.invoice (parent); did you mean 'account'?"
    ]


def test_a_reference_takes_a_reference_to_the_same_entity() -> None:
    field = (
        "  pick:\n    type: reference\n    to: account\n"
        "    lookup: {entity: item_price, field: item, where: {item: label}}\n"
    )
    (found,) = problems(field)
    assert "field 'item' of books.item_price is a reference to books.item" in found
    assert "books.invoice.pick, a reference to books.account" in found
