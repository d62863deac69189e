"""Error bodies: one exception handler so services can raise and every API answers cleanly;
what a database outage is, how it is answered (503 and ``Retry-After``) and logged (once)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import (
    DEFAULT_DB_ALIAS,
    DatabaseError,
    IntegrityError,
    InterfaceError,
    OperationalError,
    connections,
    transaction,
)
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import ProtectedError
from django.http import Http404, HttpResponseBase
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

CONFLICT_MESSAGE = "The request conflicts with a concurrent change; please retry."


class ServiceError(Exception):
    """A refusal from a service that maps to an HTTP status with a ``detail`` message."""

    status_code: int = status.HTTP_400_BAD_REQUEST

    def __init__(self, detail: str, *, code: str | None = None, status_code: int | None = None):
        super().__init__(detail)
        self.detail = detail
        self.code = code
        if status_code is not None:
            self.status_code = status_code


class Conflict(ServiceError):
    status_code = status.HTTP_409_CONFLICT


def plain_message(detail: Any, default: str) -> str:
    """The first human sentence in a DRF error ``detail`` (a string, or a list or dictionary
    of them, as libraries raise), never a repr of the structure; ``default`` when none."""
    if isinstance(detail, dict):
        # A library's dictionary names its message "detail"; its other keys are internals.
        detail = detail.get("detail", next(iter(detail.values()), None))
    if isinstance(detail, list | tuple):
        detail = detail[0] if detail else None
    if isinstance(detail, dict | list | tuple):
        return plain_message(detail, default)
    return str(detail) if isinstance(detail, str) and detail.strip() else default


def plain_auth_error(exc: Exception) -> Exception:
    """``exc`` with a one-sentence ``detail`` when it is a 401 whose detail is a structure."""
    if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed) and not (
        isinstance(exc.detail, str)
    ):
        exc.detail = exceptions.ErrorDetail(
            plain_message(exc.detail, str(exceptions.AuthenticationFailed.default_detail)),
            code="authentication_failed",
        )
    return exc


def validation_error_body(exc: DjangoValidationError) -> Any:
    if hasattr(exc, "error_dict"):
        return {
            field: [m for e in errs for m in e.messages] for field, errs in exc.error_dict.items()
        }
    return {"non_field_errors": exc.messages}


# --- database outages -----------------------------------------------------------------------

DATABASE_UNAVAILABLE = "The database is unavailable; please try again shortly."
DATABASE_UNAVAILABLE_CODE = "database_unavailable"
# What every API shape answers in ``Retry-After`` while the database is away: a restart or a
# fail-over takes seconds, and a client that waits this long does not hammer it meanwhile.
RETRY_AFTER_SECONDS = 5
READ_ONLY_SQLSTATE = "25006"  # PostgreSQL's read_only_sql_transaction
READ_ONLY_PHRASES = ("read-only transaction", "readonly database")
# SQLite says "OperationalError" for its schema and syntax errors too (no such table, …: code
# SQLITE_ERROR): only these result codes (and their extended forms) are the database away.
SQLITE_UNAVAILABLE = (
    "SQLITE_BUSY",
    "SQLITE_LOCKED",
    "SQLITE_READONLY",
    "SQLITE_IOERR",
    "SQLITE_CANTOPEN",
    "SQLITE_FULL",
    "SQLITE_NOMEM",
    "SQLITE_PROTOCOL",
)

outage_logger = logging.getLogger("outbound.database")


def is_database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` says the database cannot serve now (rather than refusing this request):
    unreachable, restarting, dropped connections (``OperationalError``, ``InterfaceError``),
    or read-only — PostgreSQL's ``cannot execute … in a read-only transaction`` arrives as an
    ``InternalError``, SQLite's ``attempt to write a readonly database`` as an
    ``OperationalError``. Constraint errors are the request's, and SQLite's schema errors
    ("no such table", also an ``OperationalError``) the code's: never an outage."""
    if not isinstance(exc, DatabaseError) or isinstance(exc, IntegrityError):
        return False
    cause = exc.__cause__
    sqlite_error = getattr(cause, "sqlite_errorname", None)
    if sqlite_error is not None:
        return str(sqlite_error).startswith(SQLITE_UNAVAILABLE)
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    if getattr(cause, "sqlstate", None) == READ_ONLY_SQLSTATE:
        return True
    if getattr(cause, "pgcode", None) == READ_ONLY_SQLSTATE:  # psycopg2
        return True
    text = str(exc).lower()
    return any(phrase in text for phrase in READ_ONLY_PHRASES)


def database_error_reason(exc: BaseException) -> str:
    """The error's class and the first line of its message (the server's own words:
    "Connection refused", "… in a read-only transaction"; never a query's parameters)."""
    first = (str(exc).strip().splitlines() or [""])[0][:200]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def database_writable(alias: str = DEFAULT_DB_ALIAS) -> bool:
    """Whether the database takes writes now: a write that changes nothing, refused by a
    read-only database (PostgreSQL's hot standby or ``default_transaction_read_only``, an
    SQLite file opened read-only) as by an unreachable one."""
    table = connections[alias].ops.quote_name(MigrationRecorder.Migration._meta.db_table)
    try:
        with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
            cursor.execute(f"DELETE FROM {table} WHERE 1 = 0")  # noqa: S608 (no input)
    except DatabaseError:
        return False
    return True


