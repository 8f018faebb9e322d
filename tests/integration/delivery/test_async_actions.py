"""``async: true`` create and update actions: queued in the write's transaction, applied
after commit by the deliverer exactly once, their own rules running in turn; a failing
one leaves the write committed and the event failed and visible; on SQLite and
PostgreSQL."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import Instance, write_instance
from tests.support.receivers import WebhookReceiver, wait_until

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from fastapi.testclient import TestClient

FILES = {
    "module.yaml": "name: ops\nversion: 1.0.0\n",
    "entities/ticket.yaml": """\
title: subject
fields:
  subject:     {type: string, required: true}
  priority:    {type: enum, values: [low, high], default: low}
  escalations: {type: integer, default: 0}
""",
    "entities/escalation.yaml": """\
fields:
  ticket: {type: reference, to: ticket, required: true}
  note:   {type: string, required: true}
  level:  {type: integer, min: 1, max: 3}
""",
    "rules/ticket.yaml": """\
- name: no_swearing
  assert: "subject != 'darn'"
  message: Keep it polite
- name: escalate_high
  when: "changed('priority') and priority == 'high'"
  actions:
    - create:
        entity: escalation
        values: {ticket: "{{ id }}", note: "High: {{ subject }}", level: 1}
      async: true
    - update: {values: {escalations: "{{ escalations + 1 }}"}}
      async: true
- name: broken_escalation
  on: update
  when: "changed('subject') and subject == 'break'"
  actions:
    - create: {entity: escalation, values: {ticket: "{{ id }}", note: "x", level: 9}}
      async: true
""",
    "rules/escalation.yaml": """\
- name: page_someone
  on: create
  actions:
    - webhook: {url: "WEBHOOK_URL", payload: {note: "{{ note }}"}}
""",
}
URL = "/api/v1/ops"


@pytest.fixture
def client(db_url: str, tmp_path: Path, hook: WebhookReceiver) -> Iterator[TestClient]:
    pack = tmp_path / "packs" / "ops"
    for relative, text in FILES.items():
        (pack / relative).parent.mkdir(parents=True, exist_ok=True)
        (pack / relative).write_text(text.replace("WEBHOOK_URL", hook.url))
    instance: Instance = write_instance(
        tmp_path / "desk",
        db_url,
        ["ops"],
        [tmp_path / "packs"],
        reload_interval=0,
        outbox={"backoff_seconds": 0.1, "sweep_seconds": 0.2, "max_attempts": 2},
    )
    instance.migrate()
    with instance.client() as client:
        yield client


def outbox(client: TestClient, **params: str) -> dict[str, Any]:
    body: dict[str, Any] = client.get("/api/v1/_outbox", params=params).json()
    return body


def test_async_actions_run_after_commit_and_cascade(
    client: TestClient, hook: WebhookReceiver
) -> None:
    created = client.post(f"{URL}/ticket", json={"subject": "Printer on fire", "priority": "high"})
    assert created.status_code == 201, created.text
    ticket = created.json()["data"]
    assert ticket["escalations"] == 0  # not applied inside the write
    (call,) = hook.wait_for(1)  # the escalation's own rule ran when it was created
    assert call.json["data"] == {"note": "High: Printer on fire"}
    wait_until(lambda: outbox(client)["meta"]["counts"]["delivered"] == 3)
    (escalation,) = client.get(f"{URL}/escalation").json()["data"]
    assert (escalation["ticket"], escalation["note"]) == (ticket["id"], "High: Printer on fire")
    stored = client.get(f"{URL}/ticket/{ticket['id']}").json()["data"]
    assert stored["escalations"] == 1
    kinds = sorted(e["kind"] for e in outbox(client)["data"])
    assert kinds == ["action", "action", "webhook"]


def test_a_rejected_write_queues_no_async_action(client: TestClient) -> None:
    refused = client.post(f"{URL}/ticket", json={"subject": "darn", "priority": "high"})
    assert refused.status_code == 422
    time.sleep(0.5)
    assert outbox(client)["data"] == []
    assert client.get(f"{URL}/escalation").json()["data"] == []


def test_a_failing_async_action_leaves_the_write_and_a_failed_event(client: TestClient) -> None:
    ticket = client.post(f"{URL}/ticket", json={"subject": "Quiet"}).json()["data"]
    broke = client.patch(f"{URL}/ticket/{ticket['id']}", json={"subject": "break"})
    assert broke.status_code == 200, broke.text
    wait_until(lambda: outbox(client)["meta"]["counts"]["failed"] == 1)
    (failed,) = outbox(client, status="failed")["data"]
    assert failed["kind"] == "action"
    assert failed["attempts"] == 2
    assert "level: " in failed["last_error"]
    assert client.get(f"{URL}/escalation").json()["data"] == []
    assert client.get(f"{URL}/ticket/{ticket['id']}").json()["data"]["subject"] == "break"


def test_an_async_action_is_applied_once_however_often_it_is_delivered(
    client: TestClient,
) -> None:
    client.post(f"{URL}/ticket", json={"subject": "Once", "priority": "high"})
    wait_until(lambda: outbox(client)["meta"]["counts"]["delivered"] == 3)
    holder = client.app.state.database  # type: ignore[attr-defined]
    deliverer = holder.dispatcher.deliverer
    ids = [int(e["id"]) for e in outbox(client)["data"]]

    async def deliver_again() -> list[str]:
        return [(await deliverer.deliver(i)).outcome.value for i in ids]

    outcomes = client.portal.call(deliver_again)  # type: ignore[attr-defined]
    assert outcomes == ["skipped", "skipped", "skipped"]
    assert len(client.get(f"{URL}/escalation").json()["data"]) == 1
