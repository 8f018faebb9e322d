"""How an e-mail event becomes a message, and the transports that carry it away.

The message is built once (``email_message``) whatever the transport, so that what an SMTP
server receives and what the ``folder`` transport writes are the same bytes. Each transport
registers itself under the name ``mail: {transport: …}`` gives it (``@transport``), as the
senders do by event kind: a new way to send mail is one class here, found by its name.

- ``smtp`` (the default): the ``smtp:`` settings' server.
- ``folder``: each message as an ``.eml`` file in a folder, for a demo or a development
  instance without a mail server (Django's file-based e-mail backend). Any mail client
  opens the files; nothing leaves the machine.

Header values come from records (a subject template over a customer's name, a recipient
taken from a contact), so they are untrusted: line breaks and other control characters in a
subject are folded to spaces, and a recipient that is not exactly one plain address is a
failed attempt (never a ``Bcc:`` smuggled into the headers). File names are generated from
the event, never from its contents, so no message can choose where it is written.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import smtplib
import tempfile
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import getaddresses
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from runtime.delivery.errors import DeliveryError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from engine.outbox import OutboxEvent
    from runtime.settings import MailSettings, SmtpSettings

EVENT_HEADER = "X-Tessera-Event"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")
"""Control characters, and every character that ends a line for ``str.splitlines`` (which
the e-mail package refuses in a header): NEL (U+0085) and U+2028, U+2029 besides CR, LF."""
_ADDRESS = re.compile(r"[^\s<>()\[\]\\,;:\"@]+@[^\s<>()\[\]\\,;:\"@]+")


class MailTransport(Protocol):
    """Carries a built message away; raises ``DeliveryError`` when it could not."""

    def send(self, message: EmailMessage, *, event: OutboxEvent) -> None: ...


_TRANSPORTS: dict[str, Callable[[SmtpSettings, MailSettings], MailTransport]] = {}


def transport(name: str) -> Callable[[type[Any]], type[Any]]:
    """Register the decorated class, built with ``(smtp, mail)`` settings, as the transport
    that ``mail: {transport: <name>}`` selects."""

    def register(cls: type[Any]) -> type[Any]:
        _TRANSPORTS[name] = cls
        cls.name = name
        return cls

    return register


def transport_names() -> list[str]:
    return sorted(_TRANSPORTS)


def mail_transport(smtp: SmtpSettings, mail: MailSettings) -> MailTransport:
    """The transport the instance's settings select (checked when the settings load)."""
    return _TRANSPORTS[mail.transport](smtp, mail)


def _text(value: Any) -> str:
    """Text a message can carry: lone surrogates (from a file read with errors kept) become
    ``?`` instead of failing the encoding at the last moment."""
    return str(value).encode("utf-8", "replace").decode("utf-8")


def _header(value: Any) -> str:
    return _CONTROL.sub(" ", _text(value)).strip()


def _recipients(values: Iterable[Any]) -> str:
    """The addresses as one header value; each must be one plain address. A display name
    is written quoted where it needs to be (``Address``): unquoted, a name holding ``:``
    or ``;`` (``"evil@x.test:" <ana@shop.test>``) would read as a group and send the
    e-mail to an address of the name instead."""
    out = []
    for value in values:
        text = _text(value)
        parsed = getaddresses([text])
        if _CONTROL.search(text) or len(parsed) != 1 or not _ADDRESS.fullmatch(parsed[0][1]):
            raise DeliveryError(f"not an e-mail address: {text[:200]!r}")
        name, address = parsed[0]
        try:
            out.append(str(Address(display_name=_header(name), addr_spec=address)))
        except (ValueError, IndexError):
            raise DeliveryError(f"not an e-mail address: {text[:200]!r}") from None
    return ", ".join(out)


def email_message(
    event: OutboxEvent, sender: str, files: list[tuple[str, bytes]] | None = None
) -> EmailMessage:
    """The message of an e-mail event, with its PDF attachments."""
    payload = event.payload
    message = EmailMessage()
    message["From"] = sender
    message["To"] = _recipients(payload.get("to") or ())
    if payload.get("cc"):
        message["Cc"] = _recipients(payload["cc"])
    message["Subject"] = _header(payload.get("subject") or f"{event.entity}: {event.rule}")
    message["Message-ID"] = f"<{event.event_key}@tessera>"
    message["Date"] = dt.datetime.fromtimestamp(event.created_at, dt.UTC)
    message[EVENT_HEADER] = event.event_key
    message.set_content(_text(payload.get("body") or ""))
    for filename, content in files or ():
        message.add_attachment(content, maintype="application", subtype="pdf", filename=filename)
    return message


@transport("smtp")
class SmtpTransport:
    name: ClassVar[str]

    def __init__(self, smtp: SmtpSettings, mail: MailSettings) -> None:
        self.settings = smtp

    def send(self, message: EmailMessage, *, event: OutboxEvent) -> None:
        settings = self.settings
        client_class = smtplib.SMTP_SSL if settings.ssl else smtplib.SMTP
        try:
            with client_class(settings.host, settings.port, timeout=settings.timeout) as client:
                if settings.starttls:
                    client.starttls()
                if settings.username:
                    client.login(settings.username, settings.password or "")
                client.send_message(message)
        except (OSError, smtplib.SMTPException) as exc:
            where = f"{settings.host}:{settings.port}"
            raise DeliveryError(f"SMTP {where}: {type(exc).__name__}: {exc}") from None


@transport("folder")
class FolderTransport:
    """Writes ``<folder>/<UTC time of the event>-<hash of its key>.eml``. The name is the
    same on every attempt, so an event delivered twice (at least once) is one file, written
    whole (a temporary file renamed), never a half-written one."""

    name: ClassVar[str]

    def __init__(self, smtp: SmtpSettings, mail: MailSettings) -> None:
        assert mail.path is not None  # checked when the settings load
        self.folder = mail.path

    def file_name(self, event: OutboxEvent) -> str:
        moment = dt.datetime.fromtimestamp(event.created_at, dt.UTC).strftime("%Y%m%d-%H%M%S")
        digest = hashlib.sha256(event.event_key.encode("utf-8", "replace")).hexdigest()
        return f"{moment}-{digest[:16]}.eml"

    def send(self, message: EmailMessage, *, event: OutboxEvent) -> None:
        target = self.folder / self.file_name(event)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".", suffix=".tmp")
            try:
                with os.fdopen(handle, "wb") as out:
                    out.write(bytes(message))
                Path(temporary).replace(target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise DeliveryError(f"mail folder {self.folder}: {type(exc).__name__}: {exc}") from None
