"""Gunicorn's hooks for `make run` (the command line keeps every other option).

Metrics: each gunicorn worker counts into files of its own in PROMETHEUS_MULTIPROC_DIR
(``outbound.core.metrics``). At the start the files of processes no longer running are
removed (an earlier run's, a test run's); when a worker exits its live gauges stop counting.
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "outbound.settings")


def on_starting(server: Any) -> None:
    # Loads the settings in the master, which sets PROMETHEUS_MULTIPROC_DIR for the workers
    # it forks before any of them imports prometheus-client.
    import django

    django.setup()
    from outbound.core import metrics

    removed = metrics.forget_dead_processes()
    if removed:
        server.log.info("metrics: removed %d file(s) of processes no longer running", removed)


def child_exit(server: Any, worker: Any) -> None:
    from outbound.core import metrics

    metrics.process_exited(worker.pid)
