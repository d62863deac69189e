"""Every accounts change writes one event in its own transaction, naming fields, not values."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.forms.models import model_to_dict
from rest_framework.test import APIClient

from outbound.accounts import services
from outbound.accounts.models import Role, User
from outbound.core.models import Event

SECRET = "s3cret-Pass-phrase-1"
SECRET_2 = "an0ther-Pass-phrase-2"


class EventWriteFailed(Exception):
    pass


def break_event_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on writing an event fails, as a database error at that point would."""

    def boom(**kwargs: Any) -> None:
        raise EventWriteFailed

    monkeypatch.setattr(services, "record_event", boom)


def all_event_text() -> str:
    return json.dumps([model_to_dict(e) for e in Event.objects.all()], default=str)


@pytest.mark.django_db
def test_events_never_hold_a_password_or_its_hash(admin_client: APIClient) -> None:
    r = admin_client.post("/api/users/", {"username": "kim", "password": SECRET}, format="json")
    assert r.status_code == 201, r.data
    first_hash = User.objects.get(username="kim").password
    r = admin_client.patch(f"/api/users/{r.data['id']}/", {"password": SECRET_2}, format="json")
    assert r.status_code == 200, r.data
    second_hash = User.objects.get(username="kim").password
    text = all_event_text()
    for secret in (SECRET, SECRET_2, first_hash, second_hash):
        assert secret not in text
    kim_events = Event.objects.filter(resource_type="user", resource_id=str(r.data["id"]))
    assert [e.action for e in kim_events] == ["created", "updated"]
    assert kim_events.last().changed_fields == ["password"]  # type: ignore[union-attr]
    for event in kim_events:
        assert all(isinstance(f, str) and " " not in f for f in event.changed_fields)


@pytest.mark.django_db
def test_one_event_per_change_with_sequence_growing(admin_client: APIClient) -> None:
    start = Event.objects.count()
    role = admin_client.post("/api/roles/", {"name": "r", "permissions": []}, format="json")
    user = admin_client.post(
        "/api/users/",
        {"username": "lou", "password": SECRET, "roles": [role.data["id"]]},
        format="json",
    )
    admin_client.patch(f"/api/roles/{role.data['id']}/", {"name": "r2"}, format="json")
    admin_client.delete(f"/api/users/{user.data['id']}/")
    admin_client.delete(f"/api/roles/{role.data['id']}/")
    new = list(Event.objects.order_by("sequence")[start:])
    assert [(e.resource_type, e.action) for e in new] == [
        ("role", "created"),
        ("user", "created"),
        ("role", "updated"),
        ("user", "deleted"),
        ("role", "deleted"),
    ]
    assert all(e.actor_username == "admin" for e in new)
    sequences = [e.sequence for e in new]
    assert sequences == sorted(sequences)
    assert len(set(sequences)) == len(sequences)


@pytest.mark.django_db
def test_read_only_requests_write_no_events(
    admin_client: APIClient, make_user: Callable[..., User]
) -> None:
    user = make_user("users.list")
    start = Event.objects.count()
    admin_client.get("/api/users/")
    admin_client.get(f"/api/users/{user.pk}/")
    admin_client.get("/api/roles/")
    admin_client.get("/api/users/permissions/users")
    admin_client.get("/api/users/autocomplete/", {"text__icontains": "u"})
    APIClient().post(
        "/api/auth/token/", {"username": user.username, "password": "wrong-one"}, format="json"
    )
    assert Event.objects.count() == start


# --- the change and its event commit together, or not at all ------------------------------


@pytest.mark.django_db
def test_role_create_rolls_back_when_its_event_fails(
    admin_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    break_event_writes(monkeypatch)
    with pytest.raises(EventWriteFailed):
        admin_client.post("/api/roles/", {"name": "ghost", "permissions": []}, format="json")
    assert not Role.objects.filter(name="ghost").exists()


@pytest.mark.django_db
def test_role_update_rolls_back_when_its_event_fails(
    admin_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = Role.objects.create(name="kept", permissions=["users.list"])
    break_event_writes(monkeypatch)
    with pytest.raises(EventWriteFailed):
        admin_client.patch(
            f"/api/roles/{role.pk}/", {"name": "lost", "permissions": []}, format="json"
        )
    role.refresh_from_db()
    assert (role.name, role.permissions) == ("kept", ["users.list"])


@pytest.mark.django_db
def test_role_delete_rolls_back_when_its_event_fails(
    admin_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = Role.objects.create(name="kept")
    break_event_writes(monkeypatch)
    with pytest.raises(EventWriteFailed):
        admin_client.delete(f"/api/roles/{role.pk}/")
    assert Role.objects.filter(pk=role.pk).exists()


@pytest.mark.django_db
def test_user_create_rolls_back_when_its_event_fails(
    admin_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    role = Role.objects.create(name="r")
    break_event_writes(monkeypatch)
    with pytest.raises(EventWriteFailed):
        admin_client.post(
            "/api/users/",
            {"username": "ghost", "password": SECRET, "roles": [role.pk]},
            format="json",
        )
    assert not User.objects.filter(username="ghost").exists()
    assert not role.users.exists()


@pytest.mark.django_db
def test_user_update_rolls_back_when_its_event_fails(
    admin_client: APIClient, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user()
    role = Role.objects.create(name="extra")
    old_hash = user.password
    break_event_writes(monkeypatch)
    with pytest.raises(EventWriteFailed):
        admin_client.patch(
            f"/api/users/{user.pk}/",
            {"email": "changed@example.com", "password": SECRET, "roles": [role.pk]},
            format="json",
        )
    user.refresh_from_db()
    assert user.email != "changed@example.com"
    assert user.password == old_hash
    assert not user.roles.filter(pk=role.pk).exists()


@pytest.mark.django_db
def test_user_delete_rolls_back_when_its_event_fails(
    admin_client: APIClient, make_user: Callable[..., User], monkeypatch: pytest.MonkeyPatch
) -> None:
    user = make_user()
    break_event_writes(monkeypatch)
    with pytest.raises(EventWriteFailed):
        admin_client.delete(f"/api/users/{user.pk}/")
    assert User.objects.filter(pk=user.pk).exists()
