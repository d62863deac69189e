"""``/admin/v1`` reads requests as ZITADEL's grpc-gateway does: proto field names as well as
JSON names, any Content-Type as JSON, protojson's duplicate-field rule, ``null`` messages as
unset, ``ListQuery.limit`` as a uint32, and ``ListDetails.processedSequence`` on lists."""

from __future__ import annotations

import json
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.mail.models import SmtpConfig
from tests.conftest import client_for
from tests.dialects.zitadel.test_api import BODY, P, add, assert_error
from tests.support.smtp import smtp_server

SNAKE_BODY = {
    "sender_address": "noreply@example.com",
    "sender_name": "ZITADEL",
    "tls": True,
    "host": "smtp.example.com:587",
    "user": "mailer",
    "password": "s3cret-pass",
    "reply_to_address": "replies@example.com",
    "description": "snake",
}


@pytest.fixture
def zc(admin_user: User) -> APIClient:
    return client_for(admin_user, "Bearer")


def raw_post(client: APIClient, path: str, text: str, content_type: str) -> Any:
    return client.generic("POST", path, text, content_type=content_type)


# --- proto field names ----------------------------------------------------------------------


@pytest.mark.django_db
def test_proto_field_names_are_accepted_like_json_names(zc: APIClient) -> None:
    r = zc.post(f"{P}/smtp", SNAKE_BODY, format="json")
    assert r.status_code == 200, r.json()
    stored = SmtpConfig.objects.get(pk=int(r.json()["id"]))
    assert stored.sender_address == "noreply@example.com"
    assert stored.sender_name == "ZITADEL"
    assert stored.reply_to_address == "replies@example.com"
    # reads still answer in JSON names
    config = zc.get(f"{P}/smtp/{stored.pk}").json()["smtpConfig"]
    assert config["senderAddress"] == "noreply@example.com"
    assert config["replyToAddress"] == "replies@example.com"
    assert "sender_address" not in config


@pytest.mark.django_db
def test_proto_names_on_update_and_in_validation_errors(zc: APIClient) -> None:
    config_id = add(zc)
    body = {**SNAKE_BODY, "sender_name": "Renamed", "host": "smtp.example.com:587"}
    r = zc.put(f"{P}/smtp/{config_id}", body, format="json")
    assert r.status_code == 200, r.json()
    assert SmtpConfig.objects.get().sender_name == "Renamed"
    # a bad value under a proto name is reported under the field's JSON name
    r = zc.post(f"{P}/smtp", {**SNAKE_BODY, "sender_address": "not-an-address"}, format="json")
    error = assert_error(r, 400, 3)
    assert [d["id"] for d in error["details"]] == ["VALIDATION-senderAddress"]


@pytest.mark.django_db
def test_receiver_address_under_its_proto_name(zc: APIClient) -> None:
    with smtp_server() as server:
        config_id = add(zc, host=f"127.0.0.1:{server.port}", tls=False, user="", password="")
        r = zc.post(
            f"{P}/smtp/{config_id}/_test", {"receiver_address": "to@example.com"}, format="json"
        )
        assert r.status_code == 200, r.json()
        assert [m.rcpt_tos for m in server.recorder.messages] == [["to@example.com"]]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("json_name", "proto_name", "value"),
    [
        ("senderAddress", "sender_address", "other@example.com"),
        ("replyToAddress", "reply_to_address", "other@example.com"),
        ("senderName", "sender_name", "Other"),
    ],
)
def test_a_field_under_both_names_is_a_duplicate_field(
    zc: APIClient, json_name: str, proto_name: str, value: str
) -> None:
    r = zc.post(f"{P}/smtp", {**BODY, proto_name: value}, format="json")
    error = assert_error(r, 400, 3)
    assert f'duplicate field "{proto_name}"' in error["message"]
    assert not SmtpConfig.objects.exists()


@pytest.mark.django_db
def test_the_same_key_twice_is_a_duplicate_field(zc: APIClient) -> None:
    text = json.dumps(BODY)[:-1] + ', "host": "evil.example.com:25"}'
    error = assert_error(raw_post(zc, f"{P}/smtp", text, "application/json"), 400, 3)
    assert 'duplicate field "host"' in error["message"]
    assert not SmtpConfig.objects.exists()


