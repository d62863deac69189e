"""``outbound.core.cache.DatabaseCache``: Django's database cache with one-statement writes.

The first part is Django's own expectations of a cache backend (``tests/cache/tests.py``:
``BaseCacheTests`` and ``DBCacheTests``), run against the real table on whichever database the
suite uses (SQLite, or PostgreSQL with ``DATABASE_URL``), in autocommit as the application runs.
Waits are replaced by timeouts already in the past (the backend stores expiry to the second, so
a 1-second timeout is a race). The second part is this backend's own: one statement per
write, the culling check every ``CULL_CHECK_INTERVAL`` writes, rows shared with Django's
backend, atomic ``add``, and refused writes.
"""

from __future__ import annotations

import asyncio
import pickle
import threading
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from django.core.cache import CacheKeyWarning, cache, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.db import DatabaseCache as DjangoDatabaseCache
from django.db import DatabaseError, connection, connections, transaction
from django.test.utils import CaptureQueriesContext

from outbound import settings as app_settings
from outbound.core import cache as cache_module
from outbound.core.cache import DatabaseCache

pytestmark = pytest.mark.django_db(transaction=True)  # autocommit, as in the application

BACKEND = "outbound.core.cache.DatabaseCache"
TABLE = "outbound_cache"
PAST = -10  # a timeout whose expiry is already over
MONTH = 60 * 60 * 24 * 30


def custom_key_func(key: str, key_prefix: str, version: int) -> str:
    """A customized cache key function (Django's test's)."""
    return "CUSTOM-" + "-".join([key_prefix, str(version), key])


def f() -> int:
    return 42


class C:
    def m(self) -> int:
        return 24


class Unpicklable:
    def __getstate__(self) -> Any:
        raise pickle.PickleError()


def caches_setting(**params: Any) -> dict[str, dict[str, Any]]:
    """Django's test aliases, all on the application's table."""
    base = {"BACKEND": BACKEND, "LOCATION": TABLE, **params}
    aliases: dict[str, dict[str, Any]] = {
        "default": {},
        "prefix": {"KEY_PREFIX": "cacheprefix"},
        "v2": {"VERSION": 2},
        "custom_key": {"KEY_FUNCTION": custom_key_func},
        "custom_key2": {"KEY_FUNCTION": "tests.core.test_cache.custom_key_func"},
        # Django's cull tests count on a check before every write: interval 1.
        "cull": {"OPTIONS": {"MAX_ENTRIES": 30, "CULL_CHECK_INTERVAL": 1}},
        "zero_cull": {
            "OPTIONS": {"CULL_FREQUENCY": 0, "MAX_ENTRIES": 30, "CULL_CHECK_INTERVAL": 1}
        },
    }
    return {name: {**base, **extra} for name, extra in aliases.items()}


@pytest.fixture(autouse=True)
def _test_caches(settings: Any) -> Iterator[None]:
    settings.CACHES = caches_setting()
    cache_module._writes.clear()
    cache.clear()
    yield
    cache.clear()


