"""A record's files on its web form, on SQLite and PostgreSQL: the upload input and the
file's link, the Attachments section, CSRF, and the reader who may not upload."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

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


def _new_claim(web: Any, csrf: str, title: str) -> tuple[str, list[str]]:
    """A claim with two lines, made through the API as the signed-in user's form would."""
    created = web.post(
        f"{FORM}/new",
        data={
            "csrf_token": csrf,
            "title": title,
            "lines[0].what": "Taxi",
            "lines[0].amount": "12.50",
            "lines[1].what": "Train",
            "lines[1].amount": "30",
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    record = created.headers["location"].split("/")[-1].split("?")[0]
    page = web.get(f"{FORM}/{record}").text
    lines = re.findall(r'name="lines\[\d\]\.id" value="(\d+)"', page)
    assert len(lines) == 2, page
    return record, lines


def test_a_refused_upload_shows_the_form_with_the_reason_at_the_field(papers: Instance) -> None:
    url = papers.settings.database_url
    issue_token(url, "carla", ("clerk",), password=PASSWORD)
    with signed_in(papers, "carla", PASSWORD) as web:
        csrf = csrf_of(web.get(f"{FORM}/new"))
        record, _ = _new_claim(web, csrf, "Hotel in Lyon")
        attached = web.post(
            f"{FORM}/{record}/_attachments",
            files={"file": ("photo.png", PNG, "image/png")},
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert attached.status_code == 303
        cases = [
            (("notes.txt", b"plain text", "application/pdf"), 415, "text/plain"),
            (("big.pdf", PDF + b"0" * 3000, "application/pdf"), 413, "larger than 2000 bytes"),
            (("", b"", "application/octet-stream"), 400, "choose a file to upload"),
        ]
        for sent, status, reason in cases:
            refused = web.post(
                f"{FORM}/{record}/_files/receipt", files={"file": sent}, data={"csrf_token": csrf}
            )
            assert refused.status_code == status, refused.text
            page = refused.text
            assert 'class="record-form"' in page  # the form, not an error page
            field = page.split('data-field="receipt"')[1].split('data-field="')[0]
            assert 'class="error-text" id="f-receipt-error"' in field
            assert reason in field
            assert "Hotel in Lyon" in page  # the rest of the page is there
            assert ">photo.png</a>" in page
            assert 'value="Train"' in page
            assert "was not changed" in page
        assert web.get(f"{FORM}/{record}/_files/receipt").status_code == 404  # nothing kept
        refused = web.post(
            f"{FORM}/{record}/_attachments",
            files={"file": ("a.exe", b"MZ\x90\x00" * 50, "application/pdf")},
            data={"csrf_token": csrf},
        )
        assert refused.status_code == 415
        assert 'class="record-form"' in refused.text
        assert "the file was not attached" in refused.text
        forged = web.post(
            f"{FORM}/{record}/_files/receipt",
            files={"file": ("r.pdf", PDF, "application/pdf")},
            data={"csrf_token": "0" * 64},
        )
        assert forged.status_code == 403  # not a refusal of the file: the error page
        assert 'class="record-form"' not in forged.text


def test_a_lines_file_on_the_form(papers: Instance) -> None:
    url = papers.settings.database_url
    issue_token(url, "carla", ("clerk",), password=PASSWORD)
    issue_token(url, "vera", ("viewer",), password=PASSWORD)
    with signed_in(papers, "carla", PASSWORD) as web:
        csrf = csrf_of(web.get(f"{FORM}/new"))
        record, lines = _new_claim(web, csrf, "Trip to Lyon")
        form = web.get(f"{FORM}/{record}").text
        action = f"{FORM}/{record}/lines/{lines[1]}/_files/scan"
        link = f'href="{action}" data-file-link="lines-{lines[1]}-scan">'
        assert f'action="{action}"' in form
        assert 'aria-label="Upload a file to Scan, line 2"' in form
        sent = web.post(
            action,
            files={"file": ("ticket.pdf", PDF, "application/pdf")},
            data={"csrf_token": csrf},
            follow_redirects=False,
        )
        assert sent.status_code == 303, sent.text
        form = web.get(f"{FORM}/{record}").text
        assert link + "ticket.pdf</a>" in form
        got = web.get(action)
        assert got.content == PDF
        assert got.headers["content-disposition"].startswith("attachment;")
        refused = web.post(
            f"{FORM}/{record}/lines/{lines[0]}/_files/scan",
            files={"file": ("n.txt", b"plain text", "application/pdf")},
            data={"csrf_token": csrf},
        )
        assert refused.status_code == 415
        assert 'id="f-lines-0-scan-error"' in refused.text
        assert link + "ticket.pdf</a>" in refused.text  # the other line's file
        wrong = web.post(
            f"{FORM}/{record}/lines/{lines[0]}9/_files/scan",
            files={"file": ("t.pdf", PDF, "application/pdf")},
            data={"csrf_token": csrf},
        )
        assert wrong.status_code == 404
        cleared = web.post(f"{action}/clear", data={"csrf_token": csrf}, follow_redirects=False)
        assert cleared.status_code == 303
        assert web.get(action).status_code == 404
        web.post(action, files={"file": ("t.pdf", PDF)}, data={"csrf_token": csrf})
        # the form's Save keeps the lines' files
        page = web.get(f"{FORM}/{record}").text
        version = re.search(r'name="version" value="(\d+)"', page)
        assert version
        saved = web.post(
            f"{FORM}/{record}",
            data={
                "csrf_token": csrf,
                "version": version.group(1),
                "title": "Trip to Lyon and back",
                "lines[0].id": lines[0],
                "lines[0].what": "Taxi",
                "lines[0].amount": "12.50",
                "lines[1].id": lines[1],
                "lines[1].what": "Train",
                "lines[1].amount": "30",
            },
            follow_redirects=False,
        )
        assert saved.status_code == 303, saved.text
        assert web.get(action).content == PDF
    with signed_in(papers, "vera", PASSWORD) as viewer:
        form = viewer.get(f"{FORM}/{record}").text
        assert link + "t.pdf</a>" in form
        assert 'type="file"' not in form
        assert viewer.get(action).content == PDF
        refused = viewer.post(
            action,
            files={"file": ("t.pdf", PDF)},
            data={"csrf_token": csrf_of(viewer.get(f"{FORM}/{record}"))},
        )
        assert refused.status_code == 403
    with papers.client() as admin:
        assert admin.post(f"/api/v1/papers/claim/{record}/_submit").status_code == 200
    with signed_in(papers, "carla", PASSWORD) as web:
        form = web.get(f"{FORM}/{record}").text
        assert 'aria-label="Upload a file to Stamp, line 1"' in form  # allow_on_submit
        assert "Upload a file to Scan" not in form
        assert link + "t.pdf</a>" in form


def test_hostile_names_through_the_form_are_made_safe(papers: Instance) -> None:
    """A multipart part named with NUL, a control, bytes that are no UTF-8 (a lone
    surrogate's encoding), path separators: the file (a record's, a line's) keeps a safe
    name."""
    url = papers.settings.database_url
    issue_token(url, "carla", ("clerk",), password=PASSWORD)
    with signed_in(papers, "carla", PASSWORD) as web, papers.client() as api:
        csrf = csrf_of(web.get(f"{FORM}/new"))
        record, lines = _new_claim(web, csrf, "Names")
        names = {
            b"a\x00b\x01c.pdf": "abc.pdf",
            b"..\\..\\x\xed\xa0\x80.pdf": None,
            b"../../etc/passwd": "passwd",
        }
        for raw, expected in names.items():
            body = (
                b"--b\r\n"
                b'Content-Disposition: form-data; name="csrf_token"\r\n\r\n'
                + csrf.encode()
                + b"\r\n--b\r\n"
                b'Content-Disposition: form-data; name="file"; filename="' + raw + b'"\r\n'
                b"Content-Type: application/pdf\r\n\r\n" + PDF + b"\r\n--b--\r\n"
            )
            for path, held in (
                (f"{FORM}/{record}/_files/receipt", lambda r: r["receipt"]),
                (f"{FORM}/{record}/lines/{lines[0]}/_files/scan", lambda r: r["lines"][0]["scan"]),
            ):
                sent = web.post(
                    path,
                    content=body,
                    headers={"content-type": "multipart/form-data; boundary=b"},
                    follow_redirects=False,
                )
                assert sent.status_code == 303, (raw, path, sent.text)
                name = held(api.get(f"/api/v1/papers/claim/{record}").json()["data"])["name"]
                if expected is not None:
                    assert name == expected, (raw, name)
                assert not {"\x00", "\x01", "/", "\\"} & set(name), name
                assert name.encode("utf-8")  # no lone surrogate

        page = web.get(f"{FORM}/{record}")
        deleted = web.post(
            f"{FORM}/{record}/delete", data={"csrf_token": csrf_of(page)}, follow_redirects=False
        )
        assert deleted.status_code == 303, deleted.text
    assert not [p for p in (papers.path / "files").rglob("*") if p.is_file()]
