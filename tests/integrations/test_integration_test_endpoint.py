"""``POST /api/integrations/test/``: an iManage test really authenticates.

The test runs an OAuth2 password grant against the authentication object's
``{server_url}/auth/oauth2/token`` — here a local HTTPS fake of iManage (the only mock: iManage
is not on this machine) — through the egress policy, with a timeout, and writes nothing.
"""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core.egress import DENIED_MESSAGE
from outbound.core.models import Event
from outbound.integrations.models import Integration
from tests.conftest import client_for
from tests.support.imanage import TOKEN_PATH, IManageServer, imanage_server

pytestmark = pytest.mark.django_db

URL = "/api/integrations/test/"
AUTH_URL = "/api/authentication-objects/"
OK = {"status": "ok", "errors": {}}
AUTH_FAILED = {"status": "error", "errors": {"non_field_errors": ["Authentication failed."]}}
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
UNREACHABLE = "The iManage server could not be reached"
PERMISSIONS = ("list", "view", "create", "edit", "delete")


@pytest.fixture
def imanage(server_tls: ssl.SSLContext, trust_test_ca: str) -> Iterator[IManageServer]:
    with imanage_server(server_tls) as server:
        yield server


def credentials(server: IManageServer) -> dict[str, str]:
    return {
        "server_url": server.url,
        "username": server.username,
        "password": server.password,
        "client_id": server.client_id,
        "client_secret": server.client_secret,
    }


