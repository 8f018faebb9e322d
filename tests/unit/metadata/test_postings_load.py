"""Ledgers, balances and the actions that post to them, as definitions: every mistake is
reported at its file:line:col, with what to do instead."""

from __future__ import annotations

import textwrap
from decimal import Decimal
from pathlib import Path

import pytest

from metadata import DefinitionError, load_project

BASE = {
    "packs/stock/module.yaml": 'name: stock\nversion: "1.0.0"\n',
    "packs/stock/entities/item.yaml": "fields:\n  sku: {type: string}\n",
    "packs/stock/entities/bin.yaml": """\
        balance:
          key: [item]
          limits: [{field: qty, min: 0}]
        fields:
          item: {type: reference, to: item}
          qty: {type: decimal}
        """,
    "packs/stock/entities/move.yaml": """\
        ledger: {amounts: [qty], date: day}
        fields:
          item: {type: reference, to: item}
          day: {type: date}
          qty: {type: decimal}
        """,
    "packs/stock/entities/entry.yaml": """\
        document: true
        fields:
          day: {type: date}
          item: {type: reference, to: item}
          qty: {type: decimal}
        """,
}


@pytest.fixture(autouse=True)
def instance(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


def load(files: dict[str, str]) -> list[str]:
    for relative, text in {**BASE, **files}.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    try:
        load_project(["stock"], [Path("packs")])
    except DefinitionError as error:
        return [str(p) for p in error.problems]
    return []


POST = """\
    - name: post_it
      on: [submit]
      actions:
        - post:
            ledger: move
            values: {item: "{{ item }}", day: "{{ day }}", qty: "{{ qty }}"}
            balance: {entity: bin, add: {qty: qty}}
    """


def test_a_ledger_and_a_balance_load_with_their_parts() -> None:
    assert load({"packs/stock/rules/entry.yaml": POST}) == []
    project = load_project(["stock"], [Path("packs")])
    move = project.entity("stock.move")
    assert move.ledger is not None
    assert move.ledger.amounts == ("qty",)
    assert {"voucher_type", "voucher_id", "is_reversal"} <= set(move.fields)
    assert move.append_only
    balance = project.entity("stock.bin").balance
    assert balance is not None
    assert balance.limits[0].min == Decimal(0)
    assert balance.limits[0].code == "insufficient_stock"
    assert ("item",) in project.entity("stock.bin").unique


def test_posting_only_from_a_submit_rule_of_a_document() -> None:
    rules = POST.replace("on: [submit]", "on: [create]")
    found = load({"packs/stock/rules/entry.yaml": rules})
    assert len(found) == 1
    assert found[0].startswith("packs/stock/rules/entry.yaml:4:")
    assert "only in a rule 'on: [submit]' of a document" in found[0]


def test_post_targets_a_ledger_and_moves_a_balance_by_its_key() -> None:
    wrong = POST.replace("ledger: move", "ledger: item")
    found = load({"packs/stock/rules/entry.yaml": wrong})
    assert any(
        f.startswith("packs/stock/rules/entry.yaml:5:17:") and "stock.item is not a ledger" in f
        for f in found
    ), found
    unknown = POST.replace("add: {qty: qty}", "add: {qty: quantity}")
    (found,) = load({"packs/stock/rules/entry.yaml": unknown})
    assert "'quantity' is not a field of stock.move" in found


def test_no_other_action_writes_a_ledger_or_a_balance() -> None:
    rules = """\
        - name: sneak
          actions:
            - create: {entity: move, values: {qty: "1"}}
        """
    (found,) = load({"packs/stock/rules/item.yaml": rules})
    assert "packs/stock/rules/item.yaml:3:" in found
    assert "stock.move is a ledger: only postings write it" in found


def test_ledger_and_balance_mistakes_are_reported_at_their_keys() -> None:
    found = load(
        {
            "packs/stock/entities/bin.yaml": """\
                balance:
                  key: [item, nowhere]
                  limits: [{field: item, min: 0}, {field: qty}]
                fields:
                  item: {type: reference, to: item}
                  qty: {type: decimal}
                """,
            "packs/stock/entities/move.yaml": """\
                ledger: {amounts: [day], lock: {entity: nothing, field: x}}
                fields:
                  day: {type: date}
                  voucher_id: {type: integer}
                """,
        }
    )
    text = "\n".join(found)
    assert "bin.yaml:2:15: 'nowhere' cannot be a key field" in text
    assert "bin.yaml:3:" in text
    assert "limits bound numbers" in text
    assert "a limit needs 'min' or 'max'" in text
    assert "move.yaml:4:3: 'voucher_id' is a system field of every ledger" in text


def test_assert_code_needs_an_assert() -> None:
    rules = """\
        - name: coded
          code: over_delivery
          actions:
            - update: {values: {sku: x}}
        """
    (found,) = load({"packs/stock/rules/item.yaml": rules})
    assert "packs/stock/rules/item.yaml:2:3: 'code' is the code of a failed 'assert'" in found


COMPUTED_POST = """\
    - name: post_it
      on: [submit]
      actions:
        - post:
            ledger: move
            values: {item: "{{ item }}", day: "{{ day }}", qty: "{{ qty }}"}
            balance:
              entity: bin
              compute: {%s}
              add: {qty: qty}
    """


def test_a_compute_of_a_post_reads_the_balance_row_entry_and_posted() -> None:
    rules = COMPUTED_POST % 'qty: "entry.qty * 2 if qty > 0 else -posted.qty"'
    assert load({"packs/stock/rules/entry.yaml": rules}) == []
    project = load_project(["stock"], [Path("packs")])
    action = project.entity("stock.entry").rules[0].actions[0]
    assert action.describe()["post"]["balance"]["compute"] == {
        "qty": "entry.qty * 2 if qty > 0 else -posted.qty"
    }


@pytest.mark.parametrize(
    ("compute", "message"),
    [
        ('qtx: "entry.qty"', "9:26: 'qtx' is not a field of stock.move a posting may fill"),
        ('voucher_id: "1"', "9:33: 'voucher_id' is a system field of stock.move, filled by"),
        ('qty: "entry.qty * rat"', "9:26: unknown name 'rat' in expression"),
        ('qty: "entry.qty *"', "9:26: expression does not parse"),
    ],
)
def test_a_compute_is_checked_at_its_field(compute: str, message: str) -> None:
    problems = load({"packs/stock/rules/entry.yaml": COMPUTED_POST % compute})
    assert len(problems) == 1, problems
    assert problems[0].startswith("packs/stock/rules/entry.yaml:")
    assert message in problems[0], problems


LINES_OF_A_REFERENCE = """\
    - name: post_it
      on: [submit]
      actions:
        - for_each: %s
          post:
            ledger: move
            values: {item: "{{ line.item }}", day: "{{ day }}", qty: "{{ line.qty }}"}
    """

KIT = {
    "packs/stock/entities/kit.yaml": "fields:\n  parts: {type: children, entity: kit_part}\n",
    "packs/stock/entities/kit_part.yaml": """\
        fields:
          item: {type: reference, to: item}
          qty: {type: decimal}
        """,
    "packs/stock/entities/entry.yaml": """\
        document: true
        fields:
          day: {type: date}
          item: {type: reference, to: item}
          kit: {type: reference, to: kit}
          qty: {type: decimal}
        """,
}


def test_for_each_may_name_the_lines_of_a_referenced_record() -> None:
    assert load({**KIT, "packs/stock/rules/entry.yaml": LINES_OF_A_REFERENCE % "kit.parts"}) == []


@pytest.mark.parametrize(
    ("for_each", "message"),
    [
        ("kit.part", "'part' is not a field of stock.kit; did you mean 'parts'?"),
        ("kot.parts", "'kot' is not a field of stock.entry; did you mean 'kit'?"),
        ("day.parts", "'day' is not a reference field of stock.entry"),
    ],
)
def test_for_each_of_a_reference_is_checked(for_each: str, message: str) -> None:
    problems = load({**KIT, "packs/stock/rules/entry.yaml": LINES_OF_A_REFERENCE % for_each})
    assert len(problems) == 1, problems
    assert problems[0].startswith("packs/stock/rules/entry.yaml:4:17: "), problems
    assert message in problems[0], problems
