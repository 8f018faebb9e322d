"""The OpenAPI document says what the server does, and its viewers load nothing from
elsewhere: unique model titles across packs, ``minLength`` where the server refuses "",
an upsert body that requires nothing, history and transitions as answered, 405 with every
method of the path in ``Allow``, and /docs and /redoc served from this server under its
content security policy."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from jsonschema import Draft202012Validator

from runtime.api import docs
from runtime.app import build_app
from tests.conftest import REPO, TEST_PACKS, pack_instance, write_instance

if TYPE_CHECKING:
    from pathlib import Path

    import pytest
    from fastapi.testclient import TestClient

    from tests.conftest import Instance

TICKETS = {
    "module.yaml": "name: support\nversion: 1.0.0\n",
    "entities/ticket.yaml": """\
title: subject
fields:
  subject: {type: string, required: true}
  code:    {type: string, unique: true}
  status:  {type: enum, values: [new, open, closed], default: new}
  lines:   {type: children, entity: ticket_line}
""",
    "entities/ticket_line.yaml": "fields:\n  note: {type: text, required: true}\n",
    "workflows/ticket.yaml": """\
field: status
initial: new
transitions:
  - {from: new, to: open}
  - {from: open, to: closed, label: Close}
""",
}


def _document(instance: Instance) -> dict[str, Any]:
    document: dict[str, Any] = build_app(instance.settings).openapi()
    return document


def test_model_titles_are_unique_across_packs(tmp_path: Path) -> None:
    packs = ["kitchen", "northwind", "contacts"]
    instance = write_instance(
        tmp_path, "sqlite:///unused.db", packs, [TEST_PACKS, REPO / "modules"]
    )
    schemas = _document(instance)["components"]["schemas"]
    titles = [schema.get("title", name) for name, schema in schemas.items()]
    assert len(titles) == len(set(titles))
    for name in ["Account", "Category", "Item"]:
        assert name not in schemas
    # the same entity name in two packs: qualified by the pack, like every model
    for pack in ["Kitchen", "Northwind"]:
        for shape in ["", "Create", "Patch", "Upsert"]:
            assert schemas[f"{pack}Category{shape}"]["title"] == f"{pack}Category{shape}"
    # lines: read in KitchenItem, written whole in a create, patch or upsert
    assert schemas["KitchenItem"]["properties"]["lines"]["items"] == {
        "$ref": "#/components/schemas/KitchenItemLine"
    }
    for shape in ["Create", "Patch", "Upsert"]:
        lines = schemas[f"KitchenItem{shape}"]["properties"]["lines"]
        assert lines["items"] == {"$ref": "#/components/schemas/KitchenItemLineInput"}
    assert schemas["KitchenItemLineInput"]["required"] == ["description", "qty"]


def test_required_text_is_at_least_one_character_and_the_server_says_so(
    db_url: str, tmp_path: Path
) -> None:
    instance = pack_instance(tmp_path, db_url, "support", TICKETS)
    schemas = _document(instance)["components"]["schemas"]
    for shape in ["Create", "Patch", "Upsert"]:
        assert schemas[f"SupportTicket{shape}"]["properties"]["subject"]["minLength"] == 1
        assert (
            schemas[f"SupportTicket{shape}"]["properties"]["code"]["anyOf"][0].get("minLength")
            is None
        )  # not required: "" is a value
    assert schemas["SupportTicketLineInput"]["properties"]["note"]["minLength"] == 1
    assert schemas["SupportTicketCreate"]["required"] == ["subject"]
    assert "required" not in schemas["SupportTicketUpsert"]  # an update needs nothing
    with instance.client() as client:
        base = "/api/v1/support/ticket"
        empty = client.post(base, json={"subject": ""})
        assert empty.status_code == 422
        assert empty.json()["errors"][0] == {
            "field": "subject",
            "code": "required",
            "message": "is required",
        }
        ticket = client.post(base, json={"subject": "Printer", "code": "T-1"}).json()["data"]
        assert client.patch(f"{base}/{ticket['id']}", json={"subject": ""}).status_code == 422
        line = {"lines": [{"note": ""}]}
        assert client.patch(f"{base}/{ticket['id']}", json=line).status_code == 422
        assert client.put(f"{base}/by/code/T-1", json={"subject": ""}).status_code == 422
        assert client.put(f"{base}/by/code/T-1", json={}).status_code == 200  # nothing required


def _validator(document: dict[str, Any], path: str, method: str, status: str) -> Any:
    pointer = "/".join(
        part.replace("~", "~0").replace("/", "~1")
        for part in ["paths", path, method, "responses", status, "content", "application/json"]
    )
    return Draft202012Validator({**document, "$ref": f"#/{pointer}/schema"})


def test_history_and_transitions_answer_as_documented(db_url: str, tmp_path: Path) -> None:
    instance = pack_instance(tmp_path, db_url, "support", TICKETS)
    document = _document(instance)
    base = "/api/v1/support/ticket"
    paths = document["paths"]
    assert paths[f"{base}/{{id}}/_history"]["get"]["operationId"] == "history_support_ticket"
    assert paths[f"{base}/{{id}}/_transitions"]["get"]["operationId"] == (
        "transitions_support_ticket"
    )
    with instance.client() as client:
        ticket = client.post(base, json={"subject": "Printer"}).json()["data"]
        client.patch(f"{base}/{ticket['id']}", json={"status": "open"})
        history = client.get(f"{base}/{ticket['id']}/_history").json()
        transitions = client.get(f"{base}/{ticket['id']}/_transitions").json()
    assert [entry["action"] for entry in history["data"]] == ["create", "update"]
    _validator(document, f"{base}/{{id}}/_history", "get", "200").validate(history)
    assert transitions["data"][0]["to"] == "closed"
    _validator(document, f"{base}/{{id}}/_transitions", "get", "200").validate(transitions)
    # an entity without a workflow has no transitions to document (the server: 404)
    kitchen = write_instance(tmp_path / "k", "sqlite:///unused.db", ["kitchen"])
    assert "/api/v1/kitchen/item/{id}/_transitions" not in _document(kitchen)["paths"]


def test_every_problem_an_operation_answers_is_documented(tmp_path: Path) -> None:
    instance = write_instance(tmp_path, "sqlite:///unused.db", ["kitchen"])
    document = _document(instance)
    responses = document["components"]["responses"]
    for status, name in [("404", "NotFound"), ("409", "Conflict"), ("422", "Invalid")]:
        problem = responses[name]["content"]["application/problem+json"]["schema"]
        assert problem == {"$ref": "#/components/schemas/Problem"}, status
    item = document["paths"]["/api/v1/kitchen/item/{id}"]
    assert set(item["patch"]["responses"]) == {
        "200", "400", "401", "403", "404", "409", "412", "413", "422", "503"
    }  # fmt: skip
    # FastAPI's routes answer a malformed parameter with a 400 problem, not a 422
    assert "HTTPValidationError" not in document["components"]["schemas"]
    event = document["paths"]["/api/v1/_outbox/{event_id}"]["get"]["responses"]
    assert "422" not in event
    assert event["400"] == {"$ref": "#/components/responses/BadRequest"}


def _concrete(path: str) -> str:
    values = {"{id}": "1", "{field}": "name", "{value}": "x", "{event_id}": "1", "{file_id}": "1"}
    values |= {"{qualified}": "kitchen.item", "{name}": "notes"}
    return re.sub(r"\{[a-z_]+\}", lambda m: values[m.group(0)], path)


def test_a_method_a_path_does_not_list_is_405_naming_every_method_it_does(
    kitchen: Instance,
) -> None:
    with kitchen.client() as client:
        paths = client.get("/openapi.json").json()["paths"]
        for path, item in paths.items():
            listed = {method.upper() for method in item if method != "parameters"}
            for method in {"GET", "POST", "PUT", "PATCH", "DELETE"} - listed:
                response = client.request(method, _concrete(path))
                assert response.status_code == 405, (method, path, response.text)
                allowed = set(response.headers["allow"].split(", "))
                assert allowed - {"HEAD"} == listed, (method, path)
                assert response.headers["content-type"] == "application/problem+json"


def test_the_api_docs_are_served_from_this_server(kitchen: Instance) -> None:
    with kitchen.client(signed_in=False) as client:
        page_policy = client.get("/login").headers["content-security-policy"]
        swagger = client.get("/docs")
        redoc = client.get("/redoc")
        for page in (swagger, redoc):
            assert page.status_code == 200
            assert not re.search(r"""(src|href)=["']?(https?:)?//""", page.text), page.text
            assert "<script>" not in page.text  # no inline script: the policy forbids them
        assert swagger.headers["content-security-policy"] == page_policy
        # ReDoc's styles carry the page's nonce; otherwise the web UI's policy
        nonce = re.search(r'data-nonce="([^"]+)"', redoc.text)
        assert nonce
        assert (
            f"style-src 'self' 'nonce-{nonce.group(1)}'" in redoc.headers["content-security-policy"]
        )
        assert (
            client.get("/redoc").headers["content-security-policy"]
            != (redoc.headers["content-security-policy"])
        )  # a fresh nonce each time
        for name in re.findall(r"/docs/_assets/([\w.-]+)", swagger.text + redoc.text):
            asset = client.get(f"/docs/_assets/{name}")
            assert asset.status_code == 200, name
            assert asset.headers["content-type"].startswith(("text/javascript", "text/css"))
        assert client.get("/docs/_assets/package.json").status_code == 404
        assert client.get("/docs/_assets/..%2Fpackage.json").status_code == 404
        document = client.get("/openapi.json")
        assert document.headers["content-security-policy"].startswith("default-src 'none'")


