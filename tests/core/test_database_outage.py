"""The database goes away for real — PostgreSQL behind a TCP proxy that drops every connection
and refuses new ones, or a database that turns read-only; on SQLite, a file that cannot be
opened or is opened read-only — and every API shape answers its own outage error (503 with
``Retry-After``; Hitachi's 412 "The server is not available."), never HTML and never a 500;
the console answers a plain page; the log has one warning per outage and one line when the
database is back; and requests succeed again once it is.
"""

from __future__ import annotations

import base64
import logging
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from django.db import DEFAULT_DB_ALIAS, DatabaseError, IntegrityError, InternalError, connections
from django.http import HttpResponse
from django.test import Client, RequestFactory
from django.urls import reverse
from rest_framework.test import APIClient

from outbound import api_errors
from outbound.accounts import services as account_services
from outbound.accounts.models import User
from outbound.core.errors import (
    DATABASE_UNAVAILABLE,
    OUTAGE,
    RETRY_AFTER_SECONDS,
    is_database_unavailable,
)
from outbound.dialects.zitadel.errors import ERROR_DETAIL_TYPE
from outbound.mail.models import SmtpConfig
from tests.conftest import PASSWORD, client_for
from tests.support.dbproxy import DbProxy

pytestmark = pytest.mark.django_db(transaction=True)

RETRY_AFTER = str(RETRY_AFTER_SECONDS)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# --- the faults -------------------------------------------------------------------------


class Fault:
    """Takes the application's database away, for real, and brings it back."""

    def down(self) -> None:
        raise NotImplementedError

    def up(self) -> None:
        raise NotImplementedError

    def read_only(self) -> None:
        raise NotImplementedError

    def writable(self) -> None:
        raise NotImplementedError

    def restore(self) -> None:
        raise NotImplementedError


class PostgresFault(Fault):
    """The application's ``default`` connection goes through a :class:`DbProxy`: down is the
    proxy dropping every connection and refusing new ones (PostgreSQL restarting, as the
    application sees it). Read-only is the test database's ``default_transaction_read_only``,
    its sessions ended so that the new ones take it (as a fail-over to a standby does)."""

    def __init__(self) -> None:
        self.settings = connections[DEFAULT_DB_ALIAS].settings_dict
        self.original = {k: self.settings[k] for k in ("HOST", "PORT")}
        self.proxy = DbProxy((str(self.original["HOST"]), int(self.original["PORT"]))).start()
        connections[DEFAULT_DB_ALIAS].close()
        self.settings.update(HOST=self.proxy.host, PORT=str(self.proxy.port))

    def _admin(self, sql: str) -> None:
        """``sql`` on a connection of its own, straight to PostgreSQL (not through the proxy),
        then every other session of the test database ended."""
        s = self.settings
        with psycopg.connect(
            host=self.original["HOST"],
            port=int(self.original["PORT"]),
            user=s["USER"],
            password=s["PASSWORD"] or None,
            dbname="postgres",
            autocommit=True,
        ) as admin:
            admin.execute(sql)
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [s["NAME"]],
            )

    def _database(self) -> str:
        return '"' + str(self.settings["NAME"]).replace('"', '""') + '"'

    def down(self) -> None:
        self.proxy.stop()

    def up(self) -> None:
        self.proxy.resume()

    def read_only(self) -> None:
        self._admin(f"ALTER DATABASE {self._database()} SET default_transaction_read_only = on")

    def writable(self) -> None:
        self._admin(f"ALTER DATABASE {self._database()} RESET default_transaction_read_only")

    def restore(self) -> None:
        self.writable()
        self.proxy.stop()
        connections[DEFAULT_DB_ALIAS].close()
        self.settings.update(self.original)


class SqliteFault(Fault):
    """SQLite has no server to stop: the database file is opened through a URI that SQLite
    itself refuses — a path that does not exist (down), or the file in read-only mode
    (``mode=ro``: every write answers "attempt to write a readonly database"). The open
    connection is closed, as a restart or a fail-over would end it."""

    def __init__(self) -> None:
        self.settings = connections[DEFAULT_DB_ALIAS].settings_dict
        self.name = str(self.settings["NAME"])

    def _open(self, name: str) -> None:
        connections[DEFAULT_DB_ALIAS].close()
        self.settings["NAME"] = name

    def down(self) -> None:
        self._open("file:/nonexistent/outbound-outage/outbound.sqlite3?mode=ro")

    def up(self) -> None:
        self._open(self.name)

    def read_only(self) -> None:
        self._open(f"file:{self.name}?mode=ro")

    def writable(self) -> None:
        self._open(self.name)

    def restore(self) -> None:
        self._open(self.name)


