"""Database outages, answered alike everywhere: each API shape's own 503 (Hitachi's 412), the
console's plain page, one log line per outage, and the end of the outage noticed.

The views' exception handlers answer what DRF views raise (:mod:`outbound.core.errors` and
each dialect's ``errors``); this middleware answers what other views raise (the console, a
template's rendering), and ``handler500`` (:mod:`outbound.api_errors`) what middleware
raises (a session saved, say). After an answered outage this thread's connections are closed,
so the next request connects anew; while the outage lasts, a request that found the database
reachable probes whether it takes writes again (a read-only database still serves reads).
A connection another thread opened before an outage began or ended is closed before its
request, so a multi-threaded server does not fail one request per thread after a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.signals import connection_created
from django.http import HttpRequest, HttpResponseBase

from outbound import api_errors
from outbound.core.errors import OUTAGE, drop_connections, is_database_unavailable


def _opened(sender: Any, connection: Any, **kwargs: Any) -> None:
    OUTAGE.opened(connection)


class DatabaseOutageMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response
        connection_created.connect(_opened, dispatch_uid="outbound.middleware.opened")

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        if OUTAGE.epoch:  # there has been an outage: this thread's connection may predate it
            drop_connections(only=OUTAGE.stale)
        response = self.get_response(request)
        if getattr(response, "database_unavailable", False):
            drop_connections()
        elif OUTAGE.active and connections[DEFAULT_DB_ALIAS].connection is not None:
            OUTAGE.probe()
        return response

    def process_exception(
        self, request: HttpRequest, exception: Exception
    ) -> HttpResponseBase | None:
        if not is_database_unavailable(exception):
            return None  # not ours: Django's handling (handler500) as before
        return api_errors.database_unavailable(request, exception)
