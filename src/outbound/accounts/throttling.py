"""Throttling of failed logins per username (successful logins never count)."""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache


def _key(username: str) -> str:
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return f"login-failures:{digest}"


def recent_failures(username: str) -> list[float]:
    now = time.time()
    window = settings.OUTBOUND_LOGIN_WINDOW
    return [t for t in cache.get(_key(username), []) if now - t < window]


def is_locked(username: str) -> tuple[bool, int]:
    """Whether ``username`` is throttled, and the seconds until its oldest failure expires."""
    failures = recent_failures(username)
    if len(failures) < settings.OUTBOUND_LOGIN_FAILURES:
        return False, 0
    wait = int(settings.OUTBOUND_LOGIN_WINDOW - (time.time() - min(failures))) + 1
    return True, max(wait, 1)


def record_failure(username: str) -> None:
    failures = [*recent_failures(username), time.time()]
    cache.set(_key(username), failures[-50:], settings.OUTBOUND_LOGIN_WINDOW)
