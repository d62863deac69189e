"""API keys page: one's own keys (a superuser's: everyone's), created through the same service
as the API — the key shown once and stored hashed — refusals next to their fields, revoke."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from outbound.accounts import keys, services
from outbound.accounts.models import ApiKey, User
from outbound.console.views import api_keys as views
from outbound.core.models import Event
from tests.console.conftest import error_for

pytestmark = pytest.mark.django_db

LIST = "/console/api-keys/"
NEW = "/console/api-keys/new/"
MESSAGES_API = "/api/messages/"  # needs messages.view


def revoke_url(key: ApiKey) -> str:
    return f"/console/api-keys/{key.pk}/revoke/"


def shown_key(page: str) -> str:
    """The plaintext key from the result page's read-only input."""
    match = re.search(r'id="api-key-value"[^>]*value="([^"]+)"', page)
    assert match, "no key on the page"
    return match.group(1)


def api_get(key: str) -> Any:
    return Client().get(MESSAGES_API, HTTP_AUTHORIZATION=f"Api-Key {key}")


def names_in_order(page: str) -> list[str]:
    return re.findall(r"<td data-label=\"Name\" data-name>([^<]+)</td>", page)


@pytest.fixture
def sender(make_user: Callable[..., User]) -> User:
    """May read messages (what its keys will do) and list integrations; nothing about users."""
    return make_user("messages.view", "integrations.list", username="sender")


@pytest.fixture
def sender_client(sender: User, console_client_for: Callable[[User], Client]) -> Client:
    return console_client_for(sender)


def make_key(owner: User, name: str = "ci", *permissions: str, **extra: Any) -> ApiKey:
    key, _ = services.api_key_create(
        owner=owner, name=name, permissions=list(permissions), actor=owner, **extra
    )
    return key


# --- list --------------------------------------------------------------------------------


def test_list_shows_own_keys_with_prefix_permissions_dates_and_state(
    sender: User, sender_client: Client, admin_user: User
) -> None:
    active = make_key(sender, "Billing service", "messages.view")
    expired = make_key(sender, "Old batch job", "messages.view")
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(days=1))
    revoked = make_key(sender, "Retired CRM")
    services.api_key_revoke(key=revoked, actor=sender)
    make_key(admin_user, "Admin's own key")

    response = sender_client.get(LIST)
    page = response.content.decode()
    assert response.status_code == 200
    assert set(names_in_order(page)) == {"Billing service", "Old batch job", "Retired CRM"}
    assert "Admin&#x27;s own key" not in page and "Admin's own key" not in page
    assert f"<code>ob_{active.prefix}_…</code>" in page
    assert "Messages: view" in page  # the permissions summary
    assert "Never" in page  # never used, no expiry
    assert ">Active<" in page and ">Expired<" in page and ">Revoked<" in page
    assert 'class="is-revoked"' in page
    # Revoked keys stay listed, without a Revoke link; the others have one.
    assert revoke_url(active) in page and revoke_url(expired) in page
    assert revoke_url(revoked) not in page
    assert '<th scope="col">Owner</th>' not in page
    assert 'href="/console/api-keys/new/"' in page


def test_superuser_sees_everyones_keys_with_their_owners(
    console_client: Client, sender: User, admin_user: User
) -> None:
    make_key(sender, "Billing service", "messages.view")
    make_key(admin_user, "Monitoring")
    page = console_client.get(LIST).content.decode()
    assert set(names_in_order(page)) == {"Billing service", "Monitoring"}
    assert '<th scope="col">Owner</th>' in page
    assert '<td data-label="Owner">sender</td>' in page
    assert '<td data-label="Owner">admin <span class="sub">(you)</span></td>' in page


def test_list_sorts_by_name_created_and_last_used(sender: User, sender_client: Client) -> None:
    bravo = make_key(sender, "bravo")
    alpha = make_key(sender, "alpha")
    charlie = make_key(sender, "charlie")
    now = timezone.now()
    ApiKey.objects.filter(pk=bravo.pk).update(created_at=now - timedelta(days=3))
    ApiKey.objects.filter(pk=alpha.pk).update(created_at=now - timedelta(days=2))
    services.api_key_mark_used(key=charlie, now=now - timedelta(hours=2))
    services.api_key_mark_used(key=bravo, now=now - timedelta(hours=1))

    def order(query: str) -> list[str]:
        return names_in_order(sender_client.get(LIST + query).content.decode())

    assert order("") == ["charlie", "alpha", "bravo"]  # newest first, as the API
    assert order("?ordering=name") == ["alpha", "bravo", "charlie"]
    assert order("?ordering=-name") == ["charlie", "bravo", "alpha"]
    assert order("?ordering=created") == ["bravo", "alpha", "charlie"]
    # Never used keys come last either way.
    assert order("?ordering=last_used") == ["charlie", "bravo", "alpha"]
    assert order("?ordering=-last_used") == ["bravo", "charlie", "alpha"]
    assert order("?ordering=hashed_key") == order("")  # unknown keys fall back
    page = sender_client.get(LIST + "?ordering=name").content.decode()
    assert 'aria-sort="ascending"><a href="?ordering=-name">' in page
    assert 'class="sort-bar"' in page  # the same links for phones


