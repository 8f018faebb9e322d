"""Sending one outbox event to the outside world: e-mail through the instance's mail
transport (an SMTP server, or a folder of .eml files: ``runtime.delivery.mail``), webhooks
over HTTP.

Each event kind has its sender, registered with ``@sends(<kind>)`` (below for ``email`` and
``webhook``), the way ``engine.effects`` registers the handler of each action kind; an
event of a kind no sender is registered for fails its attempt, saying so.

Both carry the event's key, which stays the same on every attempt: as the e-mail's
``Message-ID`` and as the webhook's ``Idempotency-Key``, so a receiver can drop a repeat
of an event delivered twice (a deliverer that died after sending, before recording it).

Webhook bodies are signed: ``X-Tessera-Signature: sha256=<hex>`` is the HMAC-SHA256, keyed
with the instance's ``webhook_secret`` (or ``secret_key``), of ``<timestamp>.<body>``, and
``X-Tessera-Timestamp`` gives the timestamp, so a receiver can also refuse old replays.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import time
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import orjson

from metadata import EmailAction, WebhookAction
from runtime.delivery.errors import DeliveryError
from runtime.delivery.mail import EVENT_HEADER, email_message, mail_transport

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from engine.outbox import OutboxEvent
    from runtime.settings import MailSettings, Settings, SmtpSettings

SIGNATURE_HEADER = "X-Tessera-Signature"
TIMESTAMP_HEADER = "X-Tessera-Timestamp"
SenderT = TypeVar("SenderT", bound="Callable[[Senders, OutboxEvent], Awaitable[None]]")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def webhook_document(event: OutboxEvent) -> dict[str, Any]:
    """The JSON a webhook receives."""
    return {
        "id": event.event_key,
        "type": f"{event.entity}.{event.rule}",
        "entity": event.entity,
        "record_id": event.record_id,
        "rule": event.rule,
        "event": event.payload.get("event"),
        "occurred_at": dt.datetime.fromtimestamp(event.created_at, dt.UTC).isoformat(),
        "data": event.payload.get("data"),
    }


_SENDERS: dict[str, Callable[[Senders, OutboxEvent], Awaitable[None]]] = {}


def sends(kind: str) -> Callable[[SenderT], SenderT]:
    """Register the decorated coroutine function ``(senders, event)`` as the sender of the
    outbox events of ``kind`` (an action kind's, queued by its handler in
    ``engine.effects``); a kind registered again replaces the previous sender."""

    def register(sender: SenderT) -> SenderT:
        _SENDERS[kind] = sender
        return sender

    return register


class Senders:
    """Sends events with the sender registered for their kind (``sends``); one per
    deliverer, holding the mail transport (``mail:``, ``smtp:``), the signing key and the
    HTTP connection pool."""

    def __init__(
        self,
        smtp: SmtpSettings,
        signing_key: str | None,
        *,
        timeout: float,
        mail: MailSettings | None = None,
    ) -> None:
        from runtime.settings import MailSettings

        self.smtp = smtp
        self.mail = mail_transport(smtp, mail or MailSettings())
        self.signing_key = signing_key
        self._http = httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self.attachments: Callable[[OutboxEvent], Awaitable[list[tuple[str, bytes]]]] | None = None
        """Prints an e-mail's ``attach`` PDFs (``runtime.printing.AttachmentPrinter``); set
        by a deliverer that has the definitions."""

    @classmethod
    def for_settings(cls, settings: Settings) -> Senders:
        return cls(
            settings.smtp,
            settings.signing_key,
            timeout=settings.outbox.timeout_seconds,
            mail=settings.mail,
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def send(self, event: OutboxEvent) -> None:
        """Send ``event`` with the sender registered for its kind."""
        sender = _SENDERS.get(event.kind)
        if sender is None:
            raise DeliveryError(f"unknown event kind '{event.kind}'")
        await sender(self, event)

    async def post_webhook(self, event: OutboxEvent) -> None:
        body = orjson.dumps(webhook_document(event))
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Tessera-Webhook/1",
            "Idempotency-Key": event.event_key,
            EVENT_HEADER: event.event_key,
            TIMESTAMP_HEADER: timestamp,
        }
        if self.signing_key:
            headers[SIGNATURE_HEADER] = sign(self.signing_key, timestamp, body)
        url = str(event.payload.get("url"))
        try:
            response = await self._http.post(url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"POST {url}: {type(exc).__name__}: {exc}") from None
        if not 200 <= response.status_code < 300:
            raise DeliveryError(f"POST {url}: HTTP {response.status_code} {response.text[:200]}")

    def send_email(self, event: OutboxEvent, files: list[tuple[str, bytes]] | None = None) -> None:
        self.mail.send(email_message(event, self.smtp.sender, files), event=event)


@sends(EmailAction.kind)
async def _email(senders: Senders, event: OutboxEvent) -> None:
    files: list[tuple[str, bytes]] = []
    if event.payload.get("attach"):
        if senders.attachments is None:
            raise DeliveryError("this deliverer has no definitions to print the attachments")
        try:
            files = await senders.attachments(event)
        except Exception as exc:  # a record gone, a print format that fails: retried, kept
            raise DeliveryError(f"printing the attachment failed: {exc}") from exc
    await asyncio.to_thread(senders.send_email, event, files)


@sends(WebhookAction.kind)
async def _webhook(senders: Senders, event: OutboxEvent) -> None:
    await senders.post_webhook(event)
