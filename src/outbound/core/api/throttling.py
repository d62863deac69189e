"""Per-user budget for calls out of the building (connection tests): one budget for all.

Every SMTP test (ALX, ZITADEL, Hitachi, Commvault, PrivX, the console) and every integration
test spends from the same ``OUTBOUND_TEST_RATE`` per user, whatever the view's
``throttle_scope`` (which only says that the view calls out): a budget per shape would
multiply it by the number of shapes. A request that connects several times (Hitachi's
``sendTestMail`` with several destinations) spends one unit per connection.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from rest_framework.exceptions import Throttled
from rest_framework.request import Request
from rest_framework.throttling import ScopedRateThrottle

SCOPE = "call_out"


class CallOutThrottle(ScopedRateThrottle):
    """``OUTBOUND_TEST_RATE`` (default 30/min) per user, shared by every view that sets a
    ``throttle_scope`` and uses this throttle."""

    cache_format = "throttle_" + SCOPE + "_%(ident)s"  # the view's scope is not part of it

    def get_rate(self) -> str:
        return str(settings.OUTBOUND_TEST_RATE)

    def allow_units(self, request: Request | Any, units: int) -> bool:
        """Spend ``units`` at once if they all fit in the budget; spend nothing otherwise."""
        self.scope = SCOPE
        self.rate = self.get_rate()
        limit, duration = self.parse_rate(self.rate)
        self.num_requests, self.duration = limit, duration
        if limit is None or duration is None:
            return True
        self.key = self.get_cache_key(request, None)  # type: ignore[arg-type]  # unused
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - duration:
            self.history.pop()
        if len(self.history) + units > limit:
            return False
        self.history[:0] = [self.now] * units
        self.cache.set(self.key, self.history, duration)
        return True


def spend_call_outs(request: Request | Any, units: int) -> None:
    """Spend ``units`` of the caller's budget for a request that will connect ``units``
    times, or raise ``Throttled`` (429 in every shape) without spending any."""
    throttle = CallOutThrottle()
    if throttle.allow_units(request, units):
        return
    if throttle.num_requests is not None and units > throttle.num_requests:  # waiting won't help
        raise Throttled(
            detail=f"This request would make {units} connection tests; at most "
            f"{throttle.num_requests} are allowed per {throttle.duration} seconds."
        )
    raise Throttled(wait=throttle.wait())
