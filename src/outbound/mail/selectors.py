"""Reads of SMTP configurations, and the delivery figures the console's dashboard shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection
from django.db.models import Count, QuerySet
from django.db.models.functions import TruncHour
from django.utils import timezone

from outbound.mail.models import Attempt, Message, MessageStatus, SmtpConfig

# The attempt outcomes the deliveries chart counts, in the order its bars stack.
DELIVERY_OUTCOMES = (MessageStatus.SENT, MessageStatus.DEFERRED, MessageStatus.FAILED)


def smtp_config_list() -> QuerySet[SmtpConfig]:
    return SmtpConfig.objects.order_by("id")


def smtp_config_rows() -> QuerySet[SmtpConfig]:
    """The configurations as the native API shows them (with who created and changed them)."""
    return smtp_config_list().select_related("created_by", "modified_by")


def active_smtp_config() -> SmtpConfig | None:
    """The configuration in use now, read fresh from the database (never cached)."""
    return smtp_config_list().filter(is_active=True).first()


def active_sender(*, lock: bool = False) -> tuple[str, str] | None:
    """The active configuration's ``(sender_address, username)`` (what a message's
    Message-ID domain comes from, see :func:`outbound.mail.compose.envelope_sender`), or
    ``None`` when no configuration is active. Read fresh from the database like
    :func:`active_smtp_config`, as one plain statement of two columns (no model instance, no
    query to compile). ``lock``: inside a transaction, hold the row until it ends (``FOR
    UPDATE`` where the database has it; SQLite's transactions hold the whole database)."""
    meta, quote = SmtpConfig._meta, connection.ops.quote_name
    sender, username, active = (
        quote(getattr(meta.get_field(name), "column", name))
        for name in ("sender_address", "username", "is_active")
    )
    sql = f"SELECT {sender}, {username} FROM {quote(meta.db_table)} WHERE {active} = %s"  # noqa: S608
    if lock and connection.features.has_select_for_update:
        sql += " FOR UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(sql, [True])
        row = cursor.fetchone()
    return None if row is None else (row[0] or "", row[1] or "")


def active_smtp_config_with_last_test() -> SmtpConfig | None:
    """The active configuration with its last connection test (``last_test``, if it was
    ever tested as saved) in one query."""
    return SmtpConfig.objects.filter(is_active=True).select_related("last_test").order_by().first()


@dataclass
class HourOfDeliveries:
    """The attempts that ended in one hour, by outcome."""

    start: datetime
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def deliveries_per_hour(*, hours: int = 24, now: datetime | None = None) -> list[HourOfDeliveries]:
    """Delivery attempts that finished in each of the last ``hours`` hours (the current one
    included, oldest first), by outcome (sent, deferred, failed): one grouped query, the
    hours truncated by the database."""
    now = now or timezone.now()
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    buckets = [
        HourOfDeliveries(start + timedelta(hours=n), dict.fromkeys(DELIVERY_OUTCOMES, 0))
        for n in range(hours)
    ]
    rows = (
        Attempt.objects.filter(
            finished_at__gte=start, finished_at__lt=end, outcome__in=DELIVERY_OUTCOMES
        )
        .annotate(hour=TruncHour("finished_at"))
        .values("hour", "outcome")
        .annotate(n=Count("id"))
        .order_by()  # the model's ordering would join the GROUP BY
    )
    for row in rows:
        index = int((row["hour"] - start) // timedelta(hours=1))
        if 0 <= index < hours:
            buckets[index].counts[row["outcome"]] += row["n"]
    return buckets


def messages_by_status() -> dict[str, int]:
    """How many messages are in each status (every status, zero included): one query."""
    counts = dict.fromkeys(MessageStatus.values, 0)
    rows = Message.objects.order_by().values_list("status").annotate(n=Count("id"))
    for status, n in rows:
        counts[status] = n
    return counts


def recent_failed_attempts(*, limit: int = 5) -> QuerySet[Attempt]:
    """The last attempts that failed for good, newest first, with their message's subject."""
    return (
        Attempt.objects.filter(outcome=MessageStatus.FAILED, finished_at__isnull=False)
        .select_related("message")
        .only("id", "number", "finished_at", "server", "detail", "message__id", "message__subject")
        .order_by("-finished_at", "-id")[:limit]
    )