@pytest.fixture
def fault(transactional_db: None) -> Iterator[Fault]:
    vendor = connections[DEFAULT_DB_ALIAS].vendor
    made: Fault = PostgresFault() if vendor == "postgresql" else SqliteFault()
    try:
        yield made
    finally:
        made.restore()
        OUTAGE.__init__()  # type: ignore[misc]  # no outage carried into the next test


# --- the API shapes ---------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    name: str
    read: tuple[str, str]
    write: tuple[str, str, dict[str, Any]]
    status: int  # what an outage is answered with
    check: Callable[[dict[str, Any]], None]


def _native(body: dict[str, Any]) -> None:
    assert body == {"detail": DATABASE_UNAVAILABLE, "error_code": "database_unavailable"}


def _zitadel(body: dict[str, Any]) -> None:
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == 14  # gRPC Unavailable
    assert body["message"].endswith("(DATABASE-Unavailable)")
    assert body["details"][0]["@type"] == ERROR_DETAIL_TYPE
    assert body["details"][0]["id"] == "DATABASE-Unavailable"


def _hitachi(body: dict[str, Any]) -> None:
    assert body == {
        "errorSource": body["errorSource"],
        "message": "The server is not available.",
        "messageID": "OBHA00412-E",
        "application": "Analytics",
    }
    assert body["errorSource"].startswith("/Analytics/v1/")


def _commvault(body: dict[str, Any]) -> None:
    assert body == {"errorMessage": DATABASE_UNAVAILABLE, "errorCode": 503}


def _privx(body: dict[str, Any]) -> None:
    assert body == {
        "error_code": "DATABASE_ERROR",
        "error_message": DATABASE_UNAVAILABLE,
        "property": "",
        "details": [],
    }


NATIVE = "/api/administration/smtp-settings/"
HITACHI = "/Analytics/v1/objects/EmailServerSettings/mailServerSetting%230"
COMMVAULT = "/commandcenter/api/V4/EmailServer"
PRIVX = "/workflow-engine/api/v1/settings"


ZITADEL_UPDATE = {
    "senderAddress": "z@example.com", "senderName": "Zed", "host": "c.example.com:587",
    "tls": True, "user": "u", "password": "p",
}  # fmt: skip
HITACHI_UPDATE = {
    "hostname": "smtp.example.com", "portNumber": 587, "secureConnection": "STARTTLS",
    "authenticationEnabled": True, "userId": "mailer", "updatePassword": True,
    "password": b64("s3cret"), "senderAddress": "noreply@example.com",
}  # fmt: skip


def shapes(config_id: int) -> list[Shape]:
    """Each API shape's representative read and write (of the active SMTP configuration)."""
    return [
        Shape("native", ("get", NATIVE), ("patch", NATIVE, {"port": 2525, "password": "p"}),
              503, _native),
        Shape("zitadel", ("get", "/admin/v1/smtp"),
              ("put", f"/admin/v1/smtp/{config_id}", ZITADEL_UPDATE), 503, _zitadel),
        Shape("hitachi", ("get", HITACHI), ("put", HITACHI, HITACHI_UPDATE), 412, _hitachi),
        Shape("commvault", ("get", COMMVAULT),
              ("put", COMMVAULT, {"SMTPServerName": "b.example.com", "password": b64("p")}),
              503, _commvault),
        Shape("privx", ("get", PRIVX),
              ("put", PRIVX, {"smtp_server_port": 2526, "smtp_server_password": "p"}),
              503, _privx),
    ]  # fmt: skip


@dataclass
class World:
    clients: dict[str, APIClient]
    console: Client
    shapes: list[Shape]

    def read(self, shape: Shape) -> Any:
        method, url = shape.read
        return getattr(self.clients[shape.name], method)(url)

    def write(self, shape: Shape) -> Any:
        method, url, body = shape.write
        return getattr(self.clients[shape.name], method)(url, body, format="json")


