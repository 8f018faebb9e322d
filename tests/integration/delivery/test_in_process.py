"""Outbox delivery without a broker: the server's in-process dispatcher sends e-mails to a
real SMTP server and webhooks to a real HTTP receiver on loopback, with retries,
backoff, failure and retry through the API and the CLI; on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from runtime.delivery import sign
from tests.conftest import Instance, write_instance
from tests.integration.delivery.packs import write_sales_pack
from tests.support.cli import tessera
from tests.support.receivers import (
    Mailbox,
    WebhookReceiver,
    wait_until,
)

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

URL = "/api/v1/sales"
SECRET = "webhook-test-secret"


@pytest.fixture
def instance(db_url: str, tmp_path: Path, mailbox: Mailbox, hook: WebhookReceiver) -> Instance:
    packs = write_sales_pack(tmp_path / "packs", hook.url)
    instance = write_instance(
        tmp_path / "acme",
        db_url,
        ["sales"],
        [packs],
        reload_interval=0,
        webhook_secret=SECRET,
        smtp={"host": "127.0.0.1", "port": mailbox.port, "from": "crm@acme.test"},
        outbox={"backoff_seconds": 0.2, "sweep_seconds": 0.2, "max_attempts": 3},
    )
    instance.migrate()
    return instance


@pytest.fixture
def client(instance: Instance) -> Iterator[TestClient]:
    with instance.client() as client:
        yield client


def deal(client: TestClient, **values: Any) -> dict[str, Any]:
    body = {"name": "Fleet", "owner_email": "owner@acme.test", "amount": "1200.50", **values}
    response = client.post(f"{URL}/opportunity", json=body)
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()["data"]
    return record


def outbox(client: TestClient, **params: str) -> dict[str, Any]:
    response = client.get("/api/v1/_outbox", params=params)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_won_deal_creates_an_order_emails_the_owner_and_calls_the_webhook(
    client: TestClient, mailbox: Mailbox, hook: WebhookReceiver
) -> None:
    record = deal(client)
    won = client.patch(f"{URL}/opportunity/{record['id']}", json={"stage": "closed_won"})
    assert won.status_code == 200, won.text
    (order,) = client.get(f"{URL}/order").json()["data"]
    assert (order["opportunity"], order["amount"]) == (record["id"], "1200.50")

    (message,) = mailbox.wait_for(1)
    assert message["To"] == "owner@acme.test"
    assert message["From"] == "crm@acme.test"
    assert message["Subject"] == "Won: Fleet"
    assert message.get_content().strip() == (
        "Congratulations, Fleet was won for 1200.50 (stage closed_won)."
    )

    (call,) = hook.wait_for(1)
    document = call.json
    assert document["type"] == "sales.opportunity.won_creates_order"
    assert document["event"] == "update"
    assert (document["record_id"], document["data"]["stage"]) == (record["id"], "closed_won")
    assert document["data"]["amount"] == "1200.50"
    assert call.headers["idempotency-key"] == document["id"]
    expected = sign(SECRET, call.headers["x-tessera-timestamp"], call.body)
    assert call.headers["x-tessera-signature"] == expected
    assert message["Message-ID"] != f"<{document['id']}@tessera>"  # one key per event

    wait_until(lambda: outbox(client)["meta"]["counts"]["delivered"] == 2)
    events = outbox(client)["data"]
    assert {e["kind"] for e in events} == {"email", "webhook"}
    assert all(e["attempts"] == 1 and e["delivered_at"] for e in events)
    email_event = next(e for e in events if e["kind"] == "email")
    assert message["Message-ID"] == f"<{email_event['event_key']}@tessera>"


def test_a_custom_payload_is_sent_as_the_events_data(
    client: TestClient, hook: WebhookReceiver
) -> None:
    record = deal(client, name="Boats", amount="99.90")
    lost = client.patch(f"{URL}/opportunity/{record['id']}", json={"stage": "closed_lost"})
    assert lost.status_code == 200, lost.text
    (call,) = hook.wait_for(1)
    assert call.json["data"] == {"deal": "Boats", "amount": "99.90", "lost": True}


def test_a_failing_synchronous_action_rolls_back_and_queues_nothing(
    client: TestClient, mailbox: Mailbox, hook: WebhookReceiver
) -> None:
    record = deal(client, amount="0")
    won = client.patch(f"{URL}/opportunity/{record['id']}", json={"stage": "closed_won"})
    assert won.status_code == 422, won.text
    assert won.json()["errors"][0]["rule"] == "order_needs_an_amount"
    assert client.get(f"{URL}/opportunity/{record['id']}").json()["data"]["stage"] == "open"
    assert client.get(f"{URL}/order").json()["data"] == []
    assert outbox(client)["data"] == []
    time.sleep(0.6)  # three sweeps of the dispatcher
    assert (mailbox.messages, hook.calls) == ([], [])


def test_a_failed_attempt_is_retried_with_backoff_under_the_same_key(
    client: TestClient, hook: WebhookReceiver
) -> None:
    hook.status_for = lambda number: 500 if number < 3 else 200
    record = deal(client, owner_email=None)
    client.patch(f"{URL}/opportunity/{record['id']}", json={"stage": "closed_lost"})
    calls = hook.wait_for(3)
    assert len({c.headers["idempotency-key"] for c in calls}) == 1
    # backoff_seconds is 0.2: the second attempt waits 0.2 s, the third 0.4 s
    assert calls[1].at - calls[0].at >= 0.18
    assert calls[2].at - calls[1].at >= 0.36
    wait_until(lambda: outbox(client)["meta"]["counts"]["delivered"] == 1)
    (event,) = outbox(client, status="delivered")["data"]
    assert event["attempts"] == 3
    assert event["last_error"] is None


def test_an_event_out_of_attempts_is_failed_visible_and_can_be_retried(
    client: TestClient, hook: WebhookReceiver, instance: Instance
) -> None:
    hook.status_for = lambda _number: 503
    record = deal(client)
    client.patch(f"{URL}/opportunity/{record['id']}", json={"stage": "closed_lost"})
    wait_until(lambda: outbox(client)["meta"]["counts"]["failed"] == 1)
    (failed,) = outbox(client, status="failed")["data"]
    assert failed["attempts"] == 3
    assert "HTTP 503" in failed["last_error"]
    assert len(hook.calls) == 3

    listing = tessera("outbox", "list", "--status", "failed", cwd=instance.path)
    assert listing.returncode == 0, listing.stderr
    assert f"{failed['id']:>6}  failed" in listing.stdout
    assert "HTTP 503" in listing.stdout
    assert "1 failed" in listing.stdout

    hook.status_for = lambda _number: 200
    retried = client.post(f"/api/v1/_outbox/{failed['id']}/retry")
    assert retried.status_code == 202, retried.text
    wait_until(lambda: outbox(client)["meta"]["counts"]["delivered"] == 1)
    assert len({c.headers["idempotency-key"] for c in hook.calls}) == 1
    assert client.post(f"/api/v1/_outbox/{failed['id']}/retry").status_code == 409


def test_the_cli_retries_failed_events(
    client: TestClient, hook: WebhookReceiver, instance: Instance
) -> None:
    hook.status_for = lambda _number: 500
    record = deal(client)
    client.patch(f"{URL}/opportunity/{record['id']}", json={"stage": "closed_lost"})
    wait_until(lambda: outbox(client)["meta"]["counts"]["failed"] == 1)
    hook.status_for = lambda _number: 200
    retried = tessera("outbox", "retry", "--all-failed", cwd=instance.path)
    assert retried.returncode == 0, retried.stderr
    assert "1 event(s) queued again" in retried.stdout
    wait_until(lambda: outbox(client)["meta"]["counts"]["delivered"] == 1)
    again = tessera("outbox", "retry", "1", cwd=instance.path)
    assert again.returncode == 1
    assert "not a failed event" in again.stderr


def test_outbox_api_errors_are_problem_details(client: TestClient) -> None:
    for path, status in [
        ("/api/v1/_outbox?status=lost", 400),
        ("/api/v1/_outbox?limit=-1", 400),
        ("/api/v1/_outbox/999", 404),
        ("/api/v1/_outbox/abc", 400),
    ]:
        response = client.get(path)
        assert response.status_code == status, (path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert client.post("/api/v1/_outbox/999/retry").status_code == 404
