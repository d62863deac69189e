"""Automatic failover of the SMTP configuration that serves delivery (issue 14)."""

from __future__ import annotations

from outbound.mail.models import SmtpConfig


def serving_config_id() -> int | None:
    """The id of the configuration delivering mail now: the active one, or the standby it
    failed over to. ``None`` when no configuration is active."""
    return SmtpConfig.objects.filter(is_active=True).values_list("pk", flat=True).first()
