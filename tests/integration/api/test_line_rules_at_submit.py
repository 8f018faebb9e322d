"""Rules of a document's line items ``on: [submit]`` (and ``cancel``): each line is judged
when the document moves, with the records its expressions traverse read then, so a
quotation line is checked against the stock its item has at submit, not the stock it had
when the line was written; a failure points at ``lines[i].field`` and leaves a draft. On
SQLite and PostgreSQL."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from metadata import DefinitionError, load_project
from tests.conftest import pack_instance

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fastapi.testclient import TestClient

SHOP = {
    "module.yaml": 'name: shop\nversion: "1.0.0"\n',
    "entities/item.yaml": """\
title: name
fields:
  name:  {type: string, required: true, unique: true}
  stock: {type: integer, default: 0}
""",
    "entities/quote.yaml": """\
document: true
fields:
  ref:   {type: string, required: true}
  lines: {type: children, entity: quote_line}
""",
    "entities/quote_line.yaml": """\
fields:
  item:      {type: reference, to: item, required: true}
  quantity:  {type: integer, required: true, min: 1}
  available: {type: integer, computed: "item.stock"}
""",
    "rules/quote_line.yaml": """\
- name: in_stock
  on: [submit]
  assert: "quantity <= item.stock"
  field: quantity
  code: insufficient_stock
  message: not enough stock
- name: small_when_written
  assert: "quantity <= 1000"
  field: quantity
""",
}
URL = "/api/v1/shop"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance = pack_instance(tmp_path, db_url, "shop", SHOP)
    with instance.client() as client:
        yield client


def post(client: TestClient, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{URL}/{entity}", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_a_line_is_judged_on_the_stock_at_submit(client: TestClient) -> None:
    bolt = post(client, "item", {"name": "bolt", "stock": 10})
    nut = post(client, "item", {"name": "nut", "stock": 10})
    lines = [{"item": bolt["id"], "quantity": 5}, {"item": nut["id"], "quantity": 8}]
    quote = post(client, "quote", {"ref": "Q-1", "lines": lines})
    assert [line["available"] for line in quote["lines"]] == [10, 10]
    # the stored copy says 10; the nut's stock falls to 6 before the submit
    assert client.patch(f"{URL}/item/{nut['id']}", json={"stock": 6}).status_code == 200
    refused = client.post(f"{URL}/quote/{quote['id']}/_submit")
    assert refused.status_code == 422, refused.text
    body = refused.json()
    assert body["code"] == "insufficient_stock"
    assert [(e["field"], e["code"]) for e in body["errors"]] == [
        ("lines[1].quantity", "insufficient_stock")
    ]
    stored = client.get(f"{URL}/quote/{quote['id']}").json()["data"]
    assert stored["docstatus"] == "draft"
    assert client.patch(f"{URL}/item/{nut['id']}", json={"stock": 8}).status_code == 200
    submitted = client.post(f"{URL}/quote/{quote['id']}/_submit")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["data"]["docstatus"] == "submitted"


def test_submit_rules_of_lines_do_not_run_when_the_lines_are_written(
    client: TestClient,
) -> None:
    bolt = post(client, "item", {"name": "bolt", "stock": 1})
    quote = post(client, "quote", {"ref": "Q-2", "lines": [{"item": bolt["id"], "quantity": 5}]})
    assert quote["docstatus"] == "draft"
    too_many = client.post(
        f"{URL}/quote", json={"ref": "Q-3", "lines": [{"item": bolt["id"], "quantity": 5000}]}
    )
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["field"] == "lines[0].quantity"


def test_submit_rules_need_a_document_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    files = dict(SHOP)
    files["entities/quote.yaml"] = files["entities/quote.yaml"].replace("document: true\n", "")
    for relative, text in files.items():
        path = Path("packs/shop") / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    with pytest.raises(DefinitionError) as raised:
        load_project(["shop"], [Path("packs")])
    assert [str(p) for p in raised.value.problems] == [
        "packs/shop/rules/quote_line.yaml:2:7: 'on: submit' applies only to documents, and "
        "shop.quote_line is not one: add 'document: true' to its entity file (line items may "
        "have such rules when their parent is a document)"
    ]
