"""Reads of SMTP configurations."""

from __future__ import annotations

from django.db.models import QuerySet

from outbound.mail.models import SmtpConfig


def smtp_config_list() -> QuerySet[SmtpConfig]:
    return SmtpConfig.objects.order_by("id")


def active_smtp_config() -> SmtpConfig | None:
    """The configuration in use now, read fresh from the database (never cached)."""
    return smtp_config_list().filter(is_active=True).first()
