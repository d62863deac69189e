"""ZITADEL's email-provider API (``/admin/v1/email…``) as a ZITADEL client sees it: the SMTP
provider over the same configurations as ``/smtp``, its ``none | plain | xoauth2`` auth, real
test mails, and the HTTP provider answered as Unimplemented."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.integrations import services as integration_services
from outbound.integrations.models import AuthenticationObject
from outbound.mail.models import SmtpConfig
from tests.conftest import client_for
from tests.dialects.zitadel.test_api import RFC3339, P, assert_error
from tests.support.smtp import Recorder, smtp_server
from tests.support.tokens import token_endpoint

E = f"{P}/email"
PROVIDER = {
    "senderAddress": "noreply@example.com",
    "senderName": "ZITADEL",
    "tls": True,
    "host": "smtp.example.com:587",
    "user": "mailer",
    "replyToAddress": "replies@example.com",
    "description": "primary",
    "plain": {"password": "s3cret-pass"},
}
CLIENT_SECRET = "graph-client-secret"


@pytest.fixture
def zc(admin_user: User) -> APIClient:
    return client_for(admin_user, "Bearer")


def add(client: APIClient, **overrides: Any) -> str:
    r = client.post(f"{E}/smtp", {**PROVIDER, **overrides}, format="json")
    assert r.status_code == 200, r.json()
    return str(r.json()["id"])


def read(client: APIClient, config_id: str) -> dict[str, Any]:
    r = client.get(f"{E}/{config_id}")
    assert r.status_code == 200, r.json()
    assert set(r.json()) == {"config"}
    return dict(r.json()["config"])


def microsoft(actor: User, authority: str = "https://login.example.com") -> AuthenticationObject:
    return integration_services.authentication_object_create(
        name="graph",
        provider="microsoft_client_credentials",
        params={
            "tenant_id": "contoso",
            "client_id": "app-123",
            "client_secret": CLIENT_SECRET,
            "authority_url": authority,
        },
        actor=actor,
    )


def xoauth2(authority: str = "https://login.example.com", **overrides: Any) -> dict[str, Any]:
    return {
        "tokenEndpoint": f"{authority}/contoso/oauth2/v2.0/token",
        "scopes": ["https://outlook.office365.com/.default"],
        "clientCredentials": {"clientId": "app-123"},
        **overrides,
    }


# --- add, read, list, state -----------------------------------------------------------------


@pytest.mark.django_db
def test_add_smtp_provider_and_read_it_as_an_email_provider(zc: APIClient) -> None:
    r = zc.post(f"{E}/smtp", PROVIDER, format="json")
    assert r.status_code == 200, r.json()
    assert set(r.json()) == {"details", "id"}
    config_id = r.json()["id"]
    assert set(r.json()["details"]) == {"sequence", "creationDate", "changeDate", "resourceOwner"}
    config = read(zc, config_id)
    assert config == {
        "details": config["details"],
        "id": config_id,
        "state": "EMAIL_PROVIDER_INACTIVE",
        "description": "primary",
        "smtp": {
            "senderAddress": "noreply@example.com",
            "senderName": "ZITADEL",
            "tls": True,
            "host": "smtp.example.com:587",
            "user": "mailer",
            "replyToAddress": "replies@example.com",
            "plain": {},
        },
    }
    assert RFC3339.match(config["details"]["changeDate"])
    stored = SmtpConfig.objects.get(pk=int(config_id))
    assert (stored.host, stored.port, stored.security) == ("smtp.example.com", 587, "starttls")
    assert stored.authorization_method == "username_and_password"
    assert stored.get_secret("password") == "s3cret-pass"
    assert "s3cret-pass" not in r.content.decode()


@pytest.mark.django_db
def test_proto_names_and_the_deprecated_top_level_password(zc: APIClient) -> None:
    body = {
        "sender_address": "noreply@example.com",
        "sender_name": "Z",
        "host": "smtp.example.com:587",
        "user": "mailer",
        "reply_to_address": "r@example.com",
        "password": "top-level",
    }
    r = zc.post(f"{E}/smtp", body, format="json")
    assert r.status_code == 200, r.json()
    config_id = r.json()["id"]
    stored = SmtpConfig.objects.get(pk=int(config_id))
    assert stored.reply_to_address == "r@example.com"
    assert stored.get_secret("password") == "top-level"  # no oneof: the old field still works
    assert read(zc, config_id)["smtp"]["plain"] == {}


@pytest.mark.django_db
def test_the_same_rows_as_smtp(zc: APIClient) -> None:
    via_smtp = zc.post(
        f"{P}/smtp",
        {"senderAddress": "a@example.com", "senderName": "A", "host": "smtp.example.com:25"},
        format="json",
    ).json()["id"]
    via_email = add(zc)
    listed = zc.post(f"{E}/_search", {}, format="json").json()
    assert [c["id"] for c in listed["result"]] == [via_email, via_smtp]
    assert listed["result"][1]["smtp"]["none"] == {}  # no user: no authentication
    assert zc.get(f"{P}/smtp/{via_email}").json()["smtpConfig"]["user"] == "mailer"
    # activating through one API is seen through the other
    assert zc.post(f"{E}/{via_smtp}/_activate").status_code == 200
    assert zc.get(f"{E}").json()["config"]["id"] == via_smtp
    assert zc.get(f"{P}/smtp").json()["smtpConfig"]["state"] == "SMTP_CONFIG_ACTIVE"


@pytest.mark.django_db
def test_get_active_activate_and_deactivate(zc: APIClient) -> None:
    assert_error(zc.get(E), 404, 5)
    first, second = add(zc), add(zc, description="second")
    r = zc.post(f"{E}/{first}/_activate", {}, format="json")
    assert r.status_code == 200 and set(r.json()) == {"details"}
    assert zc.get(E).json()["config"]["state"] == "EMAIL_PROVIDER_ACTIVE"
    zc.post(f"{E}/{second}/_activate")
    assert read(zc, first)["state"] == "EMAIL_PROVIDER_INACTIVE"
    assert_error(zc.post(f"{E}/{second}/_activate"), 400, 9)
    assert zc.post(f"{E}/{second}/_deactivate").status_code == 200
    assert_error(zc.post(f"{E}/{second}/_deactivate"), 400, 9)
    assert_error(zc.get(E), 404, 5)


@pytest.mark.django_db
def test_list_email_providers(zc: APIClient) -> None:
    ids = [add(zc, description=f"p{i}") for i in range(3)]
    r = zc.post(f"{E}/_search", {"query": {"offset": "1", "limit": 1, "asc": True}}, format="json")
    assert r.status_code == 200, r.json()
    body = r.json()
    assert set(body) == {"details", "result"}
    assert set(body["details"]) == {"totalResult", "processedSequence", "viewTimestamp"}
    assert body["details"]["totalResult"] == "3"
    assert [c["id"] for c in body["result"]] == [ids[1]]
    assert body["result"][0]["smtp"]["host"] == "smtp.example.com:587"
    r = zc.post(f"{E}/_search", {"query": None}, format="json")
    assert [c["id"] for c in r.json()["result"]] == list(reversed(ids))
    assert_error(zc.post(f"{E}/_search", {"query": {"limit": 2**32}}, format="json"), 400, 3)


@pytest.mark.django_db
def test_remove(zc: APIClient) -> None:
    config_id = add(zc)
    r = zc.delete(f"{E}/{config_id}")
    assert r.status_code == 200 and "sequence" in r.json()["details"]
    assert not SmtpConfig.objects.exists()
    assert_error(zc.get(f"{E}/{config_id}"), 404, 5)
    assert_error(zc.delete(f"{E}/{config_id}"), 404, 5)


# --- update and password ------------------------------------------------------------------


@pytest.mark.django_db
def test_update_activates_and_keeps_the_password_for_the_same_server(zc: APIClient) -> None:
    config_id = add(zc)
    body = {**PROVIDER, "senderName": "Renamed", "plain": {}}
    r = zc.put(f"{E}/smtp/{config_id}", body, format="json")
    assert r.status_code == 200 and set(r.json()) == {"details"}
    stored = SmtpConfig.objects.get()
    assert stored.sender_name == "Renamed" and stored.is_active
    assert stored.get_secret("password") == "s3cret-pass"


@pytest.mark.django_db
def test_update_to_another_server_must_bring_the_password_again(zc: APIClient) -> None:
    config_id = add(zc)
    body = {**PROVIDER, "host": "elsewhere.example.com:587", "plain": {}}
    error = assert_error(zc.put(f"{E}/smtp/{config_id}", body, format="json"), 400, 3)
    assert [d["id"] for d in error["details"]] == ["VALIDATION-password"]
    assert "Enter the password again: the server or user changed" in error["message"]
    stored = SmtpConfig.objects.get()
    assert stored.host == "smtp.example.com" and not stored.is_active  # nothing saved
    body["plain"] = {"password": "for-elsewhere"}
    assert zc.put(f"{E}/smtp/{config_id}", body, format="json").status_code == 200
    assert SmtpConfig.objects.get().get_secret("password") == "for-elsewhere"


@pytest.mark.django_db
def test_update_password(zc: APIClient) -> None:
    config_id = add(zc)
    r = zc.put(f"{E}/smtp/{config_id}/password", {"password": "new-one"}, format="json")
    assert r.status_code == 200 and set(r.json()) == {"details"}
    assert SmtpConfig.objects.get().get_secret("password") == "new-one"
    assert_error(zc.put(f"{E}/smtp/999/password", {"password": "x"}, format="json"), 404, 5)


@pytest.mark.django_db
def test_none_means_no_authentication(zc: APIClient) -> None:
    config_id = add(zc)
    body = {**PROVIDER, "user": "", "plain": None, "none": {}}
    assert zc.put(f"{E}/smtp/{config_id}", body, format="json").status_code == 200
    stored = SmtpConfig.objects.get()
    assert stored.username == "" and not stored.has_password
    smtp = read(zc, config_id)["smtp"]
    assert smtp["none"] == {} and "plain" not in smtp and "user" not in smtp
    # a user with "no authentication" is a contradiction
    error = assert_error(
        zc.put(f"{E}/smtp/{config_id}", {**body, "user": "mailer"}, format="json"), 400, 3
    )
    assert error["details"][0]["id"] == "VALIDATION-user"


@pytest.mark.django_db
def test_two_members_of_the_auth_oneof_are_refused(zc: APIClient) -> None:
    r = zc.post(f"{E}/smtp", {**PROVIDER, "none": {}}, format="json")
    error = assert_error(r, 400, 3)
    assert 'error parsing "none", oneof Auth is already set' in error["message"]
    assert not SmtpConfig.objects.exists()


# --- xoauth2: Microsoft client credentials ------------------------------------------------


@pytest.mark.django_db
def test_xoauth2_names_an_outbound_microsoft_credential(zc: APIClient, admin_user: User) -> None:
    obj = microsoft(admin_user)
    body = {**PROVIDER, "user": "mailer@contoso.com", "plain": None, "xoauth2": xoauth2()}
    config_id = add(zc, **body)
    stored = SmtpConfig.objects.get()
    assert stored.authorization_method == "microsoft_client_credentials"
    assert stored.authentication_object_id == obj.pk and not stored.has_password
    smtp = read(zc, config_id)["smtp"]
    assert smtp["xoauth2"] == {
        "tokenEndpoint": "https://login.example.com/contoso/oauth2/v2.0/token",
        "scopes": ["https://outlook.office365.com/.default"],
        "clientCredentials": {"clientId": "app-123"},
    }
    assert "plain" not in smtp and "none" not in smtp
    assert CLIENT_SECRET not in str(zc.post(f"{E}/_search", {}, format="json").content)


@pytest.mark.django_db
def test_xoauth2_in_proto_names_and_without_scopes(zc: APIClient, admin_user: User) -> None:
    obj = microsoft(admin_user)
    auth = {
        "token_endpoint": "https://login.example.com/contoso/oauth2/v2.0/token",
        "client_credentials": {"client_id": "app-123", "client_secret": ""},
    }
    add(zc, user="mailer@contoso.com", plain=None, xoauth2=auth)
    assert SmtpConfig.objects.get().authentication_object_id == obj.pk


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("auth", "detail"),
    [
        (xoauth2(tokenEndpoint="https://evil.example.com/contoso/oauth2/v2.0/token"), "xoauth2"),
        (xoauth2(clientCredentials={"clientId": "other"}), "xoauth2"),
        (xoauth2(scopes=["https://graph.microsoft.com/.default"]), "xoauth2"),
        (
            xoauth2(clientCredentials={"clientId": "app-123", "clientSecret": "x"}),
            "xoauth2.clientCredentials.clientSecret",
        ),
        (xoauth2(clientCredentials=None), "xoauth2.clientCredentials"),
    ],
)
def test_xoauth2_that_names_no_credential_is_invalid_argument(
    zc: APIClient, admin_user: User, auth: dict[str, Any], detail: str
) -> None:
    microsoft(admin_user)
    body = {**PROVIDER, "user": "mailer@contoso.com", "plain": None, "xoauth2": auth}
    error = assert_error(zc.post(f"{E}/smtp", body, format="json"), 400, 3)
    assert [d["id"] for d in error["details"]] == [f"VALIDATION-{detail}"]
    assert "/api/authentication-objects/" in error["message"] or "required" in error["message"]
    assert not SmtpConfig.objects.exists()


@pytest.mark.django_db
def test_xoauth2_requires_tls(zc: APIClient, admin_user: User) -> None:
    microsoft(admin_user)
    body = {**PROVIDER, "tls": False, "plain": None, "xoauth2": xoauth2()}
    error = assert_error(zc.post(f"{E}/smtp", body, format="json"), 400, 3)
    assert error["details"][0]["id"] == "VALIDATION-tls"


@pytest.mark.django_db
def test_xoauth2_test_by_id_signs_in_with_a_token(
    zc: APIClient, admin_user: User, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    recorder = Recorder(valid_tokens={"tok-123"})
    with (
        token_endpoint(server_tls, client_secret=CLIENT_SECRET, token="tok-123") as tokens,
        smtp_server(starttls=server_tls, recorder=recorder) as srv,
    ):
        microsoft(admin_user, tokens.url)
        body = {
            **PROVIDER,
            "host": f"127.0.0.1:{srv.port}",
            "user": "mailer@contoso.com",
            "plain": None,
            "xoauth2": xoauth2(tokens.url),
        }
        config_id = add(zc, **body)
        r = zc.post(
            f"{E}/smtp/{config_id}/_test", {"receiverAddress": "to@example.com"}, format="json"
        )
        assert r.status_code == 200, r.json()
    assert recorder.logins == [("XOAUTH2:mailer@contoso.com", "tok-123")]
    assert [m.rcpt_tos for m in recorder.messages] == [["to@example.com"]]


@pytest.mark.django_db
def test_an_unsaved_xoauth2_test_is_refused_on_xoauth2(zc: APIClient, admin_user: User) -> None:
    # the client secret lives on the credential: it is only used for a saved configuration
    microsoft(admin_user)
    body = {
        **PROVIDER,
        "plain": None,
        "xoauth2": xoauth2(),
        "receiverAddress": "to@example.com",
    }
    error = assert_error(zc.post(f"{E}/smtp/_test", body, format="json"), 400, 3)
    assert [d["id"] for d in error["details"]] == ["VALIDATION-xoauth2"]
    assert "Save the settings before testing them" in error["message"]


# --- tests against real servers -------------------------------------------------------------


@pytest.mark.django_db
def test_test_smtp_provider_with_plain_auth_sends_a_mail(
    zc: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": "typed-in"}) as server:
        body = {
            **PROVIDER,
            "host": f"127.0.0.1:{server.port}",
            "plain": {"password": "typed-in"},
            "receiver_address": "to@example.com",
        }
        del body["replyToAddress"], body["description"]
        r = zc.post(f"{E}/smtp/_test", body, format="json")
        assert r.status_code == 200, r.json()
        assert r.json() == {}
        assert server.recorder.logins == [("mailer", "typed-in")]
        assert [m.rcpt_tos for m in server.recorder.messages] == [["to@example.com"]]
    assert not SmtpConfig.objects.exists()  # a test writes nothing


@pytest.mark.django_db
def test_test_by_id_uses_the_stored_password(
    zc: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": "s3cret-pass"}) as server:
        config_id = add(zc, host=f"127.0.0.1:{server.port}")
        r = zc.post(
            f"{E}/smtp/{config_id}/_test", {"receiverAddress": "to@example.com"}, format="json"
        )
        assert r.status_code == 200, r.json()
        assert server.recorder.logins == [("mailer", "s3cret-pass")]


@pytest.mark.django_db
def test_a_failed_test_is_failed_precondition_without_the_secret(
    zc: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": "right"}) as server:
        body = {
            **PROVIDER,
            "host": f"127.0.0.1:{server.port}",
            "plain": {"password": "wrong-secret"},
            "receiverAddress": "to@example.com",
        }
        r = zc.post(f"{E}/smtp/_test", body, format="json")
        error = assert_error(r, 400, 9)
        assert error["details"][0]["id"].startswith("SMTP-TEST-")
        assert "wrong-secret" not in r.content.decode()


# --- the HTTP provider, permissions -------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("method", "path", "rpc"),
    [("post", "http", "AddEmailProviderHTTP"), ("put", "http/1", "UpdateEmailProviderHTTP")],
)
def test_the_http_provider_is_unimplemented(
    zc: APIClient, make_user: Callable[..., User], method: str, path: str, rpc: str
) -> None:
    body = {"endpoint": "https://relay.example.com/mail", "description": "relay"}
    r = getattr(zc, method)(f"{E}/{path}", body, format="json")
    error = assert_error(r, 501, 12)
    assert error["message"].startswith(f"method {rpc} not implemented")
    assert not SmtpConfig.objects.exists()
    assert_error(getattr(APIClient(), method)(f"{E}/{path}", body, format="json"), 401, 16)
    viewer = client_for(make_user("outbound_mail_setup.view"), "Bearer")
    assert_error(getattr(viewer, method)(f"{E}/{path}", body, format="json"), 403, 7)


@pytest.mark.django_db
def test_permissions(make_user: Callable[..., User], zc: APIClient) -> None:
    config_id = add(zc)
    viewer = client_for(make_user("outbound_mail_setup.view"), "Bearer")
    assert viewer.post(f"{E}/_search", {}, format="json").status_code == 200
    assert viewer.get(f"{E}/{config_id}").status_code == 200
    assert_error(viewer.post(f"{E}/smtp", PROVIDER, format="json"), 403, 7)
    assert_error(viewer.put(f"{E}/smtp/{config_id}", PROVIDER, format="json"), 403, 7)
    assert_error(viewer.post(f"{E}/{config_id}/_activate"), 403, 7)
    assert_error(viewer.delete(f"{E}/{config_id}"), 403, 7)
    r = viewer.post(f"{E}/smtp/{config_id}/_test", {"receiverAddress": "a@example.com"})
    assert_error(r, 403, 7)
    assert_error(APIClient().get(E), 401, 16)
