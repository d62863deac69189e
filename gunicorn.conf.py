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


# OUTBOUND_LOG_FORMAT=json: gunicorn's error and access logs as one JSON object per line too,
# with the formatter the application logs with (the access line gets method, path, status,
# duration_ms, remote_addr and user_agent as fields). Unset or text: gunicorn's own format.
if os.environ.get("OUTBOUND_LOG_FORMAT", "").strip().lower() == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "outbound.core.logging.JsonFormatter"}},
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stdout",
            },
            "error_console": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": "ext://sys.stderr",
            },
        },
        "root": {"handlers": ["error_console"]},
        "loggers": {
            # No level: --log-level (error) and gunicorn's INFO (access) stay as they are.
            "gunicorn.error": {"handlers": ["error_console"], "propagate": False},
            "gunicorn.access": {"handlers": ["console"], "propagate": False},
        },
    }
