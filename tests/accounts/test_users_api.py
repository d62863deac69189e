"""``/api/users/``: CRUD, passwords never leave the server, roles grant permissions."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.accounts.models import Role, User
from outbound.core.models import Event
from tests.accounts.conftest import Login
from tests.conftest import PASSWORD, client_for

URL = "/api/users/"
NEW_PASSWORD = "a-brand-new-passphrase"
ENVELOPE = {"limit", "offset", "total_count", "filtered_count", "next", "previous", "results"}


def user_events(user_id: int) -> list[Event]:
    return list(Event.objects.filter(resource_type="user", resource_id=str(user_id)))


def assert_no_secret(response: Any, *secrets: str) -> None:
    body = response.content.decode()
    for secret in secrets:
        assert secret not in body
    assert "password" not in body


@pytest.fixture
def role(db: None) -> Role:
    return Role.objects.create(name="Readers", permissions=["users.list", "users.view"])


@pytest.mark.django_db
def test_create_returns_the_user_without_its_password(
    admin_client: APIClient, admin_user: User, role: Role, login: Login
) -> None:
    r = admin_client.post(
        URL,
        {
            "username": "dana",
            "password": NEW_PASSWORD,
            "email": "dana@example.com",
            "roles": [role.pk],
        },
        format="json",
    )
    assert r.status_code == 201, r.data
    user = User.objects.get(username="dana")
    assert r.data["id"] == user.pk
    assert r.data["username"] == "dana"
    assert r.data["email"] == "dana@example.com"
    assert r.data["roles"] == [role.pk]
    assert r.data["is_superuser"] is False
    assert_no_secret(r, NEW_PASSWORD, user.password)
    # The password was stored (hashed) and works for logging in.
    assert user.password != NEW_PASSWORD
    assert login("dana", NEW_PASSWORD).status_code == 200
    [event] = user_events(user.pk)
    assert (event.action, event.actor) == ("created", admin_user)
    assert "password" in event.changed_fields
    assert "roles" in event.changed_fields


@pytest.mark.django_db
def test_reads_never_show_a_password_or_its_hash(
    admin_client: APIClient, make_user: Callable[..., User]
) -> None:
    user = make_user("users.list")
    for response in (
        admin_client.get(URL),
        admin_client.get(f"{URL}{user.pk}/"),
        admin_client.get(URL, {"username": user.username}),
        admin_client.patch(f"{URL}{user.pk}/", {"first_name": "Ann"}, format="json"),
        admin_client.put(
            f"{URL}{user.pk}/",
            {"username": user.username, "email": "x@example.com", "password": NEW_PASSWORD},
            format="json",
        ),
    ):
        assert response.status_code == 200, response.data
        user.refresh_from_db()
        assert_no_secret(response, PASSWORD, NEW_PASSWORD, user.password)


@pytest.mark.django_db
def test_is_superuser_cannot_be_set_through_the_api(
    admin_client: APIClient, make_user: Callable[..., User]
) -> None:
    r = admin_client.post(
        URL, {"username": "eve", "password": NEW_PASSWORD, "is_superuser": True}, format="json"
    )
    assert r.status_code == 201, r.data
    assert r.data["is_superuser"] is False
    assert User.objects.get(username="eve").is_superuser is False
    other = make_user()
    r = admin_client.patch(f"{URL}{other.pk}/", {"is_superuser": True}, format="json")
    assert r.status_code == 200
    other.refresh_from_db()
    assert other.is_superuser is False


@pytest.mark.django_db
@pytest.mark.parametrize("weak", ["sh0rt", "qwertyuiop", "12345678"])
def test_weak_passwords_are_refused(admin_client: APIClient, weak: str) -> None:
    events_before = Event.objects.count()
    r = admin_client.post(URL, {"username": "frank", "password": weak}, format="json")
    assert r.status_code == 400, r.data
    assert "password" in r.data
    assert weak not in json.dumps(r.data)
    assert not User.objects.filter(username="frank").exists()
    assert Event.objects.count() == events_before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"username": "admin", "password": NEW_PASSWORD}, "username"),
        ({"username": "bad name!", "password": NEW_PASSWORD}, "username"),
        ({"username": "gina"}, "password"),
        ({"username": "gina", "password": NEW_PASSWORD, "email": "not-an-email"}, "email"),
        ({"username": "gina", "password": NEW_PASSWORD, "roles": [999999]}, "roles"),
    ],
)
def test_invalid_users_are_refused(
    admin_client: APIClient, payload: dict[str, Any], field: str
) -> None:
    before = User.objects.count()
    r = admin_client.post(URL, payload, format="json")
    assert r.status_code == 400, r.data
    assert field in r.data
    assert User.objects.count() == before


@pytest.mark.django_db
def test_changing_the_password(
    admin_client: APIClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user(username="hank")
    r = admin_client.patch(f"{URL}{user.pk}/", {"password": NEW_PASSWORD}, format="json")
    assert r.status_code == 200, r.data
    assert "password" not in r.data
    assert login("hank", PASSWORD).status_code == 401
    assert login("hank", NEW_PASSWORD).status_code == 200
    event = user_events(user.pk)[-1]
    assert (event.action, event.changed_fields) == ("updated", ["password"])


@pytest.mark.django_db
def test_a_weak_new_password_changes_nothing(
    admin_client: APIClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user(username="hank")
    events_before = len(user_events(user.pk))
    r = admin_client.patch(
        f"{URL}{user.pk}/", {"password": "short", "email": "new@example.com"}, format="json"
    )
    assert r.status_code == 400
    assert "password" in r.data
    user.refresh_from_db()
    assert user.email != "new@example.com"
    assert login("hank", PASSWORD).status_code == 200
    assert len(user_events(user.pk)) == events_before


@pytest.mark.django_db
def test_put_without_a_password_keeps_the_password(
    admin_client: APIClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user(username="ivy")
    r = admin_client.put(
        f"{URL}{user.pk}/", {"username": "ivy", "email": "ivy@example.com"}, format="json"
    )
    assert r.status_code == 200, r.data
    assert r.data["email"] == "ivy@example.com"
    assert login("ivy", PASSWORD).status_code == 200
    event = user_events(user.pk)[-1]
    assert event.changed_fields == ["email"]


@pytest.mark.django_db
def test_update_records_only_changed_fields(
    admin_client: APIClient, make_user: Callable[..., User], role: Role
) -> None:
    user = make_user()
    url = f"{URL}{user.pk}/"
    admin_client.patch(url, {"email": user.email, "first_name": ""}, format="json")  # no change
    admin_client.patch(url, {"first_name": "Jo", "last_name": "Lee"}, format="json")
    admin_client.patch(url, {"roles": [role.pk]}, format="json")
    admin_client.patch(url, {"roles": [role.pk]}, format="json")  # no change
    assert [(e.action, e.changed_fields) for e in user_events(user.pk)[1:]] == [
        ("updated", ["first_name", "last_name"]),
        ("updated", ["roles"]),
    ]


@pytest.mark.django_db
def test_assigning_roles_grants_their_permissions(
    admin_client: APIClient, make_user: Callable[..., User], role: Role
) -> None:
    user = make_user()
    client = client_for(user)
    assert client.get(URL).status_code == 403
    r = admin_client.patch(f"{URL}{user.pk}/", {"roles": [role.pk]}, format="json")
    assert r.status_code == 200, r.data
    assert sorted(r.data["roles"]) == sorted(r.pk for r in user.roles.all())
    assert client.get(URL).status_code == 200
    admin_client.patch(f"{URL}{user.pk}/", {"roles": []}, format="json")
    assert client.get(URL).status_code == 403


@pytest.mark.django_db
def test_deactivating_a_user_locks_it_out(
    admin_client: APIClient, make_user: Callable[..., User], login: Login
) -> None:
    user = make_user("users.list", username="jack")
    client = client_for(user)
    r = admin_client.patch(f"{URL}{user.pk}/", {"is_active": False}, format="json")
    assert r.status_code == 200
    assert r.data["is_active"] is False
    assert client.get(URL).status_code == 401
    assert login("jack", PASSWORD).status_code == 401
    assert user_events(user.pk)[-1].changed_fields == ["is_active"]


@pytest.mark.django_db
def test_delete_removes_the_user(
    admin_client: APIClient, admin_user: User, make_user: Callable[..., User]
) -> None:
    user = make_user("users.list")
    r = admin_client.delete(f"{URL}{user.pk}/")
    assert r.status_code == 204
    assert not User.objects.filter(pk=user.pk).exists()
    assert admin_client.get(f"{URL}{user.pk}/").status_code == 404
    event = user_events(user.pk)[-1]
    assert (event.action, event.actor) == ("deleted", admin_user)


@pytest.mark.django_db
def test_nobody_can_delete_their_own_account(
    admin_client: APIClient, admin_user: User, make_user: Callable[..., User]
) -> None:
    r = admin_client.delete(f"{URL}{admin_user.pk}/")
    assert r.status_code == 400
    assert r.data["non_field_errors"] == ["You cannot delete your own account."]
    assert User.objects.filter(pk=admin_user.pk).exists()
    manager = make_user("users.delete")
    assert client_for(manager).delete(f"{URL}{manager.pk}/").status_code == 400
    assert User.objects.filter(pk=manager.pk).exists()


@pytest.mark.django_db
def test_list_uses_the_envelope_filters_and_paginates(
    admin_client: APIClient, admin_user: User, make_user: Callable[..., User]
) -> None:
    for name in ["bob", "carl", "dora", "ed"]:
        make_user(username=name)
    User.objects.filter(username="ed").update(is_active=False)
    r = admin_client.get(URL, {"limit": 2})
    assert r.status_code == 200
    assert set(r.data) == ENVELOPE
    assert (r.data["total_count"], r.data["filtered_count"]) == (5, 5)
    assert [u["username"] for u in r.data["results"]] == ["admin", "bob"]
    assert r.data["next"] is not None
    assert r.data["previous"] is None
    r = admin_client.get(URL, {"limit": 2, "offset": 2})
    assert [u["username"] for u in r.data["results"]] == ["carl", "dora"]
    assert r.data["previous"] is not None
    r = admin_client.get(URL, {"is_active": "false"})
    assert (r.data["total_count"], r.data["filtered_count"]) == (5, 1)
    assert [u["username"] for u in r.data["results"]] == ["ed"]
    r = admin_client.get(URL, {"email": "nobody@example.com"})
    assert (r.data["filtered_count"], r.data["results"]) == (0, [])


@pytest.mark.django_db
def test_autocomplete_matches_usernames_case_insensitively(
    admin_user: User, make_user: Callable[..., User]
) -> None:
    alice = make_user(username="alice")
    malina = make_user(username="Malina")
    make_user(username="bob")
    caller = make_user()  # no permissions at all: autocomplete only needs a signed-in user
    r = client_for(caller, "Bearer").get(f"{URL}autocomplete/", {"text__icontains": "ALI"})
    assert r.status_code == 200, r.data
    assert r.data == {
        "results": [
            {"value": malina.pk, "text": "Malina"},
            {"value": alice.pk, "text": "alice"},
        ]
    }
    r = client_for(caller).get(f"{URL}autocomplete/")
    assert {x["text"] for x in r.data["results"]} == {
        "admin",
        "alice",
        "Malina",
        "bob",
        caller.username,
    }
    assert "password" not in r.content.decode()


@pytest.mark.django_db
def test_autocomplete_needs_a_signed_in_user(db: None) -> None:
    r = APIClient().get(f"{URL}autocomplete/", {"text__icontains": "a"})
    assert r.status_code == 401
