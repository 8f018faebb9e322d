"""An action's own ``when``: the action runs only when it holds; with ``for_each`` it is
judged per line, the line in scope (only the lines it holds for), for every kind of action,
postings included (a service line posts no stock). On SQLite and PostgreSQL; and the load
checks of the expression at its file:line:col."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from metadata import DefinitionError, load_project
from tests.conftest import pack_instance
from tests.support.ledger_packs import API, FILES

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi.testclient import TestClient

PACK = {
    **FILES,
    "entities/item.yaml": """\
fields:
  sku: {type: string, unique: true, required: true}
  is_stock_item: {type: boolean, default: true}
""",
    "entities/stock_entry_line.yaml": """\
fields:
  item:      {type: reference, to: item, required: true}
  warehouse: {type: reference, to: warehouse, required: true}
  quantity:  {type: decimal, scale: 3, required: true, min: 0.001}
  stocked:   {type: boolean, computed: "item.is_stock_item"}
""",
    "entities/note.yaml": "fields:\n  text: {type: string}\n",
    "rules/stock_entry.yaml": """\
- name: move_stock
  on: [submit]
  actions:
    - for_each: lines
      when: "line.stocked"
      post:
        ledger: stock_ledger_entry
        field: quantity
        values:
          item: "{{ line.item }}"
          warehouse: "{{ line.warehouse }}"
          posting_date: "{{ posting_date }}"
          qty_change: "{{ line.quantity if purpose == 'receipt' else -line.quantity }}"
        balance: {entity: bin, add: {actual_qty: qty_change}, after: {qty_after: actual_qty}}
    - for_each: lines
      when: "not line.stocked"
      create: {entity: note, values: {text: "service line {{ line.id }}"}}
    - when: "purpose == 'issue'"
      create: {entity: note, values: {text: "an issue"}}
""",
}


@pytest.fixture
def api(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    with pack_instance(tmp_path, db_url, "stock", PACK).client() as client:
        yield client


def made(api: TestClient, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.post(f"{API}/{entity}", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_an_action_runs_for_the_lines_its_when_holds_for(api: TestClient) -> None:
    chair = made(api, "item", {"sku": "CHAIR"})["id"]
    service = made(api, "item", {"sku": "SVC", "is_stock_item": False})["id"]
    wh = made(api, "warehouse", {"name": "Main"})["id"]
    lines = [
        {"item": service, "warehouse": wh, "quantity": "1"},
        {"item": chair, "warehouse": wh, "quantity": "5"},
    ]
    receipt = made(api, "stock_entry", {"purpose": "receipt", "lines": lines})
    assert api.post(f"{API}/stock_entry/{receipt['id']}/_submit").status_code == 200
    rows = api.get(f"{API}/stock_ledger_entry").json()["data"]
    assert [(r["item"], r["qty_change"]) for r in rows] == [(chair, "5.000")]
    assert [b["item"] for b in api.get(f"{API}/bin").json()["data"]] == [chair]
    service_line = receipt["lines"][0]["id"]
    notes = [n["text"] for n in api.get(f"{API}/note").json()["data"]]
    assert notes == [f"service line {service_line}"]

    issue = made(api, "stock_entry", {"purpose": "issue", "lines": lines[1:]})
    assert api.post(f"{API}/stock_entry/{issue['id']}/_submit").status_code == 200
    notes = [n["text"] for n in api.get(f"{API}/note?sort=id").json()["data"]]
    assert notes[1:] == ["an issue"]
    assert api.post(f"{API}/stock_entry/{issue['id']}/_cancel").status_code == 200
    assert api.get(f"{API}/bin").json()["data"][0]["actual_qty"] == "5.000"


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ('for_each: lines\n    when: "line.qty >"\n    update: {values: {n: 1}}', "does not parse"),
        ('when: "line.qty > 1"\n    update: {values: {n: 1}}', "unknown name 'line'"),
        (
            'for_each: lines\n    when: "qtty > 1"\n    update: {values: {n: 1}}',
            "unknown name 'qtty'",
        ),
    ],
)
def test_an_actions_when_is_checked_when_loading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, action: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    files = {
        "packs/p/module.yaml": 'name: p\nversion: "1.0.0"\n',
        "packs/p/entities/order.yaml": """\
            fields:
              n: {type: integer}
              lines: {type: children, entity: order_line}
            """,
        "packs/p/entities/order_line.yaml": "fields:\n  qty: {type: integer}\n",
        "packs/p/rules/order.yaml": f"- name: r\n  actions:\n  - {action}\n",
    }
    for relative, text in files.items():
        path = Path(relative)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(DefinitionError) as raised:
        load_project(["p"], [Path("packs")])
    problems = [str(p) for p in raised.value.problems]
    assert any("rules/order.yaml:" in p and message in p for p in problems), problems
