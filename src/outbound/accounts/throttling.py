"""Throttling of failed logins per username (successful logins never count).

Each username has ``OUTBOUND_LOGIN_FAILURES`` slots in the shared cache. A login attempt
claims a free slot with ``cache.add`` *before* the password is checked; ``add`` is atomic
across workers (the database cache's key is unique), so concurrent attempts cannot all pass
one check before any of them has recorded its failure. A successful (or malformed) attempt
gives its slot back; a failed one keeps it until the window has passed. When every slot is
held, the attempt is refused before the password is checked.
"""

from __future__ import annotations

import hashlib
import time

from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError

from outbound.core.errors import database_writable


def _slot_keys(username: str) -> list[str]:
    digest = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    return [f"login-failures:{digest}:{i}" for i in range(settings.OUTBOUND_LOGIN_FAILURES)]


def claim(username: str) -> str | None:
    """Claim a slot for one login attempt; ``None`` when recent failures hold every slot."""
    keys = _slot_keys(username)
    held = cache.get_many(keys)
    now = time.time()
    for key in keys:
        if key in held:
            continue
        if cache.add(key, now, timeout=settings.OUTBOUND_LOGIN_WINDOW):
            return key
        # The database cache's add() answers False for a write it could not make, too: a
        # free slot that did not take means a database that does not take writes, not a
        # locked-out user (who would otherwise be told to wait, wrongly).
        if key not in cache and not database_writable():
            raise OperationalError("The database does not take writes.")
    return None


def locked(username: str) -> bool:
    """Whether recent failures hold every slot of ``username`` (a read: claims nothing)."""
    keys = _slot_keys(username)
    return len(cache.get_many(keys)) >= len(keys)


def release(slot: str) -> None:
    """Give back the slot of an attempt that did not fail."""
    cache.delete(slot)


def retry_after(username: str) -> int:
    """Seconds until the oldest recent failure of ``username`` leaves the window."""
    stamps = [t for t in cache.get_many(_slot_keys(username)).values() if t is not None]
    if not stamps:
        return 1
    wait = int(settings.OUTBOUND_LOGIN_WINDOW - (time.time() - min(stamps))) + 1
    return max(wait, 1)
