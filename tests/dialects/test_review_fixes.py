"""Odd inputs found in review: each is a clean 4xx in the vendor's own error body."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.accounts import services as account_services
from tests.conftest import client_for

HITACHI = "/Analytics/v1/objects/EmailServerSettings/mailServerSetting%230"


@pytest.fixture
def bearer(admin_user: Any) -> APIClient:
    return client_for(admin_user, "Bearer")


@pytest.mark.django_db
@pytest.mark.parametrize("value", [["x"], {"a": 1}, 5])
def test_hitachi_secure_connection_of_another_type_is_a_400(bearer: APIClient, value: Any) -> None:
    r = bearer.put(HITACHI, {"secureConnection": value}, format="json")
    assert r.status_code == 400
    assert r.json()["application"] == "Analytics"


@pytest.mark.django_db
def test_hitachi_malformed_json_says_the_body_is_invalid(bearer: APIClient) -> None:
    r = bearer.generic("PUT", HITACHI, "{bad", content_type="application/json")
    assert r.status_code == 400
    assert r.json()["message"].startswith("The format of the request body is invalid.")


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["offset", "limit"])
def test_zitadel_search_beyond_int64_is_invalid_argument(bearer: APIClient, field: str) -> None:
    r = bearer.post(
        "/admin/v1/smtp/_search", {"query": {field: "9223372036854775808"}}, format="json"
    )
    assert r.status_code == 400
    assert r.json()["code"] == 3


@pytest.mark.django_db
def test_commvault_port_zero_is_refused(admin_user: Any) -> None:
    _, key = account_services.api_key_create(
        owner=admin_user, name="cv", permissions=["outbound_mail_setup.edit"], actor=admin_user
    )
    client = APIClient()
    client.credentials(HTTP_AUTHTOKEN=key)
    body = {
        "SMTPServerName": "smtp.example.com", "SMTPPort": 0,
        "senderEmail": "a@example.com", "senderName": "A",
    }  # fmt: skip
    r = client.post("/commandcenter/api/V4/EmailServer", body, format="json")
    assert r.status_code == 400
    assert r.json()["errorCode"] == 400


@pytest.mark.django_db
@pytest.mark.parametrize("value", [5, ["tls"]])
def test_privx_protocol_of_another_type_is_incorrect_type(bearer: APIClient, value: Any) -> None:
    r = bearer.put(
        "/workflow-engine/api/v1/settings", {"smtp_server_protocol": value}, format="json"
    )
    assert r.status_code == 400
    assert r.json()["error_code"] == "VALUE_INCORRECT_TYPE"
    assert r.json()["property"] == "smtp_server_protocol"
