"""File fields and attachments over HTTP, on SQLite and PostgreSQL: upload, download,
limits, sniffed types, hostile names, grants, submitted documents, parallel uploads,
deletes and history."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from tests.integration.files.conftest import PDF, PNG, make_claim
from tests.support.identity import bearer, issue_token

if TYPE_CHECKING:
    from fastapi.testclient import TestClient

    from tests.conftest import Instance

BASE = "/api/v1/papers/claim"


def _stored(instance: Instance) -> list[str]:
    return sorted(p.name for p in (instance.path / "files").rglob("*") if p.is_file())


def _as(instance: Instance, client: TestClient, name: str, roles: tuple[str, ...]) -> None:
    client.headers.update(bearer(issue_token(instance.settings.database_url, name, roles)))


def test_upload_read_download_replace_clear(papers: Instance) -> None:
    with papers.client() as client:
        cid = make_claim(client)
        put = client.put(f"{BASE}/{cid}/_files/receipt?filename=taxi.pdf", content=PDF)
        assert put.status_code == 201, put.text
        value = put.json()["data"]
        assert value["name"] == "taxi.pdf"
        assert value["size"] == len(PDF)
        assert value["content_type"] == "application/pdf"
        assert value["url"] == f"{BASE}/{cid}/_files/receipt"
        assert put.headers["location"] == value["url"]
        record = client.get(f"{BASE}/{cid}").json()["data"]
        assert record["receipt"] == value
        assert record["photo"] is None
        got = client.get(value["url"])
        assert got.status_code == 200
        assert got.content == PDF
        assert got.headers["content-type"] == "application/octet-stream"
        assert got.headers["content-disposition"].startswith("attachment;")
        assert got.headers["x-content-type-options"] == "nosniff"
        head = client.head(value["url"])
        assert head.status_code == 200
        assert head.headers["content-length"] == str(len(PDF))
        assert len(_stored(papers)) == 1
        # a multipart upload replaces it; the replaced bytes are deleted
        again = client.put(
            f"{BASE}/{cid}/_files/receipt", files={"file": ("scan.png", PNG, "image/png")}
        )
        assert again.status_code == 201, again.text
        assert again.json()["data"]["content_type"] == "image/png"
        assert client.get(value["url"]).content == PNG
        assert len(_stored(papers)) == 1
        history = client.get(f"{BASE}/{cid}/_history").json()["data"]
        changes = [e["changes"]["receipt"] for e in history if "receipt" in e["changes"]]
        assert [c[1]["name"] for c in changes] == ["taxi.pdf", "scan.png"]
        cleared = client.delete(f"{BASE}/{cid}/_files/receipt")
        assert cleared.status_code == 200
        assert client.get(f"{BASE}/{cid}").json()["data"]["receipt"] is None
        assert client.get(value["url"]).status_code == 404
        assert _stored(papers) == []


def test_the_value_is_not_written_in_a_record_body(papers: Instance) -> None:
    with papers.client() as client:
        cid = make_claim(client)
        fake = {"id": "1", "name": "x", "size": 1, "content_type": "a/b", "url": "/etc/passwd"}
        patched = client.patch(f"{BASE}/{cid}", json={"receipt": fake})
        assert patched.status_code == 422
        assert patched.json()["errors"][0] == {
            "field": "receipt",
            "code": "read_only",
            "message": "is read-only",
        }
        created = client.post(BASE, json={"title": "t", "receipt": fake})
        assert created.status_code == 422


def test_size_limits_stop_the_stream_and_keep_nothing(papers: Instance) -> None:
    with papers.client() as client:
        cid = make_claim(client)
        big = PDF + b"0" * 2100  # receipt: max_size 2kB
        refused = client.put(f"{BASE}/{cid}/_files/receipt?filename=a.pdf", content=big)
        assert refused.status_code == 413
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["type"] == "/problems/file-too-large"

        def chunked() -> Any:  # no Content-Length: cut off while streaming
            yield PDF
            for _ in range(100):
                yield b"0" * 1000

        streamed = client.put(f"{BASE}/{cid}/_files/receipt?filename=a.pdf", content=chunked())
        assert streamed.status_code == 413
        huge = b"%PDF-1.4\n" + b"0" * 70_000  # the instance's 64kB, for an attachment
        multipart = client.post(
            f"{BASE}/{cid}/_attachments", files={"file": ("a.pdf", huge, "application/pdf")}
        )
        assert multipart.status_code == 413
        assert _stored(papers) == []
        assert list((papers.path / "files").rglob("*.part")) == []
        assert client.get(f"{BASE}/{cid}").json()["data"]["receipt"] is None


def test_content_type_is_read_from_the_bytes(papers: Instance) -> None:
    with papers.client() as client:
        cid = make_claim(client)
        disguised = client.put(
            f"{BASE}/{cid}/_files/receipt?filename=invoice.pdf", content=b"just some text"
        )
        assert disguised.status_code == 415
        body = disguised.json()
        assert body["type"] == "/problems/unsupported-file-type"
        assert "text/plain" in body["detail"]
        html = b"<!DOCTYPE html><html><script>alert(1)</script></html>"
        # the instance allows text/*, application/pdf, image/*: text/html is text/*
        page = client.put(f"{BASE}/{cid}/_files/photo?filename=cat.png", content=html)
        assert page.status_code == 201, page.text
        assert page.json()["data"]["content_type"] == "text/html"
        served = client.get(f"{BASE}/{cid}/_files/photo")
        assert served.headers["content-type"] == "application/octet-stream"
        assert served.headers["content-disposition"].startswith("attachment;")
        assert "sandbox" in served.headers["content-security-policy"]
        exe = client.put(f"{BASE}/{cid}/_files/photo?filename=a.png", content=b"MZ\x90\x00" * 50)
        assert exe.status_code == 415
        assert len(_stored(papers)) == 1


def test_hostile_file_names_are_made_safe(papers: Instance) -> None:
    with papers.client() as client:
        cid = make_claim(client)
        names = {  # sent as ?filename= (percent-encoded: NUL and controls arrive)
            "../../etc/passwd": "passwd",
            "..%5C..%5Cboot.ini": "boot.ini",
            "a%00b%01c.pdf": "abc.pdf",
            "%ED%A0%80x.pdf": None,  # not UTF-8
            "...": "file",
            "%C3%A9" * 300 + ".pdf": None,
            "<script>.pdf": "<script>.pdf",
        }
        for given, expected in names.items():
            response = client.post(f"{BASE}/{cid}/_attachments?filename={given}", content=PDF)
            assert response.status_code == 201, (given, response.text)
            name = response.json()["data"]["name"]
            if expected is not None:
                assert name == expected, given
            assert len(name.encode("utf-8")) <= 255
            assert "/" not in name
            assert "\\" not in name
            assert "\x00" not in name
        multipart = client.post(
            f"{BASE}/{cid}/_attachments", files={"file": ("../x\n.pdf", PDF, "text/html")}
        )
        assert "/" not in multipart.json()["data"]["name"]
        assert multipart.json()["data"]["content_type"] == "application/pdf"
        raw = client.put(
            f"{BASE}/{cid}/_files/receipt",
            content=PDF,
            headers={"content-disposition": "attachment; filename*=UTF-8''%C3%BCber%2F..%2Fx.pdf"},
        )
        assert raw.json()["data"]["name"] == "x.pdf"
        got = client.get(f"{BASE}/{cid}/_files/receipt")
        assert "filename*=UTF-8''x.pdf" in got.headers["content-disposition"]
        files = client.get(f"{BASE}/{cid}/_attachments").json()["data"]
        long_name = files[-1]
        download = client.get(long_name["url"])
        assert download.status_code == 200
        assert download.headers["content-disposition"].isascii()
        for path in (papers.path / "files").rglob("*"):
            assert path.resolve().is_relative_to((papers.path / "files").resolve())


def test_reads_and_writes_follow_the_records_grants(papers: Instance) -> None:
    with papers.client() as admin, papers.client(signed_in=False) as clerk:
        _as(papers, clerk, "carla", ("clerk",))
        mine = make_claim(clerk, "Mine")
        theirs = make_claim(admin, "Theirs")
        upload = admin.put(f"{BASE}/{theirs}/_files/receipt?filename=a.pdf", content=PDF)
        assert upload.status_code == 201
        secret = admin.put(f"{BASE}/{mine}/_files/secret_scan?filename=s.pdf", content=PDF)
        assert secret.status_code == 201
        # another's record: 404, exactly as reading the record
        assert clerk.get(f"{BASE}/{theirs}").status_code == 404
        assert clerk.get(f"{BASE}/{theirs}/_files/receipt").status_code == 404
        assert clerk.get(f"{BASE}/{theirs}/_attachments").status_code == 404
        put = clerk.put(f"{BASE}/{theirs}/_files/receipt?filename=a.pdf", content=PDF)
        assert put.status_code == 404
        # a hidden field is not there
        assert clerk.get(f"{BASE}/{mine}/_files/secret_scan").status_code == 404
        assert "secret_scan" not in clerk.get(f"{BASE}/{mine}").json()["data"]
        own = clerk.put(f"{BASE}/{mine}/_files/receipt?filename=a.pdf", content=PDF)
        assert own.status_code == 201
        with papers.client(signed_in=False) as viewer:
            _as(papers, viewer, "vera", ("viewer",))
            assert viewer.get(f"{BASE}/{mine}/_files/receipt").content == PDF
            refused = viewer.put(f"{BASE}/{mine}/_files/receipt?filename=a.pdf", content=PDF)
            assert refused.status_code == 403
            attach = viewer.post(f"{BASE}/{mine}/_attachments", files={"file": ("a.pdf", PDF)})
            assert attach.status_code == 403
        with papers.client(signed_in=False) as nobody:
            assert nobody.get(f"{BASE}/{mine}/_files/receipt").status_code == 401
        assert len(_stored(papers)) == 3


def test_submitted_documents_freeze_file_fields_but_take_attachments(papers: Instance) -> None:
    with papers.client() as client:
        cid = make_claim(client)
        assert client.post(f"{BASE}/{cid}/_submit").status_code == 200
        frozen = client.put(f"{BASE}/{cid}/_files/receipt?filename=a.pdf", content=PDF)
        assert frozen.status_code == 409
        assert frozen.json()["type"] == "/problems/submitted"
        allowed = client.put(f"{BASE}/{cid}/_files/photo?filename=p.png", content=PNG)
        assert allowed.status_code == 201  # allow_on_submit
        attached = client.post(f"{BASE}/{cid}/_attachments", files={"file": ("a.pdf", PDF)})
        assert attached.status_code == 201
        assert len(_stored(papers)) == 2


def test_attachments_list_download_delete_and_record_delete(papers: Instance) -> None:
    with papers.client() as client:
        cid = make_claim(client)
        other = make_claim(client, "Other")
        first = client.post(f"{BASE}/{cid}/_attachments", files={"file": ("a.pdf", PDF)})
        second = client.post(f"{BASE}/{cid}/_attachments", content=PNG, params={"filename": "b"})
        assert first.status_code == second.status_code == 201
        listing = client.get(f"{BASE}/{cid}/_attachments").json()
        assert [a["name"] for a in listing["data"]] == ["a.pdf", "b"]
        assert listing["data"][1]["content_type"] == "image/png"
        one = listing["data"][0]
        assert client.get(one["url"]).content == PDF
        # an attachment is reached through its own record only
        stranger = f"{BASE}/{other}/_attachments/{one['id']}"
        assert client.get(stranger).status_code == 404
        for bad in ("abc", "0", "99999999999999999999999", "%00"):
            assert client.get(f"{BASE}/{cid}/_attachments/{bad}").status_code == 404
        assert client.delete(one["url"]).status_code == 200
        assert client.get(one["url"]).status_code == 404
        history = client.get(f"{BASE}/{cid}/_history").json()["data"]
        trail = [e["changes"]["_attachments"] for e in history if "_attachments" in e["changes"]]
        assert [t[0] is None for t in trail] == [True, True, False]
        client.put(f"{BASE}/{cid}/_files/receipt?filename=r.pdf", content=PDF)
        assert len(_stored(papers)) == 2
        assert client.delete(f"{BASE}/{cid}").status_code == 204
        assert _stored(papers) == []
        assert client.get(f"{BASE}/{cid}/_attachments").status_code == 404


def test_wrong_paths_and_methods(papers: Instance) -> None:
    with papers.client() as client:
        cid = make_claim(client)
        assert client.get(f"{BASE}/{cid}/_files/title").status_code == 404
        assert client.get(f"{BASE}/{cid}/_files/nothing").status_code == 404
        assert client.get(f"{BASE}/999/_files/receipt").status_code == 404
        assert client.get(f"{BASE}/x/_files/receipt").status_code == 404
        assert client.post(f"{BASE}/{cid}/_files/receipt", content=PDF).status_code == 405
        assert client.put(f"{BASE}/{cid}/_attachments", content=PDF).status_code == 405
        empty = client.put(
            f"{BASE}/{cid}/_files/receipt",
            content=b"--b--\r\n",
            headers={"content-type": "multipart/form-data; boundary=b"},
        )
        assert empty.status_code == 400
        assert empty.headers["content-type"] == "application/problem+json"
        for content_type in ("multipart/form-data", "multipart/form-data; boundary="):
            unbounded = client.put(
                f"{BASE}/{cid}/_files/receipt",
                content=b"--x\r\n",
                headers={"content-type": content_type},
            )
            assert unbounded.status_code == 400, unbounded.text
        extra = client.put(
            f"{BASE}/{cid}/_files/receipt", files={"file": ("a.pdf", PDF)}, data={"x": "1"}
        )
        assert extra.status_code == 400
        misnamed = client.put(f"{BASE}/{cid}/_files/receipt", files={"upload": ("a.pdf", PDF)})
        assert misnamed.status_code == 400
        nothing = client.put(f"{BASE}/{cid}/_files/receipt?filename=a.pdf", content=b"")
        assert nothing.status_code == 400
        assert nothing.json()["type"] == "/problems/empty-file"
        bad_length = client.put(
            f"{BASE}/{cid}/_files/receipt",
            content=PDF,
            headers={"content-length": "\xb2".encode("latin-1")},
        )
        assert bad_length.status_code in {400, 413}


def test_parallel_uploads_to_one_field_leave_one_file(papers: Instance) -> None:
    """Twelve uploads at once to the same field (threads sharing the app's event loop):
    each succeeds or is told to try again; the field holds one of them, and exactly that
    file's row and bytes are left."""
    with papers.client() as client:
        cid = make_claim(client)

        def one(n: int) -> int:
            body = PDF + f"% upload {n}\n".encode()
            url = f"{BASE}/{cid}/_files/receipt?filename=p{n}.pdf"
            return client.put(url, content=body).status_code

        with ThreadPoolExecutor(max_workers=12) as pool:
            statuses = list(pool.map(one, range(12)))
        assert set(statuses) <= {201, 409}, statuses
        assert 201 in statuses
        value = client.get(f"{BASE}/{cid}").json()["data"]["receipt"]
        got = client.get(value["url"])
        number = value["name"][1:-4]
        assert got.content.endswith(f"% upload {number}\n".encode())
        version = client.get(f"{BASE}/{cid}").json()["data"]["version"]
        assert version == 1 + statuses.count(201)
    assert len(_stored(papers)) == 1
