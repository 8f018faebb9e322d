"""``mail: {transport: folder, path: …}``: the outbox delivers each e-mail as an ``.eml``
file in the folder (no SMTP server), on SQLite and PostgreSQL. The files parse as e-mail
with the rule's To and Subject; a subject or recipient carrying header lines injects
nothing; file names are generated (a record cannot choose where a file goes); a bad
``mail:`` setting is refused when the settings load."""

from __future__ import annotations

import re
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

import pytest

from metadata import DefinitionError
from runtime.settings import Settings
from tests.conftest import Instance, write_instance
from tests.support.receivers import wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

URL = "/api/v1/mailer/note"
NAME = re.compile(r"\d{8}-\d{6}-[0-9a-f]{16}\.eml")
FILES = {
    "module.yaml": "name: mailer\nversion: 1.0.0\n",
    "entities/note.yaml": """\
fields:
  recipient: {type: string, max_length: 500}
  subject:   {type: string, max_length: 500}
  body:      {type: text}
""",
    "rules/note.yaml": """\
- name: note_is_mailed
  on: create
  actions:
    - email: {to: "{{ recipient }}", subject: "{{ subject }}", body: "{{ body }}"}
""",
}


def write_pack(root: Path) -> Path:
    for relative, text in FILES.items():
        path = root / "mailer" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def instance(db_url: str, tmp_path: Path) -> Instance:
    instance = write_instance(
        tmp_path / "acme",
        db_url,
        ["mailer"],
        [write_pack(tmp_path / "packs")],
        reload_interval=0,
        smtp={"from": "Acme CRM <crm@acme.test>"},
        mail={"transport": "folder", "path": "mail"},
        outbox={"backoff_seconds": 0.1, "sweep_seconds": 0.1, "max_attempts": 2},
    )
    instance.migrate()
    return instance


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    with instance.client() as client:
        yield client


def note(client: TestClient, **values: Any) -> dict[str, Any]:
    response = client.post(URL, json=values)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()["data"]
    return record


def events(client: TestClient) -> list[dict[str, Any]]:
    response = client.get("/api/v1/_outbox")
    assert response.status_code == 200, response.text
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def settled(client: TestClient, count: int) -> list[dict[str, Any]]:
    """The outbox once ``count`` events are delivered or failed for good."""
    wait_until(
        lambda: len([e for e in events(client) if e["status"] in ("delivered", "failed")]) == count,
        timeout=30,
    )
    return events(client)


def read(path: Path) -> EmailMessage:
    message = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_the_outbox_writes_each_email_as_an_eml_file(
    instance: Instance, client: TestClient
) -> None:
    folder = instance.path / "mail"
    note(client, recipient="Ana <ana@shop.test>, bo@shop.test", subject="Your order", body="Hi Ana")
    (event,) = settled(client, 1)
    assert event["status"] == "delivered", event
    (path,) = folder.iterdir()
    assert NAME.fullmatch(path.name), path.name
    message = read(path)
    assert message["To"] == "Ana <ana@shop.test>, bo@shop.test"
    assert message["Subject"] == "Your order"
    assert message["From"] == "Acme CRM <crm@acme.test>"
    assert message["Message-ID"] == f"<{event['event_key']}@tessera>"
    assert message["Date"] is not None
    assert message.get_content().strip() == "Hi Ana"
    # a second e-mail is a second file, non-ASCII text kept
    note(client, recipient="zoe@shop.test", subject="Grüße, Zoë", body="Ça va ? 😀")
    assert all(e["status"] == "delivered" for e in settled(client, 2))
    texts = {read(p)["Subject"]: read(p).get_content().strip() for p in folder.iterdir()}
    assert texts == {"Your order": "Hi Ana", "Grüße, Zoë": "Ça va ? 😀"}
    assert not [p for p in folder.iterdir() if not NAME.fullmatch(p.name)]  # no temporary left


def test_header_injection_and_paths_from_records_do_nothing(
    instance: Instance, client: TestClient
) -> None:
    folder = instance.path / "mail"
    # a subject carrying a header line: folded into the subject, no Bcc header
    note(client, recipient="ana@shop.test", subject="Hi\r\nBcc: evil@attacker.test\n\nbody")
    # a recipient carrying one: no file, the attempt fails saying why
    note(client, recipient="ana@shop.test\r\nBcc: evil@attacker.test", subject="x")
    note(client, recipient="ana@shop.test\nSubject: forged", subject="y")
    # names that look like paths: the file is named by the event, in the folder
    note(client, recipient="ana@shop.test", subject="../../../../tmp/owned.eml")
    outbox = settled(client, 4)
    failed = [e for e in outbox if e["status"] == "failed"]
    assert len(failed) == 2, outbox
    assert all("not an e-mail address" in (e["last_error"] or "") for e in failed), failed
    paths = sorted(folder.iterdir())
    assert len(paths) == 2
    assert all(NAME.fullmatch(p.name) for p in paths)
    messages = [read(p) for p in paths]
    subjects = sorted(str(m["Subject"]) for m in messages)
    assert subjects == ["../../../../tmp/owned.eml", "Hi Bcc: evil@attacker.test body"]
    for message in messages:
        assert message["Bcc"] is None
        assert message["To"] == "ana@shop.test"
        assert len(message.get_all("Subject") or []) == 1
    assert not any(instance.path.parent.rglob("owned.eml"))


