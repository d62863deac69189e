"""The Tasks API task that makes one delivery attempt (its only argument: the row's id)."""

from __future__ import annotations

from collections.abc import Sequence

from django_tasks import task
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.models import DBTaskResult, get_date_max


@task()
def deliver(delivery_id: int) -> str:
    from outbound.webhooks.services import attempt_delivery

    return attempt_delivery(delivery_id)


def enqueue_deliveries(ids: Sequence[int]) -> None:
    """One :func:`deliver` task per delivery row, due now. With the database backend a
    batch's tasks are one INSERT (what ``enqueue`` would write for each, as one statement);
    any other backend enqueues them one by one."""
    backend = deliver.get_backend()
    if not isinstance(backend, DatabaseBackend) or len(ids) < 2:
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
