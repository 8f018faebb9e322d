"""A record's files on its web form, on SQLite and PostgreSQL: the upload input and the
file's link, the Attachments section, CSRF, and the reader who may not upload."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.integration.files.conftest import PDF, PNG
from tests.support.identity import issue_token
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from tests.conftest import Instance

PASSWORD = "correct horse battery"
FORM = "/app/papers/claim"


def test_upload_link_attach_and_delete_on_the_form(papers: Instance) -> None:
    url = papers.settings.database_url
    issue_token(url, "carla", ("clerk",), password=PASSWORD)
    issue_token(url, "vera", ("viewer",), password=PASSWORD)
    with signed_in(papers, "carla", PASSWORD) as web:
        page = web.get(f"{FORM}/new")
        csrf = csrf_of(page)
        created = web.post(
            f"{FORM}/new", data={"csrf_token": csrf, "title": "Hotel"}, follow_redirects=False
        )
        assert created.status_code == 303
        record = created.headers["location"].split("/")[-1].split("?")[0]
        form = web.get(f"{FORM}/{record}")
        assert 'form="upload-receipt"' in form.text
        assert 'action="/app/papers/claim/' + record + '/_files/receipt"' in form.text
        assert "secret_scan" not in form.text  # hidden from clerks
        forged = web.post(
            f"{FORM}/{record}/_files/receipt",
            files={"file": ("r.pdf", PDF, "application/pdf")},
            data={"csrf_token": "0" * 64},
            follow_redirects=False,
        )
        assert forged.status_code == 403
        sent = web.post(
            f"{FORM}/{record}/_files/receipt",
            files={"file": ("r.pdf", PDF, "application/pdf")},
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert sent.status_code == 303, sent.text
        form = web.get(f"{FORM}/{record}")
        assert f'href="{FORM}/{record}/_files/receipt"' in form.text
        assert ">r.pdf</a>" in form.text
        got = web.get(f"{FORM}/{record}/_files/receipt")
        assert got.content == PDF
        assert got.headers["content-disposition"].startswith("attachment;")
        refused = web.post(
            f"{FORM}/{record}/_files/receipt",
            files={"file": ("r.pdf", b"plain text", "application/pdf")},
            data={"csrf_token": csrf},
        )
        assert refused.status_code == 415
        assert "text/plain" in refused.text
        attached = web.post(
            f"{FORM}/{record}/_attachments",
            files={"file": ("photo.png", PNG, "image/png")},
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert attached.status_code == 303
        form = web.get(f"{FORM}/{record}")
        assert "Attachments (1)" in form.text
        assert ">photo.png</a>" in form.text
        attachment = form.text.split('data-attachment="')[1].split('"')[0]
        assert web.get(f"{FORM}/{record}/_attachments/{attachment}").content == PNG
        removed = web.post(
            f"{FORM}/{record}/_attachments/{attachment}/delete",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert removed.status_code == 303
        assert "No attachments." in web.get(f"{FORM}/{record}").text
        cleared = web.post(
            f"{FORM}/{record}/_files/receipt/clear",
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert cleared.status_code == 303
        assert web.get(f"{FORM}/{record}/_files/receipt").status_code == 404
        web.post(
            f"{FORM}/{record}/_files/receipt",
            files={"file": ("r.pdf", PDF, "application/pdf")},
            data={"csrf_token": csrf},
        )
    with signed_in(papers, "vera", PASSWORD) as viewer:
        form = viewer.get(f"{FORM}/{record}")
        assert ">r.pdf</a>" in form.text
        assert 'type="file"' not in form.text
        assert viewer.get(f"{FORM}/{record}/_files/receipt").content == PDF
        csrf = csrf_of(form)
        refused = viewer.post(
            f"{FORM}/{record}/_attachments",
            files={"file": ("a.pdf", PDF, "application/pdf")},
            data={"csrf_token": csrf},
        )
        assert refused.status_code == 403
    issue_token(url, "cole", ("clerk",), password=PASSWORD)  # another clerk: not theirs
    with signed_in(papers, "cole", PASSWORD) as other:
        assert other.get(f"{FORM}/{record}/_files/receipt").status_code == 404
        assert other.get(f"{FORM}/{record}/_attachments/1").status_code == 404