def test_a_display_name_cannot_redirect_the_email(instance: Instance, client: TestClient) -> None:
    """A recipient's quoted display name holding ``:`` or ``;`` (address-list syntax) is
    written quoted: the e-mail goes to the address in the angle brackets, never to an
    address in the name, and none is lost or fails the delivery."""
    folder = instance.path / "mail"
    note(client, recipient='"evil@attacker.test:" <ana@shop.test>', subject="group")
    note(client, recipient='"Doe; John" <jo@shop.test>', subject="semicolon")
    note(client, recipient='"a: evil@attacker.test;" <bo@shop.test>', subject="both")
    outbox = settled(client, 3)
    assert all(e["status"] == "delivered" for e in outbox), outbox
    sent = {}
    for path in folder.iterdir():
        message = read(path)
        sent[str(message["Subject"])] = [
            (a.display_name, a.addr_spec) for a in message["To"].addresses
        ]
    assert sent == {
        "group": [("evil@attacker.test:", "ana@shop.test")],
        "semicolon": [("Doe; John", "jo@shop.test")],
        "both": [("a: evil@attacker.test;", "bo@shop.test")],
    }


def test_unicode_line_breaks_in_a_subject_are_folded_too(
    instance: Instance, client: TestClient
) -> None:
    """U+2028, U+2029 and NEL end a line for Python's e-mail package as CR and LF do: in a
    subject they are folded to spaces (the e-mail was refused with a ValueError and failed
    for good); in a recipient they make no address."""
    folder = instance.path / "mail"
    for separator in ("\u2028", "\u2029", "\x85"):
        note(client, recipient="ana@shop.test", subject=f"Hi{separator}Bcc: evil@attacker.test")
    note(client, recipient="ana@shop.test\u2028Bcc: evil@attacker.test", subject="x")
    outbox = settled(client, 4)
    failed = [e for e in outbox if e["status"] == "failed"]
    assert len(failed) == 1, outbox
    assert "not an e-mail address" in (failed[0]["last_error"] or ""), failed
    messages = [read(path) for path in folder.iterdir()]
    assert [str(m["Subject"]) for m in messages] == ["Hi Bcc: evil@attacker.test"] * 3
    assert all(m["Bcc"] is None for m in messages)


def test_a_redelivered_event_is_one_file(instance: Instance, client: TestClient) -> None:
    import asyncio

    from engine import open_database
    from engine.outbox import Outbox
    from runtime.delivery import Senders

    note(client, recipient="ana@shop.test", subject="Once")
    (event,) = settled(client, 1)
    folder = instance.path / "mail"
    (first,) = folder.iterdir()

    async def send_again() -> None:
        database = await open_database(instance.settings.database_url, pool_size=1)
        try:
            outbox = Outbox(database.sa_dialect)
            async with database.connection() as conn:
                stored = await outbox.get(conn, int(event["id"]))
        finally:
            await database.close()
        assert stored is not None
        senders = Senders.for_settings(instance.settings)
        try:
            senders.send_email(stored)
        finally:
            await senders.close()

    asyncio.run(send_again())
    (again,) = folder.iterdir()
    assert again.name == first.name
    assert read(again)["Subject"] == "Once"


@pytest.mark.parametrize(
    ("mail", "message"),
    [
        ({"transport": "pigeon"}, "unknown transport 'pigeon' (known: folder, smtp)"),
        ({"transport": "folder"}, "transport 'folder' needs a 'path'"),
        ({"transport": "folder", "path": "  "}, "transport 'folder' needs a 'path'"),
        ({"transport": "smtp", "path": "mail"}, "'path' is for transport 'folder'"),
        ({"transport": "folder", "path": "a\x00b"}, "a NUL character is not allowed"),
        ({"transport": "folder", "dir": "mail"}, "unknown key(s): dir; known: transport, path"),
        ("folder", "expected a mapping"),
    ],
)
def test_a_bad_mail_setting_is_refused(tmp_path: Path, mail: Any, message: str) -> None:
    import yaml

    config = tmp_path / "tessera.yaml"
    config.write_text(yaml.safe_dump({"database_url": "sqlite://", "mail": mail}), "utf-8")
    with pytest.raises(DefinitionError) as raised:
        Settings.load(config)
    assert message in str(raised.value)


def test_the_folder_is_relative_to_the_instance(tmp_path: Path) -> None:
    config = tmp_path / "tessera.yaml"
    config.write_text("mail: {transport: folder, path: out/mail}\n", "utf-8")
    settings = Settings.load(config)
    assert settings.mail.path == (tmp_path / "out" / "mail").resolve()
    assert Settings.load(tmp_path / "absent.yaml").mail.transport == "smtp"
