"""A line item's file field over HTTP, on SQLite and PostgreSQL:
``…/{id}/{lines}/{line_id}/_files/{field}`` uploads, downloads and clears it; access
follows the parent record (read, update, a submitted document's freeze unless
``allow_on_submit``); hostile paths and names, another record's line, another entity's
line and parallel uploads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from tests.integration.files.conftest import PDF, PNG
from tests.support.cli import tessera
from tests.support.identity import bearer, issue_token

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.conftest import Instance

BASE = "/api/v1/papers/claim"


def _stored(instance: Instance) -> list[str]:
    return sorted(p.name for p in (instance.path / "files").rglob("*") if p.is_file())


def _claim(client: TestClient, title: str = "Trip", lines: int = 2) -> dict[str, Any]:
    body = {
        "title": title,
        "lines": [{"what": f"l{n}", "amount": f"{n + 1}.50"} for n in range(lines)],
    }
    response = client.post(BASE, json=body)
    assert response.status_code == 201, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _line_url(claim: dict[str, Any], position: int, field: str = "scan") -> str:
    return f"{BASE}/{claim['id']}/lines/{claim['lines'][position]['id']}/_files/{field}"


def test_upload_download_replace_clear_a_lines_file(papers: Instance) -> None:
    with papers.client() as client:
        claim = _claim(client)
        url = _line_url(claim, 1)
        put = client.put(url, files={"file": ("taxi.pdf", PDF, "application/pdf")})
        assert put.status_code == 201, put.text
        value = put.json()["data"]
        assert value["name"] == "taxi.pdf"
        assert value["url"] == url
        assert put.headers["location"] == url
        record = client.get(f"{BASE}/{claim['id']}").json()["data"]
        assert record["version"] == claim["version"] + 1  # an update of the parent
        assert record["lines"][1]["scan"] == value
        assert record["lines"][0]["scan"] is None
        # the other values of every line are kept, and what is computed from them
        assert [(line["what"], line["amount"]) for line in record["lines"]] == [
            ("l0", "1.50"),
            ("l1", "2.50"),
        ]
        assert record["total"] == "4.00"
        got = client.get(url)
        assert got.status_code == 200
        assert got.content == PDF
        assert got.headers["content-type"] == "application/octet-stream"
        assert got.headers["content-disposition"].startswith("attachment;")
        head = client.head(url)
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(PDF))
        again = client.put(url + "?filename=b.png", content=PNG)
        assert again.status_code == 201, again.text
        assert client.get(url).content == PNG
        assert len(_stored(papers)) == 1  # the replaced file's bytes are gone
        history = client.get(f"{BASE}/{claim['id']}/_history").json()["data"]
        assert sum("lines" in entry["changes"] for entry in history) >= 2
        # a PATCH of the parent that keeps the line keeps its file
        kept = [{"id": line["id"]} for line in record["lines"]]
        patched = client.patch(f"{BASE}/{claim['id']}", json={"title": "T2", "lines": kept})
        assert patched.status_code == 200, patched.text
        assert patched.json()["data"]["lines"][1]["scan"]["name"] == "b.png"
        assert patched.json()["data"]["total"] == "4.00"  # lines sent by id: as stored
        # ... and writing the value in the body is refused, as for a record's field
        forged = [{"id": line["id"], "scan": value} for line in record["lines"]]
        refused = client.patch(f"{BASE}/{claim['id']}", json={"lines": forged})
        assert refused.status_code == 422
        cleared = client.delete(url)
        assert cleared.status_code == 200
        assert cleared.json() == {"data": None}
        assert client.get(url).status_code == 404
        assert client.get(f"{BASE}/{claim['id']}").json()["data"]["lines"][1]["scan"] is None
        assert _stored(papers) == []


def test_limits_and_types_of_the_lines_field(papers: Instance) -> None:
    with papers.client() as client:
        claim = _claim(client)
        url = _line_url(claim, 0)
        big = client.put(url + "?filename=big.pdf", content=PDF + b"0" * 3000)
        assert big.status_code == 413
        assert big.json()["type"] == "/problems/file-too-large"
        html = client.put(url + "?filename=scan.pdf", content=b"<html><script>x</script></html>")
        assert html.status_code == 415
        assert "text/html" in html.json()["detail"]
        empty = client.put(url + "?filename=a.pdf", content=b"")
        assert empty.status_code == 400
        assert _stored(papers) == []
        for given, expected in {"a%00b.pdf": "ab.pdf", "%ED%A0%80x.pdf": None}.items():
            named = client.put(f"{url}?filename={given}", content=PDF)
            assert named.status_code == 201, (given, named.text)
            name = named.json()["data"]["name"]
            assert "\x00" not in name
            if expected is not None:
                assert name == expected
        surrogate = client.put(
            url,
            content=PDF,
            headers={"content-disposition": "attachment; filename*=UTF-8''%ED%A0%80.pdf"},
        )
        assert surrogate.status_code == 201
        assert len(_stored(papers)) == 1


def test_wrong_lines_paths_are_404_never_500(papers: Instance) -> None:
    with papers.client() as client:
        claim = _claim(client)
        other = _claim(client, "Other")
        legs = [{"place": str(n)} for n in range(6)]  # ids are per entity: past the claims'
        trip = client.post("/api/v1/papers/trip", json={"title": "T", "legs": legs})
        assert trip.status_code == 201, trip.text
        leg = trip.json()["data"]["legs"][-1]["id"]
        assert int(leg) > max(int(line["id"]) for line in claim["lines"] + other["lines"])
        cid, line = claim["id"], claim["lines"][0]["id"]
        bad = [
            f"{BASE}/{cid}/lines/{other['lines'][0]['id']}/_files/scan",  # another record's
            f"{BASE}/{cid}/lines/{leg}/_files/scan",  # a line of another entity
            f"{BASE}/{cid}/lines/99999999999999999999999/_files/scan",
            f"{BASE}/{cid}/lines/0/_files/scan",
            f"{BASE}/{cid}/lines/-1/_files/scan",
            f"{BASE}/{cid}/lines/x%00/_files/scan",
            f"{BASE}/{cid}/lines/%ED%A0%80/_files/scan",
            f"{BASE}/{cid}/lines/{line}/_files/what",  # not a file field
            f"{BASE}/{cid}/lines/{line}/_files/nothing%00",
            f"{BASE}/{cid}/lines/{line}/_files/%ED%A0%80",
            f"{BASE}/{cid}/title/{line}/_files/scan",  # not line items
            f"{BASE}/{cid}/nothing/{line}/_files/scan",
            f"{BASE}/99999999999999999999999/lines/{line}/_files/scan",
            f"{BASE}/{other['id']}/lines/{line}/_files/scan",
        ]
        for url in bad:
            for method in ("GET", "PUT", "DELETE"):
                content = PDF if method == "PUT" else None
                response = client.request(method, url + "?filename=a.pdf", content=content)
                assert response.status_code == 404, (method, url, response.text)
                assert response.headers["content-type"] == "application/problem+json"
        assert client.post(_line_url(claim, 0), content=PDF).status_code == 405
        assert _stored(papers) == []
        # another entity's line path works for its own records
        ticket = client.put(
            f"/api/v1/papers/trip/{trip.json()['data']['id']}/legs/{leg}/_files/ticket?filename=t.pdf",
            content=PDF,
        )
        assert ticket.status_code == 201, ticket.text


def test_access_follows_the_parent(papers: Instance) -> None:
    url = papers.settings.database_url
    with papers.client() as admin, papers.client(signed_in=False) as clerk:
        clerk.headers.update(bearer(issue_token(url, "carla", ("clerk",))))
        mine = _claim(clerk, "Mine")
        theirs = _claim(admin, "Theirs")
        assert admin.put(_line_url(theirs, 0) + "?filename=a.pdf", content=PDF).status_code == 201
        assert clerk.get(_line_url(theirs, 0)).status_code == 404
        assert clerk.put(_line_url(theirs, 0) + "?filename=a.pdf", content=PDF).status_code == 404
        assert clerk.delete(_line_url(theirs, 0)).status_code == 404
        own = clerk.put(_line_url(mine, 0) + "?filename=a.pdf", content=PDF)
        assert own.status_code == 201, own.text
        with papers.client(signed_in=False) as viewer:
            viewer.headers.update(bearer(issue_token(url, "vera", ("viewer",))))
            assert viewer.get(_line_url(mine, 0)).content == PDF
            refused = viewer.put(_line_url(mine, 0) + "?filename=a.pdf", content=PDF)
            assert refused.status_code == 403
            assert viewer.delete(_line_url(mine, 0)).status_code == 403
        with papers.client(signed_in=False) as nobody:
            assert nobody.get(_line_url(mine, 0)).status_code == 401
        with papers.client(signed_in=False) as auditor:  # the lines are hidden from them
            auditor.headers.update(bearer(issue_token(url, "abe", ("auditor",))))
            assert auditor.get(_line_url(mine, 0)).status_code == 404
            hidden = auditor.put(_line_url(mine, 1) + "?filename=a.pdf", content=PDF)
            assert hidden.status_code == 404
            assert "lines" not in auditor.get(f"{BASE}/{mine['id']}").json()["data"]
        with papers.client(signed_in=False) as approver:  # the lines are read-only for them
            approver.headers.update(bearer(issue_token(url, "ann", ("approver",))))
            assert approver.get(_line_url(mine, 0)).content == PDF
            readonly = approver.put(_line_url(mine, 1) + "?filename=a.pdf", content=PDF)
            assert readonly.status_code == 403
            assert approver.delete(_line_url(mine, 0)).status_code == 403
        for wrong in ("LINES", "lines%2F1", "_files"):
            odd = admin.get(f"{BASE}/{mine['id']}/{wrong}/1/_files/scan")
            assert odd.status_code == 404, (wrong, odd.text)
    assert len(_stored(papers)) == 2


def test_a_submitted_documents_lines_are_frozen_unless_allow_on_submit(papers: Instance) -> None:
    with papers.client() as client:
        claim = _claim(client)
        assert client.put(_line_url(claim, 0) + "?filename=a.pdf", content=PDF).status_code == 201
        assert client.post(f"{BASE}/{claim['id']}/_submit").status_code == 200
        frozen = client.put(_line_url(claim, 0) + "?filename=b.pdf", content=PDF)
        assert frozen.status_code == 409
        assert frozen.json()["type"] == "/problems/submitted"
        assert client.delete(_line_url(claim, 0)).status_code == 409
        stamp = client.put(_line_url(claim, 1, "stamp") + "?filename=s.png", content=PNG)
        assert stamp.status_code == 201, stamp.text  # allow_on_submit
        record = client.get(f"{BASE}/{claim['id']}").json()["data"]
        assert record["docstatus"] == "submitted"
        assert record["lines"][1]["stamp"]["name"] == "s.png"
        assert record["lines"][0]["scan"]["name"] == "a.pdf"
        assert client.post(f"{BASE}/{claim['id']}/_cancel").status_code == 200
        late = client.put(_line_url(claim, 1, "stamp") + "?filename=t.png", content=PNG)
        assert late.status_code == 409
        assert late.json()["type"] == "/problems/cancelled"
    assert len(_stored(papers)) == 2


def test_parallel_uploads_to_one_lines_field_leave_one_file(papers: Instance) -> None:
    with papers.client() as client:
        claim = _claim(client)
        url = _line_url(claim, 0)

        def one(n: int) -> int:
            body = PDF + f"% upload {n}\n".encode()
            return client.put(f"{url}?filename=p{n}.pdf", content=body).status_code

        def other(n: int) -> int:  # the other line's field, at the same time
            return client.put(
                _line_url(claim, 1, "stamp") + f"?filename=s{n}.png", content=PNG
            ).status_code

        with ThreadPoolExecutor(max_workers=10) as pool:
            statuses = list(pool.map(one, range(8)))
            others = list(pool.map(other, range(2)))
        assert set(statuses) <= {201, 409}, statuses
        assert 201 in statuses
        record = client.get(f"{BASE}/{claim['id']}").json()["data"]
        value = record["lines"][0]["scan"]
        number = value["name"][1:-4]
        assert client.get(url).content.endswith(f"% upload {number}\n".encode())
        assert record["version"] == claim["version"] + statuses.count(201) + others.count(201)
        assert (record["lines"][1]["stamp"] is not None) == (201 in others)
    assert len(_stored(papers)) == 1 + (1 if 201 in others else 0)


def test_removed_lines_and_deleted_records_leave_nothing_for_long(papers: Instance) -> None:
    with papers.client() as client:
        claim = _claim(client)
        assert client.put(_line_url(claim, 0) + "?filename=a.pdf", content=PDF).status_code == 201
        assert client.put(_line_url(claim, 1) + "?filename=b.pdf", content=PDF).status_code == 201
        kept = [{"id": claim["lines"][1]["id"]}]
        assert client.patch(f"{BASE}/{claim['id']}", json={"lines": kept}).status_code == 200
        assert client.get(_line_url(claim, 0)).status_code == 404  # the line is gone
        assert client.get(_line_url(claim, 1)).content == PDF
        assert len(_stored(papers)) == 2  # the removed line's file: until prune
        assert client.delete(f"{BASE}/{claim['id']}").status_code == 204
        assert len(_stored(papers)) == 1  # the kept line's went with the record
        other = _claim(client, "Other")
        assert client.put(_line_url(other, 0) + "?filename=c.pdf", content=PDF).status_code == 201
    done = tessera("files", "prune", cwd=papers.path)
    assert done.returncode == 0, done.stderr
    assert "deleted 1 file row(s)" in done.stdout
    assert len(_stored(papers)) == 1  # the other claim's line still holds its file


def test_the_lines_file_paths_are_in_the_openapi_document(papers: Instance) -> None:
    with papers.client() as client:
        document = client.get("/openapi.json").json()
        path = document["paths"][f"{BASE}/{{id}}/lines/{{line_id}}/_files/{{field}}"]
        assert {m for m in path if m != "parameters"} == {"get", "put", "delete"}
        params = {p["name"]: p for p in path["parameters"]}
        assert params["field"]["schema"]["enum"] == ["scan", "stamp"]
        assert set(params) == {"id", "line_id", "field"}
        assert {"201", "409", "413", "415"} <= set(path["put"]["responses"])
        assert "/api/v1/papers/trip/{id}/legs/{line_id}/_files/{field}" in document["paths"]
        operations = [
            op["operationId"]
            for item in document["paths"].values()
            for method, op in item.items()
            if method != "parameters"
        ]
        assert len(operations) == len(set(operations))
        claim = _claim(client)
        post = client.post(_line_url(claim, 0), content=PDF)
        assert post.status_code == 405
        assert set(post.headers["allow"].split(", ")) == {"GET", "HEAD", "PUT", "DELETE"}
