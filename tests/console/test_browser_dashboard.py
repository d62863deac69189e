"""The dashboard in a real browser: the chart is drawn (under the console's CSP, which lets
no inline style or script run), its numbers are readable, and it fits a phone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from outbound.mail import services
from outbound.mail.models import Attempt, Message, SmtpTestResult
from outbound.webhooks.models import Webhook, WebhookDelivery
from tests.console.conftest import Console

pytestmark = pytest.mark.browser

# sent, deferred, failed per hour, oldest first: a working day's shape
SHAPE = [
    (2, 0, 0), (1, 0, 0), (0, 0, 0), (1, 0, 0), (0, 0, 0), (3, 1, 0), (9, 0, 0), (18, 2, 0),
    (31, 4, 1), (42, 3, 0), (38, 6, 2), (35, 2, 0), (27, 1, 0), (33, 0, 1), (40, 9, 3),
    (36, 2, 0), (29, 1, 0), (22, 0, 0), (14, 1, 1), (9, 0, 0), (6, 0, 0), (4, 0, 0), (3, 0, 0),
    (5, 1, 0),
]  # fmt: skip


def busy_day() -> None:
    now = timezone.now()
    hour = now.replace(minute=0, second=0, microsecond=0)
    attempts = []
    for n, (sent, deferred, failed) in enumerate(SHAPE):
        start = hour - timedelta(hours=len(SHAPE) - 1 - n)
        for outcome, count in (("sent", sent), ("deferred", deferred), ("failed", failed)):
            for k in range(count):
                finished = min(start + timedelta(minutes=(k * 7) % 60), now)
                message = Message.objects.create(
                    status=outcome,
                    subject=f"Invoice {n}-{k}" if outcome != "failed" else f"Welcome pack {n}",
                    message_id=f"<{outcome}-{n}-{k}@example.com>",
                    next_attempt_at=now,
                    finished_at=finished if outcome != "deferred" else None,
                )
                detail = (
                    "550 5.1.1 <ann@example.org>: mailbox unavailable"
                    if outcome == "failed"
                    else ""
                )
                attempts.append(
                    Attempt(
                        message=message,
                        number=1,
                        server="smtp.example.com:587",
                        started_at=finished - timedelta(seconds=1),
                        finished_at=finished,
                        outcome=outcome,
                        detail=detail,
                    )
                )
    Attempt.objects.bulk_create(attempts)
    for k in range(4):
        Message.objects.create(status="queued", message_id=f"<q{k}@x>", next_attempt_at=now)
    config = services.smtp_config_create(
        data={
            "host": "smtp.example.com",
            "port": 587,
            "security": "starttls",
            "username": "mailer@example.com",
            "password": "not-shown",
            "sender_address": "noreply@example.com",
        },
        actor=None,
        activate=True,
    )
    SmtpTestResult.objects.create(
        config=config,
        tested_at=now - timedelta(hours=3),
        ok=True,
        message="Connection successfully tested.",
        tls_version="TLSv1.3",
        cipher="TLS_AES_256_GCM_SHA384",
        certificate_subject="CN=smtp.example.com",
        certificate_not_after=now + timedelta(days=10),
    )
    hook = Webhook.objects.create(
        url="https://crm.example.com/outbound/events",
        events=["message.failed"],
        description="CRM bounce handler",
    )
    for n, (status, code) in enumerate((("retrying", 502), ("retrying", 503), ("failed", 503))):
        delivery = WebhookDelivery.objects.create(
            webhook=hook,
            event_id=f"msg_{n}",
            event_type="message.failed",
            status=status,
            event_at=now - timedelta(hours=4),
            http_status=code,
            error="Service Unavailable" if code == 503 else "Bad Gateway",
        )
        at = now - timedelta(hours=3 - n)
        WebhookDelivery.objects.filter(pk=delivery.pk).update(created_at=at)


def test_dashboard_draws_the_chart_and_its_numbers(
    console: Console, phone: Console, admin_user: Any
) -> None:
    busy_day()
    blocked: list[str] = []
    console.page.on(
        "console",
        lambda msg: blocked.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    console.sign_in("admin")
    page = console.page
    console.goto("/console/")
    chart = page.get_by_role("img", name="Delivery attempts per hour")
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box and box["width"] > 600 and box["height"] > 150  # drawn, at the card's width
    expect(page.locator("svg.chart g.hour")).to_have_count(24)
    sent = sum(s for s, _, _ in SHAPE)
    deferred = sum(d for _, d, _ in SHAPE)
    failed = sum(f for _, _, f in SHAPE)
    expect(page.locator('[data-total="sent"]')).to_have_text(str(sent))
    expect(page.locator('[data-total="deferred"]')).to_have_text(str(deferred))
    expect(page.locator('[data-total="failed"]')).to_have_text(str(failed))
    # the bars take their colours from the console's stylesheet (no inline style)
    fill = page.locator("svg.chart rect.bar.failed").first.evaluate(
        "el => getComputedStyle(el).fill"
    )
    assert fill == "rgb(179, 38, 30)"
    peak = max(range(24), key=lambda n: sum(SHAPE[n]))
    tallest = page.locator("svg.chart g.hour").nth(peak)
    heights = [float(h) for h in tallest.locator("rect").evaluate_all(
        "rects => rects.map(r => r.getBBox().height)"
    )]  # fmt: skip
    assert sum(heights) > 150  # the busiest hour reaches (nearly) the top
    # the numbers behind the bars, one click away
    page.get_by_text("The numbers per hour").click()
    table = page.locator("details.chart-numbers table")
    expect(table).to_be_visible()
    expect(table.locator("tbody tr")).to_have_count(24)
    expect(table.locator("tbody tr").nth(peak).locator("td").first).to_have_text(
        str(SHAPE[peak][0])
    )
    page.get_by_text("The numbers per hour").click()  # closed again for the picture
    expect(page.locator("[data-queue-waiting]")).to_have_text(str(4 + deferred))
    expect(page.get_by_role("alert")).to_contain_text("The server's certificate expires in 10 days")
    expect(page.get_by_text("TLSv1.3")).to_be_visible()
    webhooks = page.get_by_role("region", name="Webhooks failing")
    expect(
        webhooks.get_by_role("link", name="https://crm.example.com/outbound/events")
    ).to_be_visible()
    expect(webhooks).to_contain_text("HTTP 503: Service Unavailable")
    page.get_by_role("link", name="Welcome pack 14").first.click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Failed")
    assert not blocked, blocked
    console.goto("/console/")
    console.shot("dashboard")

    phone.sign_in("admin")
    phone.goto("/console/")
    expect(phone.page.get_by_role("img", name="Delivery attempts per hour")).to_be_visible()
    assert phone.scroll_width() <= 390
