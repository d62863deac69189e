"""The console's start page: deliveries per hour, the queue, the active configuration with
its last connection test, the last failures — each card only for those who may see it, at
a fixed number of queries."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from itertools import count
from typing import Any

import pytest
import trustme
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from outbound.accounts.models import User
from outbound.mail import selectors, services
from outbound.mail.models import Attempt, Message, SmtpConfig, SmtpTestResult
from tests.support.smtp import smtp_server

pytestmark = pytest.mark.django_db

HOME = "/console/"
_ids = count(1)


def make_message(status: str = "queued", subject: str = "Report") -> Message:
    now = timezone.now()
    return Message.objects.create(
        status=status, subject=subject, message_id=f"<{next(_ids)}@test>", next_attempt_at=now
    )


def make_attempt(
    finished_at: datetime | None,
    outcome: str,
    *,
    message: Message | None = None,
    detail: str = "",
) -> Attempt:
    message = message or make_message(outcome if outcome in ("sent", "failed") else "deferred")
    started = (finished_at or timezone.now()) - timedelta(seconds=2)
    return Attempt.objects.create(
        message=message,
        number=message.attempts.count() + 1,
        server="smtp.example.com:587",
        started_at=started,
        finished_at=finished_at,
        outcome=outcome,
        detail=detail,
    )


def this_hour() -> datetime:
    return timezone.now().replace(minute=0, second=0, microsecond=0)


def page(client: Client) -> str:
    response = client.get(HOME)
    assert response.status_code == 200
    return response.content.decode().replace("<wbr>", "")  # host names break at their dots


def hour_row(text: str, start: datetime) -> list[int]:
    """The numbers-per-hour table's row for the hour starting at ``start``."""
    match = re.search(
        rf'<time datetime="{re.escape(start.isoformat())}">[^<]*</time></th>'
        r"<td>(\d+)</td><td>(\d+)</td><td>(\d+)</td>",
        text,
    )
    assert match, f"no row for {start}"
    return [int(n) for n in match.groups()]


def bars(text: str, start: datetime) -> dict[str, int]:
    """The chart's bars for the hour starting at ``start``: outcome -> the count drawn."""
    group = re.search(rf'<g class="hour" data-hour="{start:%H}">(.*?)</g>', text, re.S)
    assert group, f"no column for {start:%H}:00"
    return {
        outcome: int(n)
        for outcome, n in re.findall(r'class="bar (\w+)"[^>]*data-count="(\d+)"', group.group(1))
    }