def test_list_is_paginated(
    sender: User, sender_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(views, "PER_PAGE", 2)
    for n in range(3):
        make_key(sender, f"key {n}")
    first = sender_client.get(LIST + "?ordering=name").content.decode()
    second = sender_client.get(LIST + "?ordering=name&page=2").content.decode()
    assert names_in_order(first) == ["key 0", "key 1"]
    assert names_in_order(second) == ["key 2"]
    assert "ordering=name&amp;page=2" in first  # the next link keeps the sort


def test_list_costs_the_same_queries_for_3_keys_as_for_12(
    console_client: Client, admin_user: User, make_user: Callable[..., User]
) -> None:
    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert console_client.get(LIST).status_code == 200
        return len(queries)

    for n in range(3):
        make_key(make_user("messages.view"), f"key {n}", "messages.view")
    few = count()
    for n in range(3, 12):
        make_key(make_user("messages.view"), f"key {n}", "messages.view")
    assert count() == few


def test_signed_in_is_required_and_the_menu_offers_the_page(sender_client: Client) -> None:
    assert Client().get(LIST).status_code == 302
    assert Client().post(NEW, {"name": "x"}).status_code == 302
    assert not ApiKey.objects.exists()
    menu = sender_client.get("/console/").content.decode()
    assert f'href="{LIST}"' in menu


# --- create ------------------------------------------------------------------------------


def test_form_offers_only_the_permissions_the_user_holds(sender_client: Client) -> None:
    page = sender_client.get(NEW).content.decode()
    assert 'value="messages.view"' in page and 'value="integrations.list"' in page
    assert 'value="users.list"' not in page and 'value="messages.send"' not in page
    assert "<legend>Messages</legend>" in page and "<legend>Users</legend>" not in page
    assert 'type="datetime-local"' in page
    assert "You hold no permissions" not in page


def test_a_user_without_permissions_is_told_a_key_could_do_nothing(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    page = console_client_for(make_user()).get(NEW).content.decode()
    assert "You hold no permissions" in page
    assert 'type="checkbox"' not in page


def test_create_shows_the_key_once_stores_its_hash_and_the_key_works(
    sender: User, sender_client: Client
) -> None:
    response = sender_client.post(
        NEW, {"name": "Billing service", "permissions": ["messages.view"], "expires_at": ""}
    )
    assert response.status_code == 200  # rendered, not redirected
    assert "no-store" in response["Cache-Control"]
    page = response.content.decode()
    plaintext = shown_key(page)
    assert page.count(plaintext) == 1  # in the read-only input only
    assert "It will not be shown again" in page
    assert '<label for="api-key-value">API key</label>' in page
    assert "Authorization: Api-Key &lt;key&gt;" in page

    key = ApiKey.objects.get()
    assert (key.owner, key.name, key.permissions) == (sender, "Billing service", ["messages.view"])
    assert key.expires_at is None
    assert key.hashed_key == keys.hash_key(plaintext)
    assert plaintext.startswith(f"ob_{key.prefix}_")
    assert all(plaintext not in str(v) for v in ApiKey.objects.values().get().values())
    assert f"ob_{key.prefix}_…" in page

    assert api_get(plaintext).status_code == 200
    # The key is nowhere else: not in the list, History, or a message on the next page.
    for path in (LIST, "/console/history/", "/console/"):
        later = sender_client.get(path).content.decode()
        assert plaintext not in later, path
    assert "Billing service" in sender_client.get("/console/history/").content.decode()
    event = Event.objects.get(resource_type="api_key")
    assert (event.action, event.actor_username) == ("created", "sender")


def test_a_key_with_an_expiry_in_the_future(sender: User, sender_client: Client) -> None:
    when = (timezone.now() + timedelta(days=30)).replace(second=0, microsecond=0)
    response = sender_client.post(
        NEW,
        {
            "name": "Quarterly export",
            "permissions": ["messages.view", "integrations.list"],
            "expires_at": when.strftime("%Y-%m-%dT%H:%M"),
        },
    )
    assert response.status_code == 200
    key = ApiKey.objects.get()
    assert key.expires_at == when
    assert key.permissions == ["integrations.list", "messages.view"]  # PERMISSIONS' order
    assert api_get(shown_key(response.content.decode())).status_code == 200


def test_a_permission_beyond_the_users_is_refused_next_to_the_permissions(
    sender_client: Client,
) -> None:
    response = sender_client.post(
        NEW, {"name": "Sneaky", "permissions": ["messages.view", "users.list"]}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert error_for(page, "permissions") == (
        'You cannot grant a permission you do not hold: "users.list".'
    )
    assert 'value="messages.view" id="perm-messages-view" checked' in page  # the input is kept
    assert not ApiKey.objects.exists()
    assert 'id="api-key-value"' not in page


def test_a_past_expiry_is_refused_next_to_the_field(sender_client: Client) -> None:
    past = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = sender_client.post(
        NEW, {"name": "Late", "permissions": ["messages.view"], "expires_at": past}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert error_for(page, "expires_at") == "The expiry must be in the future."
    assert f'value="{past}"' in page
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"name": ""}, "name", "This field is required."),
        ({"name": "x" * 101}, "name", "Ensure this field has no more than 100 characters."),
        ({"name": "bad\nname"}, "name", "This field may not contain control characters."),
        ({"name": "ok", "expires_at": "soon"}, "expires_at", "Enter a valid date/time."),
    ],
)
def test_bad_input_is_refused_next_to_its_field(
    sender_client: Client, body: dict[str, str], field: str, message: str
) -> None:
    response = sender_client.post(NEW, body)
    assert response.status_code == 400
    assert message in error_for(response.content.decode(), field)
    assert not ApiKey.objects.exists()


