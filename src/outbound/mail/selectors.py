"""Reads of SMTP configurations."""

from __future__ import annotations

from django.db import connection
from django.db.models import QuerySet

from outbound.mail.models import SmtpConfig


def smtp_config_list() -> QuerySet[SmtpConfig]:
    return SmtpConfig.objects.order_by("id")


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
