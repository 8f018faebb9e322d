"""The sales pack's demo data (`tessera demo`): two dozen leads and opportunities across
every stage and six months of expected close, three leads converted (two linking accounts
of the contacts demo by name, one creating its account); loading it twice changes nothing.
On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.modules.sales.conftest import CONTACTS, SALES, Api
from tests.support.fixture_records import load_fixtures
from tests.support.rollups import assert_no_drift

if TYPE_CHECKING:
    from tests.conftest import Instance


def test_the_demo_tells_a_pipeline_and_loads_twice_alike(sales: Instance) -> None:
    load_fixtures(sales, "demo")
    with sales.client() as client:
        api = Api(client)
        leads = api.get(f"{SALES}/lead", limit=100)
        opportunities = api.get(f"{SALES}/opportunity", limit=100)
        accounts = api.get(f"{CONTACTS}/account", limit=100)
        assert len(leads) >= 24
        assert len(opportunities) >= 24
        assert {o["stage"] for o in opportunities} == {
            "prospecting",
            "qualification",
            "proposal",
            "negotiation",
            "closed_won",
            "closed_lost",
        }
        converted = [lead for lead in leads if lead["status"] == "converted"]
        assert len(converted) == 3
        assert all(lead["converted_opportunity"] for lead in converted)
        months = api.get(
            f"{SALES}/opportunity/_aggregate",
            group_by="expected_close__month",
            measures="weighted_amount__sum",
        )
        assert len(months) >= 4
        load_fixtures(sales, "demo")
        assert len(api.get(f"{SALES}/lead", limit=100)) == len(leads)
        assert len(api.get(f"{SALES}/opportunity", limit=100)) == len(opportunities)
        assert len(api.get(f"{CONTACTS}/account", limit=100)) == len(accounts)
    assert_no_drift(sales.settings)