def test_a_resent_create_form_makes_no_second_key(sender_client: Client) -> None:
    form = sender_client.get(NEW).content.decode()
    nonce = re.search(r'name="nonce" value="([^"]+)"', form)
    assert nonce
    body = {"name": "Billing service", "permissions": ["messages.view"], "nonce": nonce[1]}
    first = sender_client.post(NEW, body)
    assert first.status_code == 200
    again = sender_client.post(NEW, body, follow=True)  # the browser's reload
    assert ApiKey.objects.count() == 1
    page = again.content.decode()
    assert "That key was already created" in page
    assert shown_key(first.content.decode()) not in page


# --- revoke ------------------------------------------------------------------------------


def test_revoke_after_confirming_stops_the_key(sender: User, sender_client: Client) -> None:
    key, plaintext = services.api_key_create(
        owner=sender, name="Billing service", permissions=["messages.view"], actor=sender
    )
    assert api_get(plaintext).status_code == 200

    confirm = sender_client.get(revoke_url(key))
    assert confirm.status_code == 200
    page = confirm.content.decode()
    assert "Revoke API key “Billing service”?" in page
    assert '<button type="submit" class="danger">Revoke</button>' in page
    assert ApiKey.objects.get().revoked_at is None  # asking changes nothing

    done = sender_client.post(revoke_url(key), follow=True)
    assert done.redirect_chain == [(LIST, 302)]
    page = done.content.decode()
    assert "API key “Billing service” revoked" in page
    assert ">Revoked<" in page
    assert ApiKey.objects.get().revoked_at is not None
    assert api_get(plaintext).status_code == 401
    event = Event.objects.filter(resource_type="api_key").latest("sequence")
    assert (event.action, event.actor_username) == ("revoked", "sender")

    again = sender_client.post(revoke_url(key), follow=True)  # changes and records nothing
    assert "was already revoked" in again.content.decode()
    assert Event.objects.filter(resource_type="api_key", action="revoked").count() == 1
    assert "is revoked" in sender_client.get(revoke_url(key)).content.decode()


def test_someone_elses_key_is_404_for_a_non_superuser(
    sender_client: Client, make_user: Callable[..., User]
) -> None:
    other = make_key(make_user("messages.view"), "Not yours", "messages.view")
    assert sender_client.get(revoke_url(other)).status_code == 404
    assert sender_client.post(revoke_url(other)).status_code == 404
    assert ApiKey.objects.get().revoked_at is None
    assert "Not yours" not in sender_client.get(LIST).content.decode()


def test_a_superuser_revokes_someone_elses_key(
    console_client: Client, sender: User, admin_user: User
) -> None:
    key = make_key(sender, "Billing service", "messages.view")
    page = console_client.get(revoke_url(key)).content.decode()
    assert "The key belongs to sender." in page
    response = console_client.post(revoke_url(key))
    assert response.status_code == 302
    assert ApiKey.objects.get().revoked_at is not None
    event = Event.objects.filter(resource_type="api_key").latest("sequence")
    assert (event.action, event.actor_username) == ("revoked", "admin")


def test_every_field_error_at_once(sender_client: Client) -> None:
    """No name (the form's refusal) and a past expiry (the service's): both in one round."""
    past = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    r = sender_client.post(NEW, {"name": "", "permissions": ["messages.view"], "expires_at": past})
    assert r.status_code == 400
    page = r.content.decode()
    assert error_for(page, "name") == "This field is required."
    assert error_for(page, "expires_at") == "The expiry must be in the future."
    assert not ApiKey.objects.exists()
    assert not Event.objects.filter(resource_type="api_key").exists()
