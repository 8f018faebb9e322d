"""Business documents (``document: true``) over the API, on SQLite and PostgreSQL:
submit, cancel, amend, what a submitted or cancelled document refuses, the ``submit`` and
``cancel`` grants, the audit trail, and rules ``on: [submit, cancel]``."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from tests.conftest import Instance, pack_instance, write_instance
from tests.support.identity import bearer, issue_token
from tests.support.server import serving

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: buying\nversion: 1.0.0\n",
    "entities/purchase_request.yaml": """\
title: title
document: true
fields:
  title:    {type: string, required: true}
  code:     {type: string, unique: true}
  needed_by: {type: date}
  note:     {type: text, allow_on_submit: true}
  approval_ref: {type: string}
  total:    {type: decimal, scale: 2, computed: "lines | sum(attribute='amount')"}
  lines:    {type: children, entity: purchase_request_line}
""",
    "entities/purchase_request_line.yaml": """\
fields:
  item:     {type: string, required: true}
  quantity: {type: decimal, scale: 2, required: true}
  rate:     {type: decimal, scale: 2}
  amount:   {type: decimal, scale: 2, computed: "(quantity or 0) * (rate or 0)"}
""",
    "entities/approval_log.yaml": """\
fields:
  request: {type: reference, to: purchase_request}
  event:   {type: string}
""",
    "entities/tag.yaml": """\
fields:
  name: {type: string}
""",
    "rules/purchase_request.yaml": """\
- name: needs_lines
  on: [submit]
  assert: "lines | length > 0"
  field: lines
  message: "a request needs at least one line to be submitted"
- name: needs_date
  on: [submit]
  assert: "needed_by is not none"
  field: needed_by
  message: "set the date the items are needed by"
- name: not_too_big
  on: [cancel]
  assert: "total < 1000"
  field: total
  message: "a large request cannot be cancelled"
- name: stamp_on_submit
  on: [submit]
  actions:
    - update: {values: {approval_ref: "A-{{ id }}"}}
- name: log_submit
  on: [submit, cancel]
  actions:
    - create: {entity: approval_log, values: {request: "{{ id }}", event: "{{ docstatus }}"}}
""",
    "roles.yaml": """\
roles:
  clerk:
    grants:
      - {entity: purchase_request, actions: [read, create, update, delete]}
      - {entity: approval_log, actions: [read]}
  manager:
    grants:
      - {entity: purchase_request, actions: [read, submit, cancel]}
      - {entity: approval_log, actions: [read]}
