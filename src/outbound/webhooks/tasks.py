"""The Tasks API task that makes one delivery attempt (its only argument: the row's id)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone
from django_tasks import TaskResultStatus, task
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult, get_date_max


@task()
def deliver(delivery_id: int) -> str:
    from outbound.webhooks.services import attempt_delivery

    return attempt_delivery(delivery_id)


def _in_database() -> bool:
    return isinstance(deliver.get_backend(), DatabaseBackend)


def enqueue_delivery(pk: int, *, run_after: datetime) -> None:
    """The task of one later attempt. The database backend writes it in the caller's
    transaction (row and task: both or neither); another backend is told once the row is
    committed (its worker could not see an uncommitted row)."""
    if _in_database():
        deliver.using(run_after=run_after).enqueue(pk)
    else:
        transaction.on_commit(lambda: deliver.using(run_after=run_after).enqueue(pk))


def enqueue_deliveries(ids: Sequence[int]) -> None:
    """One :func:`deliver` task per delivery row, due now. With the database backend a
    batch's tasks are one INSERT (what ``enqueue`` would write for each, as one statement),
    in the caller's transaction; any other backend gets them one by one once the rows are
    committed."""
    backend = deliver.get_backend()
    if not isinstance(backend, DatabaseBackend):
        ids = list(ids)
        transaction.on_commit(lambda: [deliver.enqueue(pk) for pk in ids])
        return
    if len(ids) < 2:
        for pk in ids:
            deliver.enqueue(pk)
        return
    backend.validate_task(deliver)
    DBTaskResult.objects.bulk_create(
        [
            DBTaskResult(
                args_kwargs={"args": [pk], "kwargs": {}},
                priority=deliver.priority,
                task_path=deliver.module_path,
                queue_name=deliver.queue_name,
                run_after=get_date_max(),  # "now" to the backend (its pre_save would set it)
                backend_name=backend.alias,
            )
            for pk in ids
        ]
    )


def requeue_lost(overdue: float, *, limit: int = 500) -> int:
    """Pending deliveries more than ``overdue`` seconds past due with no task ready or
    running (their task failed, or was never written): a task for each, due now. Answers
    how many (at most ``limit`` a call)."""
    from outbound.webhooks.models import DeliveryStatus, WebhookDelivery

    cutoff = timezone.now() - timedelta(seconds=overdue)
    late = list(
        WebhookDelivery.objects.filter(
            status=DeliveryStatus.PENDING, next_attempt_at__lt=cutoff
        ).values_list("pk", flat=True)[:limit]
    )
    if not late:
        return 0
    alive = DBTaskResult.objects.filter(
        task_path=deliver.module_path,
        status__in=[TaskResultStatus.READY, TaskResultStatus.RUNNING],
        args_kwargs__args__0__in=late,
    )
    covered: set[int] = set()
    for args in alive.values_list("args_kwargs", flat=True):
        found = (args or {}).get("args") or []
        if found and isinstance(found[0], int):
            covered.add(found[0])
    lost = [pk for pk in late if pk not in covered]
    if lost:
        with transaction.atomic():
            enqueue_deliveries(lost)
    return len(lost)
