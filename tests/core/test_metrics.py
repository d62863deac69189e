"""GET /metrics: real sends through aiosmtpd, then the Prometheus text parsed back. The
counters are shared by every process (prometheus-client's multiprocess mode), so each test
compares a scrape after with one before."""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from outbound.mail.models import Message, MessageStatus
from tests.mail.test_sender import configure, quick_retries, settle, submit  # noqa: F401
from tests.support.smtp import Scripted, free_port, smtp_server

TOKEN = "metrics-token-3f9a"
URL = "/metrics"
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(autouse=True)
def _token(settings: Any) -> None:
    settings.OUTBOUND_METRICS_TOKEN = TOKEN


def scrape() -> Samples:
    r = Client().get(URL, HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert r.status_code == 200, r.content
    assert r["Content-Type"].startswith("text/plain; version=")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(r.content.decode())
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def moved(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return value(after, name, **labels) - value(before, name, **labels)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("quick_retries")
def test_sends_move_the_counters_by_exactly_what_happened(admin_client: APIClient) -> None:
    refuse, defer = {"nobody@example.com"}, {"slow@example.com": 1}
    with smtp_server(recorder=Scripted(refuse=refuse, defer=defer)) as srv:
        configure(admin_client, srv, failure_email="ops@example.com")
        before = scrape()
        submit(admin_client, to=["ann@example.com", "bob@example.com"])  # sent
        submit(admin_client, to=["nobody@example.com"])  # failed, and a notice to ops: sent
        submit(admin_client, to=["slow@example.com"])  # deferred once, then sent
        settle()
        after = scrape()
    assert sorted(Message.objects.values_list("status", flat=True)) == ["failed"] + ["sent"] * 3

    outcomes = ("sent", "deferred", "failed")
    messages = {o: moved(before, after, "outbound_messages_total", outcome=o) for o in outcomes}
    assert messages == {"sent": 3, "deferred": 1, "failed": 1}
    recipients = {r: moved(before, after, "outbound_recipients_total", result=r) for r in outcomes}
    assert recipients == {"sent": 4, "deferred": 1, "failed": 1}
    # Four messages reached a final state, each within a minute of its submission.
    assert moved(before, after, "outbound_delivery_seconds_count") == 4
    assert moved(before, after, "outbound_delivery_seconds_bucket", le="60.0") == 4
    assert moved(before, after, "outbound_delivery_seconds_sum") > 0

    # The queue gauge is the outbox, every status listed.
    counts = Counter(Message.objects.values_list("status", flat=True))
    assert {
        status: value(after, "outbound_queue_messages", status=status)
        for status in MessageStatus.values
    } == {status: counts.get(status, 0) for status in MessageStatus.values}

    # Requests: the three submissions (202), counted by method and status.
    assert moved(before, after, "outbound_http_requests_total", method="POST", status="202") == 3
    assert moved(before, after, "outbound_http_requests_total", method="GET", status="200") >= 1
    # Declared from the start (tests/webhooks count real deliveries); no webhook here, so
    # these sends moved neither.
    for result in ("delivered", "failed"):
        assert ("outbound_webhook_deliveries_total", frozenset({("result", result)})) in after
        assert moved(before, after, "outbound_webhook_deliveries_total", result=result) == 0
    # Every process counts into its own files in the multiprocess directory.
    assert (Path(django_settings.OUTBOUND_METRICS_DIR) / f"counter_{os.getpid()}.db").exists()


@pytest.mark.django_db
def test_connection_tests_move_the_test_counters(admin_client: APIClient) -> None:
    url = "/api/administration/smtp-settings/test/"
    before = scrape()
    with smtp_server() as srv:
        r = admin_client.post(
            url, {"host": srv.host, "port": srv.port, "tls": False}, format="json"
        )
    assert r.status_code == 200, r.data
    closed = {"host": "127.0.0.1", "port": free_port(), "tls": False}  # nobody listens
    r = admin_client.post(url, closed, format="json")
    assert r.status_code == 400, r.data
    after = scrape()
    assert moved(before, after, "outbound_smtp_tests_total", result="ok") == 1
    assert moved(before, after, "outbound_smtp_tests_total", result="failed") == 1
    assert moved(before, after, "outbound_smtp_test_seconds_count") == 2


@pytest.mark.django_db
def test_without_the_variable_there_is_no_endpoint(settings: Any) -> None:
    settings.OUTBOUND_METRICS_TOKEN = ""
    assert Client().get(URL).status_code == 404
    assert Client().get(URL, HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header", [None, f"Bearer {TOKEN}x", f"Basic {TOKEN}", f"bearer {TOKEN[:-1]}", "Bearer"]
)
def test_a_missing_or_wrong_token_is_a_401(header: str | None) -> None:
    extra = {} if header is None else {"HTTP_AUTHORIZATION": header}
    r = Client().get(URL, **extra)
    assert r.status_code == 401
    assert set(r.json()) == {"detail"}
    assert r["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN.encode() not in r.content


@pytest.mark.django_db
def test_not_in_the_openapi_document() -> None:
    r = Client().get("/api/schema/?format=json")
    assert r.status_code == 200
    assert "/metrics" not in r.json()["paths"]


@pytest.mark.django_db(transaction=True)
def test_one_scrape_adds_up_what_another_process_counted(admin_client: APIClient) -> None:
    """An ``outbound worker`` of its own (another process) delivers; this process, like a
    gunicorn worker, answers /metrics with what that one counted."""
    with smtp_server(recorder=Scripted()) as srv:
        configure(admin_client, srv)
        submit(admin_client, to=["ann@example.com", "bob@example.com"])
        before = scrape()
        db = connection.settings_dict
        if db["ENGINE"].endswith("sqlite3"):
            url = f"sqlite:///{db['NAME']}"
        else:
            user, host, port = db["USER"], db["HOST"] or "127.0.0.1", db["PORT"] or 5432
            url = f"postgres://{user}@{host}:{port}/{db['NAME']}"
        env = {
            **os.environ,
            "DATABASE_URL": url,
            "OUTBOUND_EGRESS_ALLOW": django_settings.OUTBOUND_EGRESS_ALLOW,
            "PROMETHEUS_MULTIPROC_DIR": str(django_settings.OUTBOUND_METRICS_DIR),
        }
        done = subprocess.run(
            [sys.executable, "-m", "outbound", "worker", "--batch"],
            env=env,
            capture_output=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
        after = scrape()
    assert Message.objects.get().status == "sent"
    assert len(srv.recorder.messages) == 1
    assert moved(before, after, "outbound_messages_total", outcome="sent") == 1
    assert moved(before, after, "outbound_recipients_total", result="sent") == 2
    assert moved(before, after, "outbound_delivery_seconds_count") == 1
