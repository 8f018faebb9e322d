"""Delivering the outbox: e-mails and webhooks that rules queue in their write's
transaction, sent after commit by Celery workers or by the server itself."""

from __future__ import annotations

from typing import TYPE_CHECKING

from engine.outbox import Outbox
from runtime.delivery.deliverer import Deliverer, Outcome, Result
from runtime.delivery.dispatch import CeleryPublisher, Dispatcher, InProcessDispatcher
from runtime.delivery.errors import DeliveryError
from runtime.delivery.senders import Senders, sign, webhook_document

if TYPE_CHECKING:
    from collections.abc import Callable

    from engine import Database, EngineModel
    from runtime.settings import Settings

__all__ = [
    "Deliverer",
    "DeliveryError",
    "Dispatcher",
    "Outcome",
    "Result",
    "Senders",
    "make_deliverer",
    "make_dispatcher",
    "sign",
    "webhook_document",
]


def make_deliverer(
    settings: Settings, database: Database, models: Callable[[], EngineModel] | None = None
) -> Deliverer:
    senders = Senders.for_settings(settings)
    return Deliverer(database, Outbox(database.sa_dialect), senders, settings, models)


def make_dispatcher(
    settings: Settings, database: Database, models: Callable[[], EngineModel] | None = None
) -> Dispatcher:
    """Celery publishing when a broker is configured, in-process delivery otherwise;
    ``models`` gives the current definitions, for deferred actions."""
    if settings.broker_url:
        from runtime.delivery.celery_app import celery_app

        return CeleryPublisher(celery_app(settings))
    return InProcessDispatcher(
        make_deliverer(settings, database, models), sweep_seconds=settings.outbox.sweep_seconds
    )
