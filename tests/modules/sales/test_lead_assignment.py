"""New leads go to the sales reps in turn (rule assign_to_rep, round robin over the
sales_rep role), and a rep works the leads assigned to them even when somebody else owns
them. Through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from tests.modules.sales.conftest import SALES
from tests.support.identity import bearer

if TYPE_CHECKING:
    from tests.conftest import Instance


def test_new_leads_go_to_the_reps_in_turn(sales: Instance) -> None:
    with sales.client() as client:
        reps = {name: bearer(sales.token(name, ("sales_rep",))) for name in ["rita", "sam", "uma"]}
        ids = {
            name: client.get("/api/v1/auth/me", headers=headers).json()["data"]["id"]
            for name, headers in reps.items()
        }
        names = {str(ident): name for name, ident in ids.items()}
        maria = bearer(sales.token("maria", ("sales_manager",)))  # not a rep: not assigned
        assigned = []
        for n in range(9):
            response = client.post(f"{SALES}/lead", json={"last_name": f"Lead {n}"}, headers=maria)
            assert response.status_code == 201, response.text
            assigned.append(names[response.json()["data"]["assigned_to"]])
        assert assigned == ["rita", "sam", "uma"] * 3
        assert Counter(assigned) == {"rita": 3, "sam": 3, "uma": 3}
        # a lead given to someone keeps them, and the list filters by the rep's name
        chosen = client.post(
            f"{SALES}/lead", json={"last_name": "Chosen", "assigned_to": "uma"}, headers=maria
        )
        assert chosen.json()["data"]["assigned_to"] == str(ids["uma"])
        listed = client.get(f"{SALES}/lead", params={"assigned_to": "uma", "limit": 50})
        assert len(listed.json()["data"]) == 4
        # the rep works the leads assigned to them, owned by the manager
        mine = client.get(f"{SALES}/lead", params={"limit": 50}, headers=reps["sam"]).json()
        assert sorted(lead["last_name"] for lead in mine["data"]) == [
            "Lead 1",
            "Lead 4",
            "Lead 7",
        ]
        lead = mine["data"][0]
        worked = client.patch(
            f"{SALES}/lead/{lead['id']}", json={"status": "contacted"}, headers=reps["sam"]
        )
        assert worked.status_code == 200, worked.text
        others = client.get(f"{SALES}/lead", params={"last_name": "Lead 0"}).json()["data"]
        hidden = client.get(f"{SALES}/lead/{others[0]['id']}", headers=reps["sam"])
        assert hidden.status_code == 404
