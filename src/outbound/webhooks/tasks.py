"""The Tasks API task that makes one delivery attempt (its only argument: the row's id)."""

from __future__ import annotations

from django_tasks import task


@task()
def deliver(delivery_id: int) -> str:
    from outbound.webhooks.services import attempt_delivery

    return attempt_delivery(delivery_id)
