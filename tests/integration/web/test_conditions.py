"""A form's visible_if and required_if, on SQLite and PostgreSQL: judged on the server when
the form is drawn and again, for the values typed so far, as the user types."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import Instance, pack_instance
from tests.support.identity import issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: sales\nversion: 1.0.0\n",
    "entities/lead.yaml": """\
title: name
fields:
  name:        {type: string, required: true}
  source:      {type: enum, values: [web, fair, referral]}
  referrer:    {type: string, required_if: "source == 'referral'"}
  fair_name:   {type: string}
  budget:      {type: decimal, scale: 2}
  budget_note: {type: text}
""",
    "forms/lead.yaml": """\
sections:
  - name: main
    fields: [name, source, referrer, {field: fair_name, visible_if: "source == 'fair'"}]
  - name: money
    label: Budget
    visible_if: "source != 'web'"
    fields: [budget, budget_note]
""",
}
PASSWORD = "correct horse battery"


def conditions_instance(db_url: str, tmp_path: Path) -> Instance:
    instance = pack_instance(tmp_path, db_url, "sales", FILES)
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    return instance


@pytest.fixture
def browser(db_url: str, tmp_path: Path) -> Iterator[TestClient]:
    instance = conditions_instance(db_url, tmp_path)
    with signed_in(instance, "ada", PASSWORD) as client:
        yield client


def test_the_form_is_drawn_with_its_conditions(browser: TestClient) -> None:
    form = browser.get("/app/sales/lead/new")
    assert 'data-conditions="/app/sales/lead/_conditions"' in form.text
    assert 'data-field="fair_name" hidden' in form.text  # source is not 'fair'
    assert 'data-section="money">' in form.text  # shown: source is not 'web'
    token = csrf_of(form)
    made = browser.post(
        "/app/sales/lead/new",
        data={"csrf_token": token, "name": "Acme", "source": "web"},
        follow_redirects=False,
    )
    page = browser.get(made.headers["location"])
    assert 'data-section="money" hidden' in page.text


def test_conditions_follow_the_values_typed_so_far(browser: TestClient) -> None:
    token = csrf_of(browser.get("/app/sales/lead/new"))

    def judged(**values: str) -> dict[str, list[str]]:
        response = browser.post(
            "/app/sales/lead/_conditions",
            data={"csrf_token": token, **values},
            headers={"accept": "application/json"},
        )
        assert response.status_code == 200, response.text
        return dict(response.json())

    assert judged(source="fair") == {"hidden_sections": [], "hidden_fields": [], "required": []}
    assert judged(source="web") == {
        "hidden_sections": ["money"],
        "hidden_fields": ["fair_name"],
        "required": [],
    }
    assert judged(source="referral")["required"] == ["referrer"]
    assert judged(source="referral", budget="not a number")["required"] == ["referrer"]
    forged = browser.post("/app/sales/lead/_conditions", data={"source": "web"})
    assert forged.status_code == 403


def test_required_if_is_enforced_on_save(browser: TestClient) -> None:
    token = csrf_of(browser.get("/app/sales/lead/new"))
    refused = browser.post(
        "/app/sales/lead/new", data={"csrf_token": token, "name": "Bo", "source": "referral"}
    )
    assert refused.status_code == 422
    assert 'id="f-referrer-error"' in refused.text
    assert 'data-field="referrer"' in refused.text
    assert '<span class="req" aria-hidden="true">*</span>' in refused.text  # required now
