"""App config for the shared core (events, secrets, permissions, policies)."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks


def check_egress_allow(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A malformed OUTBOUND_EGRESS_ALLOW is reported at start, not at the first connection."""
    from outbound.core.egress import EgressPolicy

    try:
        EgressPolicy.parse(settings.OUTBOUND_EGRESS_ALLOW)
    except ValueError as exc:
        return [checks.Error(str(exc), id="outbound.E001")]
    return []


class CoreConfig(AppConfig):
    name = "outbound.core"
    label = "core"
    verbose_name = "Outbound core"

    def ready(self) -> None:
        from django.db.backends.signals import connection_created

        from outbound.core.files import on_connection_created

        checks.register(check_egress_allow)
        connection_created.connect(on_connection_created, dispatch_uid="outbound-private-files")