@pytest.fixture
def world(fault: Fault, admin_user: User) -> World:
    _, key = account_services.api_key_create(
        owner=admin_user, name="cv", actor=admin_user,
        permissions=["outbound_mail_setup.view", "outbound_mail_setup.edit"],
    )  # fmt: skip
    commvault = APIClient()
    commvault.credentials(HTTP_AUTHTOKEN=key)
    clients = {
        "native": client_for(admin_user),
        "zitadel": client_for(admin_user, "Bearer"),
        "hitachi": client_for(admin_user, "Bearer"),
        "privx": client_for(admin_user, "Bearer"),
        "commvault": commvault,
    }
    created = clients["native"].patch(
        NATIVE,
        {"host": "a.example.com", "port": 587, "tls": True, "username": "u", "password": "p",
         "from_email": "a@example.com"},
        format="json",
    )  # fmt: skip
    assert created.status_code == 200, created.content
    console = Client()
    console.force_login(admin_user)
    return World(clients, console, shapes(SmtpConfig.objects.get().pk))


# --- what every answer must be --------------------------------------------------------------


def assert_outage_answer(shape: Shape, response: Any) -> None:
    text = response.content.decode()
    assert response.status_code == shape.status, (shape.name, response.status_code, text)
    assert response["Content-Type"].startswith("application/json"), (shape.name, text)
    assert response["Retry-After"] == RETRY_AFTER, shape.name
    assert "<html" not in text.lower() and "Traceback" not in text
    shape.check(response.json())


def assert_console_page(response: Any) -> None:
    text = response.content.decode()
    assert response.status_code == 503, text
    assert response["Content-Type"].startswith("text/html")
    assert response["Retry-After"] == RETRY_AFTER
    assert "The database is unavailable" in text
    assert "try again" in text
    assert "Traceback" not in text and "Server Error" not in text


def recovered(world: World) -> None:
    """Like a client honouring ``Retry-After`` (sooner, to keep the test short): each shape's
    read and write succeed again, within a few seconds of the database's return."""
    deadline = time.monotonic() + 15
    for shape in world.shapes:
        for call in (world.read, world.write):
            while True:
                response = call(shape)
                if response.status_code == 200 or time.monotonic() > deadline:
                    break
                assert response.status_code == shape.status, response.content  # still away
                time.sleep(0.2)
            assert response.status_code == 200, (shape.name, response.content)
    home = world.console.get("/console/")
    assert home.status_code == 200


def outage_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str]]:
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "outbound.database"]


def wait_for_recovery_line(world: World, caplog: pytest.LogCaptureFixture, count: int) -> None:
    """The "available again" line comes from a probe after a request that reached the
    database, at most once a second: a few reads, until it is there."""
    deadline = time.monotonic() + 10
    while sum(1 for lvl, _ in outage_lines(caplog) if lvl == logging.INFO) < count:
        assert time.monotonic() < deadline, outage_lines(caplog)
        world.read(world.shapes[0])
        time.sleep(0.2)


def assert_quiet_log(caplog: pytest.LogCaptureFixture) -> None:
    """Nothing but the outage lines: no traceback, no error, no line per refused request."""
    noisy = [
        f"{r.name} {r.levelname} {r.getMessage()[:120]}"
        for r in caplog.records
        if r.exc_info or r.levelno >= logging.ERROR or r.name.startswith("django.request")
    ]
    assert not noisy


# --- the tests --------------------------------------------------------------------------------


