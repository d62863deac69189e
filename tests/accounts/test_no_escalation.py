"""Nobody hands out more than they hold: a role may only be given permissions its author holds,
and a user only roles whose permissions the actor holds (superusers excepted)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

from outbound.accounts.models import Role, User
from outbound.core.permissions import user_permissions
from tests.conftest import PASSWORD, client_for

pytestmark = pytest.mark.django_db


def test_a_role_cannot_grant_what_its_author_lacks(make_user: Callable[..., User]) -> None:
    author = make_user("roles.create", "roles.edit", "users.list")
    client = client_for(author)
    r = client.post(
        "/api/roles/",
        {"name": "Everything", "permissions": ["users.list", "users.delete"]},
        format="json",
    )
    assert r.status_code == 400
    assert r.data == {
        "permissions": ['You cannot grant a permission you do not hold: "users.delete".']
    }
    assert not Role.objects.filter(name="Everything").exists()

    ok = client.post(
        "/api/roles/", {"name": "Readers", "permissions": ["users.list"]}, format="json"
    )
    assert ok.status_code == 201
    grow = client.patch(
        f"/api/roles/{ok.data['id']}/",
        {"permissions": ["users.list", "roles.delete"]},
        format="json",
    )
    assert grow.status_code == 400
    assert Role.objects.get(pk=ok.data["id"]).permissions == ["users.list"]


def test_a_role_keeps_permissions_its_editor_lacks(
    make_user: Callable[..., User], admin_client: APIClient
) -> None:
    role = Role.objects.create(name="Ops", permissions=["users.delete"])
    editor = client_for(make_user("roles.edit"))
    r = editor.patch(f"/api/roles/{role.pk}/", {"name": "Operations"}, format="json")
    assert r.status_code == 200  # nothing new is granted
    role.refresh_from_db()
    assert role.name == "Operations" and role.permissions == ["users.delete"]


def test_a_user_cannot_be_given_a_role_beyond_the_actor(
    make_user: Callable[..., User], admin_client: APIClient
) -> None:
    admins = Role.objects.create(name="Admins", permissions=["roles.delete", "users.edit"])
    manager = make_user("users.create", "users.edit")
    client = client_for(manager)
    r = client.post(
        "/api/users/",
        {"username": "mallory", "password": "a-long-passphrase-9", "roles": [admins.pk]},
        format="json",
    )
    assert r.status_code == 400
    assert r.data["roles"] == [
        'You cannot give the role "Admins": it has permissions you do not hold.'
    ]
    assert not User.objects.filter(username="mallory").exists()

    # Not to themselves either.
    r = client.patch(f"/api/users/{manager.pk}/", {"roles": [admins.pk]}, format="json")
    assert r.status_code == 400
    manager.refresh_from_db()
    manager.__dict__.pop("_outbound_permissions", None)
    assert "roles.delete" not in user_permissions(manager)

    # A superuser may give any role.
    done = admin_client.patch(f"/api/users/{manager.pk}/", {"roles": [admins.pk]}, format="json")
    assert done.status_code == 200


def _key_client(owner: User, permissions: list[str]) -> APIClient:
    from outbound.accounts import services

    _, plaintext = services.api_key_create(
        owner=owner, name="narrow", permissions=permissions, actor=owner
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {plaintext}")
    return client


def test_users_edit_cannot_take_over_a_stronger_account(make_user: Callable[..., User]) -> None:
    boss = make_user("users.delete", "roles.delete", "users.edit")
    helper = client_for(make_user("users.edit"))
    r = helper.patch(f"/api/users/{boss.pk}/", {"password": "a-new-Passphrase-7"}, format="json")
    assert r.status_code == 403
    assert str(r.data["detail"]) == (
        "You cannot change or delete a user who holds permissions you do not hold."
    )
    boss.refresh_from_db()
    assert boss.check_password(PASSWORD)
    assert client_for(make_user("users.delete")).delete(f"/api/users/{boss.pk}/").status_code == 403


def test_an_inactive_superuser_cannot_be_revived_by_a_user_manager(
    admin_user: User, make_user: Callable[..., User]
) -> None:
    User.objects.filter(pk=admin_user.pk).update(is_active=False)
    helper = client_for(make_user("users.edit"))
    r = helper.patch(f"/api/users/{admin_user.pk}/", {"is_active": True}, format="json")
    assert r.status_code == 403
    admin_user.refresh_from_db()
    assert not admin_user.is_active


def test_a_superusers_narrow_key_grants_no_more_than_itself(admin_user: User) -> None:
    role = Role.objects.create(name="Ops", permissions=["users.list"])
    key = _key_client(admin_user, ["roles.edit", "roles.view"])
    r = key.patch(
        f"/api/roles/{role.pk}/", {"permissions": ["users.list", "users.delete"]}, format="json"
    )
    assert r.status_code == 400
    role.refresh_from_db()
    assert role.permissions == ["users.list"]


def test_what_one_cannot_grant_one_cannot_take_away_either(
    make_user: Callable[..., User],
) -> None:
    role = Role.objects.create(name="Ops", permissions=["users.list", "users.delete"])
    editor = client_for(make_user("roles.edit", "users.list"))
    r = editor.patch(f"/api/roles/{role.pk}/", {"permissions": ["users.list"]}, format="json")
    assert r.status_code == 400
    role.refresh_from_db()
    assert role.permissions == ["users.list", "users.delete"]
