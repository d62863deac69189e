"""Django's database cache with one statement per write.

Django's ``DatabaseCache.set()`` counts the whole table (the culling check), then opens a
transaction to SELECT the row and UPDATE or INSERT it: about six statements, and a
``COUNT(*)`` that grows with the table, for every throttled request. This backend keeps
Django's table (``createcachetable``), its key format, its values (base64 of a pickle) and its
``expires`` column (adapted by ``connection.ops.adapt_datetimefield_value``, read back through
the field's converters), so rows written by either backend are read by the other; only the
writes change:

- ``set()`` is one upsert, ``INSERT … ON CONFLICT (cache_key) DO UPDATE SET value =
  excluded.value, expires = excluded.expires`` (PostgreSQL; SQLite >= 3.24), committed by
  itself in autocommit. Inside a transaction it runs in a savepoint, as Django's does, so a
  failed write does not spoil the caller's transaction.
- ``add()`` is the same upsert with ``WHERE <table>.expires < now`` on its update: it stores
  when the key is absent or expired, and its row count says whether it did. It is atomic —
  two concurrent ``add()`` of one key cannot both succeed, even on an expired row, which
  Django's SELECT-then-write could allow.
- ``touch()`` is one ``UPDATE`` (like Django's, it does not look at the old expiry).
- ``get()``/``get_many()``, ``has_key()``, ``delete()``/``delete_many()``, ``clear()`` are
  Django's own (``get`` is already one SELECT, plus a DELETE when it meets expired rows);
  ``incr``/``decr``/``set_many``/``get_or_set`` are ``BaseCache``'s, over these.

Culling. Django checks the table's size before every write. Here the check (``SELECT
COUNT(*)`` and, when the table holds more than ``MAX_ENTRIES`` rows, Django's own ``_cull``:
expired rows first, then ``1/CULL_FREQUENCY`` of the rest) runs on the first write of each
process and then on every ``CULL_CHECK_INTERVAL``-th write (``OPTIONS``, default 100; 1 is
Django's behaviour). Culling is a bound on space, not a rule of correctness: between two checks
each process adds at most ``CULL_CHECK_INTERVAL`` rows, so the table holds at most
``MAX_ENTRIES`` plus that many per process before a check culls it, and it is culled only when
it is over ``MAX_ENTRIES``, exactly as with Django's backend, so entries are never dropped
sooner than Django would drop them (the login throttle relies on that).

Errors. As in Django, a write that the database refuses (a read-only database, a value the
column cannot hold) returns ``False`` / is ignored; a connection that is gone raises, as
Django's ``COUNT(*)`` before the write would have.
"""

from __future__ import annotations

import base64
import itertools
import pickle
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import DatabaseError, connections, router, transaction
from django.utils.timezone import now as tz_now

DEFAULT_CULL_CHECK_INTERVAL = 100

# Writes per (database, table) in this process; next() on a count is atomic under the GIL.
# Per process, not per cache object: Django makes one cache object per thread.
_writes: dict[tuple[str, str], itertools.count[int]] = {}


