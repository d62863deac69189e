"""``/api/auth/token/`` and ``/api/auth/token/refresh/``, and how requests authenticate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import jwt
import pytest
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

from outbound.accounts.models import User
from tests.accounts.conftest import REFRESH_URL, TOKEN_URL, Login
from tests.conftest import PASSWORD, client_for

# Any authenticated user may read its own flags: a cheap endpoint that needs a valid token.
WHOAMI_URL = "/api/users/permissions/users/"


def bearer(token: str, scheme: str = "JWT") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {token}")
    return client


def assert_unauthorized(response: Any) -> None:
    assert response.status_code == 401, response.data
    assert isinstance(response.data.get("detail"), str)
    assert response.data["detail"]


# --- obtaining tokens ---------------------------------------------------------------------


@pytest.mark.django_db
def test_login_returns_an_access_and_a_refresh_token(
    make_user: Callable[..., User], login: Login
) -> None:
    make_user("users.list", username="alice")
    r = login("alice", PASSWORD)
    assert r.status_code == 200, r.data
    assert set(r.data) == {"access", "refresh"}
    assert AccessToken(r.data["access"])["user_id"] == str(User.objects.get(username="alice").pk)


@pytest.mark.django_db
@pytest.mark.parametrize("scheme", ["JWT", "Bearer"])
def test_the_issued_access_token_authenticates_with_both_schemes(
    make_user: Callable[..., User], login: Login, scheme: str
) -> None:
    make_user("users.list", username="alice")
    access = login("alice", PASSWORD).data["access"]
    r = bearer(access, scheme).get(WHOAMI_URL)
    assert r.status_code == 200, r.data
    assert r.data == {"list": True, "view": False, "create": False, "edit": False, "delete": False}
    # ...and on a permission-guarded list endpoint, not only the flags endpoint.
    assert bearer(access, scheme).get("/api/users/").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "not-the-password"), ("nobody", PASSWORD), ("ALICE", PASSWORD)],
)
def test_wrong_credentials_get_401_and_no_tokens(
    make_user: Callable[..., User], login: Login, username: str, password: str
) -> None:
    make_user(username="alice")
    r = login(username, password)
    assert_unauthorized(r)
    assert "access" not in r.data
    assert "refresh" not in r.data


@pytest.mark.django_db
def test_inactive_user_cannot_log_in(make_user: Callable[..., User], login: Login) -> None:
    user = make_user(username="alice")
    user.is_active = False
    user.save()
    assert_unauthorized(login("alice", PASSWORD))


@pytest.mark.django_db
def test_missing_password_is_a_validation_error(db: None) -> None:
    r = APIClient().post(TOKEN_URL, {"username": "alice"}, format="json")
    assert r.status_code == 400
    assert "password" in r.data


@pytest.mark.django_db
def test_login_needs_no_token_and_ignores_a_bad_one(
    make_user: Callable[..., User], login: Login
) -> None:
    make_user(username="alice")
    client = bearer("garbage")
    r = client.post(TOKEN_URL, {"username": "alice", "password": PASSWORD}, format="json")
    assert r.status_code == 200, r.data


# --- refreshing ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_refresh_returns_a_working_access_token(
    make_user: Callable[..., User], login: Login
) -> None:
    make_user("users.list", username="alice")
    refresh = login("alice", PASSWORD).data["refresh"]
    r = APIClient().post(REFRESH_URL, {"refresh": refresh}, format="json")
    assert r.status_code == 200, r.data
    assert bearer(r.data["access"], "Bearer").get("/api/users/").status_code == 200


@pytest.mark.django_db
def test_refresh_refuses_an_access_token_and_garbage(
    make_user: Callable[..., User], login: Login
) -> None:
    make_user(username="alice")
    access = login("alice", PASSWORD).data["access"]
    for bad in (access, "garbage"):
        r = APIClient().post(REFRESH_URL, {"refresh": bad}, format="json")
        assert_unauthorized(r)
        assert "access" not in r.data
    r = APIClient().post(REFRESH_URL, {}, format="json")
    assert r.status_code == 400
    assert "refresh" in r.data


@pytest.mark.django_db
def test_refresh_for_a_deactivated_user_is_refused(make_user: Callable[..., User]) -> None:
    user = make_user(username="alice")
    refresh = str(RefreshToken.for_user(user))
    user.is_active = False
    user.save()
    r = APIClient().post(REFRESH_URL, {"refresh": refresh}, format="json")
    assert_unauthorized(r)
    assert "access" not in r.data


@pytest.mark.django_db
def test_refresh_for_a_deleted_user_is_401_not_a_server_error(
    make_user: Callable[..., User],
) -> None:
    user = make_user(username="alice")
    refresh = str(RefreshToken.for_user(user))
    user.delete()
    client = APIClient()
    client.raise_request_exception = False
    r = client.post(REFRESH_URL, {"refresh": refresh}, format="json")
    assert r.status_code == 401, r.content
    assert r.json()["detail"]
    assert "access" not in r.json()


# --- authenticating requests --------------------------------------------------------------


@pytest.mark.django_db
def test_no_credentials_get_401_with_a_detail(db: None) -> None:
    r = APIClient().get("/api/users/")
    assert_unauthorized(r)
    assert r.data["detail"] == "Authentication credentials were not provided."
    assert r.headers["WWW-Authenticate"].startswith("JWT")


@pytest.mark.django_db
def test_an_unknown_scheme_is_not_accepted(make_user: Callable[..., User]) -> None:
    token = str(RefreshToken.for_user(make_user("users.list")).access_token)
    assert_unauthorized(bearer(token, "Token").get("/api/users/"))


@pytest.mark.django_db
def test_garbage_token_gets_401(db: None) -> None:
    assert_unauthorized(bearer("not.a.token").get("/api/users/"))
    assert_unauthorized(bearer("not.a.token", "Bearer").get(WHOAMI_URL))


@pytest.mark.django_db
def test_expired_token_gets_401(make_user: Callable[..., User]) -> None:
    user = make_user("users.list")
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=-1))
    assert_unauthorized(bearer(str(token)).get("/api/users/"))
    # The same user with a fresh token is let in: the expiry was the only problem.
    assert client_for(user).get("/api/users/").status_code == 200


@pytest.mark.django_db
def test_token_signed_with_another_key_gets_401(make_user: Callable[..., User]) -> None:
    token = AccessToken.for_user(make_user("users.list"))
    forged = jwt.encode(
        dict(token.payload), "someone-elses-signing-key-of-32-bytes-or-more", algorithm="HS256"
    )
    assert_unauthorized(bearer(forged).get("/api/users/"))


@pytest.mark.django_db
def test_refresh_token_is_not_an_access_token(make_user: Callable[..., User]) -> None:
    refresh = RefreshToken.for_user(make_user("users.list"))
    assert_unauthorized(bearer(str(refresh)).get("/api/users/"))


@pytest.mark.django_db
def test_token_of_a_deactivated_user_stops_working(make_user: Callable[..., User]) -> None:
    user = make_user("users.list")
    client = client_for(user)
    assert client.get("/api/users/").status_code == 200
    user.is_active = False
    user.save()
    assert_unauthorized(client.get("/api/users/"))


@pytest.mark.django_db
def test_token_of_a_deleted_user_stops_working(make_user: Callable[..., User]) -> None:
    user = make_user("users.list")
    client = client_for(user, "Bearer")
    user.delete()
    assert_unauthorized(client.get("/api/users/"))