def make_auth_object(client: APIClient, name: str = "iManage", **params: Any) -> int:
    body = {"name": name, "provider": "imanage", **params}
    response = client.post(AUTH_URL, body, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


def run_test(client: APIClient, authentication_object: Any, **extra: Any) -> Any:
    body = {"type": 1, "authentication_object": authentication_object, **extra}
    return client.post(URL, body, format="json")


def secrets_of(server: IManageServer) -> tuple[str, ...]:
    return (server.password, server.client_secret, server.token)


def writes() -> tuple[int, int]:
    return Integration.objects.count(), Event.objects.count()


def unused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- a real authentication ---------------------------------------------------------------------


def test_right_credentials_are_ok(admin_client: APIClient, imanage: IManageServer) -> None:
    auth = make_auth_object(admin_client, **credentials(imanage))
    before = writes()

    response = run_test(admin_client, auth)

    assert response.status_code == 200
    assert response.json() == OK
    assert writes() == before
    for secret in secrets_of(imanage):
        assert secret not in response.content.decode()


def test_the_server_receives_an_oauth2_password_grant(
    admin_client: APIClient, imanage: IManageServer
) -> None:
    auth = make_auth_object(admin_client, **credentials(imanage))

    run_test(admin_client, auth)

    assert imanage.requests == [
        {
            "path": [TOKEN_PATH],
            "grant_type": ["password"],
            "username": ["filer@example.com"],
            "password": ["imanage-Pa55word"],
            "client_id": ["alx-client"],
            "client_secret": ["imanage-client-s3cret"],
        }
    ]


def test_a_trailing_slash_on_the_server_url_is_ok(
    admin_client: APIClient, imanage: IManageServer
) -> None:
    auth = make_auth_object(
        admin_client, **{**credentials(imanage), "server_url": imanage.url + "/"}
    )

    assert run_test(admin_client, auth).json() == OK
    assert imanage.requests[0]["path"] == [TOKEN_PATH]


@pytest.mark.parametrize("wrong", ["password", "client_secret", "username", "client_id"])
def test_a_wrong_credential_is_authentication_failed(
    admin_client: APIClient, imanage: IManageServer, wrong: str
) -> None:
    auth = make_auth_object(admin_client, **{**credentials(imanage), wrong: "not-the-right-one"})
    before = writes()

    response = run_test(admin_client, auth)

    assert response.status_code == 200
    assert response.json() == AUTH_FAILED
    assert [r[wrong] for r in imanage.requests] == [["not-the-right-one"]]
    assert writes() == before
    for secret in (*secrets_of(imanage), "not-the-right-one"):
        assert secret not in response.content.decode()


def test_the_current_secret_is_used_after_it_is_changed(
    admin_client: APIClient, imanage: IManageServer
) -> None:
    auth = make_auth_object(admin_client, **{**credentials(imanage), "password": "old-password"})
    assert run_test(admin_client, auth).json() == AUTH_FAILED

    fixed = admin_client.patch(f"{AUTH_URL}{auth}/", {"password": imanage.password}, format="json")
    assert fixed.status_code == 200

    assert run_test(admin_client, auth).json() == OK
    assert [r["password"] for r in imanage.requests] == [["old-password"], [imanage.password]]


def test_another_path_on_the_server_is_reported_with_its_status(
    admin_client: APIClient, imanage: IManageServer
) -> None:
    server_url = imanage.url + "/not-imanage"
    auth = make_auth_object(admin_client, **{**credentials(imanage), "server_url": server_url})

    response = run_test(admin_client, auth)

    assert response.status_code == 200
    assert response.json() == {
        "status": "error",
        "errors": {"non_field_errors": ["The iManage server answered HTTP 404."]},
    }
    assert imanage.requests[0]["path"] == ["/not-imanage" + TOKEN_PATH]


# --- where the test may (not) connect ----------------------------------------------------------


def test_a_destination_the_egress_policy_denies_is_never_contacted(
    admin_client: APIClient, imanage: IManageServer, settings: Any
) -> None:
    auth = make_auth_object(admin_client, **credentials(imanage))
    settings.OUTBOUND_EGRESS_ALLOW = ""  # the default policy: no loopback, no high ports

    response = run_test(admin_client, auth)

    assert response.status_code == 200
    assert response.json() == {"status": "error", "errors": {"non_field_errors": [DENIED_MESSAGE]}}
    assert imanage.requests == []
    for secret in secrets_of(imanage):
        assert secret not in response.content.decode()


def test_a_private_address_is_denied_by_the_default_policy(
    admin_client: APIClient, settings: Any
) -> None:
    settings.OUTBOUND_EGRESS_ALLOW = ""
    auth = make_auth_object(
        admin_client,
        server_url="https://10.0.0.1",
        username="u",
        password="p-secret",
        client_id="c",
        client_secret="c-secret",
    )

    started = time.monotonic()
    response = run_test(admin_client, auth)

    assert response.status_code == 200
    assert response.json() == {"status": "error", "errors": {"non_field_errors": [DENIED_MESSAGE]}}
    assert time.monotonic() - started < 1  # refused up front, not after a connect timeout


def test_an_unreachable_server_is_an_error(admin_client: APIClient, trust_test_ca: str) -> None:
    auth = make_auth_object(
        admin_client,
        server_url=f"https://127.0.0.1:{unused_port()}",
        username="u",
        password="p-secret",
        client_id="c",
        client_secret="c-secret",
    )

    response = run_test(admin_client, auth)

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "error"
    (message,) = body["errors"]["non_field_errors"]
    assert message.startswith(UNREACHABLE)
    assert "p-secret" not in response.content.decode()


def test_an_untrusted_certificate_is_an_error(
    admin_client: APIClient, server_tls: ssl.SSLContext
) -> None:
    # No trust_test_ca: the fake's certificate is signed by a CA the client does not trust.
    with imanage_server(server_tls) as server:
        auth = make_auth_object(admin_client, **credentials(server))

        response = run_test(admin_client, auth)

        assert response.status_code == 200
        body = response.json()
        assert body["status"] == "error"
        assert body["errors"]["non_field_errors"][0].startswith(UNREACHABLE)
        assert server.requests == []  # the password never left


def test_a_silent_server_is_given_up_after_the_timeout(
    admin_client: APIClient, trust_test_ca: str, settings: Any
) -> None:
    settings.OUTBOUND_SMTP_TIMEOUT = 0.5
    with socket.socket() as listener:  # accepts connections (backlog) but never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        port = listener.getsockname()[1]
        auth = make_auth_object(
            admin_client,
            server_url=f"https://127.0.0.1:{port}",
            username="u",
            password="p-secret",
            client_id="c",
            client_secret="c-secret",
        )

        started = time.monotonic()
        response = run_test(admin_client, auth)
        elapsed = time.monotonic() - started

    assert response.status_code == 200
    assert response.json()["status"] == "error"
    (message,) = response.json()["errors"]["non_field_errors"]
    assert (
        message.startswith(UNREACHABLE) or message == "The iManage server did not answer in time."
    )
    assert elapsed < 3


# --- the seed's error rows and permissions -----------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("abc", "Incorrect type. Expected pk value, received str."),
        ([1], "Incorrect type. Expected pk value, received list."),
        (True, "Incorrect type. Expected pk value, received bool."),
        (1.0, "Incorrect type. Expected pk value, received float."),
        (987654, 'Invalid pk "987654" - AuthenticationObjectData does not exist.'),
        (None, "This field may not be null."),
    ],
)
def test_authentication_object_error_rows(
    admin_client: APIClient, imanage: IManageServer, value: Any, message: str
) -> None:
    response = run_test(admin_client, value)

    assert response.status_code == 400
    assert response.json() == {"authentication_object": [message]}
    assert imanage.requests == []


