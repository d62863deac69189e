"""Liveness and readiness probes."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpRequest, JsonResponse
from django.utils import timezone

WORKERS_SEEN_WITHIN = 30  # seconds: a worker that has not beaten for this long is not counted


def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


def readyz(request: HttpRequest) -> JsonResponse:
    """200 when this web process can serve: the database answers, takes writes and has
    every migration. ``workers`` is how many ``outbound worker`` processes reported alive in
    the last 30 s: informative (0 is worth an alert), it does not make the web process
    unready, since the API keeps accepting mail for the workers to send when they are back."""
    connection = connections[DEFAULT_DB_ALIAS]
    try:
        read_only = _read_only(connection)
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        workers = None if pending else _workers_seen()
    except Exception as exc:  # any database failure means "not ready"
        return JsonResponse({"status": "unavailable", "database": type(exc).__name__}, status=503)
    if read_only:
        return JsonResponse({"status": "unavailable", "database": "read-only"}, status=503)
    if pending:
        return JsonResponse(
            {"status": "unavailable", "pending_migrations": len(pending)}, status=503
        )
    return JsonResponse({"status": "ready", "workers": workers})


def _read_only(connection: object) -> bool:
    """Whether the database refuses writes: a PostgreSQL standby or a read-only default
    transaction; a SQLite file (or its directory, for the WAL) this process cannot write."""
    vendor = connection.vendor  # type: ignore[attr-defined]
    with connection.cursor() as cursor:  # type: ignore[attr-defined]
        if vendor == "postgresql":
            cursor.execute(
                "SELECT pg_is_in_recovery() OR current_setting('transaction_read_only') = 'on'"
            )
            return bool(cursor.fetchone()[0])
        if vendor == "sqlite":
            cursor.execute("PRAGMA query_only")
            if cursor.fetchone()[0]:
                return True
    if vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])  # type: ignore[attr-defined]
        if name == ":memory:" or name.startswith("file:"):
            return False
        path = Path(name)
        return not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))
    return False


def _workers_seen() -> int:
    from outbound.mail.models import Worker

    since = timezone.now() - timedelta(seconds=WORKERS_SEEN_WITHIN)
    return Worker.objects.filter(seen_at__gte=since).count()
