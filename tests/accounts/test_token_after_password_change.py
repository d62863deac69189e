"""A password change ends every JWT issued before it: the old refresh token can no longer
renew and the old access token no longer authenticates, whichever path changed the password
(the API, the console's services, ``set_password``); a new sign-in works at once."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.accounts import services
from outbound.accounts.models import User
from tests.accounts.conftest import REFRESH_URL, Login
from tests.accounts.test_tokens import WHOAMI_URL, bearer
from tests.conftest import PASSWORD

NEW_PASSWORD = "a-brand-new-passphrase-42"


def refresh(token: str) -> Any:
    return APIClient().post(REFRESH_URL, {"refresh": token}, format="json")


def change_through_the_api(user: User, admin_client: APIClient) -> None:
    r = admin_client.patch(f"/api/users/{user.pk}/", {"password": NEW_PASSWORD}, format="json")
    assert r.status_code == 200, r.data


def change_own_password_through_the_api(user: User, admin_client: APIClient) -> None:
    own = APIClient()
    own.force_authenticate(user)
    r = own.patch(f"/api/users/{user.pk}/", {"password": NEW_PASSWORD}, format="json")
    assert r.status_code == 200, r.data


def change_through_the_services(user: User, admin_client: APIClient) -> None:
    # The console's user form and own-password change call this service.
    services.user_update(user=user, data={"password": NEW_PASSWORD}, actor=user)


def change_with_set_password(user: User, admin_client: APIClient) -> None:
    # What `changepassword` and any other Django path do.
    user.set_password(NEW_PASSWORD)
    user.save()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        change_through_the_api,
        change_own_password_through_the_api,
        change_through_the_services,
        change_with_set_password,
    ],
)
def test_a_password_change_ends_the_tokens_issued_before_it(
    make_user: Callable[..., User],
    login: Login,
    admin_client: APIClient,
    change: Callable[[User, APIClient], None],
) -> None:
    user = make_user("users.list", "users.view", "users.edit", username="alice")
    old = login("alice", PASSWORD).data
    assert bearer(old["access"]).get(WHOAMI_URL).status_code == 200
    assert refresh(old["refresh"]).status_code == 200

    change(User.objects.get(pk=user.pk), admin_client)

    r = refresh(old["refresh"])
    assert r.status_code == 401, r.data
    assert r.json() == {"detail": "The refresh token was issued before the password changed."}
    assert "access" not in r.json()
    r = bearer(old["access"]).get(WHOAMI_URL)
    assert r.status_code == 401
    assert r.json() == {"detail": "The access token was issued before the password changed."}

    assert login("alice", PASSWORD).status_code == 401
    new = login("alice", NEW_PASSWORD)
    assert new.status_code == 200, new.data
    assert bearer(new.data["access"]).get(WHOAMI_URL).status_code == 200
    renewed = refresh(new.data["refresh"])
    assert renewed.status_code == 200
    assert bearer(renewed.data["access"]).get(WHOAMI_URL).status_code == 200


@pytest.mark.django_db
def test_other_changes_to_the_user_keep_their_tokens(
    make_user: Callable[..., User], login: Login, admin_client: APIClient
) -> None:
    user = make_user("users.list", username="alice")
    old = login("alice", PASSWORD).data
    r = admin_client.patch(f"/api/users/{user.pk}/", {"first_name": "Alice"}, format="json")
    assert r.status_code == 200, r.data
    assert refresh(old["refresh"]).status_code == 200
    assert bearer(old["access"]).get(WHOAMI_URL).status_code == 200


@pytest.mark.django_db
def test_a_deactivated_user_cannot_refresh(
    make_user: Callable[..., User], login: Login, admin_client: APIClient
) -> None:
    user = make_user(username="alice")
    old = login("alice", PASSWORD).data
    r = admin_client.patch(f"/api/users/{user.pk}/", {"is_active": False}, format="json")
    assert r.status_code == 200, r.data
    assert refresh(old["refresh"]).status_code == 401
