"""Races end cleanly: never two active configurations, never a 500, never a half-written row."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction

from outbound.mail import services
from outbound.mail.models import SmtpConfig
from tests.conftest import client_for
from tests.support.concurrency import run_concurrently


@pytest.mark.django_db(transaction=True)
def test_concurrent_activations_leave_exactly_one_active(admin_user: Any) -> None:
    configs = [
        services.smtp_config_create(
            data={"host": f"smtp{i}.example.com", "port": 587}, actor=admin_user
        )
        for i in range(6)
    ]
    results = run_concurrently(
        [lambda c=c: services.smtp_config_activate(config=c, actor=admin_user) for c in configs]
    )
    assert not [r for r in results if isinstance(r, Exception)], results
    assert SmtpConfig.objects.filter(is_active=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_first_patches_create_one_configuration(admin_user: Any) -> None:
    def patch(i: int) -> int:
        client = client_for(admin_user)
        body = {"host": f"smtp{i}.example.com", "port": 587, "tls": True}
        return client.patch("/api/administration/smtp-settings/", body, format="json").status_code

    results = run_concurrently([lambda i=i: patch(i) for i in range(5)])
    assert results == [200] * 5
    assert SmtpConfig.objects.count() == 1
    assert SmtpConfig.objects.filter(is_active=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_database_itself_refuses_a_second_active_row(admin_user: Any) -> None:
    services.smtp_config_create(
        data={"host": "a.example.com", "port": 25}, actor=admin_user, activate=True
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        SmtpConfig.objects.create(host="b.example.com", port=25, is_active=True)
    assert SmtpConfig.objects.count() == 1
    assert connection.vendor in {"sqlite", "postgresql"}
