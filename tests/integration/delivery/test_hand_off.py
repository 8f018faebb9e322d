"""The after-commit hand-off: a committed write hands the outbox events it queued straight to
the dispatcher, through the REST API and through the web UI alike (``runtime.plumbing``'s
``DatabaseHolder.write``). The dispatcher's sweep is set to an hour, so an event that
arrives within seconds was handed off, not found by a sweep. On SQLite and PostgreSQL."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import Instance, write_instance
from tests.integration.delivery.packs import write_sales_pack
from tests.support.identity import issue_token
from tests.support.receivers import wait_until
from tests.support.web import csrf_of, signed_in

if TYPE_CHECKING:
    from pathlib import Path

    from tests.support.receivers import WebhookReceiver

URL = "/api/v1/sales/opportunity"
PASSWORD = "correct horse battery"
SOON = 5.0
"""Far less than the sweep: only a hand-off delivers this fast."""


@pytest.fixture
def instance(db_url: str, tmp_path: Path, hook: WebhookReceiver) -> Instance:
    packs = write_sales_pack(tmp_path / "packs", hook.url)
    instance = write_instance(
        tmp_path / "acme",
        db_url,
        ["sales"],
        [packs],
        reload_interval=0,
        outbox={"backoff_seconds": 0.2, "sweep_seconds": 3600, "max_attempts": 3},
    )
    instance.migrate()
    issue_token(instance.settings.database_url, "ada", ("admin",), password=PASSWORD)
    return instance


def test_an_api_write_hands_its_events_over_when_it_commits(
    instance: Instance, hook: WebhookReceiver
) -> None:
    with instance.client() as client:
        made = client.post(URL, json={"name": "Boats", "amount": "99.90"})
        assert made.status_code == 201, made.text
        record_id = made.json()["data"]["id"]
        lost = client.patch(f"{URL}/{record_id}", json={"stage": "closed_lost"})
        assert lost.status_code == 200, lost.text
        (call,) = hook.wait_for(1, timeout=SOON)
        assert call.json["data"] == {"deal": "Boats", "amount": "99.90", "lost": True}


def test_web_saves_and_moves_hand_their_events_over_when_they_commit(
    instance: Instance, hook: WebhookReceiver
) -> None:
    with signed_in(instance, "ada", PASSWORD) as browser:
        token = csrf_of(browser.get("/app/sales/opportunity/new"))
        made = browser.post(
            "/app/sales/opportunity/new",
            data={"csrf_token": token, "name": "Fleet", "amount": "250000", "stage": "open"},
            follow_redirects=False,
        )
        assert made.status_code == 303, made.text
        record_id = made.headers["location"].split("/")[-1].split("?")[0]
        with instance.client() as api:  # the async rule's update, run by the dispatcher

            def vip() -> bool:
                record = api.get(f"{URL}/{record_id}").json()["data"]
                return bool(record["owner_email"] == "vip@acme.test")

            wait_until(vip, timeout=SOON)
            version = str(api.get(f"{URL}/{record_id}").json()["data"]["version"])
        moved = browser.post(
            f"/app/sales/opportunity/{record_id}/move",
            data={"csrf_token": token, "field": "stage", "to": "closed_lost", "version": version},
            headers={"accept": "application/json"},
        )
        assert moved.status_code == 200, moved.text
        (call,) = hook.wait_for(1, timeout=SOON)
        assert call.json["data"] == {"deal": "Fleet", "amount": "250000.00", "lost": True}