""",
}
URL = "/api/v1/buying/purchase_request"
DRAFT = {
    "title": "Laptops",
    "needed_by": "2026-12-31",
    "note": "for the new hires",
    "lines": [
        {"item": "laptop", "quantity": "2", "rate": "100.00"},
        {"item": "dock", "quantity": "2", "rate": "50.00"},
    ],
}


@pytest.fixture
def buying(db_url: str, tmp_path: Path) -> Instance:
    return pack_instance(tmp_path, db_url, "buying", FILES)


@pytest.fixture
def api(buying: Instance) -> Iterator[TestClient]:
    with buying.client() as client:  # signed in as an admin
        yield client


def as_role(buying: Instance, role: str) -> dict[str, str]:
    return bearer(issue_token(buying.settings.database_url, f"u_{role}", (role,)))


def create(api: TestClient, body: dict[str, Any] | None = None, **headers: str) -> dict[str, Any]:
    response = api.post(URL, json=body or DRAFT, headers=headers)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def test_a_document_is_created_as_a_draft_with_its_system_fields(api: TestClient) -> None:
    record = create(api)
    assert record["docstatus"] == "draft"
    assert record["amended_from"] is None
    listed = api.get(URL, params={"docstatus": "draft"}).json()["data"]
    assert [r["id"] for r in listed] == [record["id"]]
    for body in ({**DRAFT, "docstatus": "submitted"}, {**DRAFT, "amended_from": record["id"]}):
        refused = api.post(URL, json=body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["errors"][0]["code"] == "read_only"
    bulk = api.post(f"{URL}/_bulk", json=[{**DRAFT, "docstatus": "submitted"}])
    assert bulk.status_code == 422
    assert bulk.json()["errors"][0]["code"] == "read_only"
    made = api.post(f"{URL}/_bulk", json=[DRAFT, DRAFT]).json()["data"]
    assert {r["docstatus"] for r in made} == {"draft"}


def test_submit_freezes_and_cancel_ends_the_document(api: TestClient) -> None:
    record = create(api)
    item = f"{URL}/{record['id']}"
    submitted = api.post(f"{item}/_submit")
    assert submitted.status_code == 200, submitted.text
    assert submitted.json()["data"]["docstatus"] == "submitted"
    assert submitted.headers["etag"] == f'"{submitted.json()["data"]["version"]}"'
    assert submitted.json()["data"]["version"] > record["version"]
    assert len(submitted.json()["data"]["lines"]) == 2
    # frozen: only allow_on_submit fields change
    refused = api.patch(item, json={"title": "Phones", "note": "x"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "submitted"
    assert "title" in refused.json()["detail"]
    lines = api.patch(item, json={"lines": []})
    assert lines.status_code == 409
    assert lines.json()["code"] == "submitted"
    noted = api.patch(item, json={"note": "approved by phone"})
    assert noted.status_code == 200, noted.text
    assert noted.json()["data"]["note"] == "approved by phone"
    assert api.delete(item).status_code == 409
    assert api.post(f"{item}/_submit").status_code == 409  # already submitted
    cancelled = api.post(f"{item}/_cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["data"]["docstatus"] == "cancelled"
    for body in ({"note": "y"}, {"title": "z"}):
        never = api.patch(item, json=body)
        assert never.status_code == 409
        assert never.json()["code"] == "cancelled"
    assert api.delete(item).status_code == 409
    assert api.post(f"{item}/_cancel").status_code == 409
    assert api.post(f"{item}/_submit").status_code == 409
    stored = api.get(item).json()["data"]
    assert stored["docstatus"] == "cancelled"
    assert stored["title"] == "Laptops"
    history = api.get(f"{item}/_history").json()["data"]
    moves = [(e["action"], e["changes"].get("docstatus")) for e in history]
    assert ("submit", ["draft", "submitted"]) in moves
    assert ("cancel", ["submitted", "cancelled"]) in moves


def test_a_draft_can_be_edited_and_deleted_but_not_cancelled(api: TestClient) -> None:
    record = create(api)
    item = f"{URL}/{record['id']}"
    assert api.patch(item, json={"title": "Desks"}).status_code == 200
    refused = api.post(f"{item}/_cancel")
    assert refused.status_code == 409
    assert refused.json()["code"] == "draft"
    assert api.post(f"{item}/_amend").status_code == 409
    assert api.delete(item).status_code == 204


def test_upsert_of_a_submitted_document_is_frozen_too(api: TestClient) -> None:
    record = create(api, {**DRAFT, "code": "PR-1"})
    assert api.post(f"{URL}/{record['id']}/_submit").status_code == 200
    refused = api.put(f"{URL}/by/code/PR-1", json={"needed_by": "2027-01-01"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["code"] == "submitted"
    allowed = api.put(f"{URL}/by/code/PR-1", json={"note": "ok"})
    assert allowed.status_code == 200, allowed.text
    assert allowed.json()["data"]["note"] == "ok"


def test_amend_copies_a_cancelled_document_as_a_new_draft(api: TestClient) -> None:
    record = create(api, {**DRAFT, "code": "PR-7"})
    item = f"{URL}/{record['id']}"
    api.post(f"{item}/_submit")
    assert api.post(f"{item}/_amend").status_code == 409  # submitted: cancel it first
    api.post(f"{item}/_cancel")
    amended = api.post(f"{item}/_amend")
    assert amended.status_code == 201, amended.text
    copy = amended.json()["data"]
    assert copy["code"] is None  # an optional unique field: the original keeps its value
    assert copy["id"] != record["id"]
    assert copy["docstatus"] == "draft"
    assert copy["amended_from"] == record["id"]
    assert copy["title"] == "Laptops"
    assert copy["total"] == record["total"]
    assert [(line["item"], line["amount"]) for line in copy["lines"]] == [
        (line["item"], line["amount"]) for line in record["lines"]
    ]
    assert {line["id"] for line in copy["lines"]}.isdisjoint(
        {line["id"] for line in record["lines"]}
    )
    assert amended.headers["location"].endswith(f"/{copy['id']}")
    # the copy lives its own life
    assert api.patch(f"{URL}/{copy['id']}", json={"title": "Laptops v2"}).status_code == 200
    assert api.get(item).json()["data"]["title"] == "Laptops"


def test_if_match_is_honoured(api: TestClient) -> None:
    record = create(api)
    item = f"{URL}/{record['id']}"
    stale = api.post(f"{item}/_submit", headers={"If-Match": '"99"'})
    assert stale.status_code == 412
    assert api.get(item).json()["data"]["docstatus"] == "draft"
    fresh = api.post(f"{item}/_submit", headers={"If-Match": f'"{record["version"]}"'})
    assert fresh.status_code == 200, fresh.text
    version = fresh.json()["data"]["version"]
    assert api.post(f"{item}/_cancel", headers={"If-Match": '"1"'}).status_code == 412
    assert api.post(f"{item}/_cancel", headers={"If-Match": f'"{version}"'}).status_code == 200
    assert api.post(f"{item}/_amend", headers={"If-Match": '"1"'}).status_code == 412


def test_non_documents_and_unknown_records_answer_404(api: TestClient) -> None:
    tag = api.post("/api/v1/buying/tag", json={"name": "x"}).json()["data"]
    for action in ("_submit", "_cancel", "_amend"):
        assert api.post(f"/api/v1/buying/tag/{tag['id']}/{action}").status_code == 404
        assert api.post(f"{URL}/999999/{action}").status_code == 404
        assert api.get(f"{URL}/1/{action}").status_code == 405
    assert api.post(f"{URL}/abc/_submit").status_code in {400, 404}


def test_submit_and_cancel_are_granted_apart_from_update(buying: Instance, api: TestClient) -> None:
    clerk, manager = as_role(buying, "clerk"), as_role(buying, "manager")
    record = create(api, **clerk)
    item = f"{URL}/{record['id']}"
    assert api.post(f"{item}/_submit", headers=clerk).status_code == 403
    assert api.patch(item, json={"title": "x"}, headers=manager).status_code == 403
    submitted = api.post(f"{item}/_submit", headers=manager)
    assert submitted.status_code == 200, submitted.text
    assert api.post(f"{item}/_cancel", headers=clerk).status_code == 403
    assert api.post(f"{item}/_cancel", headers=manager).status_code == 200
    assert api.post(f"{item}/_amend", headers=manager).status_code == 403  # no create
    assert api.post(f"{item}/_amend", headers=clerk).status_code == 201
    history = api.get(f"{item}/_history").json()["data"]
    submit = next(e for e in history if e["action"] == "submit")
    assert submit["username"] == "u_manager"


def test_submit_rules_refuse_with_every_error_and_roll_back(api: TestClient) -> None:
    record = create(api, {"title": "Empty"})
    item = f"{URL}/{record['id']}"
    refused = api.post(f"{item}/_submit")
    assert refused.status_code == 422, refused.text
    fields = {e["field"] for e in refused.json()["errors"]}
    assert fields == {"lines", "needed_by"}
    stored = api.get(item).json()["data"]
    assert stored["docstatus"] == "draft"
    assert stored["version"] == record["version"]
    assert api.get("/api/v1/buying/approval_log").json()["data"] == []
    assert [e["action"] for e in api.get(f"{item}/_history").json()["data"]] == ["create"]


def test_submit_and_cancel_actions_run_in_the_same_transaction(api: TestClient) -> None:
    record = create(api)
    item = f"{URL}/{record['id']}"
    assert api.post(f"{item}/_submit").status_code == 200
    assert api.post(f"{item}/_cancel").status_code == 200
    logs = api.get("/api/v1/buying/approval_log", params={"sort": "id"}).json()["data"]
    assert [(log["request"], log["event"]) for log in logs] == [
        (record["id"], "submitted"),
        (record["id"], "cancelled"),
    ]
    big = create(api, {**DRAFT, "lines": [{"item": "car", "quantity": "1", "rate": "5000"}]})
    big_item = f"{URL}/{big['id']}"
    assert api.post(f"{big_item}/_submit").status_code == 200
    refused = api.post(f"{big_item}/_cancel")
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "total"
    assert api.get(big_item).json()["data"]["docstatus"] == "submitted"
    logs = api.get("/api/v1/buying/approval_log").json()["data"]
    assert len(logs) == 3  # the refused cancel's log was rolled back with it


def test_openapi_describes_the_document_endpoints_and_system_fields(api: TestClient) -> None:
    document = api.get("/openapi.json").json()
    paths = document["paths"]
    for action, status in (("_submit", "200"), ("_cancel", "200"), ("_amend", "201")):
        operation = paths[f"{URL}/{{id}}/{action}"]["post"]
        assert status in operation["responses"]
        assert {"409", "412", "404"} <= set(operation["responses"])
        assert "/api/v1/buying/tag/{id}/" + action not in paths
    schemas = document["components"]["schemas"]
    read = next(s for n, s in schemas.items() if n.endswith("PurchaseRequest"))
    assert read["properties"]["docstatus"]["enum"][:3] == ["draft", "submitted", "cancelled"]
    assert read["properties"]["docstatus"]["readOnly"] is True
    amended_from = read["properties"]["amended_from"]  # {anyOf: [id, record, null]}
    assert amended_from["readOnly"] is True
    create_schema = next(s for n, s in schemas.items() if n.endswith("PurchaseRequestCreate"))
    assert "docstatus" not in create_schema["properties"]
    assert "amended_from" not in create_schema["properties"]


def test_racing_submits_and_edits_submit_once_and_never_edit_a_submitted_one(
    db_url: str, tmp_path: Path
) -> None:
    pack_instance(tmp_path, db_url, "buying", FILES)
    instance = write_instance(tmp_path / "i", db_url, ["buying"], [tmp_path / "packs"])
    token = instance.token()
    with httpx.Client(headers=bearer(token), timeout=60) as api, serving(instance.path) as base:
        record = api.post(f"{base}{URL}", json=DRAFT).json()["data"]
        item = f"{base}{URL}/{record['id']}"

        async def race() -> list[httpx.Response]:
            async with httpx.AsyncClient(headers=bearer(token), timeout=60) as client:
                calls = [client.post(f"{item}/_submit") for _ in range(10)]
                calls += [client.patch(item, json={"title": f"t{i}"}) for i in range(10)]
                return list(await asyncio.gather(*calls))

        responses = asyncio.run(race())
        submits, edits = responses[:10], responses[10:]
        assert [r.status_code for r in submits].count(200) == 1, [r.text for r in submits]
        assert {r.status_code for r in responses} <= {200, 409, 412}, [
            r.text for r in responses if r.status_code not in {200, 409, 412}
        ]
        history = api.get(f"{item}/_history").json()["data"]
        actions = [e["action"] for e in history]
        assert actions.count("submit") == 1
        after = history[actions.index("submit") + 1 :]
        assert [set(e["changes"]) for e in after] == [{"approval_ref"}], after
        stored = api.get(item).json()["data"]
        assert stored["docstatus"] == "submitted"
        for edit in edits:  # every edit came before the submit, or was refused
            assert edit.status_code in {200, 409, 412}
        logs = api.get(f"{base}/api/v1/buying/approval_log").json()["data"]
        assert len(logs) == 1


def test_overlay_fields_are_frozen_unless_the_overlay_allows_them(
    db_url: str, tmp_path: Path
) -> None:
    overlay = tmp_path / "i" / "custom" / "buying" / "purchase_request.yaml"
    overlay.parent.mkdir(parents=True)
    overlay.write_text(
        """\
