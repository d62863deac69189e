"""``/api/webhooks/``: CRUD, permissions, validation (unknown events, URLs the egress policy
refuses), the secret shown once (never in a GET, a list, an event or a log line), rotation,
the test endpoint and the deliveries list, against a real receiver on 127.0.0.1."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient
from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError

from outbound.core.models import Event
from outbound.webhooks.models import Webhook, WebhookDelivery
from tests.conftest import client_for
from tests.webhooks.conftest import Receiver

pytestmark = pytest.mark.django_db(transaction=True)

URL = "/api/webhooks/"
EVENTS = ["message.sent", "message.failed"]


def create(client: APIClient, receiver: Receiver, **body: Any) -> dict[str, Any]:
    r = client.post(URL, {"url": receiver.url, "events": EVENTS, **body}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def test_create_answers_the_secret_once_and_never_again(
    admin_client: APIClient, receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    created = create(admin_client, receiver, description="CRM")
    secret = created["secret"]
    assert secret.startswith("whsec_") and len(secret) >= 6 + 32
    assert created["events"] == EVENTS
    assert created["is_enabled"] is True
    assert created["description"] == "CRM"
    hook = Webhook.objects.get(pk=created["id"])
    assert secret not in str(hook.sealed_secrets)  # sealed, not stored as is
    assert hook.get_secret(Webhook.SECRET_SIGNING) == secret

    one = admin_client.get(f"{URL}{hook.pk}/")
    listed = admin_client.get(URL)
    assert one.status_code == 200 and listed.status_code == 200
    assert "secret" not in one.json()
    assert listed.json()["results"][0]["id"] == hook.pk
    assert listed.json()["total_count"] == 1
    for text in (one.content.decode(), listed.content.decode(), caplog.text):
        assert secret not in text
        assert secret.removeprefix("whsec_") not in text
    events = list(Event.objects.filter(resource_type="webhook").values())
    assert [e["action"] for e in events] == ["created"]
    assert secret.removeprefix("whsec_") not in str(events)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"events": ["message.sent", "message.exploded"]}, "events", "not a valid choice"),
        ({"events": []}, "events", "at least one"),
        ({"events": "message.sent"}, "events", ""),
        ({"url": "ftp://127.0.0.1/x"}, "url", "valid http"),
        ({"url": "not a url"}, "url", "valid http"),
        ({"url": "https://user:pw@example.com/hook"}, "url", "user name or password"),
        # The egress policy: port 80 is not opened by the tests' OUTBOUND_EGRESS_ALLOW (443
        # and high ports are), link-local metadata never, public http only where allowed.
        ({"url": "https://127.0.0.1:80/hook"}, "url", "egress policy"),
        ({"url": "https://169.254.169.254:8443/latest"}, "url", "egress policy"),
        ({"url": "https://10.1.2.3:8443/"}, "url", "egress policy"),
        ({"url": "http://93.184.215.14:8080/hook"}, "url", "http://"),
    ],
)
def test_refusals_name_the_field(
    admin_client: APIClient, receiver: Receiver, body: dict[str, Any], field: str, words: str
) -> None:
    r = admin_client.post(URL, {"url": receiver.url, "events": EVENTS, **body}, format="json")
    assert r.status_code == 400, r.content
    assert field in r.json(), r.json()
    assert words in str(r.json()[field])
    assert not Webhook.objects.exists()


def test_https_on_443_to_a_public_address_is_allowed_by_default(
    admin_client: APIClient, settings: Any
) -> None:
    settings.OUTBOUND_EGRESS_ALLOW = ""
    r = admin_client.post(
        URL, {"url": "https://93.184.215.14/hooks", "events": EVENTS}, format="json"
    )
    assert r.status_code == 201, r.content
    r = admin_client.post(
        URL, {"url": "https://93.184.215.14:587/hooks", "events": EVENTS}, format="json"
    )
    assert r.status_code == 400  # the mail ports are not opened to web requests
    for url in ("https://93.184.215.14:8443/", "https://127.0.0.1/", "http://93.184.215.14/"):
        r = admin_client.post(URL, {"url": url, "events": EVENTS}, format="json")
        assert r.status_code == 400, url
        assert "egress policy" in r.json()["url"][0]


def test_update_delete_and_their_events(admin_client: APIClient, receiver: Receiver) -> None:
    hook = create(admin_client, receiver)
    r = admin_client.patch(
        f"{URL}{hook['id']}/", {"events": ["webhook.test"], "is_enabled": False}, format="json"
    )
    assert r.status_code == 200, r.content
    assert r.json()["events"] == ["webhook.test"] and r.json()["is_enabled"] is False
    r = admin_client.patch(f"{URL}{hook['id']}/", {"events": ["nope"]}, format="json")
    assert r.status_code == 400 and "events" in r.json()
    r = admin_client.put(
        f"{URL}{hook['id']}/",
        {"url": receiver.url, "events": ["message.deferred"], "description": "x"},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["events"] == ["message.deferred"] and r.json()["description"] == "x"
    assert admin_client.delete(f"{URL}{hook['id']}/").status_code == 204
    assert admin_client.get(f"{URL}{hook['id']}/").status_code == 404
    actions = list(
        Event.objects.filter(resource_type="webhook").values_list("action", "changed_fields")
    )
    assert actions == [
        ("created", ["events", "url"]),
        ("updated", ["events", "is_enabled"]),
        ("updated", ["description", "events"]),
        ("deleted", []),
    ]


def test_permissions(
    make_user: Callable[..., Any], receiver: Receiver, admin_client: APIClient
) -> None:
    hook = create(admin_client, receiver)
    path = f"{URL}{hook['id']}/"
    nobody = client_for(make_user())
    viewer = client_for(make_user("webhooks.list", "webhooks.view"))
    editor = client_for(make_user("webhooks.view", "webhooks.edit"))
    assert client_for(None).get(URL).status_code == 401
    assert nobody.get(URL).status_code == 403
    assert nobody.get(path).status_code == 403
    assert viewer.get(URL).status_code == 200
    assert viewer.get(path).status_code == 200
    assert viewer.get(f"{path}deliveries/").status_code == 200
    assert (
        viewer.post(URL, {"url": receiver.url, "events": EVENTS}, format="json").status_code == 403
    )
    assert viewer.patch(path, {"description": "x"}, format="json").status_code == 403
    assert viewer.post(f"{path}rotate-secret/").status_code == 403
    assert viewer.post(f"{path}test/").status_code == 403
    assert viewer.delete(path).status_code == 403
    assert editor.patch(path, {"description": "x"}, format="json").status_code == 200
    assert editor.post(f"{path}test/").status_code == 200
    assert editor.delete(path).status_code == 403
    assert len(receiver.posts()) == 1  # only the editor's test went out


def test_rotate_secret(admin_client: APIClient, receiver: Receiver) -> None:
    hook = create(admin_client, receiver)
    old = hook["secret"]
    r = admin_client.post(f"{URL}{hook['id']}/rotate-secret/")
    assert r.status_code == 200
    new = r.json()["secret"]
    assert new.startswith("whsec_") and new != old
    assert admin_client.post(f"{URL}{hook['id']}/test/").json()["status"] == "delivered"
    [delivery] = receiver.posts()
    Verifier(new).verify(delivery.body, delivery.headers)
    with pytest.raises(WebhookVerificationError):
        Verifier(old).verify(delivery.body, delivery.headers)
    assert Event.objects.filter(resource_type="webhook", action="secret_rotated").count() == 1
    assert new.removeprefix("whsec_") not in str(list(Event.objects.values()))


def test_test_endpoint_sends_a_signed_test_event_now(
    admin_client: APIClient, receiver: Receiver
) -> None:
    hook = create(admin_client, receiver, is_enabled=False)  # Test sends to a disabled one too
    r = admin_client.post(f"{URL}{hook['id']}/test/")
    assert r.status_code == 200, r.content
    answer = r.json()
    assert answer["status"] == "delivered"
    assert answer["http_status"] == 204
    assert answer["event_type"] == "webhook.test" and answer["attempt"] == 1
    assert answer["duration_ms"] is not None and answer["error"] == ""
    [body] = receiver.verified(hook["secret"])
    assert body["type"] == "webhook.test"
    assert body["data"]["webhook"] == hook["id"]
    [delivery] = receiver.posts()
    assert delivery.headers["webhook-id"] == answer["event_id"]
    assert delivery.headers["content-type"] == "application/json"

    receiver.script = [503]
    r = admin_client.post(f"{URL}{hook['id']}/test/")
    assert r.status_code == 200
    assert r.json()["status"] == "failed"  # a test is one attempt, never retried
    assert r.json()["http_status"] == 503
    assert r.json()["error"] == "The receiver answered HTTP 503."
    assert WebhookDelivery.objects.filter(status="pending").count() == 0

    r = admin_client.get(f"{URL}{hook['id']}/deliveries/")
    assert r.status_code == 200
    page = r.json()
    assert page["total_count"] == 2 and page["limit"] == 20 and page["offset"] == 0
    assert [d["status"] for d in page["results"]] == ["failed", "delivered"]  # newest first
    assert set(page["results"][0]) >= {
        "event_type",
        "event_id",
        "attempt",
        "status",
        "http_status",
        "duration_ms",
        "error",
        "created_at",
    }
    assert admin_client.get(f"{URL}999999/deliveries/").status_code == 404
    assert admin_client.post(f"{URL}999999/test/").status_code == 404


def test_the_test_endpoint_spends_the_connection_test_budget(
    admin_client: APIClient, receiver: Receiver, settings: Any
) -> None:
    settings.OUTBOUND_TEST_RATE = "2/min"
    hook = create(admin_client, receiver)
    codes = [admin_client.post(f"{URL}{hook['id']}/test/").status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    assert len(receiver.posts()) == 2
