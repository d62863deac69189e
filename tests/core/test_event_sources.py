"""Every event says which way in made its change: each API shape, the console, the command
line — without any service being told."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.management import call_command
from django.http import HttpRequest, StreamingHttpResponse
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from outbound.accounts import services as account_services
from outbound.accounts.models import User
from outbound.console.views.history import HistoryView
from outbound.core.events import current_source, event_source, record_event
from outbound.core.models import Event
from outbound.event_sources import EventSourceMiddleware, api_source
from outbound.mail.models import SmtpConfig
from tests.core.helpers import make_smtp_config
from tests.dialects.conftest import clients  # noqa: F401  (the fixture: one client per shape)

pytestmark = pytest.mark.django_db

ALX = "/api/administration/smtp-settings/"
HITACHI = "/Analytics/v1/objects/EmailServerSettings/mailServerSetting%230"
ZITADEL = "/admin/v1/smtp"
COMMVAULT = "/commandcenter/api/V4/EmailServer"
PRIVX = "/workflow-engine/api/v1/settings"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def latest() -> Event:
    return Event.objects.order_by("-sequence").first()  # type: ignore[return-value]


def test_a_change_through_each_api_shape_records_that_shape(
    clients: dict[str, APIClient],  # noqa: F811
) -> None:
    r = clients["native"].patch(
        ALX, {"host": "a.example.com", "port": 587, "tls": True, "username": "u",
              "password": "p", "from_email": "a@example.com"}, format="json",
    )  # fmt: skip
    assert r.status_code == 200, r.content
    assert (latest().resource_type, latest().source) == ("smtp_config", "alx")

    r = clients["hitachi"].put(
        HITACHI,
        {"hostname": "h.example.com", "portNumber": 587, "secureConnection": "STARTTLS",
         "authenticationEnabled": True, "userId": "u", "updatePassword": True,
         "password": b64("p")},
        format="json",
    )  # fmt: skip
    assert r.status_code == 200, r.content
    assert latest().source == "hitachi"

    r = clients["commvault"].put(
        COMMVAULT, {"SMTPServerName": "c.example.com", "password": b64("p")}, format="json"
    )
    assert r.status_code == 200, r.content
    assert latest().source == "commvault"

    r = clients["privx"].put(
        PRIVX, {"smtp_server_port": 2525, "smtp_server_password": "p"}, format="json"
    )
    assert r.status_code == 200, r.content
    assert latest().source == "privx"

    config_id = SmtpConfig.objects.get().pk
    r = clients["zitadel"].put(
        f"{ZITADEL}/{config_id}",
        {"senderAddress": "z@example.com", "senderName": "Zed", "host": "z.example.com:587",
         "tls": True, "user": "u", "password": "p"},
        format="json",
    )  # fmt: skip
    assert r.status_code == 200, r.content
    assert latest().source == "zitadel"

    # One configuration, five ways in: its events say which each change came through.
    sources = list(
        Event.objects.filter(resource_type="smtp_config", action="updated")
        .order_by("sequence")
        .values_list("source", flat=True)
    )
    assert sources == ["hitachi", "commvault", "privx", "zitadel"]


def test_alx_resources_and_outbounds_own_under_api(admin_client: APIClient) -> None:
    r = admin_client.post(
        "/api/authentication-objects/",
        {"name": "Contoso", "provider": "microsoft_client_credentials", "tenant_id": "t",
         "client_id": "c", "client_secret": "s"},
        format="json",
    )  # fmt: skip
    assert r.status_code == 201, r.content
    assert (latest().resource_type, latest().source) == ("authentication_object", "alx")

    r = admin_client.post("/api/object-classes/", {"name": "Matters"}, format="json")
    assert r.status_code == 201, r.content
    assert (latest().resource_type, latest().source) == ("object_class", "alx")

    # Outbound's own resources: roles, users, API keys.
    r = admin_client.post("/api/roles/", {"name": "Readers", "permissions": []}, format="json")
    assert r.status_code == 201, r.content
    assert (latest().resource_type, latest().source) == ("role", "native")
    r = admin_client.post("/api/auth/api-keys/", {"name": "ci", "permissions": []}, format="json")
    assert r.status_code == 201, r.content
    assert (latest().resource_type, latest().source) == ("api_key", "native")


@pytest.mark.parametrize(
    ("path", "source"),
    [
        ("administration/smtp-settings/", "alx"),
        ("administration/smtp-settings/test/", "alx"),
        ("integrations/", "alx"),
        ("integrations/0b3d…/", "alx"),
        ("authentication-objects/7/", "alx"),
        ("object-classes/3/fields/9/", "alx"),
        ("users/autocomplete/", "alx"),
        ("users/permissions/integrations", "alx"),
        ("auth/token/", "alx"),
        ("users/", "native"),
        ("users/5/", "native"),
        ("roles/", "native"),
        ("auth/api-keys/", "native"),
        ("messages/12/cancel/", "native"),
        ("events/", "native"),
        ("webhooks/", "native"),
        ("smtp-configurations/", "native"),
    ],
)
def test_which_api_paths_are_alx(path: str, source: str) -> None:
    assert api_source(path) == source


def test_a_change_in_the_console_records_console(console_client: Client, admin_user: User) -> None:
    r = console_client.post(
        "/console/users/new/",
        {"username": "carol", "email": "carol@example.com", "is_active": "on",
         "password": "a-long-Passphrase-42"},
    )  # fmt: skip
    assert r.status_code == 302, r.content
    assert (latest().resource_type, latest().action, latest().source) == (
        "user",
        "created",
        "console",
    )


def test_a_management_command_records_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OUTBOUND_ADMIN_USERNAME", "root")
    monkeypatch.setenv("OUTBOUND_ADMIN_PASSWORD", "a-long-Passphrase-42")
    call_command("bootstrap_admin")
    event = latest()
    assert (event.resource_type, event.action, event.source) == ("user", "created", "cli")
    assert event.actor is None


def test_nothing_leaks_from_a_request_into_what_follows_it(
    admin_client: APIClient, admin_user: User
) -> None:
    r = admin_client.post("/api/roles/", {"name": "Readers", "permissions": []}, format="json")
    assert r.status_code == 201
    assert latest().source == "native"
    # The same thread, outside any request (as the worker or a command would be): cli.
    assert current_source() == "cli"
    account_services.role_create(name="Writers", permissions=[], actor=admin_user)
    assert latest().source == "cli"
    # And a request that fails on the way in leaves nothing behind either.
    assert admin_client.post("/api/roles/", {"name": ""}, format="json").status_code == 400
    make_smtp_config(admin_user)
    assert latest().source == "cli"


def test_a_streamed_answer_records_its_requests_source(admin_user: User) -> None:
    """A streamed body (the console's live SMTP test) runs after the view has returned."""

    def stream() -> Iterator[bytes]:
        record_event(resource_type="smtp_config", resource_id=1, action="tested")
        yield b"done\n"

    def answer(request: HttpRequest) -> Any:
        return StreamingHttpResponse(stream())

    middleware = EventSourceMiddleware(answer)
    request = RequestFactory().get("/console/history/")
    view = HistoryView.as_view()

    def respond(req: HttpRequest) -> Any:  # what Django does: process_view, then the view
        middleware.process_view(req, view, (), {})
        return answer(req)

    middleware.get_response = respond
    response = middleware(request)
    assert current_source() == "cli"
    assert b"".join(response.streaming_content) == b"done\n"  # type: ignore[attr-defined]
    assert latest().source == "console"
    assert current_source() == "cli"


def test_event_source_blocks_nest() -> None:
    with event_source("zitadel"):
        with event_source("console"):
            assert current_source() == "console"
        assert current_source() == "zitadel"
    assert current_source() == "cli"


@pytest.mark.django_db(transaction=True)
def test_events_recorded_before_the_migration_have_an_unknown_source() -> None:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    before, after = [("core", "0002_cache_table")], [("core", "0003_event_source")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_event = executor.loader.project_state(before).apps.get_model("core", "Event")
        old_event.objects.create(resource_type="role", resource_id="1", action="created")
        executor = MigrationExecutor(connection)
        executor.migrate(after)
    finally:
        MigrationExecutor(connection).migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes()
        )
    event = Event.objects.get(resource_type="role", resource_id="1")
    assert event.source == ""