# --- any Content-Type is JSON ---------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "text/plain", "application/octet-stream"],
)
def test_any_content_type_is_read_as_json(zc: APIClient, content_type: str) -> None:
    # what `curl -d '{…}'` sends: a JSON body labelled as a form
    r = raw_post(zc, f"{P}/smtp", json.dumps(BODY), content_type)
    assert r.status_code == 200, r.content
    assert SmtpConfig.objects.get().host == "smtp.example.com"


@pytest.mark.django_db
def test_a_form_encoded_body_is_invalid_json_not_a_form(zc: APIClient) -> None:
    r = raw_post(
        zc, f"{P}/smtp", "senderAddress=a%40example.com&host=x", "application/x-www-form-urlencoded"
    )
    assert_error(r, 400, 3)
    assert not SmtpConfig.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize("content_type", ["application/json", "text/plain"])
def test_a_blank_body_is_the_empty_message(zc: APIClient, content_type: str) -> None:
    add(zc)
    r = zc.generic("POST", f"{P}/smtp/_search", " \n", content_type=content_type)
    assert r.status_code == 200, r.content
    assert r.json()["details"]["totalResult"] == "1"


@pytest.mark.django_db
def test_the_openapi_document_names_json_as_the_request_type() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path, item in schema["paths"].items():
        if not path.startswith(P):
            continue
        for operation in item.values():
            if "requestBody" in operation:
                assert list(operation["requestBody"]["content"]) == ["application/json"], path


# --- ListQuery and ListDetails --------------------------------------------------------------


@pytest.mark.django_db
def test_null_query_means_no_query(zc: APIClient) -> None:
    ids = [add(zc, description=f"c{i}") for i in range(2)]
    r = zc.post(f"{P}/smtp/_search", {"query": None}, format="json")
    assert r.status_code == 200, r.json()
    assert [c["id"] for c in r.json()["result"]] == list(reversed(ids))


@pytest.mark.django_db
@pytest.mark.parametrize("limit", [4294967296, 2**63, -1, 1.5, "abc", True, [1], {"a": 1}])
def test_limit_is_a_uint32(zc: APIClient, limit: Any) -> None:
    r = zc.post(f"{P}/smtp/_search", {"query": {"limit": limit}}, format="json")
    error = assert_error(r, 400, 3)
    assert error["details"][0]["id"] == "VALIDATION-query.limit"


@pytest.mark.django_db
@pytest.mark.parametrize("limit", [4294967295, "4294967295", 0, 2.0])
def test_any_uint32_limit_is_accepted(zc: APIClient, limit: Any) -> None:
    add(zc)
    r = zc.post(f"{P}/smtp/_search", {"query": {"limit": limit}}, format="json")
    assert r.status_code == 200, r.json()
    assert len(r.json()["result"]) == 1


@pytest.mark.django_db
def test_an_offset_past_the_end_is_an_empty_page(zc: APIClient) -> None:
    add(zc)
    for offset in (1, str(2**63 - 1)):
        r = zc.post(f"{P}/smtp/_search", {"query": {"offset": offset}}, format="json")
        assert r.status_code == 200, r.json()
        assert "result" not in r.json() and r.json()["details"]["totalResult"] == "1"
    for offset in (2**63, 2**64, -1):  # beyond what a database can offset by
        r = zc.post(f"{P}/smtp/_search", {"query": {"offset": offset}}, format="json")
        assert_error(r, 400, 3)


@pytest.mark.django_db
def test_list_details_carry_the_processed_sequence(zc: APIClient) -> None:
    first = zc.post(f"{P}/smtp", BODY, format="json").json()
    second = zc.post(f"{P}/smtp", BODY, format="json").json()
    details = zc.post(f"{P}/smtp/_search", {}, format="json").json()["details"]
    assert set(details) == {"totalResult", "processedSequence", "viewTimestamp"}
    assert details["processedSequence"] == second["details"]["sequence"]  # uint64 as a string
    assert int(details["processedSequence"]) > int(first["details"]["sequence"])
    removed = zc.delete(f"{P}/smtp/{first['id']}").json()
    details = zc.post(f"{P}/smtp/_search", {}, format="json").json()["details"]
    assert details["processedSequence"] == removed["details"]["sequence"]
    assert details["totalResult"] == "1"
    latest = Event.objects.filter(resource_type="smtp_config").order_by("-sequence").first()
    assert latest is not None and details["processedSequence"] == str(latest.sequence)
