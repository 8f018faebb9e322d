"""Who sees what in the sales pack: a sales rep reads and edits their own leads,
opportunities and quotations (owner == their user id) and converts their leads; a sales
manager sees everyone's; a viewer reads and changes nothing. Through HTTP, on SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.modules.sales.conftest import SALES, Api
from tests.support.identity import bearer

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.conftest import Instance


def as_user(client: TestClient, sales: Instance, name: str, role: str) -> dict[str, str]:
    return bearer(sales.token(name, (role,)))


def user_id(client: TestClient, headers: dict[str, str]) -> str:
    response = client.get("/api/v1/auth/me", headers=headers)
    assert response.status_code == 200, response.text
    return str(response.json()["data"]["id"])


def made(client: TestClient, headers: dict[str, str], path: str, body: dict[str, Any]) -> Any:
    response = client.post(path, json=body, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()["data"]


def test_reps_work_their_own_records_and_managers_all(sales: Instance) -> None:
    with sales.client() as client:
        admin = Api(client)
        acme = admin.account("Acme")
        rita = as_user(client, sales, "rita", "sales_rep")
        sam = as_user(client, sales, "sam", "sales_rep")
        maria = as_user(client, sales, "maria", "sales_manager")
        vic = as_user(client, sales, "vic", "sales_viewer")
        rita_id = user_id(client, rita)
        lead = made(client, rita, f"{SALES}/lead", {"last_name": "Lovelace", "company": "AE"})
        assert lead["owner"] == rita_id
        deal = made(client, rita, f"{SALES}/opportunity", {"name": "D", "account": acme["id"]})
        made(client, sam, f"{SALES}/lead", {"last_name": "Babbage"})
        # each rep sees their own
        seen = client.get(f"{SALES}/lead", headers=rita).json()["data"]
        assert [row["last_name"] for row in seen] == ["Lovelace"]
        seen = client.get(f"{SALES}/lead", headers=sam).json()["data"]
        assert [row["last_name"] for row in seen] == ["Babbage"]
        assert client.get(f"{SALES}/opportunity/{deal['id']}", headers=sam).status_code == 404
        stolen = client.patch(f"{SALES}/lead/{lead['id']}", json={"status": "lost"}, headers=sam)
        assert stolen.status_code == 404
        # nor give a record away (the lead is also assigned to rita: she was the next rep in
        # turn), nor create one for somebody else
        assert lead["assigned_to"] == rita_id
        given = client.patch(
            f"{SALES}/lead/{lead['id']}",
            json={"owner": "someone-else", "assigned_to": None},
            headers=rita,
        )
        assert given.status_code == 403, given.text
        other = client.post(
            f"{SALES}/lead", json={"last_name": "X", "owner": "someone-else"}, headers=rita
        )
        assert other.status_code == 403, other.text
        # a rep converts their lead: account, contact and opportunity, the opportunity theirs
        converted = client.patch(
            f"{SALES}/lead/{lead['id']}",
            json={"status": "converted", "first_name": "Ada"},
            headers=rita,
        )
        assert converted.status_code == 200, converted.text
        opportunity_id = converted.json()["data"]["converted_opportunity"]
        mine = client.get(f"{SALES}/opportunity/{opportunity_id}", headers=rita)
        assert mine.status_code == 200
        assert mine.json()["data"]["owner"] == rita_id
        # the manager sees and edits everything
        every = client.get(f"{SALES}/lead", headers=maria).json()["data"]
        assert sorted(row["last_name"] for row in every) == ["Babbage", "Lovelace"]
        moved = client.patch(
            f"{SALES}/opportunity/{deal['id']}", json={"stage": "proposal"}, headers=maria
        )
        assert moved.status_code == 200, moved.text
        # the viewer reads, and changes nothing
        assert len(client.get(f"{SALES}/opportunity", headers=vic).json()["data"]) == 2
        refused = client.patch(
            f"{SALES}/opportunity/{deal['id']}", json={"stage": "negotiation"}, headers=vic
        )
        assert refused.status_code == 403
        assert client.post(f"{SALES}/lead", json={"last_name": "Y"}, headers=vic).status_code == 403
