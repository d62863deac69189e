"""Liveness and readiness probes: open to anyone, small JSON bodies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.test import Client
from django.utils import timezone

from outbound.mail import sender
from outbound.mail.models import Worker

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "body"),
    [("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready", "workers": 0})],
)
def test_probe_answers_without_authentication(url: str, body: dict[str, str]) -> None:
    response = Client().get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == body


def test_probes_ignore_bad_credentials() -> None:
    client = Client(HTTP_AUTHORIZATION="JWT not-a-token")
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_readyz_reports_pending_migrations(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [object()])
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "pending_migrations": 1}
    assert Client().get("/healthz").status_code == 200  # alive, just not ready


def test_readyz_reports_an_unreachable_database(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: Any, targets: Any) -> Any:
        raise ConnectionError("database went away")

    monkeypatch.setattr(MigrationExecutor, "migration_plan", broken)
    response = Client().get("/readyz")
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"


def test_readyz_counts_the_workers_seen_in_the_last_30_seconds() -> None:
    now = timezone.now()
    Worker.objects.create(name="gone:1:x", host="gone", pid=1, started_at=now, seen_at=now)
    Worker.objects.filter(name="gone:1:x").update(seen_at=now - timedelta(seconds=31))
    assert Client().get("/readyz").json() == {"status": "ready", "workers": 0}

    sender.HEARTBEAT.register()  # what `outbound worker` does when it starts
    try:
        assert Client().get("/readyz").json() == {"status": "ready", "workers": 1}
    finally:
        sender.HEARTBEAT.unregister()  # ... and when it stops
    assert Client().get("/readyz").json() == {"status": "ready", "workers": 0}
    assert list(Worker.objects.values_list("name", flat=True)) == ["gone:1:x"]


def test_readyz_is_unavailable_while_the_database_is_read_only() -> None:
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SET transaction_read_only = on")  # this (test) transaction
        else:
            cursor.execute("PRAGMA query_only = 1")
    try:
        response = Client().get("/readyz")
    finally:
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA query_only = 0")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "database": "read-only"}
    assert Client().get("/healthz").status_code == 200
