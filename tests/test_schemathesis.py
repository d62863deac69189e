"""Schemathesis over the live test server: every operation of the OpenAPI document, a few
generated requests each, and every answer must be one the document describes.

Bounded on purpose (a handful of examples per operation, the coverage phase's edge cases,
no deadline): it guards the document's truth, it is not a fuzzing campaign. Deselect it with
``-m "not schemathesis"``.

Nothing generated leaves the machine: the egress policy is narrowed to loopback for this run
(a generated public host name is refused without a DNS lookup, a public address without a
socket), and a guard fails the test should anything still try to connect elsewhere.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from django.contrib.auth import get_user_model
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import HealthCheck, settings
from rest_framework_simplejwt.tokens import RefreshToken
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from outbound.accounts import services as account_services
from outbound.accounts.models import ApiKey
from outbound.core import egress
from outbound.core.permissions import all_permissions
from outbound.mail import services as mail_services
from tests.conftest import PASSWORD
from tests.support.smtp import smtp_server

pytestmark = pytest.mark.schemathesis

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Bounded for `make test` and reproducible: the same requests every run (CI stays green
# until the code changes). Explore further with e.g. OUTBOUND_SCHEMATHESIS_EXAMPLES=50
# OUTBOUND_SCHEMATHESIS_SEED=random.
MAX_EXAMPLES = int(os.environ.get("OUTBOUND_SCHEMATHESIS_EXAMPLES", "6"))
_SEED = os.environ.get("OUTBOUND_SCHEMATHESIS_SEED", "20261201")
SEED = None if _SEED == "random" else int(_SEED)
USERNAME = "schemathesis"
KEY_NAME = "schemathesis"


def _document() -> dict[str, Any]:
    """The document the server serves at ``/api/schema/``, built the same way."""
    raw = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(raw, renderer_context={}))


def _config(
    document: dict[str, Any], *, max_examples: int = MAX_EXAMPLES, coverage: bool = True
) -> schemathesis.Config:
    # ZITADEL answers a method it does not implement with 501 (gRPC Unimplemented): where the
    # document says so, that is the operation's answer, not a server error.
    unimplemented = [
        {
            "include-path": path,
            "include-method": method.upper(),
            "checks": {"not_a_server_error": {"expected-statuses": ["2XX", "3XX", "4XX", 501]}},
        }
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "501" in operation.get("responses", {})
    ]
    return schemathesis.Config.from_dict(
        {
            **({"seed": SEED} if SEED is not None else {}),
            "generation": {"max-examples": max_examples},
            "phases": {
                "stateful": {"enabled": False},
                # A method an operation does not have is a 405 in every shape; the checks here
                # are about the documented methods.
                "coverage": {"enabled": coverage, "unexpected-methods": []},
            },
            "operations": unimplemented,
        }
    )


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=_config(DOCUMENT))
# Refused requests: a couple of generated requests per operation suffice to see each shape's
# 401 and 403 bodies.
refusals = schemathesis.openapi.from_dict(
    DOCUMENT, config=_config(DOCUMENT, max_examples=2, coverage=False)
)


# --- nothing leaves loopback -------------------------------------------------------------


def _is_loopback(host: str) -> bool:
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(literal.split("%", 1)[0])
    except ValueError:
        return literal.lower() in ("localhost", "localhost.")
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


@pytest.fixture
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Narrow the egress policy to loopback and record any other connection attempt."""
    escapes: list[str] = []
    real_resolve, real_check = egress.resolve, egress.check
    real_connect = socket.socket.connect

    def resolve(host: str, port: int, *, timeout: float) -> list[egress.IPAddress]:
        if not _is_loopback(host):
            # As the policy would end it, but without asking a resolver about a made-up name.
            raise egress.EgressDenied()
        return real_resolve(host, port, timeout=timeout)

    def check(addresses: list[egress.IPAddress], port: int, policy: Any = None) -> None:
        if not all((a.ipv4_mapped or a if a.version == 6 else a).is_loopback for a in addresses):
            raise egress.EgressDenied()
        real_check(addresses, port, policy)

    def connect(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(str(address[0])):
            escapes.append(str(address))
            raise ConnectionRefusedError("the schemathesis run stays on loopback")
        real_connect(sock, address)

    monkeypatch.setattr(egress, "resolve", resolve)
    monkeypatch.setattr(egress, "check", check)
    monkeypatch.setattr(socket.socket, "connect", connect)
    return escapes


# --- the server's state -----------------------------------------------------------------


@pytest.fixture(scope="module")
def smtp() -> Iterator[int]:
    with smtp_server() as server:
        yield server.port


@pytest.fixture
def seeded(transactional_db: None, settings: Any, smtp: int) -> int:
    """An active configuration pointing at a local SMTP server, so the singleton reads and
    the stored-configuration tests take their success paths too."""
    settings.OUTBOUND_SMTP_TIMEOUT = 1
    settings.OUTBOUND_EGRESS_ALLOW = f"127.0.0.0/8,::1/128,:{smtp}"
    mail_services.smtp_config_create(
        data={
            "host": "127.0.0.1",
            "port": smtp,
            "security": "none",
            "sender_address": "outbound@example.com",
        },
        actor=None,
        activate=True,
    )
    return smtp


class Credentials:
    """A superuser's JWT and API key, minted again only when a generated request has taken
    them away (deleted, deactivated or re-passworded the user, revoked the key)."""

    def __init__(self) -> None:
        self.user: Any = None
        self.password_hash = ""
        self.key: ApiKey | None = None
        self.headers: dict[str, str] = {}

    def valid(self) -> bool:
        return (
            self.user is not None
            and self.key is not None
            and get_user_model()
            .objects.filter(
                pk=self.user.pk, is_active=True, is_superuser=True, password=self.password_hash
            )
            .exists()
            and ApiKey.objects.filter(pk=self.key.pk, revoked_at__isnull=True).exists()
        )

    def __call__(self) -> dict[str, str]:
        if not self.valid():
            self.mint()
        return self.headers

    def mint(self) -> None:
        User = get_user_model()
        User.objects.filter(username=USERNAME).delete()
        self.user = account_services.user_create(
            username=USERNAME,
            password=PASSWORD,
            email="schemathesis@example.com",
            is_superuser=True,
        )
        self.password_hash = self.user.password
        self.key, key = account_services.api_key_create(
            owner=self.user, name=KEY_NAME, permissions=all_permissions(), actor=self.user
        )
        token = RefreshToken.for_user(self.user).access_token
        # ``Bearer`` serves ALX, ZITADEL, Hitachi and PrivX; Commvault reads ``Authtoken``.
        self.headers = {"Authorization": f"Bearer {token}", "Authtoken": key}


@pytest.fixture
def credentials(seeded: int) -> Credentials:
    return Credentials()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_answer_is_documented(
    case: schemathesis.Case, live_server: Any, credentials: Credentials, loopback_only: list[str]
) -> None:
    case.call_and_validate(base_url=live_server.url, headers=credentials(), checks=CHECKS)
    assert not loopback_only, f"a request tried to leave loopback: {loopback_only}"


@pytest.fixture
def powerless(seeded: int) -> dict[str, str]:
    """A signed-in user (and an API key of theirs) holding no permission at all."""
    user = account_services.user_create(
        username="powerless", password=PASSWORD, email="powerless@example.com"
    )
    _, key = account_services.api_key_create(owner=user, name="none", permissions=[], actor=user)
    token = RefreshToken.for_user(user).access_token
    return {"Authorization": f"Bearer {token}", "Authtoken": key}


@refusals.parametrize()
@settings(max_examples=2, deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_refusals_are_documented(
    case: schemathesis.Case, live_server: Any, powerless: dict[str, str], loopback_only: list[str]
) -> None:
    # Once with whatever credentials were generated for the operation's security schemes
    # (none, or garbage: 401), once as a user who may do nothing (403).
    case.call_and_validate(base_url=live_server.url, checks=CHECKS)
    case.call_and_validate(base_url=live_server.url, headers=powerless, checks=CHECKS)
    assert not loopback_only, f"a request tried to leave loopback: {loopback_only}"


@pytest.mark.django_db
@pytest.mark.parametrize("host", ["smtp.example.com", "8.8.8.8", "[2001:4860:4860::8888]"])
def test_the_run_never_leaves_loopback(
    host: str, admin_client: Any, loopback_only: list[str]
) -> None:
    """What the run's guard does with a generated public destination: refused as the egress
    policy refuses, without a DNS lookup or a socket."""
    lookups: list[Any] = []
    real_getaddrinfo = socket.getaddrinfo

    def getaddrinfo(*args: Any, **kwargs: Any) -> Any:
        lookups.append(args[0])
        return real_getaddrinfo(*args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket, "getaddrinfo", getaddrinfo)
        response = admin_client.post(
            "/api/administration/smtp-settings/test/",
            {"host": host.strip("[]"), "port": 25, "tls": False, "password": "x"},
            format="json",
        )
    assert response.status_code == 400
    assert egress.DENIED_MESSAGE in response.json()["msg"]
    assert lookups == [] and loopback_only == []
