"""``GET /api/events/``: the History's event stream over the API — envelope, filters, newest
first, the same visibility as the console, and never a secret."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from outbound.accounts import services as account_services
from outbound.accounts.models import User
from outbound.core.events import event_source, record_event
from outbound.core.models import Event
from outbound.mail import services as mail_services
from tests.conftest import client_for
from tests.core.helpers import CLIENT_SECRET, make_auth_object, make_smtp_config

pytestmark = pytest.mark.django_db

URL = "/api/events/"
FIELDS = {
    "sequence",
    "created_at",
    "resource_type",
    "resource_id",
    "action",
    "changed_fields",
    "actor",
    "source",
}


def sequences(body: dict[str, Any]) -> list[int]:
    return [e["sequence"] for e in body["results"]]


def test_the_envelope_newest_first_with_every_field(
    admin_client: APIClient, admin_user: User
) -> None:
    config = make_smtp_config(admin_user)
    mail_services.smtp_config_update(
        config=config, data={"sender_address": "noreply@example.com"}, actor=admin_user
    )
    r = admin_client.get(URL)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {
        "limit",
        "offset",
        "total_count",
        "filtered_count",
        "next",
        "previous",
        "results",
    }
    everything = list(Event.objects.order_by("-sequence").values_list("sequence", flat=True))
    assert sequences(body) == everything  # newest first (the admin's own creation included)
    assert body["total_count"] == body["filtered_count"] == len(everything)
    newest = body["results"][0]
    assert set(newest) == FIELDS
    assert newest["resource_type"] == "smtp_config"
    assert newest["resource_id"] == str(config.pk)
    assert newest["action"] == "updated"
    assert newest["changed_fields"] == ["sender_address"]
    assert newest["actor"] == {"id": admin_user.pk, "username": "admin"}
    assert newest["source"] == "cli"  # made by a service call outside any request


def test_pages(admin_client: APIClient, admin_user: User) -> None:
    for n in range(5):
        record_event(resource_type="role", resource_id=n, action="created", actor=admin_user)
    first = admin_client.get(URL, {"resource_type": "role", "limit": 2}).json()
    assert [e["resource_id"] for e in first["results"]] == ["4", "3"]
    assert first["filtered_count"] == 5
    assert "offset=2" in first["next"]
    second = admin_client.get(first["next"]).json()
    assert [e["resource_id"] for e in second["results"]] == ["2", "1"]
    assert admin_client.get(URL, {"limit": "x"}).json() == {
        "limit": ["A valid integer is required."]
    }


def test_filters(admin_client: APIClient, admin_user: User, make_user: Callable[..., User]) -> None:
    bob = make_user(username="bob")
    with event_source("zitadel"):
        record_event(resource_type="smtp_config", resource_id=1, action="created", actor=bob)
    with event_source("console"):
        record_event(resource_type="smtp_config", resource_id=1, action="updated", actor=admin_user)
    record_event(resource_type="smtp_config", resource_id=2, action="created")  # cli, no actor
    old = record_event(resource_type="role", resource_id=1, action="deleted", actor=admin_user)
    Event.objects.filter(pk=old.pk).update(source="", created_at=timezone.now() - timedelta(days=3))

    def found(**params: Any) -> list[tuple[str, str, str]]:
        r = admin_client.get(URL, params)
        assert r.status_code == 200, r.content
        return [(e["resource_id"], e["action"], e["source"]) for e in r.json()["results"]]

    def smtp(**params: Any) -> list[tuple[str, str, str]]:
        return found(resource_type="smtp_config", **params)

    assert smtp() == [("2", "created", "cli"), ("1", "updated", "console"),
                      ("1", "created", "zitadel")]  # fmt: skip
    assert smtp(resource_id="1") == [("1", "updated", "console"), ("1", "created", "zitadel")]
    assert smtp(actor="BOB") == [("1", "created", "zitadel")]
    assert smtp(actor="system") == [("2", "created", "cli")]
    assert smtp(action="created", source="cli") == [("2", "created", "cli")]
    assert smtp(source="console") == [("1", "updated", "console")]
    assert found(source="unknown") == [("1", "deleted", "unknown")]
    assert found(resource_type="role", action="deleted") == [("1", "deleted", "unknown")]
    a_day_ago = (timezone.now() - timedelta(days=1)).isoformat()
    assert found(created_before=a_day_ago) == [("1", "deleted", "unknown")]
    assert ("1", "deleted", "unknown") not in found(created_after=a_day_ago)
    assert found(resource_type="nothing-like-it") == []

    r = admin_client.get(URL, {"source": "fax", "created_after": "yesterday"})
    assert r.status_code == 400
    assert set(r.json()) == {"source", "created_after"}
    assert "fax is not one of the available choices" in r.json()["source"][0]


def test_signed_in_only(api_client_for: Callable[..., APIClient]) -> None:
    r = api_client_for(None).get(URL)
    assert r.status_code == 401
    assert "detail" in r.json()


def test_each_user_sees_what_history_shows_them(
    admin_user: User,
    make_user: Callable[..., User],
    console_client_for: Callable[[Any], Client],
) -> None:
    """One rule for both: the API lists exactly the events the console's History lists."""
    mailer = make_user("outbound_mail_setup.view", username="mailer")
    keyholder = make_user("integrations.list", username="keyholder")
    nobody = make_user(username="nobody")
    make_smtp_config(admin_user)
    make_auth_object(admin_user)
    account_services.role_create(name="Readers", permissions=[], actor=admin_user)
    own, _ = account_services.api_key_create(
        owner=keyholder, name="mine", permissions=[], actor=keyholder
    )
    account_services.api_key_create(owner=admin_user, name="theirs", permissions=[], actor=None)

    def api_types(user: User) -> list[tuple[str, str]]:
        body = client_for(user).get(URL, {"limit": 1000}).json()
        return [(e["resource_type"], e["resource_id"]) for e in body["results"]]

    def history(user: User) -> list[tuple[str, str]]:
        html = console_client_for(user).get("/console/history/").content.decode()
        # Each row links to "all its events": ?resource_type=…&resource_id=…
        return re.findall(r"\?resource_type=(\w+)&amp;resource_id=([\w-]+)\">all its", html)

    assert {t for t, _ in api_types(mailer)} == {"smtp_config"}
    assert set(api_types(keyholder)) == {("api_key", str(own.pk))}
    assert api_types(nobody) == []
    assert {t for t, _ in api_types(admin_user)} >= {
        "smtp_config",
        "authentication_object",
        "role",
        "user",
        "api_key",
    }
    for user in (mailer, keyholder, nobody, admin_user):
        assert api_types(user) == history(user), user.username


