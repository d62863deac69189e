"""ZITADEL's ``/admin/v1/smtp…`` as a ZITADEL client sees it: shapes, states, errors, auth,
real test mails, and round-trips with the native API."""

from __future__ import annotations

import re
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.accounts import services as account_services
from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.mail.models import SmtpConfig
from tests.conftest import client_for
from tests.support.smtp import smtp_server

P = "/admin/v1"
NATIVE = "/api/administration/smtp-settings/"
DETAIL_TYPE = "type.googleapis.com/zitadel.v1.ErrorDetail"
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3}|\.\d{6})?Z$")
BODY = {
    "senderAddress": "noreply@example.com",
    "senderName": "ZITADEL",
    "tls": True,
    "host": "smtp.example.com:587",
    "user": "mailer",
    "password": "s3cret-pass",
    "replyToAddress": "replies@example.com",
    "description": "primary",
}


@pytest.fixture
def zc(admin_user: User) -> APIClient:
    return client_for(admin_user, "Bearer")


def add(client: APIClient, **overrides: Any) -> str:
    r = client.post(f"{P}/smtp", {**BODY, **overrides}, format="json")
    assert r.status_code == 200, r.json()
    return str(r.json()["id"])


def assert_error(r: Any, status: int, code: int) -> dict[str, Any]:
    assert r.status_code == status, r.content
    body = r.json()
    assert set(body) == {"code", "message", "details"}
    assert body["code"] == code
    assert body["details"] and all(d["@type"] == DETAIL_TYPE for d in body["details"])
    assert all(set(d) == {"@type", "id", "message"} for d in body["details"])
    return dict(body)


# --- add, get, search ---------------------------------------------------------------------


@pytest.mark.django_db
def test_add_answers_details_and_id_and_starts_inactive(zc: APIClient) -> None:
    r = zc.post(f"{P}/smtp", {**BODY, "unknownField": 1}, format="json")
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"details", "id"}
    assert isinstance(body["id"], str) and body["id"].isdigit()
    details = body["details"]
    assert set(details) == {"sequence", "creationDate", "changeDate", "resourceOwner"}
    assert isinstance(details["sequence"], str) and int(details["sequence"]) > 0
    assert RFC3339.match(details["creationDate"]) and RFC3339.match(details["changeDate"])

    r = zc.get(f"{P}/smtp/{body['id']}")
    assert r.status_code == 200
    config = r.json()["smtpConfig"]
    assert config == {
        "details": config["details"],
        "id": body["id"],
        "senderAddress": "noreply@example.com",
        "senderName": "ZITADEL",
        "tls": True,
        "host": "smtp.example.com:587",
        "user": "mailer",
        "replyToAddress": "replies@example.com",
        "state": "SMTP_CONFIG_INACTIVE",
        "description": "primary",
    }
    assert config["details"]["sequence"] == details["sequence"]
    stored = SmtpConfig.objects.get(pk=int(body["id"]))
    assert (stored.host, stored.port, stored.security) == ("smtp.example.com", 587, "starttls")
    assert stored.get_secret("password") == "s3cret-pass"
    assert "s3cret-pass" not in r.content.decode()


@pytest.mark.django_db
def test_zero_values_are_omitted_and_ipv6_host_round_trips(zc: APIClient) -> None:
    config_id = add(
        zc, tls=False, host="[::1]:2525", user="", password="", replyToAddress="", description=""
    )
    config = zc.get(f"{P}/smtp/{config_id}").json()["smtpConfig"]
    assert set(config) == {"details", "id", "senderAddress", "senderName", "host", "state"}
    assert config["host"] == "[::1]:2525"
    assert SmtpConfig.objects.get().security == "none"


@pytest.mark.django_db
def test_tls_on_465_is_implicit_tls(zc: APIClient) -> None:
    add(zc, host="smtp.example.com:465")
    assert SmtpConfig.objects.get().security == "ssl"