def rows() -> dict[str, tuple[str, Any]]:
    """The table as stored: key -> (value text, expires as the database returns it)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT cache_key, value, expires FROM {TABLE}")
        return {key: (value, expires) for key, value, expires in cursor.fetchall()}


def count_rows() -> int:
    return len(rows())


def as_datetime(expires: Any) -> datetime:
    """``expires`` as read by a bare cursor: text on SQLite, a datetime on PostgreSQL."""
    if isinstance(expires, str):
        return datetime.fromisoformat(expires)
    assert isinstance(expires, datetime)
    return expires.replace(tzinfo=None) if expires.tzinfo else expires


def same_row(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    """The same value, and expiries the same but for the second that may have ticked
    between the two writes (each backend truncates its expiry to the second)."""
    gap = abs((as_datetime(a[1]) - as_datetime(b[1])).total_seconds())
    return a[0] == b[0] and type(a[1]) is type(b[1]) and gap <= 1


# --- Django's expectations (BaseCacheTests, DBCacheTests) -------------------------------------


def test_the_configured_backend_is_this_one() -> None:
    assert type(caches["default"]) is DatabaseCache
    assert issubclass(DatabaseCache, DjangoDatabaseCache)


def test_simple() -> None:
    cache.set("key", "value")
    assert cache.get("key") == "value"


def test_default_used_when_none_is_set() -> None:
    cache.set("key_default_none", None)
    assert cache.get("key_default_none", default="default") is None


def test_add() -> None:
    assert cache.add("addkey1", "value") is True
    assert cache.add("addkey1", "newvalue") is False
    assert cache.get("addkey1") == "value"


def test_prefix() -> None:
    cache.set("somekey", "value")
    assert caches["prefix"].has_key("somekey") is False
    caches["prefix"].set("somekey", "value2")
    assert cache.get("somekey") == "value"
    assert caches["prefix"].get("somekey") == "value2"


def test_non_existent() -> None:
    assert cache.get("does_not_exist") is None
    assert cache.get("does_not_exist", "bang!") == "bang!"


def test_get_many() -> None:
    cache.set_many({"a": "a", "b": "b", "c": "c", "d": "d"})
    assert cache.get_many(["a", "c", "d"]) == {"a": "a", "c": "c", "d": "d"}
    assert cache.get_many(["a", "b", "e"]) == {"a": "a", "b": "b"}
    assert cache.get_many(iter(["a", "b", "e"])) == {"a": "a", "b": "b"}
    cache.set_many({"x": None, "y": 1})
    assert cache.get_many(["x", "y"]) == {"x": None, "y": 1}


def test_delete() -> None:
    cache.set_many({"key1": "spam", "key2": "eggs"})
    assert cache.get("key1") == "spam"
    assert cache.delete("key1") is True
    assert cache.get("key1") is None
    assert cache.get("key2") == "eggs"
    assert cache.delete("nonexistent_key") is False


def test_has_key_and_in() -> None:
    cache.set("hello1", "goodbye1")
    assert cache.has_key("hello1") is True
    assert cache.has_key("goodbye1") is False
    cache.set("no_expiry", "here", None)
    assert cache.has_key("no_expiry") is True
    cache.set("null", None)
    assert cache.has_key("null") is True
    assert "hello1" in cache and "null" in cache and "goodbye1" not in cache


def test_incr_and_decr() -> None:
    cache.set("answer", 41)
    assert cache.incr("answer") == 42
    assert cache.get("answer") == 42
    assert cache.incr("answer", 10) == 52
    assert cache.incr("answer", -10) == 42
    assert cache.decr("answer") == 41
    assert cache.decr("answer", 10) == 31
    assert cache.decr("answer", -11) == 42
    assert cache.get("answer") == 42
    for call in (cache.incr, cache.decr):
        with pytest.raises(ValueError):
            call("does_not_exist")
    cache.set("null", None)
    with pytest.raises(TypeError):
        cache.incr("null")
    with pytest.raises(TypeError):
        cache.decr("null")


def test_close() -> None:
    cache.close()


def test_data_types() -> None:
    values = {
        "string": "this is a string",
        "int": 42,
        "bool": True,
        "list": [1, 2, 3, 4],
        "tuple": (1, 2, 3, 4),
        "dict": {"A": 1, "B": 2},
        "function": f,
        "class": C,
    }
    for key, value in values.items():
        cache.set(key, value)
        assert cache.get(key) == value, key


def test_expiration() -> None:
    cache.set("expire1", "very quickly", PAST)
    cache.set("expire2", "very quickly", PAST)
    cache.set("expire3", "very quickly", PAST)
    assert cache.get("expire1") is None
    assert cache.add("expire2", "newvalue") is True  # over an expired row
    assert cache.get("expire2") == "newvalue"
    assert cache.has_key("expire3") is False


def test_touch() -> None:
    cache.set("expire1", "very quickly", timeout=PAST)
    assert cache.get("expire1") is None
    cache.set("expire1", "soon", timeout=60)
    assert cache.touch("expire1", timeout=PAST) is True
    assert cache.has_key("expire1") is False
    cache.set("expire1", "soon", timeout=60)
    assert cache.touch("expire1", timeout=3600) is True
    assert cache.get("expire1") == "soon"
    assert cache.touch("expire1") is True  # the default timeout (300 s)
    assert cache.has_key("expire1") is True
    assert cache.touch("nonexistent") is False


def test_touch_moves_the_expiry_as_djangos_does() -> None:
    cache.set("k", "v", 60)
    cache.touch("k", 3600)
    ours = rows()[cache.make_key("k")]
    DjangoDatabaseCache(TABLE, {}).touch("k", 3600)
    assert same_row(rows()[cache.make_key("k")], ours)
    assert cache.get("k") == "v"


def test_unicode() -> None:
    stuff = {
        "ascii": "ascii_value",
        "unicode_ascii": "Iñtërnâtiônàlizætiøn1",
        "Iñtërnâtiônàlizætiøn": "Iñtërnâtiônàlizætiøn2",
        "ascii2": {"x": 1},
    }
    for key, value in stuff.items():
        cache.set(key, value)
        assert cache.get(key) == value
    for key, value in stuff.items():
        assert cache.delete(key) is True
        assert cache.add(key, value) is True
        assert cache.get(key) == value
    for key in stuff:
        assert cache.delete(key) is True
    cache.set_many(stuff)
    for key, value in stuff.items():
        assert cache.get(key) == value


def test_binary_string() -> None:
    value = "value_to_be_compressed"
    compressed = zlib.compress(value.encode())
    cache.set("binary1", compressed)
    assert zlib.decompress(cache.get("binary1")).decode() == value
    assert cache.add("binary1-add", compressed) is True
    assert cache.get("binary1-add") == compressed
    cache.set_many({"binary1-set_many": compressed})
    assert cache.get("binary1-set_many") == compressed


def test_set_many() -> None:
    assert cache.set_many({"key1": "spam", "key2": "eggs"}) == []
    assert cache.get("key1") == "spam"
    assert cache.get("key2") == "eggs"
    assert cache.set_many({}) == []
    cache.set_many({"key1": "spam", "key2": "eggs"}, PAST)
    assert cache.get("key1") is None
    assert cache.get("key2") is None


def test_delete_many() -> None:
    cache.set_many({"key1": "spam", "key2": "eggs", "key3": "ham"})
    cache.delete_many(["key1", "key2"])
    assert cache.get("key1") is None
    assert cache.get("key2") is None
    assert cache.get("key3") == "ham"
    assert cache.delete_many([]) is None


def test_clear() -> None:
    cache.set_many({"key1": "spam", "key2": "eggs"})
    cache.clear()
    assert cache.get("key1") is None
    assert cache.get("key2") is None
    assert count_rows() == 0


def test_long_timeout() -> None:
    cache.set("key1", "eggs", MONTH + 1)
    assert cache.get("key1") == "eggs"
    assert cache.add("key2", "ham", MONTH + 1) is True
    assert cache.get("key2") == "ham"
    cache.set_many({"key3": "sausage", "key4": "lobster bisque"}, MONTH + 1)
    assert cache.get_many(["key3", "key4"]) == {"key3": "sausage", "key4": "lobster bisque"}


def test_forever_timeout() -> None:
    cache.set("key1", "eggs", None)
    assert cache.get("key1") == "eggs"
    assert cache.add("key2", "ham", None) is True
    assert cache.get("key2") == "ham"
    assert cache.add("key1", "new eggs", None) is False
    assert cache.get("key1") == "eggs"
    cache.set_many({"key3": "sausage", "key4": "lobster bisque"}, None)
    assert cache.get_many(["key3", "key4"]) == {"key3": "sausage", "key4": "lobster bisque"}
    cache.set("key5", "belgian fries", timeout=PAST)
    cache.set("key5", "belgian fries", timeout=60)
    assert cache.touch("key5", timeout=None) is True
    expires = rows()[cache.make_key("key5")][1]
    assert str(expires).startswith("9999-12-31 23:59:59")  # datetime.max, as Django stores it
    assert cache.get("key5") == "belgian fries"


def test_zero_timeout() -> None:
    cache.set("key1", "eggs", 0)
    assert cache.get("key1") is None
    assert cache.add("key2", "ham", 0) is True
    assert cache.get("key2") is None
    cache.set_many({"key3": "sausage", "key4": "lobster bisque"}, 0)
    assert cache.get("key3") is None
    assert cache.get("key4") is None
    cache.set("key5", "belgian fries", timeout=5)
    assert cache.touch("key5", timeout=0) is True
    assert cache.get("key5") is None


def test_float_timeout() -> None:
    cache.set("key1", "spam", 100.2)
    assert cache.get("key1") == "spam"


def _perform_cull_test(name: str, initial_count: int, final_count: int) -> None:
    cull_cache = caches[name]
    for i in range(1, initial_count):
        cull_cache.set(f"cull{i}", "value", 1000)
    kept = sum(cull_cache.has_key(f"cull{i}") for i in range(1, initial_count))
    assert kept == final_count


def test_cull() -> None:
    _perform_cull_test("cull", 50, 29)


def test_zero_cull() -> None:
    _perform_cull_test("zero_cull", 50, 18)  # DBCacheTests' figure


def test_cull_delete_when_store_empty() -> None:
    cull_cache = caches["cull"]
    cull_cache._max_entries = -1  # cull on the first write
    cull_cache.set("force_cull_delete", "value", 1000)
    assert cull_cache.has_key("force_cull_delete") is True


def test_cull_queries() -> None:
    cull_cache = caches["cull"]
    cull_cache._max_entries = -1
    with CaptureQueriesContext(connection) as queries:
        cull_cache.set("force_cull", "value", 1000)
    assert sum("COUNT" in q["sql"] for q in queries) == 1
    qn = connection.ops.quote_name
    for q in queries:
        if "expires" in q["sql"]:
            assert qn("expires") in q["sql"]
        if "cache_key" in q["sql"]:
            assert qn("cache_key") in q["sql"]


def test_get_many_num_queries() -> None:
    cache.set_many({"a": 1, "b": 2})
    cache.set("expired", "expired", PAST)
    with CaptureQueriesContext(connection) as queries:
        assert cache.get_many(["a", "b"]) == {"a": 1, "b": 2}
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:
        assert cache.get_many(["a", "b", "expired"]) == {"a": 1, "b": 2}
    assert len(queries) == 2  # the SELECT, and the DELETE of the expired row
    assert cache.make_key("expired") not in rows()


def test_delete_many_num_queries() -> None:
    cache.set_many({"a": 1, "b": 2, "c": 3})
    with CaptureQueriesContext(connection) as queries:
        cache.delete_many(["a", "b", "c"])
    assert len(queries) == 1


def test_has_key_query_columns_quoted() -> None:
    with CaptureQueriesContext(connection) as queries:
        cache.has_key("key")
    assert len(queries) == 1
    assert connection.ops.quote_name("expires") in queries[0]["sql"]
    assert connection.ops.quote_name("cache_key") in queries[0]["sql"]


@pytest.mark.parametrize(
    ("key", "warning"),
    [
        ("key with spaces and 清", "Cache key contains characters that will cause errors"),
        ("a" * 250 + "清", "Cache key will cause errors if used with memcached"),
    ],
)
def test_invalid_keys_warn(key: str, warning: str) -> None:
    calls: list[tuple[str, list[Any]]] = [
        ("add", [key, 1]),
        ("get", [key]),
        ("set", [key, 1]),
        ("incr", [key]),
        ("decr", [key]),
        ("touch", [key]),
        ("delete", [key]),
        ("get_many", [[key, "b"]]),
        ("set_many", [{key: 1, "b": 2}]),
        ("delete_many", [[key, "b"]]),
    ]
    cache.key_func = lambda key, *args: key  # as Django's test: no prefix, no version
    for operation, args in calls:
        with pytest.warns(CacheKeyWarning, match=warning):
            getattr(cache, operation)(*args)


def test_versioning_get_set() -> None:
    cache.set("answer1", 42)
    assert cache.get("answer1") == 42
    assert cache.get("answer1", version=1) == 42
    assert cache.get("answer1", version=2) is None
    assert caches["v2"].get("answer1") is None
    assert caches["v2"].get("answer1", version=1) == 42
    cache.set("answer2", 42, version=2)
    assert cache.get("answer2") is None
    assert caches["v2"].get("answer2") == 42
    caches["v2"].set("answer4", 42, version=1)
    assert cache.get("answer4") == 42
    assert caches["v2"].get("answer4") is None


def test_versioning_add() -> None:
    assert cache.add("answer1", 42, version=2) is True
    assert cache.get("answer1", version=1) is None
    assert cache.get("answer1", version=2) == 42
    assert cache.add("answer1", 37, version=2) is False
    assert cache.add("answer1", 37, version=1) is True
    assert cache.get("answer1", version=1) == 37
    assert cache.get("answer1", version=2) == 42
    assert caches["v2"].add("answer2", 42) is True
    assert caches["v2"].add("answer2", 37) is False
    assert caches["v2"].add("answer2", 37, version=1) is True
    assert cache.get("answer2", version=2) == 42


def test_versioning_has_key_delete_incr() -> None:
    cache.set("answer1", 37, version=1)
    cache.set("answer1", 42, version=2)
    assert cache.has_key("answer1", version=2) is True
    assert caches["v2"].has_key("answer1", version=3) is False
    assert cache.incr("answer1") == 38
    assert cache.get("answer1", version=2) == 42
    assert caches["v2"].decr("answer1") == 41
    assert cache.get("answer1", version=1) == 38
    assert caches["v2"].delete("answer1") is True
    assert cache.get("answer1", version=1) == 38
    assert cache.get("answer1", version=2) is None


def test_versioning_get_set_many() -> None:
    cache.set_many({"ford1": 37, "arthur1": 42})
    assert cache.get_many(["ford1", "arthur1"]) == {"ford1": 37, "arthur1": 42}
    assert cache.get_many(["ford1", "arthur1"], version=2) == {}
    assert caches["v2"].get_many(["ford1", "arthur1"]) == {}
    caches["v2"].set_many({"ford3": 37, "arthur3": 42})
    assert cache.get_many(["ford3", "arthur3"], version=2) == {"ford3": 37, "arthur3": 42}


def test_incr_and_decr_version() -> None:
    cache.set("answer", 42, version=2)
    assert cache.incr_version("answer", version=2) == 3
    assert cache.get("answer", version=2) is None
    assert cache.get("answer", version=3) == 42
    assert cache.decr_version("answer", version=3) == 2
    assert cache.get("answer", version=2) == 42
    with pytest.raises(ValueError):
        cache.incr_version("does_not_exist")
    cache.set("null", None)
    assert cache.incr_version("null") == 2


def test_custom_key_func() -> None:
    cache.set("answer1", 42)
    assert caches["custom_key"].get("answer1") is None
    assert caches["custom_key2"].get("answer1") is None
    caches["custom_key"].set("answer2", 42)
    assert cache.get("answer2") is None
    assert caches["custom_key"].get("answer2") == 42
    assert caches["custom_key2"].get("answer2") == 42


def test_pickle_errors_are_raised() -> None:
    with pytest.raises(pickle.PickleError):
        cache.add("unpicklable", Unpicklable())
    with pytest.raises(pickle.PickleError):
        cache.set("unpicklable", Unpicklable())


def test_get_or_set() -> None:
    assert cache.get("projector") is None
    assert cache.get_or_set("projector", 42) == 42
    assert cache.get("projector") == 42
    assert cache.get_or_set("null", None) is None
    assert cache.get("null", "default") is None
    assert cache.get_or_set("mykey", lambda: "value") == "value"
    assert cache.get_or_set("mykey", "other") == "value"
    assert cache.get_or_set("brian", 1979, version=2) == 1979
    assert cache.get("brian", version=1) is None


def test_the_async_methods_use_these_writes() -> None:
    async def calls() -> None:
        assert await cache.aadd("async", 1) is True
        assert await cache.aadd("async", 2) is False
        await cache.aset("async", 3)
        assert await cache.aget("async") == 3
        assert await cache.atouch("async", 60) is True
        assert await cache.aincr("async") == 4
        assert await cache.adelete("async") is True

    # In a thread of its own: a test before this one may leave an event loop running in
    # this thread (the browser tests' Playwright does), where async_to_sync refuses to run.
    failures: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(calls())
        except BaseException as exc:  # reported below, in the test's own thread
            failures.append(exc)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(30)
    if failures:
        raise failures[0]


# --- one statement per write ---------------------------------------------------------


def statements(call: Callable[[], Any]) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        call()
    return [q["sql"] for q in queries]


def test_get_set_add_touch_are_one_statement_each() -> None:
    cache.set("warm", 1)  # this process's first write checks the size
    assert len(statements(lambda: cache.get("throttle"))) == 1
    insert = statements(lambda: cache.set("throttle", [1.0]))
    update = statements(lambda: cache.set("throttle", [2.0, 1.0], 60))
    assert len(insert) == len(update) == 1
    assert "ON CONFLICT" in insert[0] and "COUNT" not in insert[0]
    assert len(statements(lambda: cache.get("throttle"))) == 1
    assert cache.get("throttle") == [2.0, 1.0]
    assert len(statements(lambda: cache.add("slot", 1))) == 1
    assert len(statements(lambda: cache.add("slot", 2))) == 1
    assert len(statements(lambda: cache.touch("slot", 60))) == 1
    assert cache.get("slot") == 1


def test_inside_a_transaction_a_write_is_one_statement_in_a_savepoint() -> None:
    cache.set("warm", 1)
    with transaction.atomic():
        sql = statements(lambda: cache.set("in-transaction", "v"))
        assert cache.get("in-transaction") == "v"
    assert len(sql) == 3 and "SAVEPOINT" in sql[0] and "ON CONFLICT" in sql[1]
    assert cache.get("in-transaction") == "v"
    with transaction.atomic():
        cache.set("rolled-back", "v")
        transaction.set_rollback(True)
    assert cache.get("rolled-back") is None


# --- culling ---------------------------------------------------------------------------


def limited(max_entries: int, interval: int, frequency: int = 3) -> DatabaseCache:
    options = {
        "MAX_ENTRIES": max_entries,
        "CULL_FREQUENCY": frequency,
        "CULL_CHECK_INTERVAL": interval,
    }
    return DatabaseCache(TABLE, {"OPTIONS": options})


def test_the_size_is_checked_on_the_first_write_and_every_interval_after() -> None:
    small = limited(max_entries=1000, interval=5)
    counts = [
        sum("COUNT" in sql for sql in statements(lambda i=i: small.set(f"k{i}", i)))
        for i in range(12)
    ]
    assert counts == [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0]
    # touch never adds a row: no check; add does, like set.
    assert "COUNT" not in " ".join(statements(lambda: small.touch("k1", 60)))
    counts = [
        sum("COUNT" in sql for sql in statements(lambda i=i: small.add(f"a{i}", i)))
        for i in range(4)
    ]
    assert counts == [0, 0, 0, 1]  # writes 13..16 of this process; the 16th is checked


def test_the_count_is_per_process_not_per_cache_object() -> None:
    first, second = limited(1000, interval=3), limited(1000, interval=3)
    checked = []
    for i in range(6):
        writer = first if i % 2 else second
        sql = statements(lambda writer=writer, i=i: writer.set(f"k{i}", i))
        checked.append(any("COUNT" in s for s in sql))
    assert checked == [True, False, False, True, False, False]


def test_the_table_is_culled_only_over_max_entries_and_stays_within_the_bound() -> None:
    max_entries, interval = 20, 5
    small = limited(max_entries, interval)
    peak = 0
    for i in range(200):
        small.set(f"k{i:03d}", i, 600)
        peak = max(peak, count_rows())
    assert peak <= max_entries + interval  # a space bound: at most one interval over
    assert count_rows() <= max_entries + interval


def test_entries_are_not_culled_while_the_table_is_within_max_entries() -> None:
    """The login throttle's guarantee: nothing live is dropped before MAX_ENTRIES rows."""
    small = limited(max_entries=30, interval=1)
    for i in range(30):
        assert small.add(f"slot{i}", i, 600) is True
    small.set("one-more-check", 0, 600)  # finds 30 rows: not over, nothing culled
    assert all(small.has_key(f"slot{i}") for i in range(30))