def drop_connections(only: Callable[[Any], bool] | None = None) -> None:
    """Close this thread's database connections (outside a transaction; ``only`` those it
    picks), so the next query connects anew: a dropped connection is not reused, and a new
    one sees the database as it is now (no longer read-only, say), not as it was."""
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block or (only is not None and not only(connection)):
            continue
        try:
            connection.close()
        except DatabaseError:
            connection.connection = None  # it is gone whatever the driver said


class DatabaseOutage:
    """One process's view of the database: the first failure of an outage is logged
    (WARNING), the rest are counted and not logged, and the first sign that the database
    answers again — a write that succeeds — is logged once (INFO).

    ``epoch`` counts the outages' starts and ends: a connection opened in an earlier epoch
    (another thread's, idle while this one met the outage) is suspect — dropped by the
    restart, or opened while the database was read-only — and is closed before its thread's
    next request uses it (:meth:`stale`), rather than failing that request once."""

    PROBE_INTERVAL = 1.0  # seconds between recovery probes while the database is away

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._since: float | None = None
        self._refused = 0
        self._next_probe = 0.0
        self.epoch = 0

    def opened(self, connection: Any) -> None:
        """A connection was opened now (``connection_created``)."""
        connection.outage_epoch = self.epoch

    def stale(self, connection: Any) -> bool:
        """Whether ``connection`` is open and older than the last start or end of an outage."""
        opened = getattr(connection, "outage_epoch", 0)  # untagged: opened before any
        return connection.connection is not None and opened != self.epoch

    @property
    def active(self) -> bool:
        return self._since is not None

    def failed(self, exc: BaseException) -> None:
        with self._lock:
            self._refused += 1
            self._next_probe = time.monotonic() + self.PROBE_INTERVAL
            if self._since is not None:
                return
            self._since = time.monotonic()
            self.epoch += 1
        outage_logger.warning(
            "database unavailable (%s): requests are refused (Retry-After: %d) until it "
            "answers again",
            database_error_reason(exc),
            RETRY_AFTER_SECONDS,
        )

    def recovered(self) -> None:
        with self._lock:
            if self._since is None:
                return
            lasted, refused = time.monotonic() - self._since, self._refused
            self._since, self._refused = None, 0
            self.epoch += 1
        outage_logger.info(
            "database available again after %.1f s (%d requests refused)", lasted, refused
        )

    def probe(self, alias: str = DEFAULT_DB_ALIAS) -> bool:
        """During an outage, at most once per ``PROBE_INTERVAL``: whether the database takes
        writes again (then the outage ends). A read that succeeds proves little — a read-only
        database serves reads — so the probe writes (nothing)."""
        now = time.monotonic()
        with self._lock:
            if self._since is None:
                return True
            if now < self._next_probe:
                return False
            self._next_probe = now + self.PROBE_INTERVAL
        if database_writable(alias):
            self.recovered()
            return True
        drop_connections()  # the next attempt connects anew (and sees the database as it is)
        return False


OUTAGE = DatabaseOutage()

R = TypeVar("R", bound=HttpResponseBase)


def answer_unavailable(exc: BaseException, response: R) -> R:
    """``response`` (an API shape's error body, or the console's page) as the answer to an
    outage: noted in :data:`OUTAGE` (logged once per outage), ``Retry-After`` set, and marked
    so that Django does not log a line (and a traceback) for every such request."""
    OUTAGE.failed(exc)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    response.database_unavailable = True  # type: ignore[attr-defined]
    response._has_been_logged = True  # type: ignore[attr-defined]  # django.utils.log
    return response


def database_unavailable_response(exc: BaseException) -> Response:
    """The native (ALX/DRF) answer to an outage."""
    body = {"detail": DATABASE_UNAVAILABLE, "error_code": DATABASE_UNAVAILABLE_CODE}
    return answer_unavailable(exc, Response(body, status=status.HTTP_503_SERVICE_UNAVAILABLE))


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    exc = plain_auth_error(exc)
    if is_database_unavailable(exc):
        return database_unavailable_response(exc)
    if isinstance(exc, DjangoValidationError):
        return Response(validation_error_body(exc), status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, ServiceError):
        body: dict[str, Any] = {"detail": exc.detail}
        if exc.code:
            body["error_code"] = exc.code
        return Response(body, status=exc.status_code)
    if isinstance(exc, ProtectedError):
        return Response(
            {"detail": "This object is in use and cannot be deleted."},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, IntegrityError):
        # A race lost against a database constraint: the client can retry; nothing was written.
        logger.info("integrity conflict: %s", type(exc).__name__)
        return Response(
            {"detail": CONFLICT_MESSAGE},
            status=status.HTTP_409_CONFLICT,
        )
    if isinstance(exc, exceptions.NotFound | Http404):
        return Response({"detail": "Not found."}, status=status.HTTP_404_NOT_FOUND)
    return drf_exception_handler(exc, context)
