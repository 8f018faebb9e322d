"""Entities that refer to each other (a lead's converted opportunity, an opportunity's
lead): both tables are created, the foreign keys added once both exist, a second
migration finds nothing to do, and the keys hold (restrict, set null). On SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.conftest import pack_instance

if TYPE_CHECKING:
    from pathlib import Path

CRM = {
    "module.yaml": 'name: crm\nversion: "1.0.0"\n',
    "entities/lead.yaml": """\
fields:
  name: {type: string, required: true}
  deal: {type: reference, to: deal, on_delete: set_null}
""",
    "entities/deal.yaml": """\
fields:
  title: {type: string, required: true}
  lead:  {type: reference, to: lead}
""",
}


def test_a_cycle_of_references_migrates_once_and_holds(db_url: str, tmp_path: Path) -> None:
    instance = pack_instance(tmp_path, db_url, "crm", CRM)
    assert instance.migrate().steps == []
    with instance.client() as client:
        lead = client.post("/api/v1/crm/lead", json={"name": "Ada"}).json()["data"]
        deal = client.post("/api/v1/crm/deal", json={"title": "Big", "lead": lead["id"]})
        assert deal.status_code == 201, deal.text
        deal_id = deal.json()["data"]["id"]
        linked = client.patch(f"/api/v1/crm/lead/{lead['id']}", json={"deal": deal_id})
        assert linked.status_code == 200, linked.text
        missing = client.post("/api/v1/crm/deal", json={"title": "X", "lead": "999"})
        assert missing.status_code == 422
        kept = client.delete(f"/api/v1/crm/lead/{lead['id']}")
        assert kept.status_code == 409, kept.text  # the deal's lead restricts
        cleared = client.delete(f"/api/v1/crm/deal/{deal_id}")
        assert cleared.status_code == 204, cleared.text
        after = client.get(f"/api/v1/crm/lead/{lead['id']}").json()["data"]
        assert after["deal"] is None  # set null