def test_an_api_key_sees_only_what_its_permissions_show(admin_user: User) -> None:
    make_smtp_config(admin_user)
    account_services.role_create(name="Readers", permissions=[], actor=admin_user)
    api_key, key = account_services.api_key_create(
        owner=admin_user, name="ci", permissions=["roles.list"], actor=admin_user
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {key}")
    body = client.get(URL).json()
    # A superuser's key is held to its permissions: roles, and (as everyone) its owner's keys.
    assert [(e["resource_type"], e["resource_id"]) for e in body["results"]] == [
        ("api_key", str(api_key.pk)),
        ("role", str(Event.objects.get(resource_type="role").resource_id)),
    ]
    assert body["total_count"] == 2


SENTINELS = ("smtp-Sentinel-Secret-9271", "ms-Sentinel-Secret-5535", "user-Sentinel-Pass-7713")


def test_events_never_hold_a_secret(admin_client: APIClient, admin_user: User) -> None:
    smtp_secret, client_secret, user_password = SENTINELS
    r = admin_client.patch(
        "/api/administration/smtp-settings/",
        {"host": "smtp.example.com", "port": 587, "tls": True, "username": "mailer",
         "password": smtp_secret, "from_email": "noreply@example.com"},
        format="json",
    )  # fmt: skip
    assert r.status_code == 200, r.content
    r = admin_client.patch(
        "/api/administration/smtp-settings/", {"password": smtp_secret[::-1]}, format="json"
    )
    assert r.status_code == 200, r.content
    auth = make_auth_object(admin_user, client_secret=client_secret)
    r = admin_client.patch(
        f"/api/authentication-objects/{auth.pk}/", {"client_secret": client_secret[::-1]},
        format="json",
    )  # fmt: skip
    assert r.status_code == 200, r.content
    r = admin_client.post(
        "/api/users/", {"username": "carol", "password": user_password}, format="json"
    )
    assert r.status_code == 201, r.content

    # The changes are there, by name: the password changed, its value is nowhere.
    body = admin_client.get(URL, {"limit": 1000}).content.decode()
    events = json.loads(body)["results"]
    smtp_update = next(e for e in events if e["resource_type"] == "smtp_config")
    assert smtp_update["action"] == "updated" and smtp_update["changed_fields"] == ["password"]
    auth_update = next(e for e in events if e["resource_type"] == "authentication_object")
    assert "client_secret" in auth_update["changed_fields"]
    rows = json.dumps(list(Event.objects.values()), default=str)
    for secret in (*SENTINELS, smtp_secret[::-1], client_secret[::-1], CLIENT_SECRET):
        assert secret not in body
        assert secret not in rows


def test_the_query_count_does_not_grow_with_the_page(
    admin_client: APIClient, admin_user: User, django_assert_max_num_queries: Any
) -> None:
    for n in range(30):
        record_event(resource_type="role", resource_id=n, action="created", actor=admin_user)
    admin_client.get(URL)  # the first request's one-time work (sessions, caches)
    with django_assert_max_num_queries(6):
        r = admin_client.get(URL, {"limit": 30})
    assert len(r.json()["results"]) == 30


def test_webhook_events_are_shown_to_whoever_may_list_webhooks(
    admin_user: User,
    make_user: Callable[..., User],
    console_client_for: Callable[[Any], Client],
) -> None:
    record_event(resource_type="webhook", resource_id=7, action="created", actor=admin_user)
    lister = make_user("webhooks.list")
    other = make_user("messages.view")
    body = client_for(lister).get(URL).json()
    assert [(e["resource_type"], e["resource_id"]) for e in body["results"]] == [("webhook", "7")]
    assert client_for(other).get(URL).json()["results"] == []
    html = console_client_for(lister).get("/console/history/").content.decode()
    assert "Webhook" in html and "resource_type=webhook&amp;resource_id=7" in html
