"""A refused credential reads the same plain way in every API shape: one sentence in that
shape's own error body, never a Python repr or the JWT library's internals.

Every shape by {malformed JWT, a scheme without a credential, an expired credential, a revoked
or unknown API key, a wrong Basic password}; where a shape does not take a scheme, the case
is sent the way that shape takes credentials (Commvault: ``Authtoken``)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from outbound.accounts import services as account_services
from outbound.accounts.models import ApiKey, User

CASES = ("malformed_jwt", "bare_scheme", "expired", "revoked_key", "unknown_key", "wrong_basic")


@dataclass(frozen=True)
class Shape:
    name: str
    method: str
    url: str
    keys: frozenset[str]
    message_key: str

    def message(self, body: dict[str, Any]) -> str:
        text = str(body[self.message_key])
        if self.name == "zitadel":  # ZITADEL appends the error's id: "… (AUTH-…)"
            text = re.sub(r" \([A-Za-z]+-[A-Za-z]+\)$", "", text)
        return text


SHAPES = [
    Shape("alx", "get", "/api/administration/smtp-settings/", frozenset({"detail"}), "detail"),
    Shape(
        "zitadel",
        "post",
        "/admin/v1/smtp/_search",
        frozenset({"code", "message", "details"}),
        "message",
    ),
    Shape(
        "hitachi",
        "get",
        "/Analytics/v1/objects/EmailServerSettings",
        frozenset({"errorSource", "message", "messageID", "application"}),
        "message",
    ),
    Shape(
        "commvault",
        "get",
        "/commandcenter/api/V4/EmailServer",
        frozenset({"errorMessage", "errorCode"}),
        "errorMessage",
    ),
    Shape(
        "privx",
        "get",
        "/workflow-engine/api/v1/settings",
        frozenset({"error_code", "error_message", "property", "details"}),
        "error_message",
    ),
]


def _basic(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def _headers(shape: str, case: str, user: User) -> dict[str, str]:
    """The request headers of ``case`` as a client of ``shape`` would send them."""
    expired = AccessToken.for_user(user)
    expired.set_exp(lifetime=-timedelta(minutes=1))
    revoked, revoked_key = account_services.api_key_create(
        owner=user, name="old", permissions=["outbound_mail_setup.view"], actor=user
    )
    account_services.api_key_revoke(key=revoked, actor=user)
    stale, stale_key = account_services.api_key_create(
        owner=user,
        name="stale",
        permissions=["outbound_mail_setup.view"],
        expires_at=timezone.now() + timedelta(days=1),
        actor=user,
    )
    ApiKey.objects.filter(pk=stale.pk).update(expires_at=timezone.now() - timedelta(minutes=1))
    unknown_key = "ob_abcdefgh_" + "A" * 43
    if shape == "commvault":  # Commvault's only scheme: ``Authtoken: [QSDK ]<key>``
        return {
            "malformed_jwt": {"HTTP_AUTHTOKEN": "QSDK eyJhbGciOiJIUzI1NiJ9.e30.x"},
            "bare_scheme": {"HTTP_AUTHTOKEN": "QSDK"},
            "expired": {"HTTP_AUTHTOKEN": stale_key},
            "revoked_key": {"HTTP_AUTHTOKEN": f"QSDK {revoked_key}"},
            "unknown_key": {"HTTP_AUTHTOKEN": unknown_key},
            "wrong_basic": {"HTTP_AUTHORIZATION": _basic(user.username, "wrong")},
        }[case]
    scheme = "JWT" if shape == "alx" else "Bearer"
    # ALX takes keys as ``Api-Key``, ZITADEL as a Bearer token; Hitachi and PrivX take no
    # keys, so a key is a Bearer token they must refuse as plainly as a bad JWT.
    key_scheme = "Api-Key" if shape == "alx" else "Bearer"
    return {
        "malformed_jwt": {"HTTP_AUTHORIZATION": f"{scheme} eyJhbGciOiJIUzI1NiJ9.e30.x"},
        "bare_scheme": {"HTTP_AUTHORIZATION": "Basic" if shape == "hitachi" else scheme},
        "expired": {"HTTP_AUTHORIZATION": f"{scheme} {expired}"},
        "revoked_key": {"HTTP_AUTHORIZATION": f"{key_scheme} {revoked_key}"},
        "unknown_key": {"HTTP_AUTHORIZATION": f"{key_scheme} {unknown_key}"},
        "wrong_basic": {"HTTP_AUTHORIZATION": _basic(user.username, "wrong")},
    }[case]


def assert_plain_sentence(text: str) -> None:
    assert text, "an empty message"
    for internal in ("ErrorDetail", "token_class", "token_type", "messages", "code="):
        assert internal not in text, text
    assert not set(text) & set("{}[]'\""), text
    # One sentence: ends with a full stop, and no second sentence starts inside it.
    assert text.endswith("."), text
    assert not re.search(r"[.!?] +[A-Z]", text[:-1]), text


@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: s.name)
def test_a_refused_credential_is_one_plain_sentence(
    admin_user: User, shape: Shape, case: str
) -> None:
    client = APIClient()
    client.credentials(**_headers(shape.name, case, admin_user))
    kwargs = {"data": {}, "format": "json"} if shape.method == "post" else {}
    r = getattr(client, shape.method)(shape.url, **kwargs)
    assert r.status_code == 401, r.content
    body = r.json()
    assert set(body) == shape.keys
    raw = json.dumps(body)
    for internal in ("ErrorDetail(", "token_class", "token_not_valid", "messages"):
        assert internal not in raw, raw
    assert_plain_sentence(shape.message(body))
    if shape.name == "zitadel":
        assert body["code"] == 16  # UNAUTHENTICATED
        assert_plain_sentence(body["details"][0]["message"])
    if shape.name == "commvault":
        assert body["errorCode"] == 401


@pytest.mark.django_db
@pytest.mark.parametrize(
    "shape", [s for s in SHAPES if s.name != "commvault"], ids=lambda s: s.name
)
def test_expired_and_malformed_tokens_say_which(admin_user: User, shape: Shape) -> None:
    """The sentence tells a client whether to refresh (expired) or to sign in again."""
    kwargs = {"data": {}, "format": "json"} if shape.method == "post" else {}
    said = {}
    for case in ("expired", "malformed_jwt", "bare_scheme"):
        client = APIClient()
        client.credentials(**_headers(shape.name, case, admin_user))
        said[case] = shape.message(getattr(client, shape.method)(shape.url, **kwargs).json())
    assert "expired" in said["expired"]
    assert "expired" not in said["malformed_jwt"]
    assert len(set(said.values())) == 3, said


@pytest.mark.django_db
def test_a_token_from_before_a_password_change_says_so(admin_user: User) -> None:
    token = AccessToken.for_user(admin_user)
    account_services.user_update(
        user=admin_user, data={"password": "another-long-passphrase"}, actor=admin_user
    )
    for shape in SHAPES:
        if shape.name == "commvault":
            continue
        scheme = "JWT" if shape.name == "alx" else "Bearer"
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {token}")
        kwargs = {"data": {}, "format": "json"} if shape.method == "post" else {}
        r = getattr(client, shape.method)(shape.url, **kwargs)
        assert r.status_code == 401, (shape.name, r.content)
        message = shape.message(r.json())
        assert_plain_sentence(message)
        assert "password" in message
