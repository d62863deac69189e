"""The Tasks API's due tasks (webhook deliveries), run by every ``outbound worker`` in a thread
of its own with django_tasks_db's own worker loop, so no other process needs to run.

Like the sender it rides out database outages (logged once per outage, retried with
backoff). A task left ``RUNNING`` by a worker that died (or lost the database while
recording it) is made ready again after :data:`STALE_AFTER` seconds, and a webhook delivery
still pending that long past due without a task gets a new one: at least once. Another
Tasks backend (``OUTBOUND_TASKS_BACKEND``) brings its own workers; then this thread does not
start.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.db import close_old_connections
from django.utils import timezone
from django_tasks import DEFAULT_TASK_BACKEND_ALIAS, TaskResultStatus, task_backends
from django_tasks_db.backend import DatabaseBackend
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from outbound.mail.sender import WORKER_ID, until_database_answers

logger = logging.getLogger("outbound.worker")

STALE_AFTER = 300.0  # seconds a task may run before it is presumed dead and run again
SWEEP_EVERY = 30.0  # seconds between looks for such tasks


class TaskRunner:
    """``start()`` a daemon thread that runs due tasks every ``interval`` seconds until
    ``stop()``; with ``once``, one pass over what is due, then it ends."""

    def __init__(self, *, interval: float = 0.5, once: bool = False) -> None:
        self.interval = interval
        self.once = once
        self.ran = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._swept = 0.0
        self._worker = Worker(
            queue_names=["*"],
            interval=0,
            batch=True,  # each run() goes through what is due, then returns
            backend_name=DEFAULT_TASK_BACKEND_ALIAS,
            startup_delay=False,
            max_tasks=None,
            worker_id=WORKER_ID[:64],
            excluded_queue_names=[],
        )

    @staticmethod
    def available() -> bool:
        return isinstance(task_backends[DEFAULT_TASK_BACKEND_ALIAS], DatabaseBackend)

    def start(self) -> None:
        if not self.available():
            logger.info("tasks: the Tasks backend is not the database's; its workers run them")
            return
        # One "starting"/"exiting" pair per pass would flood the log; tasks still log theirs.
        logging.getLogger("django_tasks_db").setLevel(logging.WARNING)
        self._thread = threading.Thread(target=self._run, name="tasks", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15) -> None:
        """Let the task in hand finish (a webhook POST is bounded by its timeout), then end."""
        self._stop.set()
        self._worker.running = False
        if self._thread is not None:
            self._thread.join(timeout)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    def _pass(self) -> None:
        # One plain read while nothing is due: the worker loop's claim opens a write
        # transaction (exclusive on SQLite), which the sender need not queue behind.
        due = DBTaskResult.objects.ready().filter(backend_name=DEFAULT_TASK_BACKEND_ALIAS)
        if not due.exists():
            return
        self._worker.running = not self._stop.is_set()
        before = self._worker._run_tasks
        if self._worker.running:
            self._worker.run()
        self.ran += self._worker._run_tasks - before

    def _sweep(self) -> None:
        """Tasks some worker claimed long ago and never finished: ready to run again."""
        cutoff = timezone.now() - timedelta(seconds=STALE_AFTER)
        revived = DBTaskResult.objects.filter(
            status=TaskResultStatus.RUNNING,
            backend_name=DEFAULT_TASK_BACKEND_ALIAS,
            started_at__lt=cutoff,
        ).update(status=TaskResultStatus.READY)
        if revived:
            logger.warning("tasks: %d task(s) left running by a stopped worker run again", revived)
        # A webhook delivery whose task is gone (failed while the database was away, say):
        # still pending long past due, with no task ready or running. (The only tasks.)
        from outbound.webhooks.tasks import requeue_lost

        requeued = requeue_lost(STALE_AFTER)
        if requeued:
            logger.warning("tasks: %d webhook delivery(ies) without a task queued again", requeued)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                if time.monotonic() - self._swept >= SWEEP_EVERY:
                    until_database_answers(self._sweep, stop=self._stop, ends_outage=False)
                    self._swept = time.monotonic()
                until_database_answers(self._pass, stop=self._stop, ends_outage=False)
                if self.once:
                    break
                close_old_connections()
                self._stop.wait(self.interval)
        except Exception:  # stopped while the database was away, or a bug: never silent
            if not self._stop.is_set():
                logger.exception("tasks: the task thread stopped")
        finally:
            close_old_connections()