def test_expired_rows_go_first_when_culling() -> None:
    stock = DjangoDatabaseCache(TABLE, {})  # writes without this backend's write count
    for i in range(8):
        stock.set(f"live{i}", i, 600)
    for i in range(5):
        stock.set(f"old{i}", i, PAST)
    small = limited(max_entries=10, interval=1)
    small.set("trigger", 0, 600)  # 13 rows > 10: the 5 expired ones are deleted, enough
    assert all(small.has_key(f"live{i}") for i in range(8))
    assert count_rows() == 9


def test_the_application_keeps_its_culling_figures() -> None:
    app_cache = app_settings.CACHES["default"]
    assert app_cache["BACKEND"] == BACKEND
    assert app_cache["LOCATION"] == TABLE
    assert app_cache["OPTIONS"]["MAX_ENTRIES"] == 100_000
    assert app_cache["OPTIONS"]["CULL_FREQUENCY"] == 10
    built = DatabaseCache(TABLE, {"OPTIONS": app_cache["OPTIONS"]})
    assert (built._max_entries, built._cull_frequency) == (100_000, 10)


def test_a_nonsense_interval_is_refused() -> None:
    with pytest.raises(ValueError, match="CULL_CHECK_INTERVAL"):
        limited(10, interval=0)


# --- rows shared with Django's backend -------------------------------------------------


