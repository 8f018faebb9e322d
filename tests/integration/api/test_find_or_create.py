"""A ``create`` that finds before it creates (``match``) and stores the id of its record in
the record written (``set``), so that the rule's later actions use it: a lead converted
into a company (an existing one of that name, or a new one), a person at that company and
a deal for both, linked back to the lead, in the lead's transaction. On SQLite and
PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import pack_instance

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

CRM = {
    "module.yaml": 'name: crm\nversion: "1.0.0"\n',
    "entities/company.yaml": """\
title: name
fields:
  name: {type: string, required: true, unique: true}
  kind: {type: enum, values: [prospect, customer], default: prospect}
""",
    "entities/person.yaml": """\
fields:
  name:    {type: string, required: true}
  company: {type: reference, to: company}
  email:   {type: email}
""",
    "entities/deal.yaml": """\
fields:
  title:   {type: string, required: true}
  company: {type: reference, to: company, required: true}
  person:  {type: reference, to: person}
""",
    "entities/lead.yaml": """\
fields:
  name:    {type: string, required: true}
  company: {type: string, required: true}
  email:   {type: email}
  status:  {type: enum, values: [new, converted], default: new}
  converted_company: {type: reference, to: company, read_only: true}
  converted_person:  {type: reference, to: person, read_only: true}
  converted_deal:    {type: reference, to: deal, read_only: true}
""",
    "rules/lead.yaml": """\
- name: convert
  on: update
  when: "changed('status') and status == 'converted'"
  actions:
    - create:
        entity: company
        match: {name: "{{ company }}"}
        values: {name: "{{ company }}"}
        set: converted_company
    - create:
        entity: person
        match: {name: "{{ name }}", company: "{{ converted_company }}", email: "{{ email }}"}
        values: {name: "{{ name }}", company: "{{ converted_company }}", email: "{{ email }}"}
        set: converted_person
    - create:
        entity: deal
        values:
          title: "{{ company }}: {{ name }}"
          company: "{{ converted_company }}"
          person: "{{ converted_person }}"
        set: converted_deal
""",
    "rules/deal.yaml": """\
- name: not_for_blocked
  assert: "title is not none and 'Blocked' not in title"
  field: title
  message: no deals with blocked companies
""",
}
URL = "/api/v1/crm"


@pytest.fixture
def client(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance = pack_instance(tmp_path, db_url, "crm", CRM)
    with instance.client() as client:
        yield client


def post(client: TestClient, entity: str, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post(f"{URL}/{entity}", json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def convert(client: TestClient, lead: dict[str, Any]) -> dict[str, Any]:
    response = client.patch(f"{URL}/lead/{lead['id']}", json={"status": "converted"})
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def listed(client: TestClient, entity: str) -> list[dict[str, Any]]:
    response = client.get(f"{URL}/{entity}", params={"sort": "id"})
    assert response.status_code == 200, response.text
    records: list[dict[str, Any]] = response.json()["data"]
    return records


def test_a_new_company_is_created_and_every_record_is_linked(client: TestClient) -> None:
    lead = convert(client, post(client, "lead", {"name": "Ada", "company": "Analytical"}))
    (company,) = listed(client, "company")
    (person,) = listed(client, "person")
    (deal,) = listed(client, "deal")
    assert company["name"] == "Analytical"
    assert (person["name"], person["company"]) == ("Ada", company["id"])
    assert (deal["company"], deal["person"], deal["title"]) == (
        company["id"],
        person["id"],
        "Analytical: Ada",
    )
    assert (lead["converted_company"], lead["converted_person"], lead["converted_deal"]) == (
        company["id"],
        person["id"],
        deal["id"],
    )
    stored = client.get(f"{URL}/lead/{lead['id']}").json()["data"]
    assert stored["converted_deal"] == deal["id"]


def test_an_existing_company_of_that_name_is_linked_not_created(client: TestClient) -> None:
    existing = post(client, "company", {"name": "Analytical", "kind": "customer"})
    post(client, "company", {"name": "Other"})
    lead = convert(client, post(client, "lead", {"name": "Ada", "company": "Analytical"}))
    assert lead["converted_company"] == existing["id"]
    assert len(listed(client, "company")) == 2
    (deal,) = listed(client, "deal")
    assert deal["company"] == existing["id"]
    second = convert(client, post(client, "lead", {"name": "Bob", "company": "Analytical"}))
    assert second["converted_company"] == existing["id"]
    assert len(listed(client, "company")) == 2


def test_an_empty_match_value_matches_nothing(client: TestClient) -> None:
    post(client, "person", {"name": "Nobody"})  # a person without a company
    lead = convert(client, post(client, "lead", {"name": "Ada", "company": "Analytical"}))
    people = listed(client, "person")
    assert [p["name"] for p in people] == ["Nobody", "Ada"]
    assert lead["converted_person"] == people[1]["id"]


def test_a_refused_later_action_rolls_back_what_the_earlier_ones_made(
    client: TestClient,
) -> None:
    lead = post(client, "lead", {"name": "Eve", "company": "Blocked Ltd"})
    response = client.patch(f"{URL}/lead/{lead['id']}", json={"status": "converted"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "title"
    assert listed(client, "company") == []
    assert listed(client, "person") == []
    stored = client.get(f"{URL}/lead/{lead['id']}").json()["data"]
    assert (stored["status"], stored["converted_company"]) == ("new", None)


def test_the_set_fields_stay_read_only_for_clients(client: TestClient) -> None:
    company = post(client, "company", {"name": "Analytical"})
    lead = post(client, "lead", {"name": "Ada", "company": "Analytical"})
    response = client.patch(f"{URL}/lead/{lead['id']}", json={"converted_company": company["id"]})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["code"] == "read_only"


def test_the_meta_api_describes_match_and_set(client: TestClient) -> None:
    meta = client.get("/api/v1/_meta/entities")
    assert meta.status_code == 200, meta.text
    rules = {e["name"]: e["rules"] for e in meta.json()["data"]}
    (convert_rule,) = rules["crm.lead"]
    first = convert_rule["actions"][0]["create"]
    assert first["match"] == {"name": "{{ company }}"}
    assert first["set"] == "converted_company"
