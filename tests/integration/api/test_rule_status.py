"""An assert declared ``status: 409`` refuses with a conflict instead of a 422, through the
HTTP API on SQLite and PostgreSQL: a cancel refused while something depends on the
document, a create refused by the state of another record, and a write that also breaks an
ordinary assert (422: the record itself must be fixed first)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.conftest import pack_instance

if TYPE_CHECKING:
    from pathlib import Path

FILES = {
    "module.yaml": "name: books\nversion: 1.0.0\n",
    "entities/invoice.yaml": """\
document: true
fields:
  total: {type: decimal, scale: 2}
  paid:  {type: decimal, scale: 2, default: 0}
""",
    "rules/invoice.yaml": """\
- name: not_while_paid
  on: [cancel]
  assert: "paid == 0"
  field: paid
  code: payments_allocated
  status: 409
  message: a payment is allocated to this invoice
- name: not_overpaid
  assert: "paid <= total"
  field: paid
  status: 409
  message: paid more than the total
- name: total_positive
  assert: "total > 0"
  field: total
  message: the total must be positive
""",
}
API = "/api/v1/books/invoice"


def test_a_conflict_assert_answers_409(db_url: str, tmp_path: Path) -> None:
    instance = pack_instance(tmp_path, db_url, "books", FILES)
    with instance.client() as client:
        made = client.post(API, json={"total": "10.00", "paid": "4.00"})
        assert made.status_code == 201, made.text
        path = f"{API}/{made.json()['data']['id']}"
        assert client.post(f"{path}/_submit").status_code == 200

        refused = client.post(f"{path}/_cancel")
        assert refused.status_code == 409
        problem = refused.json()
        assert (problem["code"], problem["title"]) == ("payments_allocated", "Conflict")
        assert problem["errors"] == [
            {
                "field": "paid",
                "code": "payments_allocated",
                "message": "a payment is allocated to this invoice",
                "rule": "not_while_paid",
            }
        ]
        assert client.get(path).json()["data"]["docstatus"] == "submitted"

        # a 409 assert without a code of its own: the problem's code is 'conflict'
        over = client.post(API, json={"total": "10.00", "paid": "11.00"})
        assert (over.status_code, over.json()["code"]) == (409, "conflict")
        assert over.json()["errors"][0]["code"] == "rule"

        # with an ordinary failure too, the record must be fixed first: 422, both errors
        both = client.post(API, json={"total": "-1.00", "paid": "5.00"})
        assert both.status_code == 422
        assert {e["rule"] for e in both.json()["errors"]} == {"not_overpaid", "total_positive"}
