"""Webhooks page: the list, create with the signing secret shown once (and never again), the
service's refusals next to their fields, edit, rotate, Test against a real receiver on
127.0.0.1, the recent deliveries, delete, and who may do what."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from standardwebhooks import Webhook as Verifier

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.webhooks import services
from outbound.webhooks.models import Webhook, WebhookDelivery
from outbound.webhooks.services import EVENTS
from tests.console.conftest import error_for

pytestmark = pytest.mark.django_db

LIST = "/console/webhooks/"
NEW = "/console/webhooks/new/"
ALL = tuple(f"webhooks.{a}" for a in ("list", "view", "create", "edit", "delete"))


# --- a real receiver on 127.0.0.1 ---------------------------------------------------------


@dataclass
class Receiver:
    """Answers every POST with ``status``; keeps each request's headers and body."""

    status: int = 204
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


def serve() -> Iterator[Receiver]:
    """Run a :class:`Receiver` on 127.0.0.1 for as long as the generator is open."""
    recv = Receiver()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            recv.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(recv.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    recv.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/outbound"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield recv
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    yield from serve()


# --- helpers -------------------------------------------------------------------------------


@pytest.fixture
def ops(make_user: Callable[..., User]) -> User:
    """May do everything with webhooks (and nothing else)."""
    return make_user(*ALL, username="ops")


@pytest.fixture
def ops_client(ops: User, console_client_for: Callable[[User], Client]) -> Client:
    return console_client_for(ops)


def shown_secret(page: str) -> str:
    """The secret from the result page's read-only input."""
    match = re.search(r'id="webhook-secret"[^>]*value="([^"]+)"', page)
    assert match, "no secret on the page"
    return match.group(1)


def body(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "url": "https://hooks.example.com/outbound",
        "events": ["message.sent", "message.failed"],
        "is_enabled": "on",
        "description": "CRM",
        "nonce": "",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def make_webhook(actor: User, url: str = "https://hooks.example.com/outbound", **extra: Any) -> Any:
    fields: dict[str, Any] = {"events": ["message.sent"], **extra}
    return services.create_webhook(actor=actor, url=url, **fields)


def deliver(webhook: Webhook, **fields: Any) -> WebhookDelivery:
    values: dict[str, Any] = {
        "event_id": "msg_0001",
        "event_type": "message.sent",
        "attempt": 1,
        "status": "delivered",
        "event_at": timezone.now(),
        **fields,
    }
    return WebhookDelivery.objects.create(webhook=webhook, **values)


# --- list ----------------------------------------------------------------------------------


def test_list_shows_url_events_state_and_the_last_delivery(ops: User, ops_client: Client) -> None:
    crm, _ = make_webhook(ops, "https://crm.example.com/hooks", events=["message.failed"])
    make_webhook(ops, "https://quiet.example.com/hooks", is_enabled=False)
    old = deliver(crm, status="delivered", http_status=200)
    WebhookDelivery.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(hours=1))
    deliver(crm, event_id="msg_0002", status="retrying", http_status=503)

    response = ops_client.get(LIST)
    page = response.content.decode()
    assert response.status_code == 200
    rows = page.split("<tr>")[2:]
    crm_row = next(r for r in rows if "crm.<wbr>example" in r)
    quiet_row = next(r for r in rows if "quiet.<wbr>example" in r)
    assert "<code>message.failed</code>" in crm_row and ">Enabled<" in crm_row
    assert ">Retrying<" in crm_row  # the newest attempt's status, not the older "Delivered"
    assert "Delivered" not in crm_row
    assert ">Disabled<" in quiet_row and "None yet" in quiet_row
    assert f'href="/console/webhooks/{crm.pk}/"' in page
    assert f'href="{NEW}"' in page


def test_list_costs_the_same_queries_for_more_webhooks(ops: User, ops_client: Client) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert ops_client.get(LIST).status_code == 200
        return len(captured)

    first, _ = make_webhook(ops, "https://one.example.com/hooks")
    deliver(first)
    one = queries()
    for n in range(3):
        webhook, _ = make_webhook(ops, f"https://more{n}.example.com/hooks")
        deliver(webhook, event_id=f"msg_{n}")
    assert queries() == one


def test_empty_list(ops_client: Client) -> None:
    page = ops_client.get(LIST).content.decode()
    assert "No webhooks yet" in page


# --- create: the secret once ---------------------------------------------------------------


def test_form_offers_every_event_as_a_checkbox(ops_client: Client) -> None:
    page = ops_client.get(NEW).content.decode()
    for event in EVENTS:
        assert re.search(rf'<input type="checkbox" name="events" value="{re.escape(event)}"', page)
    assert 'name="is_enabled"' in page and "checked" in page  # enabled by default


def test_create_shows_the_secret_once_and_never_again(ops: User, ops_client: Client) -> None:
    response = ops_client.post(NEW, body(nonce="n-1"))
    assert response.status_code == 200
    page = response.content.decode()
    secret = shown_secret(page)
    assert secret.startswith("whsec_")
    assert "It will not be shown again." in page
    assert "webhook-signature" in page and "standardwebhooks" in page  # how to verify
    assert "no-store" in response["Cache-Control"]

    webhook = Webhook.objects.get()
    assert webhook.url == "https://hooks.example.com/outbound"
    assert webhook.events == ["message.sent", "message.failed"]
    assert webhook.is_enabled and webhook.description == "CRM"
    assert webhook.get_secret(Webhook.SECRET_SIGNING) == secret  # the sealed one, shown
    assert secret not in str(webhook.sealed_secrets)
    event = Event.objects.get(resource_type="webhook", action="created")
    assert event.actor_id == ops.pk and secret not in str(event.changed_fields)

    # Nowhere else: not the list, the page, the edit form, History; not a reload either.
    for url in (LIST, f"{LIST}{webhook.pk}/", f"{LIST}{webhook.pk}/edit/", "/console/history/"):
        assert secret not in ops_client.get(url).content.decode(), url
    again = ops_client.post(NEW, body(nonce="n-1"), follow=True)
    assert secret not in again.content.decode()
    assert "already created" in again.content.decode()
    assert Webhook.objects.count() == 1


def test_refusals_are_shown_next_to_their_fields_at_once(ops_client: Client) -> None:
    response = ops_client.post(NEW, body(url="ftp://hooks.example.com/x", events=[]))
    assert response.status_code == 400
    page = response.content.decode()
    assert error_for(page, "url")  # the service's reason, next to the URL
    assert error_for(page, "events") == "Choose at least one event."
    assert 'value="ftp://hooks.example.com/x"' in page  # the input is kept
    assert "webhook-secret" not in page
    assert not Webhook.objects.exists()


def test_an_unknown_event_is_refused_with_the_services_words(ops_client: Client) -> None:
    response = ops_client.post(NEW, body(events=["message.sent", "message.opened"]))
    assert response.status_code == 400
    assert (
        error_for(response.content.decode(), "events") == '"message.opened" is not a valid choice.'
    )
    assert not Webhook.objects.exists()


def test_a_url_the_egress_policy_denies_is_refused(ops_client: Client, settings: Any) -> None:
    settings.OUTBOUND_EGRESS_ALLOW = ""  # the default: https on 443 to public addresses
    response = ops_client.post(NEW, body(url="https://127.0.0.1:8443/hooks"))
    assert response.status_code == 400
    assert error_for(response.content.decode(), "url")
    assert not Webhook.objects.exists()


def test_required_url_and_a_too_long_description(ops_client: Client) -> None:
    response = ops_client.post(NEW, body(url="", description="x" * 201))
    page = response.content.decode()
    assert response.status_code == 400
    assert error_for(page, "url") == "This field is required."
    assert "no more than 200 characters" in error_for(page, "description")


# --- detail, edit, rotate, test, delete ----------------------------------------------------


def test_detail_shows_the_recent_deliveries(ops: User, ops_client: Client) -> None:
    webhook, secret = make_webhook(ops, description="Billing")
    deliver(
        webhook,
        status="retrying",
        http_status=503,
        duration_ms=41,
        error="The receiver answered HTTP 503.",
    )
    deliver(webhook, attempt=2, status="delivered", http_status=200, duration_ms=12)
    page = ops_client.get(f"{LIST}{webhook.pk}/").content.decode()
    rows = page.split("<tbody>")[1].split("</tbody>")[0].split("<tr>")[1:]
    assert len(rows) == 2
    newest, oldest = rows
    assert "<code>message.sent</code>" in newest and ">2<" in newest and ">Delivered<" in newest
    assert ">200<" in newest and "12 ms" in newest
    assert ">Retrying<" in oldest and ">503<" in oldest and "41 ms" in oldest
    assert "The receiver answered HTTP 503." in oldest
    assert secret not in page


def test_edit_changes_the_webhook_and_shows_refusals(ops: User, ops_client: Client) -> None:
    webhook, _ = make_webhook(ops)
    url = f"{LIST}{webhook.pk}/edit/"
    form = ops_client.get(url).content.decode()
    assert 'value="https://hooks.example.com/outbound"' in form
    assert 'value="message.sent" id="event-0" checked' in form

    refused = ops_client.post(url, body(events=[]))
    assert refused.status_code == 400
    assert error_for(refused.content.decode(), "events") == "Choose at least one event."

    saved = ops_client.post(url, body(events=["smtp_config.changed"], is_enabled=None))
    assert saved.status_code == 302 and saved["Location"] == f"{LIST}{webhook.pk}/"
    webhook.refresh_from_db()
    assert webhook.events == ["smtp_config.changed"] and not webhook.is_enabled


def test_rotate_asks_then_shows_the_new_secret_once(ops: User, ops_client: Client) -> None:
    webhook, old = make_webhook(ops)
    url = f"{LIST}{webhook.pk}/rotate-secret/"
    assert "Rotate secret" in ops_client.get(url).content.decode()
    response = ops_client.post(url)
    new = shown_secret(response.content.decode())
    assert new.startswith("whsec_") and new != old
    assert "no-store" in response["Cache-Control"]
    webhook.refresh_from_db()
    assert webhook.get_secret(Webhook.SECRET_SIGNING) == new
    assert new not in ops_client.get(f"{LIST}{webhook.pk}/").content.decode()


def test_test_sends_a_signed_event_now_and_shows_it_delivered(
    ops: User, ops_client: Client, receiver: Receiver
) -> None:
    webhook, secret = make_webhook(ops, receiver.url)
    response = ops_client.post(f"{LIST}{webhook.pk}/test/", follow=True)
    page = response.content.decode()
    assert re.search(r"Test event delivered: HTTP 204 in \d+ ms\.", page)
    assert len(receiver.received) == 1
    headers, sent = receiver.received[0]
    assert Verifier(secret).verify(sent, headers)["type"] == "webhook.test"
    row = page.split("<tbody>")[1]
    assert "<code>webhook.test</code>" in row and ">Delivered<" in row and ">204<" in row


def test_a_failed_test_says_why(ops: User, ops_client: Client, receiver: Receiver) -> None:
    receiver.status = 500
    webhook, _ = make_webhook(ops, receiver.url)
    page = ops_client.post(f"{LIST}{webhook.pk}/test/", follow=True).content.decode()
    assert "alert-error" in page
    assert "Test event failed (HTTP 500 in" in page and "The receiver answered HTTP 500." in page


def test_tests_share_the_call_out_budget(
    ops: User, ops_client: Client, receiver: Receiver, settings: Any
) -> None:
    settings.OUTBOUND_TEST_RATE = "1/min"
    webhook, _ = make_webhook(ops, receiver.url)
    ops_client.post(f"{LIST}{webhook.pk}/test/")
    page = ops_client.post(f"{LIST}{webhook.pk}/test/", follow=True).content.decode()
    assert "Too many tests" in page
    assert len(receiver.received) == 1


def test_delete_after_confirmation(ops: User, ops_client: Client) -> None:
    webhook, _ = make_webhook(ops)
    deliver(webhook)
    url = f"{LIST}{webhook.pk}/delete/"
    assert "Delete webhook" in ops_client.get(url).content.decode()
    assert Webhook.objects.exists()
    response = ops_client.post(url)
    assert response.status_code == 302 and response["Location"] == LIST
    assert not Webhook.objects.exists() and not WebhookDelivery.objects.exists()


# --- permissions ---------------------------------------------------------------------------


def test_no_list_permission_no_menu_entry_and_403(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    client = console_client_for(make_user("messages.view"))
    assert client.get(LIST).status_code == 403
    assert f'href="{LIST}"' not in client.get("/console/history/").content.decode()
    listing = console_client_for(make_user("webhooks.list"))
    assert f'href="{LIST}"' in listing.get("/console/history/").content.decode()


def test_list_only_user_sees_no_controls(
    ops: User, make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    webhook, _ = make_webhook(ops)
    client = console_client_for(make_user("webhooks.list"))
    page = client.get(LIST).content.decode()
    assert "hooks.<wbr>example.<wbr>com" in page
    assert f'href="{NEW}"' not in page
    assert f"{webhook.pk}/edit/" not in page and f"{webhook.pk}/delete/" not in page
    assert client.get(f"{LIST}{webhook.pk}/").status_code == 403
    assert client.get(NEW).status_code == 403


def test_a_viewer_sees_the_deliveries_and_forged_writes_are_refused(
    ops: User,
    make_user: Callable[..., User],
    console_client_for: Callable[[User], Client],
    receiver: Receiver,
) -> None:
    webhook, secret = make_webhook(ops, receiver.url)
    deliver(webhook)
    client = console_client_for(make_user("webhooks.list", "webhooks.view"))
    page = client.get(f"{LIST}{webhook.pk}/").content.decode()
    assert ">Delivered<" in page
    for control in ("/test/", "/edit/", "/rotate-secret/", "/delete/"):
        assert f"{LIST}{webhook.pk}{control}" not in page
    assert client.post(NEW, body()).status_code == 403
    assert client.post(f"{LIST}{webhook.pk}/test/").status_code == 403
    assert (
        client.post(f"{LIST}{webhook.pk}/edit/", body(events=["webhook.test"])).status_code == 403
    )
    assert client.post(f"{LIST}{webhook.pk}/rotate-secret/").status_code == 403
    assert client.post(f"{LIST}{webhook.pk}/delete/").status_code == 403
    webhook.refresh_from_db()
    assert webhook.events == ["message.sent"]
    assert webhook.get_secret(Webhook.SECRET_SIGNING) == secret
    assert receiver.received == []


def test_signed_out_is_sent_to_sign_in(client: Client) -> None:
    response = client.get(LIST)
    assert response.status_code == 302 and "/console/sign-in/" in response["Location"]
