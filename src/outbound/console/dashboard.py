"""The console's start page: what each card shows, for the cards the user may see.

The figures come from the owning apps' selectors, one query per card; this module only
chooses the cards by permission and turns the figures into what the template draws (the
deliveries chart's bars are computed here, so the page needs no script and no inline
style: the SVG's geometry is attributes, its colours the console's CSS classes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from outbound.core.permissions import user_permissions
from outbound.mail import selectors as mail_selectors
from outbound.mail.models import MessageStatus, SmtpConfig, SmtpTestResult
from outbound.webhooks import selectors as webhook_selectors

MESSAGES_VIEW = "messages.view"
SMTP_VIEW = "outbound_mail_setup.view"
WEBHOOKS_LIST = "webhooks.list"
FAILING_WEBHOOKS_SHOWN = 5
CERTIFICATE_WARNING = timedelta(days=30)
QUEUE_STATUSES = (MessageStatus.QUEUED, MessageStatus.SENDING, MessageStatus.DEFERRED)

# The chart's drawing area, in SVG user units (the SVG scales to its card's width).
WIDTH, HEIGHT = 720, 240
LEFT, RIGHT, TOP, BOTTOM = 56, 8, 12, 30
PLOT_W, PLOT_H = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM


@dataclass
class Bar:
    outcome: str
    count: int
    x: float
    y: float
    width: float
    height: float


@dataclass
class Column:
    """One hour of the chart: its stacked bars, its label (every third hour) and a title."""

    start: datetime
    counts: dict[str, int]
    bars: list[Bar] = field(default_factory=list)
    label: str = ""
    label_x: float = 0.0
    title: str = ""


@dataclass
class Tick:
    value: int
    y: float


@dataclass
class Chart:
    columns: list[Column]
    ticks: list[Tick]
    totals: dict[str, int]
    summary: str
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    baseline: int = HEIGHT - BOTTOM
    label_y: int = HEIGHT - 8


def _step(peak: int) -> int:
    """A round gridline step (1, 2, 5, 10, 20, …) giving at most four steps up to ``peak``."""
    rough = max(peak / 4, 1)
    power = 10 ** math.floor(math.log10(rough))
    for factor in (1, 2, 5, 10):
        if factor * power >= rough:
            return int(factor * power)
    return int(10 * power)  # pragma: no cover - the loop always returns


def _hours(start: datetime) -> str:
    end = start + timedelta(hours=1)
    return f"{start:%H}:00–{end:%H}:00"  # noqa: RUF001 - an en dash for a range


def deliveries_chart(hours: list[mail_selectors.HourOfDeliveries]) -> Chart:
    """Stacked bars (sent at the bottom, then deferred, then failed), one column per hour."""
    peak = max((h.total for h in hours), default=0)
    step = _step(peak)
    top = max(step * math.ceil(peak / step), step)
    scale = PLOT_H / top
    slot = PLOT_W / max(len(hours), 1)
    bar_w = round(slot * 0.72, 2)
    columns: list[Column] = []
    for n, hour in enumerate(hours):
        x = round(LEFT + n * slot + (slot - bar_w) / 2, 2)
        column = Column(start=hour.start, counts=dict(hour.counts))
        base = float(HEIGHT - BOTTOM)
        for outcome in mail_selectors.DELIVERY_OUTCOMES:
            count = hour.counts.get(outcome, 0)
            if count:
                height = count * scale
                base -= height
                column.bars.append(
                    Bar(str(outcome), count, x, round(base, 2), bar_w, round(height, 2))
                )
        parts = ", ".join(f"{hour.counts.get(o, 0)} {o}" for o in mail_selectors.DELIVERY_OUTCOMES)
        column.title = f"{_hours(hour.start)} UTC: {parts}"
        if n % 3 == 0:
            column.label = f"{hour.start:%H}:00"
            column.label_x = round(LEFT + n * slot + slot / 2, 2)
        columns.append(column)
    ticks = [
        Tick(value, round(HEIGHT - BOTTOM - value * scale, 2)) for value in range(0, top + 1, step)
    ]
    totals = {
        str(o): sum(h.counts.get(o, 0) for h in hours) for o in mail_selectors.DELIVERY_OUTCOMES
    }
    if peak:
        busiest = max(hours, key=lambda h: h.total)
        summary = (
            f"In the last {len(hours)} hours: "
            + ", ".join(f"{n} {o}" for o, n in totals.items())
            + f". The busiest hour was {_hours(busiest.start)} UTC with {busiest.total}."
        )
    else:
        summary = f"No delivery attempts ended in the last {len(hours)} hours."
    return Chart(columns=columns, ticks=ticks, totals=totals, summary=summary)


@dataclass
class SmtpCard:
    config: SmtpConfig | None
    test: SmtpTestResult | None = None
    expires_in_days: int | None = None
    expiry_label: str = ""
    certificate_warning: str = ""


def smtp_card(config: SmtpConfig | None, now: datetime) -> SmtpCard:
    """The active configuration and its last test; a warning when the certificate the test
    saw expires within 30 days (or has expired)."""
    if config is None:
        return SmtpCard(config=None)
    try:
        test: SmtpTestResult | None = config.last_test
    except SmtpTestResult.DoesNotExist:
        test = None
    card = SmtpCard(config=config, test=test)
    expiry = test.certificate_not_after if test is not None else None
    if expiry is not None:
        left = expiry - now
        days = round(left / timedelta(days=1))  # 9 days 23 hours reads "in 10 days"
        card.expires_in_days = days
        card.expiry_label = (
            "expired"
            if left <= timedelta(0)
            else "within a day"
            if days == 0
            else f"in {days} day{'' if days == 1 else 's'}"
        )
        if left <= timedelta(0):
            card.certificate_warning = (
                f"The server's certificate expired on {expiry:%Y-%m-%d}: "
                "mail over TLS fails until it is renewed."
            )
        elif left < CERTIFICATE_WARNING:
            card.certificate_warning = (
                f"The server's certificate expires {card.expiry_label} ({expiry:%Y-%m-%d})."
            )
    return card


def dashboard(user: Any, *, now: datetime | None = None) -> dict[str, Any]:
    """The cards ``user`` may see, each read with one query."""
    now = now or timezone.now()
    can = user_permissions(user)
    cards: dict[str, Any] = {}
    if MESSAGES_VIEW in can:
        cards["deliveries"] = deliveries_chart(mail_selectors.deliveries_per_hour(now=now))
        counts = mail_selectors.messages_by_status()
        cards["queue"] = {
            "rows": [
                {"status": value, "label": label, "count": counts.get(value, 0)}
                for value, label in MessageStatus.choices
            ],
            "waiting": sum(counts.get(s, 0) for s in QUEUE_STATUSES),
        }
        cards["failures"] = list(mail_selectors.recent_failed_attempts())
    if SMTP_VIEW in can:
        cards["smtp"] = smtp_card(mail_selectors.active_smtp_config_with_last_test(), now)
    if WEBHOOKS_LIST in can:
        cards["webhooks"] = list(
            webhook_selectors.failing_webhooks(now=now)[:FAILING_WEBHOOKS_SHOWN]
        )
    return cards
