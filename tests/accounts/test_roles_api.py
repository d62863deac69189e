"""``/api/roles/``: create, read, update and delete roles; permission names are validated."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from outbound.accounts.models import Role, User
from outbound.core.models import Event
from tests.conftest import client_for

URL = "/api/roles/"
ENVELOPE = {"limit", "offset", "total_count", "filtered_count", "next", "previous", "results"}


def role_events(role_id: int) -> list[Event]:
    return list(Event.objects.filter(resource_type="role", resource_id=str(role_id)))


@pytest.mark.django_db
def test_create_returns_the_role(admin_client: APIClient, admin_user: User) -> None:
    r = admin_client.post(
        URL, {"name": "Auditors", "permissions": ["users.list", "users.view"]}, format="json"
    )
    assert r.status_code == 201, r.data
    assert set(r.data) == {"id", "name", "permissions"}
    assert r.data["name"] == "Auditors"
    assert r.data["permissions"] == ["users.list", "users.view"]
    assert admin_client.get(f"{URL}{r.data['id']}/").data == r.data
    [event] = role_events(r.data["id"])
    assert event.action == "created"
    assert event.actor == admin_user
    assert event.actor_username == "admin"
    assert event.changed_fields == ["name", "permissions"]


@pytest.mark.django_db
def test_a_role_with_no_permissions_is_allowed(admin_client: APIClient) -> None:
    r = admin_client.post(URL, {"name": "Nobody", "permissions": []}, format="json")
    assert r.status_code == 201, r.data
    assert r.data["permissions"] == []


@pytest.mark.django_db
def test_repeated_permission_names_are_stored_once(admin_client: APIClient) -> None:
    r = admin_client.post(
        URL, {"name": "R", "permissions": ["roles.list", "roles.list", "roles.view"]}, format="json"
    )
    assert r.status_code == 201, r.data
    assert r.data["permissions"] == ["roles.list", "roles.view"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "bad",
    ["roles.approve", "nope.list", "roles", "roles.", ".list", "ROLES.LIST", "users.list.all"],
)
def test_unknown_permission_names_are_refused_on_create(admin_client: APIClient, bad: str) -> None:
    r = admin_client.post(URL, {"name": "Bad", "permissions": ["users.list", bad]}, format="json")
    assert r.status_code == 400, r.data
    assert "permissions" in r.data
    assert any(bad in message for message in r.data["permissions"])
    assert not Role.objects.filter(name="Bad").exists()
    assert not Event.objects.filter(resource_type="role").exists()


@pytest.mark.django_db
def test_unknown_permission_names_are_refused_on_update(admin_client: APIClient) -> None:
    role = Role.objects.create(name="R", permissions=["users.list"])
    r = admin_client.patch(
        f"{URL}{role.pk}/", {"name": "Renamed", "permissions": ["users.fly"]}, format="json"
    )
    assert r.status_code == 400, r.data
    assert "users.fly" in str(r.data["permissions"])
    role.refresh_from_db()
    assert (role.name, role.permissions) == ("R", ["users.list"])
    assert role_events(role.pk) == []


@pytest.mark.django_db
def test_duplicate_name_is_refused(admin_client: APIClient) -> None:
    Role.objects.create(name="Taken")
    r = admin_client.post(URL, {"name": "Taken", "permissions": []}, format="json")
    assert r.status_code == 400
    assert "name" in r.data
    assert Role.objects.filter(name="Taken").count() == 1


@pytest.mark.django_db
def test_missing_name_is_refused(admin_client: APIClient) -> None:
    r = admin_client.post(URL, {"permissions": ["users.list"]}, format="json")
    assert r.status_code == 400
    assert "name" in r.data


@pytest.mark.django_db
def test_patch_records_only_the_fields_that_changed(admin_client: APIClient) -> None:
    role_id = admin_client.post(URL, {"name": "R", "permissions": []}, format="json").data["id"]
    r = admin_client.patch(f"{URL}{role_id}/", {"name": "R2"}, format="json")
    assert r.status_code == 200, r.data
    assert r.data == {"id": role_id, "name": "R2", "permissions": []}
    r = admin_client.patch(f"{URL}{role_id}/", {"permissions": ["roles.list"]}, format="json")
    assert r.status_code == 200, r.data
    assert r.data["permissions"] == ["roles.list"]
    # A PUT that changes nothing writes no event.
    r = admin_client.put(
        f"{URL}{role_id}/", {"name": "R2", "permissions": ["roles.list"]}, format="json"
    )
    assert r.status_code == 200, r.data
    events = role_events(role_id)
    assert [(e.action, e.changed_fields) for e in events] == [
        ("created", ["name", "permissions"]),
        ("updated", ["name"]),
        ("updated", ["permissions"]),
    ]


@pytest.mark.django_db
def test_delete_removes_the_role_and_its_permissions_from_its_users(
    admin_client: APIClient, make_user: Callable[..., User]
) -> None:
    member = make_user("users.list")
    member_client = client_for(member)
    assert member_client.get("/api/users/").status_code == 200
    role = member.roles.get()
    r = admin_client.delete(f"{URL}{role.pk}/")
    assert r.status_code == 204
    assert not Role.objects.filter(pk=role.pk).exists()
    assert admin_client.get(f"{URL}{role.pk}/").status_code == 404
    assert member_client.get("/api/users/").status_code == 403
    assert role_events(role.pk)[-1].action == "deleted"


@pytest.mark.django_db
def test_editing_a_role_changes_what_its_users_may_do_at_once(
    admin_client: APIClient, make_user: Callable[..., User]
) -> None:
    member = make_user()
    member_client = client_for(member)
    assert member_client.get(URL).status_code == 403
    role = member.roles.get()
    admin_client.patch(f"{URL}{role.pk}/", {"permissions": ["roles.list"]}, format="json")
    assert member_client.get(URL).status_code == 200


@pytest.mark.django_db
def test_missing_role_is_404(admin_client: APIClient) -> None:
    r = admin_client.get(f"{URL}999999/")
    assert r.status_code == 404
    assert r.data["detail"]
    assert admin_client.delete(f"{URL}999999/").status_code == 404


@pytest.mark.django_db
def test_list_uses_the_envelope_and_paginates(admin_client: APIClient) -> None:
    for name in ["alpha", "bravo", "charlie", "delta", "echo"]:
        Role.objects.create(name=name)
    r = admin_client.get(URL, {"limit": 2})
    assert r.status_code == 200
    assert set(r.data) == ENVELOPE
    assert (r.data["limit"], r.data["offset"]) == (2, 0)
    assert (r.data["total_count"], r.data["filtered_count"]) == (5, 5)
    assert [x["name"] for x in r.data["results"]] == ["alpha", "bravo"]
    assert r.data["previous"] is None
    assert r.data["next"] is not None
    r = admin_client.get(URL, {"limit": 2, "offset": 4})
    assert [x["name"] for x in r.data["results"]] == ["echo"]
    assert r.data["next"] is None
    assert r.data["previous"] is not None


@pytest.mark.django_db
def test_filtering_reduces_filtered_count_but_not_total_count(admin_client: APIClient) -> None:
    for name in ["alpha", "bravo", "charlie"]:
        Role.objects.create(name=name)
    r = admin_client.get(URL, {"name": "bravo"})
    assert r.status_code == 200
    assert (r.data["total_count"], r.data["filtered_count"]) == (3, 1)
    assert [x["name"] for x in r.data["results"]] == ["bravo"]
