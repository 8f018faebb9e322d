"""Receivers every delivery test uses: a real SMTP server and a webhook receiver."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.support.receivers import Mailbox, WebhookReceiver, smtp_server, webhook_receiver

if TYPE_CHECKING:
    from collections.abc import Iterator


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    with smtp_server() as box:
        yield box


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    with webhook_receiver() as receiver:
        yield receiver