@pytest.mark.django_db
def test_get_active_is_404_until_one_is_activated(zc: APIClient) -> None:
    assert_error(zc.get(f"{P}/smtp"), 404, 5)
    config_id = add(zc)
    assert_error(zc.get(f"{P}/smtp"), 404, 5)
    r = zc.post(f"{P}/smtp/{config_id}/_activate", {}, format="json")
    assert r.status_code == 200 and set(r.json()) == {"details"}
    active = zc.get(f"{P}/smtp").json()["smtpConfig"]
    assert active["id"] == config_id and active["state"] == "SMTP_CONFIG_ACTIVE"


@pytest.mark.django_db
def test_activating_one_deactivates_the_other(zc: APIClient) -> None:
    first, second = add(zc), add(zc, description="second")
    zc.post(f"{P}/smtp/{first}/_activate")
    zc.post(f"{P}/smtp/{second}/_activate")
    assert zc.get(f"{P}/smtp/{first}").json()["smtpConfig"]["state"] == "SMTP_CONFIG_INACTIVE"
    assert zc.get(f"{P}/smtp").json()["smtpConfig"]["id"] == second


@pytest.mark.django_db
def test_activate_active_and_deactivate_inactive_are_failed_precondition(zc: APIClient) -> None:
    config_id = add(zc)
    assert_error(zc.post(f"{P}/smtp/{config_id}/_deactivate"), 400, 9)
    assert zc.post(f"{P}/smtp/{config_id}/_activate").status_code == 200
    assert_error(zc.post(f"{P}/smtp/{config_id}/_activate"), 400, 9)
    r = zc.post(f"{P}/smtp/{config_id}/_deactivate")
    assert r.status_code == 200
    assert_error(zc.get(f"{P}/smtp"), 404, 5)


@pytest.mark.django_db
def test_search_pages_and_counts(zc: APIClient) -> None:
    ids = [add(zc, description=f"c{i}") for i in range(3)]
    r = zc.post(
        f"{P}/smtp/_search", {"query": {"offset": "1", "limit": 1, "asc": True}}, format="json"
    )
    assert r.status_code == 200
    body = r.json()
    assert body["details"]["totalResult"] == "3"
    assert RFC3339.match(body["details"]["viewTimestamp"])
    assert [c["id"] for c in body["result"]] == [ids[1]]
    r = zc.post(f"{P}/smtp/_search", {}, format="json")
    assert [c["id"] for c in r.json()["result"]] == list(reversed(ids))
    assert_error(zc.post(f"{P}/smtp/_search", {"query": {"limit": -1}}, format="json"), 400, 3)


@pytest.mark.django_db
def test_search_with_nothing_stored(zc: APIClient) -> None:
    r = zc.post(f"{P}/smtp/_search", {}, format="json")
    assert r.status_code == 200
    # proto3 JSON leaves out zero values: no totalResult, no processedSequence, no result
    assert set(r.json()) == {"details"} and set(r.json()["details"]) == {"viewTimestamp"}


# --- update, password, delete -------------------------------------------------------------


@pytest.mark.django_db
def test_update_keeps_the_password_when_none_is_sent(zc: APIClient) -> None:
    config_id = add(zc)
    before = zc.get(f"{P}/smtp/{config_id}").json()["smtpConfig"]["details"]
    body = {**BODY, "senderName": "Renamed"}
    del body["password"]
    r = zc.put(f"{P}/smtp/{config_id}", body, format="json")
    assert r.status_code == 200 and set(r.json()) == {"details"}
    assert int(r.json()["details"]["sequence"]) > int(before["sequence"])
    assert r.json()["details"]["creationDate"] == before["creationDate"]
    stored = SmtpConfig.objects.get()
    assert (stored.host, stored.port, stored.sender_name) == ("smtp.example.com", 587, "Renamed")
    assert stored.get_secret("password") == "s3cret-pass"
    # The seed: an updated configuration "will be activated as soon as it is saved".
    assert stored.is_active


@pytest.mark.django_db
def test_update_to_another_server_must_bring_the_password_again(zc: APIClient) -> None:
    config_id = add(zc)
    body = {**BODY, "host": "mail.example.org:2525"}
    del body["password"]
    error = assert_error(zc.put(f"{P}/smtp/{config_id}", body, format="json"), 400, 3)
    assert error["details"][0]["id"] == "VALIDATION-password"
    assert "Enter the password again" in error["message"]
    assert SmtpConfig.objects.get().host == "smtp.example.com"
    assert (
        zc.put(f"{P}/smtp/{config_id}", {**body, "password": "p2"}, format="json").status_code
        == 200
    )