@pytest.mark.parametrize("use_tz", [True, False])
def test_rows_are_the_same_as_djangos(settings: Any, use_tz: bool) -> None:
    settings.USE_TZ = use_tz
    ours, stock = DatabaseCache(TABLE, {}), DjangoDatabaseCache(TABLE, {})
    value = {"history": [1.5, 2.5], "text": "Iñtërnâtiônàl"}
    for timeout in (60, None, MONTH + 1):
        ours.set("ours", value, timeout)
        stock.set("stock", value, timeout)
        stored = rows()
        assert same_row(stored[ours.make_key("ours")], stored[stock.make_key("stock")])
        if timeout is None:
            assert stored[ours.make_key("ours")] == stored[stock.make_key("stock")]
    ours.add("ours-add", value, 60)
    stock.add("stock-add", value, 60)
    stored = rows()
    assert same_row(stored[ours.make_key("ours-add")], stored[stock.make_key("stock-add")])
    # each reads the other's rows, live and expired
    stock.set("by-stock", value, 60)
    ours.set("by-ours", value, 60)
    assert ours.get("by-stock") == value and stock.get("by-ours") == value
    assert ours.has_key("by-stock") and stock.has_key("by-ours")
    stock.set("stock-expired", value, PAST)
    ours.set("ours-expired", value, PAST)
    assert ours.get("stock-expired") is None and stock.get("ours-expired") is None
    assert ours.add("ours-expired", 2, 60) is True and stock.get("ours-expired") == 2
    stock.set("stock-old", value, PAST)
    assert ours.add("stock-old", 3, 60) is True and stock.get("stock-old") == 3
    assert ours.add("by-stock", 4, 60) is False and stock.get("by-stock") == value
    assert ours.touch("by-stock", None) is True and stock.get("by-stock") == value
    assert isinstance(ours._expires(None), datetime)