def totals(text: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-total="(\w+)">(\d+)<', text)}


# --- deliveries per hour ------------------------------------------------------------------


def test_chart_counts_each_hours_attempts_by_outcome(console_client: Client) -> None:
    now = this_hour()
    two_ago, oldest = now - timedelta(hours=2), now - timedelta(hours=23)
    for _ in range(3):
        make_attempt(two_ago + timedelta(minutes=10), "sent")
    make_attempt(two_ago + timedelta(minutes=50), "deferred")
    make_attempt(now + timedelta(seconds=1), "failed")
    make_attempt(now + timedelta(seconds=2), "failed")
    make_attempt(oldest + timedelta(minutes=5), "sent")
    # not counted: before the 24 hours, still under way, a lost lease
    make_attempt(now - timedelta(hours=24) + timedelta(minutes=5), "sent")
    make_attempt(None, "sending")
    make_attempt(two_ago + timedelta(minutes=1), "lease-lost")

    text = page(console_client)
    assert totals(text) == {"sent": 4, "deferred": 1, "failed": 2}
    assert hour_row(text, two_ago) == [3, 1, 0]
    assert hour_row(text, now) == [0, 0, 2]
    assert hour_row(text, oldest) == [1, 0, 0]
    assert hour_row(text, now - timedelta(hours=1)) == [0, 0, 0]
    assert len(re.findall(r'<g class="hour"', text)) == 24
    assert bars(text, two_ago) == {"sent": 3, "deferred": 1}
    assert bars(text, now) == {"failed": 2}
    assert bars(text, now - timedelta(hours=1)) == {}
    # the tallest column reaches the top gridline, the others in proportion
    heights = {
        o: float(h)
        for o, h in re.findall(
            r'class="bar (\w+)"[^>]*height="([\d.]+)"',
            re.search(rf'data-hour="{two_ago:%H}">(.*?)</g>', text, re.S).group(1),  # type: ignore[union-attr]
        )
    }
    assert heights["sent"] == pytest.approx(3 * heights["deferred"], rel=0.01)
    # described for a screen reader, with the numbers
    desc = re.search(r'<desc id="deliveries-desc">(.*?)</desc>', text, re.S)
    assert desc and "4 sent, 1 deferred, 2 failed" in html.unescape(desc.group(1))
    assert 'aria-labelledby="deliveries-title deliveries-desc"' in text
    hour = f"{two_ago:%H}:00\N{EN DASH}{two_ago + timedelta(hours=1):%H}:00 UTC"
    assert f"<title>{hour}: 3 sent, 1 deferred, 0 failed</title>" in html.unescape(text)


def test_chart_without_attempts_says_so(console_client: Client) -> None:
    text = page(console_client)
    assert totals(text) == {"sent": 0, "deferred": 0, "failed": 0}
    assert "No delivery attempts ended in the last 24 hours." in text
    assert 'class="bar' not in text


def test_the_hours_are_grouped_by_the_database() -> None:
    """The selector on its own (SQLite and PostgreSQL): one grouped query."""
    now = this_hour() + timedelta(minutes=30)
    make_attempt(now - timedelta(hours=5, minutes=1), "sent")
    make_attempt(now - timedelta(hours=5, minutes=20), "sent")
    make_attempt(now - timedelta(minutes=20), "deferred")
    with CaptureQueriesContext(connection) as ctx:
        hours = selectors.deliveries_per_hour(now=now)
    assert len(ctx.captured_queries) == 1
    assert "GROUP BY" in ctx.captured_queries[0]["sql"]
    assert len(hours) == 24 and hours[-1].start == this_hour()
    assert hours[-6].counts == {"sent": 2, "deferred": 0, "failed": 0}
    assert hours[-1].counts == {"sent": 0, "deferred": 1, "failed": 0}
    assert sum(h.total for h in hours) == 3


# --- the queue ----------------------------------------------------------------------------


def test_queue_counts_messages_by_status(console_client: Client) -> None:
    for status, n in {"queued": 3, "deferred": 2, "sending": 1, "sent": 4, "failed": 1}.items():
        for _ in range(n):
            make_message(status)
    text = page(console_client)
    rows = dict(re.findall(r'<tr data-status="(\w+)">.*?</th><td>(\d+)</td>', text, re.S))
    assert rows == {
        "queued": "3",
        "sending": "1",
        "sent": "4",
        "deferred": "2",
        "failed": "1",
        "cancelled": "0",
    }
    assert re.search(r"<strong data-queue-waiting>6</strong> waiting to go out", text)
    assert 'href="/console/messages/?status=deferred"' in text


# --- the last failures ---------------------------------------------------------------------


def test_last_failures_link_to_their_messages(console_client: Client) -> None:
    old = make_message("failed", subject="Old invoice")
    make_attempt(timezone.now() - timedelta(days=3), "failed", message=old, detail="550 gone")
    new = make_message("failed", subject="Password reset")
    make_attempt(timezone.now() - timedelta(minutes=3), "failed", message=new, detail="554 no")
    make_attempt(timezone.now(), "sent", message=make_message("sent", subject="Fine"))
    text = page(console_client)
    failures = text[text.index('id="failures-h"') :]
    assert f'href="/console/messages/{new.pk}/">#{new.pk} Password reset</a>' in failures
    assert f'href="/console/messages/{old.pk}/">#{old.pk} Old invoice</a>' in failures
    assert failures.index("Password reset") < failures.index("Old invoice")  # newest first
    assert "554 no" in failures and "550 gone" in failures
    assert "Fine" not in failures


# --- the active configuration and its last test --------------------------------------------


@pytest.fixture
def expiring_tls(ca: trustme.CA) -> Any:
    """A server certificate that expires in 10 days."""
    import ssl

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    not_after = timezone.now() + timedelta(days=10)
    ca.issue_cert("127.0.0.1", not_after=not_after).configure_cert(ctx)
    return ctx


@pytest.fixture
def tls_server(expiring_tls: Any, trust_test_ca: str) -> Iterator[Any]:
    with smtp_server(starttls=expiring_tls, users={"mailer": "s3cret"}) as server:
        yield server


def active_config(port: int, **extra: Any) -> SmtpConfig:
    data = {
        "host": "127.0.0.1",
        "port": port,
        "security": "starttls",
        "username": "mailer",
        "password": "s3cret",
        "sender_address": "app@example.com",
        **extra,
    }
    return services.smtp_config_create(data=data, actor=None, activate=True)


def test_a_test_through_the_api_is_shown_with_tls_and_a_certificate_warning(
    console_client: Client, admin_client: Any, tls_server: Any
) -> None:
    config = active_config(tls_server.port)
    text = page(console_client)
    assert "Not tested since it was saved" in text

    response = admin_client.post("/api/administration/smtp-settings/test/", {}, format="json")
    assert response.status_code == 200, response.content

    result = SmtpTestResult.objects.get(config=config)
    assert result.ok and result.tls_version.startswith("TLSv1.")
    text = page(console_client)
    smtp = text[text.index('id="smtp-h"') :]
    assert "127.0.0.1:" in smtp and "Passed" in smtp
    assert result.tls_version in smtp
    assert "(in 10 days)" in smtp
    warning = re.search(
        r"<p class=\"alert\" role=\"alert\" data-certificate-warning>(.*?)</p>", smtp
    )
    assert warning
    expiry = result.certificate_not_after
    assert expiry is not None
    assert html.unescape(warning.group(1)) == (
        f"The server's certificate expires in 10 days ({expiry:%Y-%m-%d})."
    )
    assert "s3cret" not in text


def test_a_certificate_far_from_expiry_gives_no_warning(console_client: Client) -> None:
    config = active_config(2525)
    SmtpTestResult.objects.create(
        config=config,
        tested_at=timezone.now(),
        ok=True,
        tls_version="TLSv1.3",
        certificate_not_after=timezone.now() + timedelta(days=200),
    )
    text = page(console_client)
    assert "(in 200 days)" in text and "data-certificate-warning" not in text


def test_the_consoles_live_test_records_a_failure(console_client: Client, tls_server: Any) -> None:
    config = active_config(tls_server.port)
    form = {
        "host": "127.0.0.1",
        "port": str(tls_server.port),
        "security": "starttls",
        "authorization_method": "username_and_password",
        "username": "mailer",
        "password": "wrong",
        "sender_address": "app@example.com",
    }
    response = console_client.post(
        f"/console/mail/{config.pk}/test/", form, HTTP_ACCEPT="application/x-ndjson"
    )
    lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    assert lines[-1]["result"]["ok"] is False
    result = SmtpTestResult.objects.get(config=config)
    assert not result.ok and result.failed_step == "auth"
    assert result.tls_version  # TLS was up before AUTH failed
    text = page(console_client)
    smtp = text[text.index('id="smtp-h"') :]
    assert "Failed" in smtp and html.escape(result.message) in smtp
    assert "wrong" not in result.message


def test_only_a_test_of_the_saved_server_counts_and_moving_drops_it(
    console_client: Client, tls_server: Any
) -> None:
    config = active_config(tls_server.port)
    with smtp_server() as other:  # edited, unsaved values: a test of something else
        report = services.smtp_config_test(
            stored=config,
            data={"port": other.port, "security": "none", "username": ""},
        )
    assert report.ok
    assert not SmtpTestResult.objects.filter(config=config).exists()

    assert services.smtp_config_test(stored=config, data={}).ok
    assert SmtpTestResult.objects.filter(config=config).exists()
    services.smtp_config_update(config=config, data={"description": "main"}, actor=None)
    assert SmtpTestResult.objects.filter(config=config).exists()  # same server: kept
    services.smtp_config_update(
        config=config, data={"port": 2526, "password": "s3cret"}, actor=None
    )
    assert not SmtpTestResult.objects.filter(config=config).exists()
    assert "Not tested since it was saved" in page(console_client)


def test_no_active_configuration(console_client: Client) -> None:
    services.smtp_config_create(data={"host": "smtp.example.com", "port": 25}, actor=None)
    assert "No SMTP configuration is active: mail is not sent." in page(console_client)


# --- who sees what ---------------------------------------------------------------------------


def test_each_card_only_for_those_who_may_see_it(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    failed = make_message("failed", subject="Secret plans")
    make_attempt(timezone.now(), "failed", message=failed, detail="550 no")
    active_config(2525)

    mail_only = page(console_client_for(make_user("outbound_mail_setup.view")))
    assert 'id="smtp-h"' in mail_only and "127.0.0.1:2525" in mail_only
    assert 'id="deliveries-h"' not in mail_only and 'id="queue-h"' not in mail_only
    assert "Secret plans" not in mail_only and "/console/messages/" not in mail_only

    messages_only = page(console_client_for(make_user("messages.view")))
    assert 'id="deliveries-h"' in messages_only and 'id="queue-h"' in messages_only
    assert "Secret plans" in messages_only
    assert 'id="smtp-h"' not in messages_only and "127.0.0.1" not in messages_only

    other = page(console_client_for(make_user("integrations.list")))
    assert "<svg" not in other and 'id="queue-h"' not in other and 'id="smtp-h"' not in other
    assert 'class="tile" href="/console/integrations/"' in other  # the way on instead

    nobody = page(console_client_for(make_user()))
    assert "Your account has no permissions yet" in nobody


# --- cost ----------------------------------------------------------------------------------


def _queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as ctx:
        page(client)
    return len(ctx.captured_queries)


def test_the_page_costs_a_small_fixed_number_of_queries(
    console_client: Client, django_assert_max_num_queries: Any
) -> None:
    config = active_config(2525)
    SmtpTestResult.objects.create(config=config, tested_at=timezone.now(), ok=True)
    for n in range(3):
        make_attempt(timezone.now() - timedelta(hours=n), "failed")
    deliver(make_webhook("https://a.example.com/hook"), "failed", timedelta(hours=1))
    few = _queries(console_client)
    for n in range(30):
        make_attempt(timezone.now() - timedelta(hours=n % 24, minutes=n), "sent")
        make_attempt(timezone.now() - timedelta(minutes=n), "failed")
        make_message("queued")
        deliver(make_webhook(f"https://{n}.example.com/hook"), "retrying", timedelta(minutes=n))
    assert _queries(console_client) == few
    # the session, the user (a superuser: no roles), then one per card: chart, queue,
    # failures, configuration with its last test, failing webhooks
    with django_assert_max_num_queries(7):
        page(console_client)


# --- webhooks failing ------------------------------------------------------------------------


def make_webhook(url: str, *, description: str = "") -> Any:
    from outbound.webhooks.models import Webhook

    return Webhook.objects.create(url=url, events=["message.failed"], description=description)


def deliver(webhook: Any, status: str, ago: timedelta, **extra: Any) -> None:
    from outbound.webhooks.models import WebhookDelivery

    at = timezone.now() - ago
    delivery = WebhookDelivery.objects.create(
        webhook=webhook,
        event_id=f"msg_{next(_ids)}",
        event_type="message.failed",
        status=status,
        event_at=at,
        **extra,
    )
    WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=at)


def test_webhooks_failing_lists_those_whose_deliveries_fail(
    console_client: Client,
    make_user: Callable[..., User],
    console_client_for: Callable[[User], Client],
) -> None:
    broken = make_webhook("https://broken.example.com/hook", description="CRM")
    deliver(broken, "delivered", timedelta(hours=5))
    deliver(broken, "retrying", timedelta(hours=2), http_status=500, error="Server error")
    deliver(broken, "failed", timedelta(hours=1), http_status=503, error="Unavailable")
    recovered = make_webhook("https://recovered.example.com/hook")
    deliver(recovered, "retrying", timedelta(hours=2), error="Timed out")
    deliver(recovered, "delivered", timedelta(hours=1))
    long_ago = make_webhook("https://long-ago.example.com/hook")
    deliver(long_ago, "failed", timedelta(hours=30), error="Refused")
    fine = make_webhook("https://fine.example.com/hook")
    deliver(fine, "delivered", timedelta(minutes=5))

    text = page(console_client)
    card = text[text.index('id="webhooks-h"') :]
    assert f'href="/console/webhooks/{broken.pk}/">https://broken.example.com/hook</a>' in card
    assert "CRM" in card and "HTTP 503: Unavailable" in card
    assert re.search(r'data-label="Failed attempts \(24 h\)">2<', card)
    for other in ("recovered", "long-ago", "fine"):
        assert f"{other}.example.com" not in card

    lister = page(console_client_for(make_user("webhooks.list")))
    assert 'id="webhooks-h"' in lister and "https://broken.example.com/hook" in lister
    assert f"/console/webhooks/{broken.pk}/" not in lister  # no link without webhooks.view
    assert 'id="webhooks-h"' not in page(console_client_for(make_user("messages.view")))


def test_no_failing_webhook(console_client: Client) -> None:
    deliver(make_webhook("https://fine.example.com/hook"), "delivered", timedelta(minutes=5))
    assert "No webhook is failing." in page(console_client)