def test_the_database_going_away_twice(
    fault: Fault, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    caplog.clear()
    for outage in (1, 2):
        fault.down()
        for shape in world.shapes:
            assert_outage_answer(shape, world.read(shape))
            assert_outage_answer(shape, world.write(shape))
        assert_console_page(world.console.get("/console/"))
        assert_console_page(world.console.get("/console/mail/"))
        warnings = [m for lvl, m in outage_lines(caplog) if lvl == logging.WARNING]
        assert len(warnings) == outage, outage_lines(caplog)  # 11 refusals, one line

        fault.up()
        recovered(world)
        wait_for_recovery_line(world, caplog, outage)

    lines = outage_lines(caplog)
    assert [lvl for lvl, _ in lines] == [logging.WARNING, logging.INFO] * 2, lines
    assert "database unavailable" in lines[0][1]
    assert "database available again" in lines[1][1]
    assert_quiet_log(caplog)
    assert not OUTAGE.active


def test_a_read_only_database(fault: Fault, world: World, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    caplog.clear()
    fault.read_only()
    for shape in world.shapes:
        read = world.read(shape)
        if read.status_code != 200:  # reads may still be served; if not, the outage answer
            assert_outage_answer(shape, read)
        assert_outage_answer(shape, world.write(shape))
    console = world.console.get("/console/")
    if console.status_code != 200:
        assert_console_page(console)
    assert len(outage_lines(caplog)) == 1  # the first refusal, then nothing more

    fault.writable()
    recovered(world)
    wait_for_recovery_line(world, caplog, 1)
    assert [lvl for lvl, _ in outage_lines(caplog)] == [logging.WARNING, logging.INFO]
    assert_quiet_log(caplog)


def test_a_threaded_server_does_not_fail_once_per_thread_after_a_restart(
    fault: Fault, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    """Another thread's connection, open and idle while the database restarted, is closed
    before its next request rather than failing it: back is back for every thread."""
    if not isinstance(fault, PostgresFault):
        pytest.skip("SQLite's faults do not reach a connection another thread has open")
    caplog.set_level(logging.INFO)
    other = ThreadPoolExecutor(1)  # one more server thread, kept across requests
    shape = world.shapes[0]
    try:
        assert other.submit(world.read, shape).result().status_code == 200  # its connection
        fault.down()
        assert_outage_answer(shape, world.read(shape))  # this thread meets the outage
        fault.up()
        recovered(world)
        assert other.submit(world.read, shape).result().status_code == 200
        assert other.submit(world.write, shape).result().status_code == 200
    finally:
        other.submit(connections.close_all).result()
        other.shutdown()
    assert_quiet_log(caplog)


def test_signing_in_to_the_console_while_the_database_is_down(fault: Fault, world: World) -> None:
    """Signing in reads the user and writes the session: refused with the plain page, and
    works again once the database is back."""
    url = reverse("console:login")
    client = Client()
    fault.down()
    assert client.get(url).status_code == 200  # the form itself needs no database
    assert_console_page(client.post(url, {"username": "admin", "password": PASSWORD}))
    fault.up()
    signed_in = client.post(url, {"username": "admin", "password": PASSWORD})
    assert signed_in.status_code == 302
    assert client.get("/console/").status_code == 200


def test_signing_in_to_the_console_while_the_database_is_read_only(
    fault: Fault, world: World
) -> None:
    client = Client()
    fault.read_only()
    world.read(world.shapes[0])  # PostgreSQL: the session the fault ended is noticed here
    assert_console_page(
        client.post(reverse("console:login"), {"username": "admin", "password": PASSWORD})
    )


def test_a_database_error_raised_outside_any_view(fault: Fault, world: World) -> None:
    """What a middleware raises (a session saved after the view, say) reaches Django's
    ``handler500``: the path's shape answers it all the same — or the console's page."""
    fault.down()
    try:
        with connections[DEFAULT_DB_ALIAS].cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        exc = sys.exc_info()[1]
        assert exc is not None and is_database_unavailable(exc)
        factory = RequestFactory()
        for shape in world.shapes:
            response: HttpResponse = api_errors.server_error(factory.get(shape.read[1]))
            assert_outage_answer(shape, _as_client_response(response))
        assert_console_page(api_errors.server_error(factory.get("/console/")))
    else:
        pytest.fail("the database answered while it was down")
    fault.up()
    OUTAGE.recovered()


def _as_client_response(response: HttpResponse) -> HttpResponse:
    response.json = lambda: __import__("json").loads(response.content)  # type: ignore[attr-defined]
    return response


def test_what_is_no_outage(transactional_db: None) -> None:
    """A lost race, a bad query (SQLite's "no such table" is an ``OperationalError`` too) or
    any other error is not the database being away."""
    with pytest.raises(DatabaseError) as bad_query, connections[DEFAULT_DB_ALIAS].cursor() as c:
        c.execute("SELECT * FROM no_such_table_here")
    assert not is_database_unavailable(bad_query.value)
    assert not is_database_unavailable(IntegrityError("duplicate key"))
    assert not is_database_unavailable(InternalError("division by zero"))
    assert not is_database_unavailable(ValueError("not a database error"))
    assert is_database_unavailable(
        InternalError("cannot execute UPDATE in a read-only transaction")
    )
