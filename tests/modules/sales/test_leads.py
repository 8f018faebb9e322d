"""Leads: the score computed from source, completeness and engagement; conversion into an
account (a new one, or the existing one of that name), a contact and an opportunity, linked
to the lead, all in one transaction. Through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.modules.sales.conftest import CONTACTS, SALES

if TYPE_CHECKING:
    from tests.modules.sales.conftest import Api


def test_the_score_follows_source_completeness_and_engagement(api: Api) -> None:
    bare = api.made(f"{SALES}/lead", {"last_name": "Doe"})
    assert (bare["score"], bare["status"]) == (0, "new")
    full = api.made(
        f"{SALES}/lead",
        {
            "first_name": "Ada",
            "last_name": "Lovelace",
            "company": "Analytical Engines",
            "email": "ada@analytical.example",
            "phone": "+44 20 7946 0000",
            "source": "referral",
        },
    )
    assert full["score"] == 30 + 10 + 10 + 10 + 5
    engaged = api.changed(f"{SALES}/lead/{full['id']}", {"interactions": 2, "status": "contacted"})
    assert engaged["score"] == 65 + 2 * 5 + 5
    capped = api.changed(f"{SALES}/lead/{full['id']}", {"interactions": 50, "status": "qualified"})
    assert capped["score"] == 100  # 65 + 30 + 10, at most 100
    lost = api.changed(f"{SALES}/lead/{full['id']}", {"status": "lost", "lost_reason": "budget"})
    assert lost["score"] == 0
    refused = api.client.patch(f"{SALES}/lead/{bare['id']}", json={"score": 99})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["code"] == "read_only"
    ranked = api.get(f"{SALES}/lead", sort="-score", score__gte=1)
    assert [lead["id"] for lead in ranked] == [full["id"]] or ranked == []


def test_conversion_creates_account_contact_and_opportunity(api: Api) -> None:
    lead = api.made(
        f"{SALES}/lead",
        {
            "first_name": "Grace",
            "last_name": "Hopper",
            "company": "Cobol Systems",
            "email": "grace@cobol.example",
            "source": "trade_show",
        },
    )
    converted = api.changed(f"{SALES}/lead/{lead['id']}", {"status": "converted"})
    account = api.get(f"{CONTACTS}/account/{converted['converted_account']}")
    contact = api.get(f"{CONTACTS}/contact/{converted['converted_contact']}")
    opportunity = api.get(f"{SALES}/opportunity/{converted['converted_opportunity']}")
    assert (account["name"], account["type"]) == ("Cobol Systems", "prospect")
    assert (contact["first_name"], contact["last_name"], contact["account"]) == (
        "Grace",
        "Hopper",
        account["id"],
    )
    assert contact["email"] == "grace@cobol.example"
    assert (opportunity["account"], opportunity["contact"], opportunity["lead"]) == (
        account["id"],
        contact["id"],
        lead["id"],
    )
    assert (opportunity["stage"], opportunity["probability"]) == ("qualification", 20)
    again = api.client.patch(f"{SALES}/lead/{lead['id']}", json={"status": "qualified"})
    assert again.status_code == 422
    assert again.json()["errors"][0]["field"] == "status"


def test_conversion_links_the_existing_account_of_that_name(api: Api) -> None:
    existing = api.account("Cobol Systems")
    api.account("Fortran Ltd")
    one = api.made(
        f"{SALES}/lead", {"first_name": "Grace", "last_name": "Hopper", "company": "Cobol Systems"}
    )
    two = api.made(
        f"{SALES}/lead", {"first_name": "Jean", "last_name": "Sammet", "company": "Cobol Systems"}
    )
    first = api.changed(f"{SALES}/lead/{one['id']}", {"status": "converted"})
    second = api.changed(f"{SALES}/lead/{two['id']}", {"status": "converted"})
    assert first["converted_account"] == second["converted_account"] == existing["id"]
    assert len(api.get(f"{CONTACTS}/account")) == 2
    contacts = api.get(f"{CONTACTS}/contact", sort="id")
    assert [c["last_name"] for c in contacts] == ["Hopper", "Sammet"]
    assert first["converted_opportunity"] != second["converted_opportunity"]


def test_conversion_needs_a_company_and_a_first_name(api: Api) -> None:
    lead = api.made(f"{SALES}/lead", {"last_name": "Nobody"})
    response = api.client.patch(f"{SALES}/lead/{lead['id']}", json={"status": "converted"})
    assert response.status_code == 422, response.text
    fields = sorted(e["field"] for e in response.json()["errors"])
    assert fields == ["company", "first_name"]
    assert api.get(f"{CONTACTS}/account") == []
    assert api.get(f"{SALES}/opportunity") == []


def test_a_lead_can_be_created_converted(api: Api) -> None:
    lead = api.made(
        f"{SALES}/lead",
        {
            "first_name": "Alan",
            "last_name": "Turing",
            "company": "Bletchley",
            "status": "converted",
        },
    )
    assert lead["converted_account"] is not None
    assert lead["converted_opportunity"] is not None