class DatabaseCache(DjangoDatabaseCache):
    """Django's ``DatabaseCache`` whose ``set``/``add`` are one upsert and ``touch`` one
    UPDATE, with the culling check every ``CULL_CHECK_INTERVAL`` writes (see the module)."""

    def __init__(self, table: str, params: dict[str, Any]) -> None:
        super().__init__(table, params)
        self._table: str = table  # Django's attribute, not in the stubs
        options = params.get("OPTIONS") or {}
        interval = int(options.get("CULL_CHECK_INTERVAL", DEFAULT_CULL_CHECK_INTERVAL))
        if interval < 1:
            raise ValueError("CULL_CHECK_INTERVAL must be at least 1")
        self._cull_check_interval = interval
        self._sql: dict[str, tuple[str, str, str]] = {}  # per database alias

    # --- writes -------------------------------------------------------------------------

    def set(
        self, key: Any, value: Any, timeout: float | None = DEFAULT_TIMEOUT, version: Any = None
    ) -> None:
        key = self.make_and_validate_key(key, version=version)
        self._write("set", key, value, timeout)

    def add(
        self, key: Any, value: Any, timeout: float | None = DEFAULT_TIMEOUT, version: Any = None
    ) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._write("add", key, value, timeout)

    def touch(self, key: Any, timeout: float | None = DEFAULT_TIMEOUT, version: Any = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        return self._write("touch", key, None, timeout)

    def _write(self, mode: str, key: str, value: Any, timeout: float | None) -> bool:
        expires = self._expires(self.get_backend_timeout(timeout))
        db = router.db_for_write(self.cache_model_class)
        connection = connections[db]
        upsert, add, touch = self._statements(db)
        if mode == "touch":
            sql, params = touch, [connection.ops.adapt_datetimefield_value(expires), key]
        else:
            pickled = pickle.dumps(value, self.pickle_protocol)  # PickleError propagates
            # The column holds text: base64 of the pickle, as Django writes it (refs #19274).
            encoded = base64.b64encode(pickled).decode("latin1")
            params = [key, encoded, connection.ops.adapt_datetimefield_value(expires)]
            if mode == "add":
                now = tz_now().replace(microsecond=0)
                sql = add
                params.append(connection.ops.adapt_datetimefield_value(now))
            else:
                sql = upsert
        with connection.cursor() as cursor:
            if mode != "touch" and self._cull_check_due(db):
                self._cull_if_full(db, cursor)
            try:
                if connection.in_atomic_block:
                    with transaction.atomic(using=db):  # a savepoint: a failure stays here
                        cursor.execute(sql, params)
                else:
                    cursor.execute(sql, params)  # autocommit: the statement is its transaction
            except DatabaseError:
                if not connection.is_usable():
                    raise  # the database is gone: say so, as Django's COUNT(*) would have
                return False  # refused (read-only, too long...): ignored, as Django does
            return bool(cursor.rowcount)

    @staticmethod
    def _expires(timeout: float | None) -> datetime:
        """The ``expires`` value Django's backend writes for an absolute ``timeout``."""
        if timeout is None:
            expires = datetime.max
        else:
            tz = UTC if settings.USE_TZ else None
            expires = datetime.fromtimestamp(timeout, tz=tz)
        return expires.replace(microsecond=0)

    def _statements(self, db: str) -> tuple[str, str, str]:
        """The upsert, the add (an upsert that updates only an expired row) and the touch."""
        sql = self._sql.get(db)
        if sql is None:
            # Quoted names only (the table is the LOCATION setting); values are parameters.
            qn = connections[db].ops.quote_name
            table, key, value, expires = (
                qn(self._table),
                qn("cache_key"),
                qn("value"),
                qn("expires"),
            )
            upsert = (
                f"INSERT INTO {table} ({key}, {value}, {expires}) VALUES (%s, %s, %s) "  # noqa: S608
                f"ON CONFLICT ({key}) DO UPDATE SET {value} = excluded.{value}, "
                f"{expires} = excluded.{expires}"
            )
            add = f"{upsert} WHERE {table}.{expires} < %s"
            touch = f"UPDATE {table} SET {expires} = %s WHERE {key} = %s"  # noqa: S608
            sql = self._sql[db] = (upsert, add, touch)
        return sql

    # --- culling ------------------------------------------------------------------------

    def _cull_check_due(self, db: str) -> bool:
        """True on this process's first write to the table and every interval-th after."""
        counter = _writes.setdefault((db, self._table), itertools.count())
        return next(counter) % self._cull_check_interval == 0

    def _cull_if_full(self, db: str, cursor: Any) -> None:
        """Django's check: count the rows; over ``MAX_ENTRIES``, Django's ``_cull``."""
        table = connections[db].ops.quote_name(self._table)
        cursor.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608
        num = cursor.fetchone()[0]
        if num > self._max_entries:
            now = tz_now().replace(microsecond=0)
            self._cull(db, cursor, now, num)  # type: ignore[attr-defined]  # not in the stubs
