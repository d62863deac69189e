"""Who may do what: each accounts action needs exactly its permission; the flags endpoint."""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.accounts import services
from outbound.accounts.models import Role, User
from outbound.core.permissions import all_permissions
from tests.conftest import client_for

FORBIDDEN = {"detail": "You do not have permission to perform this action."}
NONE = {"list": False, "view": False, "create": False, "edit": False, "delete": False}
ALL = {"list": True, "view": True, "create": True, "edit": True, "delete": True}

_names = count(1)


def _target(resource: str) -> int:
    """A fresh object for detail actions, created outside the API."""
    n = next(_names)
    if resource == "roles":
        return Role.objects.create(name=f"target-{n}").pk
    return services.user_create(username=f"target{n}", password="target-passphrase-1").pk


def _body(resource: str) -> dict[str, Any]:
    n = next(_names)
    if resource == "roles":
        return {"name": f"new-role-{n}", "permissions": []}
    return {"username": f"new{n}", "password": "new-user-passphrase", "email": ""}


def call(client: APIClient, resource: str, action: str) -> tuple[Any, int | None]:
    """Perform ``action`` on ``resource``; returns the response and the target's id, if any."""
    base = f"/api/{resource}/"
    if action == "list":
        return client.get(base), None
    if action == "create":
        return client.post(base, _body(resource), format="json"), None
    target = _target(resource)
    url = f"{base}{target}/"
    if action == "view":
        return client.get(url), target
    if action == "edit-put":
        return client.put(url, _body(resource), format="json"), target
    if action == "edit-patch":
        return client.patch(url, {}, format="json"), target
    assert action == "delete"
    return client.delete(url), target


ACTIONS = [
    ("list", "list", 200),
    ("view", "view", 200),
    ("create", "create", 201),
    ("edit-put", "edit", 200),
    ("edit-patch", "edit", 200),
    ("delete", "delete", 204),
]
CASES = [(res, act, perm, ok) for res in ("roles", "users") for act, perm, ok in ACTIONS]


@pytest.mark.django_db
@pytest.mark.parametrize(("resource", "action", "perm", "ok"), CASES)
def test_the_one_needed_permission_is_enough(
    make_user: Callable[..., User], resource: str, action: str, perm: str, ok: int
) -> None:
    client = client_for(make_user(f"{resource}.{perm}"))
    r, _ = call(client, resource, action)
    assert r.status_code == ok, r.data


@pytest.mark.django_db
@pytest.mark.parametrize(("resource", "action", "perm", "ok"), CASES)
def test_every_other_permission_is_not_enough(
    make_user: Callable[..., User], resource: str, action: str, perm: str, ok: int
) -> None:
    others = [p for p in all_permissions() if p != f"{resource}.{perm}"]
    client = client_for(make_user(*others))
    model = Role if resource == "roles" else User
    before = model.objects.count()
    r, target = call(client, resource, action)
    assert r.status_code == 403, r.data
    assert r.data == FORBIDDEN
    # Nothing was created or deleted.
    assert model.objects.count() == before + (target is not None)
    if target is not None:
        assert model.objects.filter(pk=target).exists()


@pytest.mark.django_db
@pytest.mark.parametrize("resource", ["roles", "users"])
@pytest.mark.parametrize("action", [a for a, _, _ in ACTIONS])
def test_anonymous_requests_get_401(db: None, resource: str, action: str) -> None:
    r, _ = call(APIClient(), resource, action)
    assert r.status_code == 401
    assert r.data["detail"]


@pytest.mark.django_db
def test_an_inactive_users_roles_grant_nothing(make_user: Callable[..., User]) -> None:
    """A deactivated user's token is refused outright, whatever its roles hold."""
    user = make_user(*all_permissions())
    client = client_for(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert client.get("/api/roles/").status_code == 401


@pytest.mark.django_db
def test_superuser_may_do_everything_without_roles(admin_client: APIClient) -> None:
    for resource, action, _perm, ok in CASES:
        r, _ = call(admin_client, resource, action)
        assert r.status_code == ok, (resource, action, r.data)


# --- GET /api/users/permissions/<resource> -------------------------------------------------

FLAGS = "/api/users/permissions/"


@pytest.mark.django_db
@pytest.mark.parametrize("path", [f"{FLAGS}users", f"{FLAGS}users/"])
def test_flags_with_and_without_trailing_slash(make_user: Callable[..., User], path: str) -> None:
    client = client_for(make_user("users.list", "users.edit", "roles.delete"))
    r = client.get(path)
    assert r.status_code == 200, r.data
    assert r.data == {**NONE, "list": True, "edit": True}


@pytest.mark.django_db
def test_flags_are_per_resource_and_join_all_roles(make_user: Callable[..., User]) -> None:
    user = make_user("users.list")
    user.roles.add(Role.objects.create(name="extra", permissions=["users.delete", "roles.view"]))
    client = client_for(user, "Bearer")
    assert client.get(f"{FLAGS}users").data == {**NONE, "list": True, "delete": True}
    assert client.get(f"{FLAGS}roles").data == {**NONE, "view": True}
    assert client.get(f"{FLAGS}authentication_objects").data == NONE


@pytest.mark.django_db
def test_a_user_without_roles_sees_all_false(make_user: Callable[..., User]) -> None:
    user = make_user()
    user.roles.clear()
    assert client_for(user).get(f"{FLAGS}users").data == NONE


@pytest.mark.django_db
@pytest.mark.parametrize("resource", ["users", "roles", "authentication_objects"])
def test_superuser_has_every_flag(admin_client: APIClient, resource: str) -> None:
    r = admin_client.get(f"{FLAGS}{resource}")
    assert r.status_code == 200
    assert r.data == ALL


@pytest.mark.django_db
def test_flags_follow_role_changes_immediately(
    admin_client: APIClient, make_user: Callable[..., User]
) -> None:
    user = make_user("roles.list")
    client = client_for(user)
    assert client.get(f"{FLAGS}roles").data == {**NONE, "list": True}
    role = user.roles.get()
    admin_client.patch(
        f"/api/roles/{role.pk}/", {"permissions": ["roles.create", "roles.view"]}, format="json"
    )
    assert client.get(f"{FLAGS}roles").data == {**NONE, "create": True, "view": True}


@pytest.mark.django_db
def test_flags_of_an_unknown_resource_are_404(admin_client: APIClient) -> None:
    assert admin_client.get(f"{FLAGS}spaceships").status_code == 404


@pytest.mark.django_db
def test_flags_need_a_signed_in_user(db: None) -> None:
    r = APIClient().get(f"{FLAGS}users")
    assert r.status_code == 401
    assert r.data["detail"]


@pytest.mark.django_db
def test_users_edit_cannot_touch_a_superuser(
    admin_user: User, make_user: Callable[..., User], api_client_for: Callable[..., APIClient]
) -> None:
    editor = api_client_for(make_user("users.edit", "users.delete", "users.view"))
    r = editor.patch(f"/api/users/{admin_user.pk}/", {"password": "taken-over-42!"}, format="json")
    assert r.status_code == 403
    assert editor.delete(f"/api/users/{admin_user.pk}/").status_code == 403
    admin_user.refresh_from_db()
    assert admin_user.check_password("correct-horse-battery")
