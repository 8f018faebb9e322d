"""The admin designer over HTTP, on SQLite and PostgreSQL: a field, a rule and a role grant
added from forms, each previewed (overlay diff, migration plan) before it is applied
through the same load-and-migrate step as the meta API; bad input leaves nothing behind."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest

from tests.conftest import Instance, pack_instance
from tests.integration.web.test_screens import FILES, PASSWORD
from tests.support.identity import issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient
    from httpx import Response

URL = "/app/_designer/crm/deal"


@pytest.fixture
def crm(db_url: str, tmp_path: Path) -> Instance:
    instance = pack_instance(
        tmp_path,
        db_url,
        "crm",
        FILES,
        customizations=str(tmp_path / "custom"),
        meta_api_writes=True,
    )
    for name, role in [("ada", "admin"), ("vic", "viewer")]:
        issue_token(instance.settings.database_url, name, (role,), password=PASSWORD)
    return instance


@pytest.fixture
def admin(crm: Instance) -> Iterator[TestClient]:
    with signed_in(crm, "ada", PASSWORD) as client:
        yield client


def post(client: TestClient, kind: str, **values: object) -> Response:
    token = csrf_of(client.get(URL))
    return client.post(
        f"{URL}/{kind}", data={"csrf_token": token, **values}, follow_redirects=False
    )


def test_a_field_is_previewed_then_applied_and_appears_on_the_form(
    crm: Instance, admin: TestClient
) -> None:
    overlay = crm.settings.customizations / "crm" / "deal.yaml"
    values = {"name": "loyalty_tier", "type": "enum", "values": "bronze, gold", "label": "Tier"}
    preview = post(admin, "field", step="preview", **values)
    assert preview.status_code == 200, preview.text
    assert "+  loyalty_tier: {type: enum, label: Tier, values: [bronze, gold]}" in preview.text
    assert "add column crm_deal.loyalty_tier" in preview.text
    assert not overlay.exists()  # a preview writes nothing
    assert 'name="loyalty_tier"' not in admin.get("/app/crm/deal/new").text
    applied = post(admin, "field", step="apply", **values)
    assert applied.status_code == 303
    assert applied.headers["location"] == f"{URL}?applied=field"
    assert "loyalty_tier: {type: enum" in overlay.read_text()
    form = admin.get("/app/crm/deal/new")
    assert 'name="loyalty_tier"' in form.text
    assert '<option value="gold">Gold</option>' in form.text
    # the API serves it at once too
    api = admin.get("/api/v1/_meta/entities", headers={"authorization": f"Bearer {crm.token()}"})
    deal = next(e for e in api.json()["data"] if e["name"] == "crm.deal")
    assert "loyalty_tier" in [f["name"] for f in deal["fields"]]


def test_a_rule_is_applied_and_enforced(admin: TestClient) -> None:
    rule = {
        "name": "big_deals_only",
        "assert": "amount is none or amount >= 100",
        "field": "amount",
    }
    rule["message"] = "Deals start at 100"
    assert post(admin, "rule", step="apply", on=["create", "update"], **rule).status_code == 303
    token = csrf_of(admin.get("/app/crm/deal/new"))
    refused = admin.post(
        "/app/crm/deal/new", data={"csrf_token": token, "name": "x", "amount": "5"}
    )
    assert refused.status_code == 422
    assert "Deals start at 100" in refused.text


def test_a_grant_lets_a_role_see_an_entity(crm: Instance, admin: TestClient) -> None:
    token = csrf_of(admin.get("/app/_designer/crm/account"))
    granted = admin.post(
        "/app/_designer/crm/account/grant",
        data={"csrf_token": token, "step": "apply", "role": "viewer", "actions": ["read"]},
        follow_redirects=False,
    )
    assert granted.status_code == 303, granted.text
    assert "entity: crm.account" in (crm.settings.customizations / "roles.yaml").read_text()
    with signed_in(crm, "vic", PASSWORD) as viewer:
        assert viewer.get("/app/crm/account").status_code == 200


def test_bad_changes_are_shown_and_leave_nothing_behind(crm: Instance, admin: TestClient) -> None:
    custom = crm.settings.customizations
    bad_rule = post(admin, "rule", step="preview", name="oops", **{"assert": "amount >>> 3"})
    assert bad_rule.status_code == 422
    assert re.search(r"custom/crm/deal\.yaml:\d+:\d+: ", bad_rule.text)
    clash = post(admin, "field", step="apply", name="amount", type="string")
    assert clash.status_code == 422
    assert "Not applied:" in clash.text
    missing = post(admin, "field", step="preview", name="", type="string")
    assert missing.status_code == 422
    assert "the field needs a name" in missing.text
    unknown_role_action = post(admin, "grant", step="preview", role="viewer")
    assert "tick at least one action" in unknown_role_action.text
    assert not (custom / "crm" / "deal.yaml").exists()
    assert not (custom / "roles.yaml").exists()


def test_only_admins_with_server_changes_on(crm: Instance, admin: TestClient) -> None:
    with signed_in(crm, "vic", PASSWORD) as viewer:
        assert viewer.get("/app/_designer").status_code == 403
        assert viewer.get(URL).status_code == 403
        assert "Designer" not in viewer.get("/app").text
    no_csrf = admin.post(f"{URL}/field", data={"step": "apply", "name": "x", "type": "string"})
    assert no_csrf.status_code == 403
    assert 'href="/app/_designer"' in admin.get("/app").text


def test_a_role_name_is_checked(admin: TestClient) -> None:
    refused = post(admin, "grant", step="preview", new_role="Bad Role: x", actions="read")
    assert refused.status_code == 422
    assert "is not a role name" in refused.text


def test_a_field_is_edited(crm: Instance, admin: TestClient) -> None:
    page = admin.get(URL, params={"edit": "amount"})
    assert 'id="edit-field"' in page.text
    assert 'name="label" value="Amount"' in page.text
    preview = post(
        admin, "edit", step="preview", name="amount", label="Deal value", required="true"
    )
    assert preview.status_code == 200, preview.text
    assert "+  amount: {label: Deal value, required: true}" in preview.text
    applied = post(admin, "edit", step="apply", name="amount", label="Deal value", required="true")
    assert applied.status_code == 303
    form = admin.get("/app/crm/deal/new")
    assert "Deal value" in form.text
    token = csrf_of(form)
    refused = admin.post("/app/crm/deal/new", data={"csrf_token": token, "name": "No value"})
    assert refused.status_code == 422
    assert 'id="f-amount-error"' in refused.text
    unknown = post(admin, "edit", step="preview", name="nothing", label="x")
    assert "has no field &#39;nothing&#39;" in unknown.text