# --- add is atomic ---------------------------------------------------------------------


def race(worker: Callable[[], bool], threads: int = 8) -> list[bool]:
    """Run ``worker`` in ``threads`` threads released together; their results."""
    barrier = threading.Barrier(threads)
    results: list[bool] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            connections["default"].ensure_connection()
            barrier.wait()
            results.append(worker())
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(30)
    assert not errors, errors
    return results


@pytest.mark.parametrize("existing", ["absent", "expired"])
def test_concurrent_adds_of_one_key_store_it_once(existing: str) -> None:
    if existing == "expired":
        cache.set("login-slot", "old", PAST)
    for _ in range(3):
        results = race(lambda: caches["default"].add("login-slot", "mine", 600))
        assert sorted(results) == [False] * 7 + [True], results
        cache.delete("login-slot")
        if existing == "expired":
            cache.set("login-slot", "old", PAST)


# --- refused writes and a database that is gone ----------------------------------------


@pytest.fixture
def refusing_table() -> Iterator[None]:
    """A trigger refuses writes of keys containing 'refused' (a read-only table, in effect)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "CREATE FUNCTION outbound_cache_refuse() RETURNS trigger AS $$ BEGIN "
                "IF NEW.cache_key LIKE '%refused%' THEN RAISE EXCEPTION 'refused'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER outbound_cache_refuse BEFORE INSERT OR UPDATE ON {TABLE} "
                "FOR EACH ROW EXECUTE FUNCTION outbound_cache_refuse()"
            )
        else:
            for event in ("INSERT", "UPDATE"):
                cursor.execute(
                    f"CREATE TRIGGER outbound_cache_refuse_{event} BEFORE {event} ON {TABLE} "
                    "WHEN NEW.cache_key LIKE '%refused%' BEGIN SELECT RAISE(ABORT, 'refused'); END"
                )
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                cursor.execute(f"DROP TRIGGER outbound_cache_refuse ON {TABLE}")
                cursor.execute("DROP FUNCTION outbound_cache_refuse()")
            else:
                for event in ("INSERT", "UPDATE"):
                    cursor.execute(f"DROP TRIGGER outbound_cache_refuse_{event}")


@pytest.mark.usefixtures("refusing_table")
def test_a_refused_write_is_ignored_like_djangos() -> None:
    cache.set("refused", 1)
    assert cache.get("refused") is None
    assert cache.add("refused", 1) is False
    stock = DjangoDatabaseCache(TABLE, {})
    assert stock.add("refused", 1) is False  # the same answer
    cache.set("accepted", 1)
    assert cache.get("accepted") == 1


@pytest.mark.usefixtures("refusing_table")
def test_a_refused_write_inside_a_transaction_leaves_the_transaction_usable() -> None:
    with transaction.atomic():
        cache.set("before", 1)
        assert cache.add("refused", 1) is False
        cache.set("after", 2)  # the transaction goes on
        assert cache.get_many(["before", "after"]) == {"before": 1, "after": 2}
    assert cache.get_many(["before", "after", "refused"]) == {"before": 1, "after": 2}


@pytest.mark.skipif(
    "connection.vendor != 'postgresql'",
    reason="SQLite has no server to lose",
)
def test_a_lost_connection_raises_rather_than_being_ignored() -> None:
    cache.set("warm", 1)  # this process's size check is behind us
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    other = connection.copy()
    try:
        with other.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
    finally:
        other.close()
    try:
        with pytest.raises(DatabaseError):
            cache.set("after-the-loss", 1)
    finally:
        connection.close()
    cache.set("reconnected", 1)
    assert cache.get("reconnected") == 1


def test_the_base_class_still_provides_what_is_not_overridden() -> None:
    assert DatabaseCache.get_many is DjangoDatabaseCache.get_many
    assert DatabaseCache.has_key is DjangoDatabaseCache.has_key
    assert DatabaseCache.incr is BaseCache.incr
