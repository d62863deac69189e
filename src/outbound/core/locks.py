"""Named transaction-scoped locks for writes that must not interleave (e.g. activation)."""

from __future__ import annotations

import zlib

from django.db import connection


def serialize(name: str) -> None:
    """Block until no other transaction holds ``name``; released at commit or rollback.

    PostgreSQL: an advisory transaction lock. SQLite: nothing to do — transactions begin
    IMMEDIATE there (see settings), so writers already run one at a time.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [zlib.crc32(name.encode())])
