"""Liveness and readiness probes: open to anyone, small JSON bodies."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.migrations.executor import MigrationExecutor
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("url", "body"), [("/healthz", {"status": "ok"}), ("/readyz", {"status": "ready"})]
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
