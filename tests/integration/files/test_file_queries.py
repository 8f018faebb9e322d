"""Lists and aggregates over file fields, on SQLite and PostgreSQL: ``receipt__isnull``
filters on whether a record holds a file (lists, counts, aggregates, exports, the web
list); anything else on a file field (equality, text operators, sorting, grouping,
measures) is a 400 problem naming the field, as is any use of line items, never a 500."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.integration.files.conftest import PDF, make_claim
from tests.support.identity import bearer, issue_token
from tests.support.web import signed_in

if TYPE_CHECKING:
    from tests.conftest import Instance

BASE = "/api/v1/papers/claim"
PASSWORD = "correct horse battery"


def _ids(response: object) -> list[str]:
    body = response.json()  # type: ignore[attr-defined]
    return [record["id"] for record in body["data"]]


def test_isnull_finds_the_records_with_and_without_a_file(papers: Instance) -> None:
    with papers.client() as client:
        with_file, without, cleared = (make_claim(client, t) for t in ("A", "B", "C"))
        for cid in (with_file, cleared):
            put = client.put(f"{BASE}/{cid}/_files/receipt?filename=r.pdf", content=PDF)
            assert put.status_code == 201, put.text
        assert client.delete(f"{BASE}/{cleared}/_files/receipt").status_code == 200
        has = client.get(f"{BASE}?receipt__isnull=false&count=true")
        assert has.status_code == 200, has.text
        assert _ids(has) == [with_file]
        assert has.json()["meta"]["count"] == 1
        lacks = client.get(f"{BASE}?receipt__isnull=true&sort=title")
        assert _ids(lacks) == [without, cleared]  # a cleared field holds no file again
        both = client.get(f"{BASE}?receipt__isnull=false&photo__isnull=true")
        assert _ids(both) == [with_file]
        counted = client.get(f"{BASE}/_aggregate?receipt__isnull=false")
        assert counted.status_code == 200, counted.text
        assert counted.json()["data"][0]["count"] == 1
        exported = client.get(f"{BASE}/_export?format=jsonl&receipt__isnull=false")
        assert exported.status_code == 200, exported.text
        assert exported.text.count('"title"') == 1
        cursor_page = client.get(f"{BASE}?receipt__isnull=true&limit=1")
        following = client.get(
            f"{BASE}?receipt__isnull=true&limit=1&cursor={cursor_page.json()['meta']['next_cursor']}"
        )
        assert _ids(cursor_page) + _ids(following) == [without, cleared]
    issue_token(papers.settings.database_url, "ada", ("admin",), password=PASSWORD)
    with signed_in(papers, "ada", PASSWORD) as web:
        page = web.get("/app/papers/claim?receipt__isnull=false")
        assert page.status_code == 200, page.text
        assert f'href="/app/papers/claim/{with_file}"' in page.text
        assert f'href="/app/papers/claim/{without}"' not in page.text
        refused = web.get("/app/papers/claim?sort=receipt")
        assert refused.status_code == 400
        assert "it is a file field" in refused.text


def test_anything_else_on_a_file_field_is_a_400_naming_it(papers: Instance) -> None:
    with papers.client() as client:
        make_claim(client)
        refused = [
            f"{BASE}?receipt=x",
            f"{BASE}?receipt__eq=x",
            f"{BASE}?receipt__contains=pdf",
            f"{BASE}?receipt__in=1,2",
            f"{BASE}?receipt__isnull=maybe",
            f"{BASE}?receipt__isnull=%00",
            f"{BASE}?receipt__isnull__x=true",
            f"{BASE}?receipt__name=x",
            f"{BASE}?sort=receipt",
            f"{BASE}?sort=-receipt,title",
            f"{BASE}?lines=1",
            f"{BASE}?lines__isnull=true",
            f"{BASE}?sort=lines",
            f"{BASE}/_aggregate?group_by=receipt",
            f"{BASE}/_aggregate?measures=receipt__sum",
            f"{BASE}/_aggregate?group_by=lines",
            f"{BASE}/_export?sort=receipt",
        ]
        for url in refused:
            response = client.get(url)
            assert response.status_code == 400, (url, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            detail = response.json()["detail"]
            assert "receipt" in detail or "lines" in detail, (url, detail)
        sort = client.get(f"{BASE}?sort=receipt").json()["detail"]
        assert "it is a file field" in sort
        assert "receipt__isnull" in sort
        eq = client.get(f"{BASE}?receipt=x").json()["detail"]
        assert "it is a file field" in eq
        assert "line items" in client.get(f"{BASE}?sort=lines").json()["detail"]


def test_a_hidden_file_field_is_not_there_for_filters(papers: Instance) -> None:
    url = papers.settings.database_url
    with papers.client(signed_in=False) as clerk:
        clerk.headers.update(bearer(issue_token(url, "carla", ("clerk",))))
        make_claim(clerk)
        hidden = clerk.get(f"{BASE}?secret_scan__isnull=false")
        assert hidden.status_code == 400
        assert "unknown field 'secret_scan'" in hidden.json()["detail"]
        assert clerk.get(f"{BASE}?receipt__isnull=true").status_code == 200


def test_the_isnull_filter_is_in_the_openapi_document(papers: Instance) -> None:
    with papers.client() as client:
        document = client.get("/openapi.json").json()
        listed = {p["name"]: p for p in document["paths"][BASE]["get"]["parameters"]}
        assert listed["receipt__isnull"]["schema"] == {"type": "boolean"}
        assert "receipt" not in listed
        aggregated = document["paths"][f"{BASE}/_aggregate"]["get"]["parameters"]
        assert "receipt__isnull" in {p["name"] for p in aggregated}