def test_without_the_npm_packages_the_docs_say_how_to_install_them(
    kitchen: Instance, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(
        docs.ASSETS, "swagger-ui-bundle.js", (tmp_path / "missing.js", "text/javascript")
    )
    with kitchen.client(signed_in=False) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "make install" in page.text
        assert "swagger-ui-bundle.js" in page.text
        assert "<script" not in page.text
        assert client.get("/docs/_assets/swagger-ui-bundle.js").status_code == 404
        assert client.get("/openapi.json").status_code == 200


def test_paging_numbers_are_ascii_digits(kitchen_client: TestClient) -> None:
    """``after``, ``limit`` and ``If-Match`` are documented as whole numbers: a Unicode
    digit ("²" is a digit to ``str.isdigit`` but not to ``int``) is a 400/412, not a 500."""
    item = kitchen_client.post("/api/v1/kitchen/item", json={"name": "Saw"}).json()["data"]
    url = f"/api/v1/kitchen/item/{item['id']}"
    for query in ["after=²", "limit=²", "after=\u0661"]:
        response = kitchen_client.get(f"{url}/_history?{query}")
        assert response.status_code == 400, response.text
    for query in ["/_outbox/²", "/_outbox?limit=²", "/_outbox?after=³"]:
        assert kitchen_client.get(f"/api/v1{query}").status_code == 400, query
    stale = kitchen_client.patch(url, json={"quantity": 1}, headers={"If-Match": b'"\xb2"'})
    assert stale.status_code == 412
