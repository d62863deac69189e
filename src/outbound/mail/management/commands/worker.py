"""``outbound worker``: deliver queued mail (run as many as you like, on any machine).

It runs django-tasks' database worker for the delivery tasks and, beside it, a sweeper that
re-enqueues due messages whose task was lost (for instance when a worker was killed while
sending: its lease runs out and another worker takes the message over). When it stops
(SIGTERM, SIGINT, ``--batch`` done) its open SMTP connections end with QUIT.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser
from django.db import close_old_connections

from outbound.mail.sender import POOL, WORKER_ID, sweep

logger = logging.getLogger("outbound.worker")


class Command(BaseCommand):
    help = "Deliver queued mail: the task worker plus a sweeper for lost tasks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--interval", type=float, default=0.2, help="Idle poll interval (s).")
        parser.add_argument("--batch", action="store_true", help="Exit when the queue is empty.")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()

        def sweeper() -> None:
            while not stop.wait(settings.OUTBOUND_SWEEP_INTERVAL):
                try:
                    swept = sweep()
                    if swept:
                        logger.info("re-enqueued %d due message(s)", swept)
                except Exception:  # keep sweeping; the next round may succeed
                    logger.exception("sweep failed")
                finally:
                    close_old_connections()

        if not options["batch"]:
            sweep(grace=0)  # whatever a previous worker left behind
            threading.Thread(target=sweeper, name="sweeper", daemon=True).start()
        logger.info("worker %s starting", WORKER_ID)
        try:
            call_command(
                "db_worker",
                interval=options["interval"],
                batch=options["batch"],
                startup_delay=False,
                worker_id=WORKER_ID[:64],
                reload=False,
            )
        finally:
            stop.set()
            POOL.close_all()  # QUIT to the server of every connection kept open
