"""Prometheus metrics: every metric Outbound exports, the ``GET /metrics`` view and the
middleware that counts HTTP answers.

Gunicorn's workers and every ``outbound worker`` each count in their own process, so the
counters and histograms live in prometheus-client's multiprocess mode: each process writes
its values to files in ``PROMETHEUS_MULTIPROC_DIR`` (settings point it at ``var/metrics``
before prometheus-client is first imported, which is when it reads the variable) and
``/metrics`` adds up the files of all of them. The queue gauge is not counted anywhere: it is
read from the database at scrape time.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import DatabaseError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.crypto import constant_time_compare
from django.views.decorators.http import require_safe

# The settings set PROMETHEUS_MULTIPROC_DIR; prometheus-client reads it when first imported.
assert settings.OUTBOUND_METRICS_DIR
from prometheus_client import (  # noqa: E402
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric  # noqa: E402
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead  # noqa: E402
from prometheus_client.registry import Collector  # noqa: E402

logger = logging.getLogger(__name__)

MESSAGE_OUTCOMES = ("sent", "deferred", "failed")
RECIPIENT_RESULTS = ("sent", "deferred", "failed")
SMTP_TEST_RESULTS = ("ok", "failed")
WEBHOOK_RESULTS = ("delivered", "failed")
# Anything else (a made-up method) is counted as "other": the labels stay a bounded set.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"})

# Submission to final state: from seconds to the 5 days after which a message is given up.
DELIVERY_BUCKETS = (
    0.5,
    1,
    2.5,
    5,
    10,
    30,
    60,
    120,
    300,
    600,
    1800,
    3600,
    7200,
    21600,
    86400,
    432000,
)

MESSAGES = Counter(
    "outbound_messages",
    "Delivery attempts recorded, by the message's state after the attempt "
    "(sent, deferred for a retry, failed for good).",
    ["outcome"],
)
RECIPIENTS = Counter(
    "outbound_recipients",
    "Recipient results of delivery attempts (each recipient tried in an attempt counts once).",
    ["result"],
)
DELIVERY_SECONDS = Histogram(
    "outbound_delivery_seconds",
    "Seconds from a message's submission to its final state (sent or failed).",
    buckets=DELIVERY_BUCKETS,
)
SMTP_TESTS = Counter(
    "outbound_smtp_tests",
    "SMTP connection tests (every API shape and the console), by result.",
    ["result"],
)
SMTP_TEST_SECONDS = Histogram(
    "outbound_smtp_test_seconds",
    "Duration of SMTP connection tests.",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
WEBHOOK_DELIVERIES = Counter(
    "outbound_webhook_deliveries",
    "Delivery webhook attempts by result (delivered: the receiver answered 2xx).",
    ["result"],
)
HTTP_REQUESTS = Counter(
    "outbound_http_requests",
    "HTTP requests answered, by method (the standard ones, else 'other') and status code.",
    ["method", "status"],
)

# Every known label value is exported from the start, at 0, so a rate() has a series to use.
for _outcome in MESSAGE_OUTCOMES:
    MESSAGES.labels(_outcome)
for _result in RECIPIENT_RESULTS:
    RECIPIENTS.labels(_result)
for _result in SMTP_TEST_RESULTS:
    SMTP_TESTS.labels(_result)
for _result in WEBHOOK_RESULTS:
    WEBHOOK_DELIVERIES.labels(_result)


def delivery_recorded(message: Any, recipient_results: list[str]) -> None:
    """One recorded delivery attempt: the message's status after it and the results of the
    recipients it tried; a final state also observes the time since submission."""
    outcome = str(message.status)
    if outcome in MESSAGE_OUTCOMES:
        MESSAGES.labels(outcome).inc()
    for result in recipient_results:
        if result in RECIPIENT_RESULTS:
            RECIPIENTS.labels(result).inc()
    if outcome in ("sent", "failed") and message.finished_at and message.created_at:
        seconds = (message.finished_at - message.created_at).total_seconds()
        DELIVERY_SECONDS.observe(max(seconds, 0.0))


def smtp_test_done(ok: bool, seconds: float) -> None:
    SMTP_TESTS.labels("ok" if ok else "failed").inc()
    SMTP_TEST_SECONDS.observe(seconds)


class QueueCollector(Collector):
    """``outbound_queue_messages{status}``: messages per status, counted at scrape time."""

    def collect(self) -> Iterator[Metric]:
        from django.db.models import Count

        from outbound.mail.models import Message, MessageStatus

        try:
            counts = dict(
                Message.objects.order_by()
                .values_list("status")
                .annotate(n=Count("pk"))
                .values_list("status", "n")
            )
        except DatabaseError as exc:  # no gauge while the database is away; the rest still
            logger.warning("metrics: queue not counted: %s", type(exc).__name__)
            return
        family = GaugeMetricFamily(
            "outbound_queue_messages", "Messages in the outbox by status.", labels=["status"]
        )
        for status in [str(s) for s in MessageStatus.values] + sorted(
            set(counts) - {str(s) for s in MessageStatus.values}
        ):
            family.add_metric([status], counts.get(status, 0))
        yield family


def metrics_dir() -> Path:
    return Path(settings.OUTBOUND_METRICS_DIR)


def forget_dead_processes(path: Path | None = None) -> int:
    """Remove the value files of processes no longer running (``counter_1234.db`` …): at the
    server's start, so what earlier runs counted is not added up forever. Returns how many."""
    path = path or metrics_dir()
    removed = 0
    for file in path.glob("*_*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        try:
            file.unlink()
            removed += 1
        except FileNotFoundError:
            pass
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def process_exited(pid: int | None = None) -> None:
    """A process that counted is gone: its live gauges no longer count (the counters stay)."""
    mark_process_dead(os.getpid() if pid is None else pid, str(metrics_dir()))


def _unauthorized() -> JsonResponse:
    response = JsonResponse(
        {"detail": "Authentication credentials were not provided or are not valid."}, status=401
    )
    response["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


@require_safe
def metrics_view(request: HttpRequest) -> HttpResponse:
    """``GET /metrics``: the Prometheus text format, only for ``Authorization: Bearer
    $OUTBOUND_METRICS_TOKEN`` (a 404 when the variable is unset, as if there were none)."""
    token = settings.OUTBOUND_METRICS_TOKEN
    if not token:
        raise Http404
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not constant_time_compare(given.strip(), token):
        return _unauthorized()
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(metrics_dir()))
    registry.register(QueueCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class MetricsMiddleware:
    """Counts every answer by method and status code (outermost, so it sees them all)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        method = request.method if request.method in HTTP_METHODS else "other"
        status = response.status_code if 100 <= response.status_code <= 599 else 0
        HTTP_REQUESTS.labels(method, str(status)).inc()
        return response


def timed() -> Callable[[], float]:
    """A stopwatch: call the result for the seconds since."""
    start = time.monotonic()
    return lambda: time.monotonic() - start