fields:
  title: {allow_on_submit: true}
  note: {allow_on_submit: false}
  cost_center: {type: string}
  remark: {type: string, allow_on_submit: true}
""",
        encoding="utf-8",
    )
    instance = pack_instance(tmp_path, db_url, "buying", FILES, customizations="custom")
    with instance.client() as api:
        record = create(api)
        item = f"{URL}/{record['id']}"
        assert api.post(f"{item}/_submit").status_code == 200
        for frozen in ({"cost_center": "R&D"}, {"note": "x"}):
            refused = api.patch(item, json=frozen)
            assert refused.status_code == 409, refused.text
            assert refused.json()["code"] == "submitted"
        changed = api.patch(item, json={"title": "Laptops (approved)", "remark": "ok"})
        assert changed.status_code == 200, changed.text


def test_an_entity_becomes_a_document_by_migration_its_records_drafts(
    db_url: str, tmp_path: Path
) -> None:
    plain = {
        **FILES,
        "entities/purchase_request.yaml": FILES["entities/purchase_request.yaml"].replace(
            "document: true\n", ""
        ),
        "rules/purchase_request.yaml": "[]\n",
        "roles.yaml": "roles: {}\n",
    }
    instance = pack_instance(tmp_path, db_url, "buying", plain)
    with instance.client() as api:
        record = create(api)
        assert "docstatus" not in record
        assert api.post(f"{URL}/{record['id']}/_submit").status_code == 404
    path = tmp_path / "packs" / "buying" / "entities" / "purchase_request.yaml"
    path.write_text(FILES["entities/purchase_request.yaml"], encoding="utf-8")
    plan = instance.migrate()
    assert not plan.refused
    with instance.client() as api:
        stored = api.get(f"{URL}/{record['id']}").json()["data"]
        assert (stored["docstatus"], stored["amended_from"]) == ("draft", None)
        assert api.post(f"{URL}/{record['id']}/_submit").status_code == 200


def test_a_document_may_not_declare_its_system_fields(db_url: str, tmp_path: Path) -> None:
    from metadata import DefinitionError

    files = {
        **FILES,
        "entities/purchase_request.yaml": FILES["entities/purchase_request.yaml"]
        + "  docstatus: {type: string}\n",
    }
    with pytest.raises(DefinitionError) as failed:
        pack_instance(tmp_path, db_url, "buying", files)
    assert "'docstatus' is a system field of every document" in str(failed.value)


def test_imports_submit_only_through_the_submit_rules(buying: Instance, api: TestClient) -> None:
    """An imported row that says ``docstatus: submitted`` is submitted as a ``_submit`` would
    be (docs/documents.md): its submit rules refuse it at its line, and nothing of it stays."""
    from tests.support.cli import tessera

    path = buying.path / "requests.jsonl"
    path.write_text(
        '{"title": "Chairs", "lines": [{"item": "chair", "quantity": "4"}]}\n'
        '{"title": "Desks", "docstatus": "submitted"}\n',
        encoding="utf-8",
    )
    result = tessera("import", "buying.purchase_request", str(path), cwd=buying.path)
    assert "1 created, 0 updated, 1 rejected" in result.stdout
    assert "requests.jsonl:2: lines: a request needs at least one line to be submitted" in (
        result.stderr
    )
    records = api.get(URL).json()["data"]
    assert [(r["title"], r["docstatus"]) for r in records] == [("Chairs", "draft")]


def test_submit_rules_belong_to_documents(db_url: str, tmp_path: Path) -> None:
    from metadata import DefinitionError

    files = {
        **FILES,
        "rules/tag.yaml": "- {name: t, on: [create, submit], assert: 'name is not none'}\n",
    }
    with pytest.raises(DefinitionError) as failed:
        pack_instance(tmp_path, db_url, "buying", files)
    assert "rules/tag.yaml:1:" in str(failed.value)
    assert "'on: submit' applies only to documents, and buying.tag is not one" in str(failed.value)


def test_line_items_are_not_documents_of_their_own(db_url: str, tmp_path: Path) -> None:
    from metadata import DefinitionError

    files = {
        **FILES,
        "entities/purchase_request_line.yaml": "document: true\n"
        + FILES["entities/purchase_request_line.yaml"],
    }
    with pytest.raises(DefinitionError) as failed:
        pack_instance(tmp_path, db_url, "buying", files)
    assert "purchase_request_line.yaml:1:" in str(failed.value)
    assert "put 'document: true' on buying.purchase_request instead" in str(failed.value)


def test_the_meta_api_tells_a_client_what_is_a_document(api: TestClient) -> None:
    meta = {e["name"]: e for e in api.get("/api/v1/_meta/entities").json()["data"]}
    described = meta["buying.purchase_request"]
    assert described["document"] is True
    fields = {f["name"]: f for f in described["fields"]}
    assert fields["note"]["allow_on_submit"] is True
    assert "allow_on_submit" not in fields["title"]
    assert fields["docstatus"]["read_only"] is True
    assert meta["buying.tag"]["document"] is False


def test_the_submit_rules_own_actions_may_fill_the_document(api: TestClient) -> None:
    record = create(api)
    item = f"{URL}/{record['id']}"
    submitted = api.post(f"{item}/_submit").json()["data"]
    assert submitted["approval_ref"] == f"A-{record['id']}"
    assert submitted["docstatus"] == "submitted"
    refused = api.patch(item, json={"approval_ref": "forged"})  # but no one else may
    assert refused.status_code == 409
    assert refused.json()["code"] == "submitted"