@pytest.mark.django_db
def test_update_password(zc: APIClient) -> None:
    config_id = add(zc)
    r = zc.put(f"{P}/smtp/{config_id}/password", {"password": "new-one"}, format="json")
    assert r.status_code == 200 and set(r.json()) == {"details"}
    assert SmtpConfig.objects.get().get_secret("password") == "new-one"
    assert "new-one" not in r.content.decode()
    event = Event.objects.filter(resource_type="smtp_config").last()
    assert event is not None and event.changed_fields == ["password"]


@pytest.mark.django_db
def test_delete(zc: APIClient) -> None:
    config_id = add(zc)
    r = zc.delete(f"{P}/smtp/{config_id}")
    assert r.status_code == 200 and "sequence" in r.json()["details"]
    assert not SmtpConfig.objects.exists()
    assert_error(zc.get(f"{P}/smtp/{config_id}"), 404, 5)
    assert_error(zc.delete(f"{P}/smtp/{config_id}"), 404, 5)


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["smtp/999", "smtp/abc", "smtp/999/_activate"])
def test_unknown_ids_are_not_found(zc: APIClient, path: str) -> None:
    method = zc.post if path.endswith("_activate") else zc.get
    body = assert_error(method(f"{P}/{path}"), 404, 5)
    assert body["details"][0]["id"] == "SMTP-NotFound"


@pytest.mark.django_db
def test_unknown_path_and_method(zc: APIClient) -> None:
    assert_error(zc.get(f"{P}/nothing/here"), 404, 5)
    assert_error(zc.patch(f"{P}/smtp", {}, format="json"), 405, 12)


# --- validation ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"senderAddress": ""}, "senderAddress"),
        ({"senderAddress": "x" * 201}, "senderAddress"),
        ({"senderAddress": "not-an-address"}, "senderAddress"),
        ({"senderName": ""}, "senderName"),
        ({"host": ""}, "host"),
        ({"host": "smtp.example.com"}, "host"),
        ({"host": "smtp.example.com:99999"}, "host"),
        ({"host": "bad host!:25"}, "host"),
        ({"replyToAddress": "x" * 201}, "replyToAddress"),
        ({"description": "x" * 201}, "description"),
    ],
)
def test_invalid_fields_are_invalid_argument(
    zc: APIClient, overrides: dict[str, Any], field: str
) -> None:
    body = assert_error(zc.post(f"{P}/smtp", {**BODY, **overrides}, format="json"), 400, 3)
    assert any(d["id"] == f"VALIDATION-{field}" for d in body["details"]), body
    assert not SmtpConfig.objects.exists()


@pytest.mark.django_db
def test_missing_required_fields_and_bad_bodies(zc: APIClient) -> None:
    body = assert_error(zc.post(f"{P}/smtp", {}, format="json"), 400, 3)
    ids = {d["id"] for d in body["details"]}
    assert {"VALIDATION-senderAddress", "VALIDATION-senderName", "VALIDATION-host"} <= ids
    r = zc.post(f"{P}/smtp", "{not json", content_type="application/json")
    assert_error(r, 400, 3)
    assert_error(zc.post(f"{P}/smtp", [1, 2], format="json"), 400, 3)
    assert_error(zc.post(f"{P}/smtp", BODY), 400, 3)  # multipart: JSON only


@pytest.mark.django_db
def test_nulls_read_as_zero_values(zc: APIClient) -> None:
    config_id = add(zc, user=None, password=None, description=None, tls=None)
    config = zc.get(f"{P}/smtp/{config_id}").json()["smtpConfig"]
    assert "user" not in config and "tls" not in config and "description" not in config


# --- auth ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_no_or_bad_credentials_are_unauthenticated(admin_user: User) -> None:
    r = APIClient().get(f"{P}/smtp")
    assert_error(r, 401, 16)
    assert r["WWW-Authenticate"].startswith("Bearer")
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer not.a.jwt")
    assert_error(bad.get(f"{P}/smtp"), 401, 16)
    key = APIClient()
    key.credentials(HTTP_AUTHORIZATION="Bearer ob_abcdefgh_nope")
    assert_error(key.get(f"{P}/smtp"), 401, 16)


