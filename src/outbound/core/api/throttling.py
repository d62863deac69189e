"""Per-user budgets for endpoints that call out of the building (connection tests)."""

from __future__ import annotations

from django.conf import settings
from rest_framework.throttling import ScopedRateThrottle


class CallOutThrottle(ScopedRateThrottle):
    """``OUTBOUND_TEST_RATE`` (default 30/min) per user and per view ``throttle_scope``."""

    def get_rate(self) -> str:
        return str(settings.OUTBOUND_TEST_RATE)
