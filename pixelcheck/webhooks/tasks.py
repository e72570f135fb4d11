"""Celery tasks of the webhooks context: thin, ids in, idempotent."""

from __future__ import annotations

import logging

from celery import shared_task

from pixelcheck.errors import Unavailable
from pixelcheck.worker import DELIVER_WEBHOOK, DISPATCH_WEBHOOKS, worker_container

log = logging.getLogger("pixelcheck.webhooks.tasks")


@shared_task(name=DELIVER_WEBHOOK, acks_late=True, autoretry_for=(Unavailable, ConnectionError),
             retry_backoff=True, retry_backoff_max=30, retry_jitter=True, max_retries=8)
def deliver_webhook(delivery_id: str) -> str:
    """One attempt at a webhook delivery (a no-op when it is not due, in flight elsewhere or finished)."""
    return worker_container().webhook_sender.deliver(delivery_id)


@shared_task(name=DISPATCH_WEBHOOKS, acks_late=True)
def dispatch_webhooks() -> int:
    """Send the deliveries that are due and not in flight: retries whose task was lost, and attempts of killed
    workers once their lease has expired."""
    container = worker_container()
    ids = container.webhooks.due_delivery_ids()
    container.webhooks.dispatch(ids)
    if ids:
        log.info("dispatched %d due webhook deliveries", len(ids))
    return len(ids)