@pytest.mark.django_db
def test_permissions(make_user: Callable[..., User]) -> None:
    nobody = client_for(make_user(), "Bearer")
    assert_error(nobody.post(f"{P}/smtp/_search", {}, format="json"), 403, 7)
    viewer = client_for(make_user("outbound_mail_setup.view"), "Bearer")
    assert viewer.post(f"{P}/smtp/_search", {}, format="json").status_code == 200
    assert_error(viewer.get(f"{P}/smtp"), 404, 5)
    assert_error(viewer.post(f"{P}/smtp", BODY, format="json"), 403, 7)
    editor = client_for(make_user("outbound_mail_setup.view", "outbound_mail_setup.edit"), "Bearer")
    assert editor.post(f"{P}/smtp", BODY, format="json").status_code == 200


@pytest.mark.django_db
def test_api_key_as_bearer_is_limited_to_its_permissions(admin_user: User) -> None:
    _, raw = account_services.api_key_create(
        owner=admin_user, name="zitadel", permissions=["outbound_mail_setup.view"], actor=None
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.post(f"{P}/smtp/_search", {}, format="json").status_code == 200
    assert_error(client.post(f"{P}/smtp", BODY, format="json"), 403, 7)
    key = admin_user.api_keys.get()  # type: ignore[attr-defined]
    account_services.api_key_revoke(key=key, actor=None)
    assert_error(client.post(f"{P}/smtp/_search", {}, format="json"), 401, 16)


# --- round trips with the native API --------------------------------------------------------


@pytest.mark.django_db
def test_native_reads_what_zitadel_activated(zc: APIClient, admin_client: APIClient) -> None:
    config_id = add(zc, host="smtp.example.com:465")
    zc.post(f"{P}/smtp/{config_id}/_activate")
    native = admin_client.get(NATIVE).json()
    assert native["host"] == "smtp.example.com" and native["port"] == 465
    assert native["tls"] is True and native["username"] == "mailer"
    assert native["from_email"] == "noreply@example.com"


@pytest.mark.django_db
def test_zitadel_reads_what_native_wrote(zc: APIClient, admin_client: APIClient) -> None:
    r = admin_client.patch(
        NATIVE,
        {
            "host": "native.example.com",
            "port": 2525,
            "tls": False,
            "username": "n",
            "password": "p",
            "from_email": "native@example.com",
        },
        format="json",
    )
    assert r.status_code == 200, r.json()
    config = zc.get(f"{P}/smtp").json()["smtpConfig"]
    assert config["host"] == "native.example.com:2525"
    assert config["state"] == "SMTP_CONFIG_ACTIVE" and "tls" not in config
    assert config["user"] == "n" and config["senderAddress"] == "native@example.com"
    # and a ZITADEL update shows up natively, password kept (same server and user)
    body = {**BODY, "host": "native.example.com:2525", "tls": False, "user": "n"}
    body["senderName"] = "Renamed"
    del body["password"]
    assert zc.put(f"{P}/smtp/{config['id']}", body, format="json").status_code == 200
    assert admin_client.get(NATIVE).json()["from_email"] == "noreply@example.com"
    assert SmtpConfig.objects.get().get_secret("password") == "p"


# --- test mails against real servers -------------------------------------------------------


@pytest.mark.django_db
def test_test_by_id_uses_the_stored_password(
    zc: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": "s3cret-pass"}) as server:
        config_id = add(zc, host=f"127.0.0.1:{server.port}")
        r = zc.post(
            f"{P}/smtp/{config_id}/_test", {"receiverAddress": "to@example.com"}, format="json"
        )
        assert r.status_code == 200, r.json()
        assert r.json() == {}
        assert server.recorder.logins == [("mailer", "s3cret-pass")]
        assert [m.rcpt_tos for m in server.recorder.messages] == [["to@example.com"]]
        assert server.recorder.messages[0].mail_from == "noreply@example.com"


@pytest.mark.django_db
def test_test_with_full_settings_sends_a_mail(zc: APIClient) -> None:
    with smtp_server() as server:
        body = {
            "senderAddress": "noreply@example.com",
            "senderName": "Z",
            "tls": False,
            "host": f"127.0.0.1:{server.port}",
            "receiverAddress": "to@example.com",
        }
        r = zc.post(f"{P}/smtp/_test", body, format="json")
        assert r.status_code == 200, r.json()
        assert len(server.recorder.messages) == 1
    assert not SmtpConfig.objects.exists()  # a test writes nothing


@pytest.mark.django_db
def test_test_with_wrong_password_is_failed_precondition_without_the_secret(
    zc: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": "right"}) as server:
        body = {
            **BODY,
            "host": f"127.0.0.1:{server.port}",
            "password": "wrong-secret",
            "receiverAddress": "to@example.com",
        }
        r = zc.post(f"{P}/smtp/_test", body, format="json")
        error = assert_error(r, 400, 9)
        assert error["details"][0]["id"].startswith("SMTP-TEST-")
        assert "wrong-secret" not in r.content.decode()
        assert server.recorder.messages == []


@pytest.mark.django_db
def test_test_with_id_reuses_the_stored_password(
    zc: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": "s3cret-pass"}) as server:
        config_id = add(zc, host=f"127.0.0.1:{server.port}")
        body = {**BODY, "host": f"127.0.0.1:{server.port}", "receiverAddress": "to@example.com"}
        del body["password"]
        r = zc.post(f"{P}/smtp/_test", {**body, "id": config_id}, format="json")
        assert r.status_code == 200, r.json()
        assert server.recorder.logins == [("mailer", "s3cret-pass")]
        # without the id there is no stored password to use
        assert_error(zc.post(f"{P}/smtp/_test", body, format="json"), 400, 3)


@pytest.mark.django_db
def test_test_needs_a_receiver_and_edit_permission(
    zc: APIClient, make_user: Callable[..., User]
) -> None:
    config_id = add(zc)
    body = assert_error(zc.post(f"{P}/smtp/{config_id}/_test", {}, format="json"), 400, 3)
    assert body["details"][0]["id"] == "VALIDATION-receiverAddress"
    viewer = client_for(make_user("outbound_mail_setup.view"), "Bearer")
    r = viewer.post(
        f"{P}/smtp/{config_id}/_test", {"receiverAddress": "a@example.com"}, format="json"
    )
    assert_error(r, 403, 7)


@pytest.mark.django_db
def test_test_against_a_closed_port_fails_cleanly(zc: APIClient) -> None:
    from tests.support.smtp import free_port

    config_id = add(zc, host=f"127.0.0.1:{free_port()}", tls=False, user="")
    r = zc.post(f"{P}/smtp/{config_id}/_test", {"receiverAddress": "a@example.com"}, format="json")
    assert_error(r, 400, 9)


@pytest.mark.django_db
def test_tests_are_throttled_as_resource_exhausted(zc: APIClient, settings: Any) -> None:
    settings.OUTBOUND_TEST_RATE = "1/min"
    with smtp_server() as server:
        config_id = add(zc, host=f"127.0.0.1:{server.port}", tls=False, user="", password="")
        url = f"{P}/smtp/{config_id}/_test"
        body = {"receiverAddress": "a@example.com"}
        assert zc.post(url, body, format="json").status_code == 200
        r = zc.post(url, body, format="json")
        assert_error(r, 429, 8)
        assert "Retry-After" in r


@pytest.mark.django_db
def test_every_write_lands_in_the_event_stream_with_its_actor(
    zc: APIClient, admin_user: User
) -> None:
    config_id = add(zc)
    zc.post(f"{P}/smtp/{config_id}/_activate")
    zc.put(f"{P}/smtp/{config_id}/password", {"password": "x"}, format="json")
    zc.post(f"{P}/smtp/{config_id}/_deactivate")
    zc.delete(f"{P}/smtp/{config_id}")
    events = Event.objects.filter(resource_type="smtp_config", resource_id=config_id)
    assert [e.action for e in events] == [
        "created",
        "activated",
        "updated",
        "deactivated",
        "deleted",
    ]
    assert {e.actor_id for e in events} == {admin_user.pk}
    sequences = [e.sequence for e in events]
    assert sequences == sorted(sequences)
