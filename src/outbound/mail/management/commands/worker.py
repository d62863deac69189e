"""``outbound worker``: deliver queued mail (run as many as you like, on any machine that
reaches the database).

The outbox is the queue: the worker claims batches of due messages (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so workers never wait for or take each other's), delivers each batch
over one connection and records the results in bulk; when nothing is due it looks again every
``--interval`` seconds. A killed worker's messages are taken over by the others once their
lease (``OUTBOUND_SEND_LEASE``) runs out. While the database is unavailable it logs that
once, waits with backoff and goes on when it is back: what it tried is recorded, the rest of
its batch given back. A thread of its own runs the Tasks API's due tasks (webhook
deliveries; :mod:`outbound.mail.task_runner`). On SIGTERM or SIGINT it finishes the message in
hand, gives the rest of its batch back, says QUIT on its open SMTP connections and logs what
it did.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, close_old_connections
from django.db.backends.signals import connection_created

from outbound.core import metrics
from outbound.mail.sender import HEARTBEAT, POOL, WORKER_ID, deliver_due, until_database_answers
from outbound.mail.task_runner import TaskRunner

logger = logging.getLogger("outbound.worker")


class _Counter:
    """SQL statements this process ran (every thread's connection), for the stop line."""

    def __init__(self) -> None:
        self.statements = 0
        self._lock = threading.Lock()

    def __call__(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        with self._lock:
            self.statements += 1
        return execute(sql, params, many, context)

    def install(self, sender: Any, connection: Any, **kwargs: Any) -> None:
        if self not in connection.execute_wrappers:
            connection.execute_wrappers.append(self)


def _asynchronous_commits(sender: Any, connection: Any, **kwargs: Any) -> None:
    """PostgreSQL: the worker's commits do not wait for the WAL to reach the disk. Its
    per-message notes (one commit per delivered message) would otherwise wait for an fsync
    each. Nothing is lost when the worker dies: every commit is at once visible to the other
    workers and written by PostgreSQL's WAL writer within a fraction of a second. Only if
    PostgreSQL itself crashes (not a restart) can that last fraction of a second of worker
    commits be lost, and the messages it covered sent again."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET synchronous_commit TO off")


class Command(BaseCommand):
    help = "Deliver queued mail: claim due messages in batches and send them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=0.2, help="Idle poll interval (s).")
        parser.add_argument("--batch", action="store_true", help="Exit when nothing is due.")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=settings.OUTBOUND_WORKER_BATCH,
            help="Messages claimed at a time (default OUTBOUND_WORKER_BATCH).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, lambda *_: stop.set())
        counter = _Counter()
        connection_created.connect(counter.install)
        connection_created.connect(_asynchronous_commits)
        from django.db import connections

        for conn in connections.all(initialized_only=True):
            counter.install(None, conn)
            if conn.connection is not None:
                _asynchronous_commits(None, conn)
        cpu, delivered = time.process_time(), 0
        # The Tasks API's due tasks (webhook deliveries) in a thread of their own.
        tasks = TaskRunner(interval=max(options["interval"], 0.5), once=options["batch"])
        logger.info("worker %s starting", WORKER_ID)
        try:
            until_database_answers(HEARTBEAT.register, stop=stop)
            if not options["batch"]:
                tasks.start()
            while not stop.is_set():
                try:
                    results = deliver_due(limit=max(1, options["batch_size"]), stop=stop)
                except DatabaseError:  # only once stopping: the database is still away
                    break
                delivered += len(results)
                if not results:
                    if options["batch"]:
                        break
                    close_old_connections()
                    stop.wait(options["interval"])
            if options["batch"] and not stop.is_set():
                tasks.start()  # one pass over what is due now (the events just queued too)
                tasks.join()
        except DatabaseError:  # stopped while the database was still away
            pass
        finally:
            tasks.stop()
            HEARTBEAT.unregister()
            POOL.close_all()  # QUIT to the server of every connection kept open
            metrics.process_exited()  # its counters stay counted; live gauges go
            connection_created.disconnect(counter.install)
            connection_created.disconnect(_asynchronous_commits)
            for conn in connections.all(initialized_only=True):
                if counter in conn.execute_wrappers:
                    conn.execute_wrappers.remove(counter)
            logger.info(
                "worker %s stopped: messages=%d sql_statements=%d cpu_seconds=%.3f",
                WORKER_ID,
                delivered,
                counter.statements,
                time.process_time() - cpu,
            )