def test_authentication_object_is_required(admin_client: APIClient) -> None:
    response = admin_client.post(URL, {"type": 1}, format="json")
    assert response.status_code == 400
    assert response.json() == {"authentication_object": ["This field is required."]}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, {"type": ["This field is required."]}),
        ({"type": 9}, {"type": ['"9" is not a valid choice.']}),
        ({"type": None}, {"type": ["This field may not be null."]}),
    ],
)
def test_type_error_rows(
    admin_client: APIClient, imanage: IManageServer, body: dict[str, Any], expected: Any
) -> None:
    auth = make_auth_object(admin_client, **credentials(imanage))

    response = admin_client.post(URL, {**body, "authentication_object": auth}, format="json")

    assert response.status_code == 400
    assert response.json() == expected
    assert imanage.requests == []


def test_an_authentication_object_of_another_provider_does_not_exist_for_imanage(
    admin_client: APIClient, imanage: IManageServer
) -> None:
    response = admin_client.post(
        AUTH_URL,
        {
            "name": "Contoso",
            "provider": "microsoft_client_credentials",
            "tenant_id": "t",
            "client_id": "c",
            "client_secret": "ms-secret",
            "authority_url": imanage.url,
        },
        format="json",
    )
    microsoft = response.json()["id"]

    response = run_test(admin_client, microsoft)

    assert response.status_code == 400
    assert response.json() == {
        "authentication_object": [
            f'Invalid pk "{microsoft}" - AuthenticationObjectData does not exist.'
        ]
    }
    assert imanage.requests == []


@pytest.mark.parametrize(
    "held", [(), tuple(f"integrations.{p}" for p in PERMISSIONS if p != "create")]
)
def test_the_test_needs_integrations_create(
    admin_client: APIClient,
    imanage: IManageServer,
    make_user: Callable[..., User],
    held: tuple[str, ...],
) -> None:
    auth = make_auth_object(admin_client, **credentials(imanage))
    client = client_for(make_user(*held))

    response = run_test(client, auth)

    assert response.status_code == 403
    assert response.json() == FORBIDDEN
    assert imanage.requests == []


def test_integrations_create_alone_is_enough(
    admin_client: APIClient, imanage: IManageServer, make_user: Callable[..., User]
) -> None:
    auth = make_auth_object(admin_client, **credentials(imanage))
    client = client_for(make_user("integrations.create"))

    response = run_test(client, auth)

    assert response.status_code == 200
    assert response.json() == OK
    assert len(imanage.requests) == 1


def test_anonymous_callers_are_refused(admin_client: APIClient, imanage: IManageServer) -> None:
    auth = make_auth_object(admin_client, **credentials(imanage))
    response = run_test(client_for(None), auth)
    assert response.status_code == 401
    assert imanage.requests == []


def test_tests_are_throttled_per_user(
    admin_client: APIClient,
    imanage: IManageServer,
    make_user: Callable[..., User],
    settings: Any,
) -> None:
    settings.OUTBOUND_TEST_RATE = "3/min"
    auth = make_auth_object(admin_client, **credentials(imanage))

    codes = [run_test(admin_client, auth).status_code for _ in range(4)]

    assert codes == [200, 200, 200, 429]
    assert len(imanage.requests) == 3  # the refused one never called out
    other = client_for(make_user("integrations.create"))
    assert run_test(other, auth).json() == OK  # its own budget


def test_only_post_is_offered(admin_client: APIClient) -> None:
    assert admin_client.get(URL).status_code == 405
