"""The Commvault dialect as a Commvault client sees it: ``Authtoken`` API keys,
``/V4/EmailServer`` (GET, POST, PUT) and ``Action/Test`` against real SMTP servers, and
``{"errorMessage", "errorCode"}`` for every answer."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.accounts import services as account_services
from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.mail import selectors
from outbound.mail.models import SmtpConfig
from tests.conftest import client_for
from tests.support.smtp import smtp_server

URL = "/commandcenter/api/V4/EmailServer"
TEST_URL = "/commandcenter/api/V4/EmailServer/Action/Test"
NATIVE = "/api/administration/smtp-settings/"
OK = {"errorMessage": "", "errorCode": 0}
SECRET = "s3cret-Pässword"  # stored and read back as UTF-8
SMTP_SECRET = "s3cret-password"  # sent over SMTP AUTH (see the non-ASCII test below)
VIEW = "outbound_mail_setup.view"
EDIT = "outbound_mail_setup.edit"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def configure_body(**overrides: Any) -> dict[str, Any]:
    body = {
        "SMTPServerName": "smtp.example.com",
        "SMTPPort": 587,
        "senderEmail": "backup@example.com",
        "senderName": "Commvault",
        "encryptionAlgorithm": "TLS",
        "username": "mailer",
        "password": b64(SECRET),
    }
    body.update(overrides)
    return body


def key_for(user: User, *permissions: str) -> str:
    _, plaintext = account_services.api_key_create(
        owner=user, name="commvault", permissions=permissions, actor=user
    )
    return plaintext


def authtoken(value: str | None) -> APIClient:
    client = APIClient()
    if value is not None:
        client.credentials(HTTP_AUTHTOKEN=value)
    return client


def assert_error(response: Any, status: int, *fragments: str) -> None:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"errorMessage", "errorCode"}
    assert body["errorCode"] == status
    for fragment in fragments:
        assert fragment in body["errorMessage"], body


@pytest.fixture
def cv(admin_user: User) -> APIClient:
    """A Commvault client holding an API key with view and edit."""
    return authtoken(key_for(admin_user, VIEW, EDIT))


def stored() -> SmtpConfig:
    config = selectors.active_smtp_config()
    assert config is not None
    return config


# --- configure, read, modify ----------------------------------------------------------------


@pytest.mark.django_db
def test_configure_then_read(cv: APIClient, admin_client: APIClient) -> None:
    r = cv.post(URL, configure_body(), format="json")
    assert r.status_code == 200 and r.json() == OK

    r = cv.get(URL)
    assert r.status_code == 200
    assert r.json() == {
        "SMTPServerName": "smtp.example.com",
        "SMTPPort": 587,
        "senderEmail": "backup@example.com",
        "senderName": "Commvault",
        "encryptionAlgorithm": "TLS",
        "useAuthentication": True,
        "username": "mailer",
    }
    assert SECRET not in r.content.decode() and b64(SECRET) not in r.content.decode()
    config = stored()
    assert config.security == "starttls"
    assert config.get_secret(SmtpConfig.SECRET_PASSWORD) == SECRET

    # The native API reads the same row.
    native = admin_client.get(NATIVE).json()
    assert native["host"] == "smtp.example.com" and native["port"] == 587
    assert native["tls"] is True and native["username"] == "mailer"
    assert native["from_email"] == "backup@example.com"


@pytest.mark.django_db
def test_get_before_anything_is_configured(cv: APIClient) -> None:
    r = cv.get(URL)
    assert r.status_code == 200
    assert r.json()["SMTPServerName"] == "" and r.json()["useAuthentication"] is False
    assert "username" not in r.json()


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("given", "security", "shown"),
    [
        ("NONE", "none", "NONE"),
        ("TLS", "starttls", "TLS"),
        ("SSL", "ssl", "SSL"),
        ("ssl", "ssl", "SSL"),
    ],
)
def test_encryption_algorithms(cv: APIClient, given: str, security: str, shown: str) -> None:
    assert cv.post(URL, configure_body(encryptionAlgorithm=given), format="json").json() == OK
    assert stored().security == security
    assert cv.get(URL).json()["encryptionAlgorithm"] == shown


@pytest.mark.django_db
def test_configure_without_encryption_or_username(cv: APIClient) -> None:
    body = configure_body()
    del body["encryptionAlgorithm"], body["username"], body["password"]
    assert cv.post(URL, body, format="json").json() == OK
    got = cv.get(URL).json()
    assert got["encryptionAlgorithm"] == "NONE"  # the seed's default
    assert got["useAuthentication"] is False and "username" not in got
    assert not stored().has_password


@pytest.mark.django_db
def test_configure_updates_the_active_configuration(cv: APIClient) -> None:
    cv.post(URL, configure_body(), format="json")
    first = stored().pk
    assert cv.post(URL, configure_body(SMTPServerName="mx.example.net"), format="json").json() == OK
    assert SmtpConfig.objects.count() == 1 and stored().pk == first
    assert stored().host == "mx.example.net"


@pytest.mark.django_db
def test_configure_requires_the_seeds_fields(cv: APIClient) -> None:
    r = cv.post(URL, {}, format="json")
    assert_error(
        r,
        400,
        "SMTPServerName: This field is required.",
        "SMTPPort: This field is required.",
        "senderEmail: This field is required.",
        "senderName: This field is required.",
    )
    assert SmtpConfig.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"password": "not base64!"}, "password: The password is not valid base64."),
        ({"password": None}, "password: This field is required when a username is given."),
        ({"username": ""}, "username: This field is required when a password is given."),
        ({"encryptionAlgorithm": "STARTTLS"}, "encryptionAlgorithm: "),
        ({"SMTPPort": "many"}, "SMTPPort: A valid integer is required."),
        ({"SMTPPort": 70000}, "SMTPPort: "),  # the core's range, under Commvault's name
        ({"senderEmail": "not an address"}, "senderEmail: "),
        ({"SMTPServerName": "bad host name!"}, "SMTPServerName: "),
    ],
)
def test_configure_refusals(cv: APIClient, overrides: dict[str, Any], fragment: str) -> None:
    r = cv.post(URL, configure_body(**overrides), format="json")
    assert_error(r, 400, fragment)
    assert "not base64!" not in r.json()["errorMessage"]
    assert SmtpConfig.objects.count() == 0


@pytest.mark.django_db
def test_modify_changes_only_what_is_given(cv: APIClient) -> None:
    cv.post(URL, configure_body(), format="json")
    # a new port needs the password again (a saved password never follows a new destination)
    again = {"password": b64(SECRET)}
    r = cv.put(URL, {"SMTPPort": 465, "senderName": "Backups", **again}, format="json")
    assert r.status_code == 200 and r.json() == OK
    got = cv.get(URL).json()
    assert got["SMTPPort"] == 465 and got["senderName"] == "Backups"
    # The encryption is Commvault's explicit choice: a new port alone does not change it.
    assert got["encryptionAlgorithm"] == "TLS"
    assert got["SMTPServerName"] == "smtp.example.com" and got["username"] == "mailer"
    assert stored().get_secret(SmtpConfig.SECRET_PASSWORD) == SECRET  # omitted: kept


@pytest.mark.django_db
def test_modify_password_and_authentication(cv: APIClient) -> None:
    cv.post(URL, configure_body(), format="json")
    assert cv.put(URL, {"password": b64("new-one")}, format="json").json() == OK
    assert stored().get_secret(SmtpConfig.SECRET_PASSWORD) == "new-one"
    assert cv.put(URL, {"password": ""}, format="json").json() == OK  # empty: kept
    assert stored().get_secret(SmtpConfig.SECRET_PASSWORD) == "new-one"

    r = cv.put(URL, {"useAuthentication": True}, format="json")
    assert_error(r, 400, "username: This field is required when useAuthentication is true.")

    assert cv.put(URL, {"useAuthentication": False}, format="json").json() == OK
    got = cv.get(URL).json()
    assert got["useAuthentication"] is False and "username" not in got
    assert not stored().has_password

    body = {"useAuthentication": True, "username": "relay", "password": b64("pw")}
    assert cv.put(URL, body, format="json").json() == OK
    assert cv.get(URL).json()["username"] == "relay"
    assert stored().get_secret(SmtpConfig.SECRET_PASSWORD) == "pw"


@pytest.mark.django_db
def test_modify_refusals(cv: APIClient) -> None:
    cv.post(URL, configure_body(), format="json")
    assert_error(cv.put(URL, {"password": "%%%"}, format="json"), 400, "password: ")
    assert_error(cv.put(URL, {"SMTPServerName": ""}, format="json"), 400, "SMTPServerName: ")
    assert_error(
        cv.put(URL, {"encryptionAlgorithm": "X"}, format="json"), 400, "encryptionAlgorithm"
    )
    assert stored().host == "smtp.example.com"


@pytest.mark.django_db
def test_modify_with_nothing_configured_needs_a_server(cv: APIClient) -> None:
    r = cv.put(URL, {"senderName": "x"}, format="json")
    assert_error(r, 400, "SMTPServerName: This field is required.")
    assert SmtpConfig.objects.count() == 0


@pytest.mark.django_db
def test_writes_land_in_the_event_stream(cv: APIClient, admin_user: User) -> None:
    cv.post(URL, configure_body(), format="json")
    cv.put(URL, {"senderName": "Other"}, format="json")
    events = list(Event.objects.filter(resource_type="smtp_config"))
    assert [e.action for e in events] == ["created", "activated", "updated"]
    assert all(e.actor_id == admin_user.pk for e in events)
    assert events[-1].changed_fields == ["sender_name"]


@pytest.mark.django_db
def test_native_writes_are_read_by_commvault(cv: APIClient, admin_client: APIClient) -> None:
    r = admin_client.patch(
        NATIVE,
        {"host": "relay.example.org", "port": 465, "tls": True, "username": "u", "password": "p"},
        format="json",
    )
    assert r.status_code == 200, r.data
    got = cv.get(URL).json()
    assert got["SMTPServerName"] == "relay.example.org" and got["SMTPPort"] == 465
    assert got["encryptionAlgorithm"] == "SSL" and got["username"] == "u"


# --- paths, methods, bodies -----------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/commandcenter/api/v4/emailserver",
        "/commandcenter/api/V4/EMAILSERVER",
        "/commandcenter/api/V4/EmailServer/",
    ],
)
def test_paths_match_in_any_case(cv: APIClient, path: str) -> None:
    assert cv.post(path, configure_body(), format="json").json() == OK
    assert cv.get(path).json()["SMTPServerName"] == "smtp.example.com"


@pytest.mark.django_db
def test_unknown_path_method_and_body(cv: APIClient) -> None:
    assert_error(cv.get("/commandcenter/api/V4/Nothing"), 404)
    assert_error(cv.delete(URL), 405)
    r = cv.post(URL, "{not json", content_type="application/json")
    assert_error(r, 400, "JSON parse error")


# --- authentication -------------------------------------------------------------------------


@pytest.mark.django_db
def test_authtoken_bare_and_qsdk(admin_user: User) -> None:
    key = key_for(admin_user, VIEW)
    assert authtoken(key).get(URL).status_code == 200
    assert authtoken(f"QSDK {key}").get(URL).status_code == 200
    assert authtoken(f"qsdk {key}").get(URL).status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "value", [None, "", "garbage", "QSDK", "QSDK a b", "ob_abcdefgh_" + "A" * 43]
)
def test_missing_or_invalid_token_is_401(admin_user: User, value: str | None) -> None:
    for r in (
        authtoken(value).get(URL),
        authtoken(value).post(URL, configure_body(), format="json"),
        authtoken(value).post(TEST_URL, {}, format="json"),
    ):
        assert_error(r, 401)
        assert r["WWW-Authenticate"] == "Authtoken"
    assert SmtpConfig.objects.count() == 0


@pytest.mark.django_db
def test_other_schemes_are_not_commvaults(admin_user: User) -> None:
    # A JWT in Authorization is the native API's scheme, not Commvault's.
    assert_error(client_for(admin_user).get(URL), 401)


@pytest.mark.django_db
def test_revoked_key_is_401(admin_user: User) -> None:
    key, plaintext = account_services.api_key_create(
        owner=admin_user, name="k", permissions=[VIEW], actor=admin_user
    )
    account_services.api_key_revoke(key=key, actor=admin_user)
    assert_error(authtoken(plaintext).get(URL), 401, "Invalid API key.")


@pytest.mark.django_db
def test_key_limited_to_view_cannot_write(make_user: Callable[..., User]) -> None:
    owner = make_user(VIEW, EDIT)
    client = authtoken(key_for(owner, VIEW))  # the owner may edit, the key may not
    assert client.get(URL).status_code == 200
    assert_error(client.post(URL, configure_body(), format="json"), 403)
    assert_error(client.put(URL, {"senderName": "x"}, format="json"), 403)
    assert_error(client.post(TEST_URL, {}, format="json"), 403)
    assert SmtpConfig.objects.count() == 0


@pytest.mark.django_db
def test_key_without_view_cannot_read(make_user: Callable[..., User]) -> None:
    owner = make_user("integrations.list")
    assert_error(authtoken(key_for(owner, "integrations.list")).get(URL), 403)


# --- the test mail --------------------------------------------------------------------------


@pytest.mark.django_db
def test_test_mail_with_given_settings(
    cv: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": SMTP_SECRET}) as srv:
        body = configure_body(SMTPServerName=srv.host, SMTPPort=srv.port, password=b64(SMTP_SECRET))
        r = cv.post(TEST_URL, body, format="json")
        assert r.status_code == 200 and r.json() == OK
    [envelope] = srv.recorder.messages
    assert envelope.rcpt_tos == ["admin@example.com"]  # the caller's address
    assert envelope.mail_from == "backup@example.com"
    assert srv.recorder.logins == [("mailer", SMTP_SECRET)]
    assert SmtpConfig.objects.count() == 0  # a test writes nothing


@pytest.mark.django_db
def test_test_mail_reuses_stored_credentials(
    cv: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(
        starttls=server_tls, users={"mailer": SMTP_SECRET, "other": SMTP_SECRET}
    ) as srv:
        cv.post(
            URL,
            configure_body(SMTPServerName=srv.host, SMTPPort=srv.port, password=b64(SMTP_SECRET)),
            format="json",
        )
        assert cv.post(TEST_URL, {}, format="json").json() == OK
        assert cv.post(TEST_URL, {"senderName": "Another"}, format="json").json() == OK
        # Another user or another server: the stored password is not sent there.
        r = cv.post(TEST_URL, {"username": "other"}, format="json")
        assert_error(r, 400, "password: ")
        r = cv.post(TEST_URL, {"SMTPServerName": "localhost"}, format="json")
        assert_error(r, 400, "password: ")
    assert srv.recorder.logins == [("mailer", SMTP_SECRET), ("mailer", SMTP_SECRET)]
    assert len(srv.recorder.messages) == 2


@pytest.mark.django_db
def test_failed_test_says_why_without_the_password(
    cv: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": "right"}) as srv:
        body = configure_body(SMTPServerName=srv.host, SMTPPort=srv.port, password=b64(SMTP_SECRET))
        r = cv.post(TEST_URL, body, format="json")
    assert_error(r, 400)
    assert r.json()["errorMessage"]
    assert SMTP_SECRET not in r.content.decode() and b64(SMTP_SECRET) not in r.content.decode()
    assert srv.recorder.messages == []


@pytest.mark.django_db
def test_test_mail_with_a_non_ascii_password(
    cv: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": SECRET}) as srv:
        body = configure_body(SMTPServerName=srv.host, SMTPPort=srv.port)
        r = cv.post(TEST_URL, body, format="json")
    assert r.json() == OK


@pytest.mark.django_db
def test_test_without_authentication_on_a_plain_server(cv: APIClient) -> None:
    with smtp_server() as srv:
        body = {
            "SMTPServerName": srv.host,
            "SMTPPort": srv.port,
            "encryptionAlgorithm": "NONE",
            "useAuthentication": False,
            "senderEmail": "backup@example.com",
        }
        assert cv.post(TEST_URL, body, format="json").json() == OK
    assert len(srv.recorder.messages) == 1 and srv.recorder.logins == []


@pytest.mark.django_db
def test_test_needs_the_callers_email(make_user: Callable[..., User]) -> None:
    owner = make_user(VIEW, EDIT)
    owner.email = ""
    owner.save(update_fields=["email"])
    client = authtoken(key_for(owner, VIEW, EDIT))
    with smtp_server() as srv:
        body = {"SMTPServerName": srv.host, "SMTPPort": srv.port, "encryptionAlgorithm": "NONE"}
        r = client.post(TEST_URL, body, format="json")
    assert_error(r, 400, "email address")
    assert srv.recorder.messages == []


@pytest.mark.django_db
def test_test_refuses_invalid_input(cv: APIClient) -> None:
    with smtp_server() as srv:  # a test mail needs a sender: none given, none stored
        body = {"SMTPServerName": srv.host, "SMTPPort": srv.port, "encryptionAlgorithm": "NONE"}
        r = cv.post(TEST_URL, body, format="json")
    assert_error(r, 400, "senderEmail: This field is required.")
    assert srv.recorder.messages == []
    assert_error(cv.post(TEST_URL, {"password": "***"}, format="json"), 400, "password: ")
    r = cv.post(TEST_URL, {"senderEmail": "backup@example.com"}, format="json")
    assert_error(r, 400, "SMTPServerName: ")


# --- the schema -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_schema_documents_the_dialect(admin_client: APIClient) -> None:
    schema = admin_client.get("/api/schema/", {"format": "json"}).json()
    paths = {p: ops for p, ops in schema["paths"].items() if p.startswith("/commandcenter/")}
    assert set(paths) == {
        "/commandcenter/api/V4/EmailServer",
        "/commandcenter/api/V4/EmailServer/Action/Test",
    }
    assert {m for ops in paths.values() for m in ops} == {"get", "post", "put"}
    for ops in paths.values():
        for op in ops.values():
            assert op["tags"] == ["Commvault"]
            assert op["security"] == [{"commvaultAuthtoken": []}]
    scheme = schema["components"]["securitySchemes"]["commvaultAuthtoken"]
    assert scheme["in"] == "header" and scheme["name"] == "Authtoken"


@pytest.mark.django_db
def test_test_is_throttled_in_commvaults_body(cv: APIClient, settings: Any) -> None:
    settings.OUTBOUND_TEST_RATE = "1/min"
    with smtp_server() as srv:
        body = {
            "SMTPServerName": srv.host,
            "SMTPPort": srv.port,
            "encryptionAlgorithm": "NONE",
            "senderEmail": "backup@example.com",
        }
        assert cv.post(TEST_URL, body, format="json").json() == OK
        r = cv.post(TEST_URL, body, format="json")
    assert_error(r, 429)
    assert "Retry-After" in r
    assert len(srv.recorder.messages) == 1


@pytest.mark.django_db
def test_only_json_bodies_are_taken_and_offered(cv: APIClient) -> None:
    r = cv.post(URL, configure_body(), format="multipart")
    assert_error(r, 415)
    r = cv.generic(
        "POST", URL, "SMTPServerName=smtp.example.com", "application/x-www-form-urlencoded"
    )
    assert_error(r, 415)
    assert not SmtpConfig.objects.exists()
    schema = cv.get("/api/schema/", {"format": "json"}).json()
    bodies = [
        op["requestBody"]["content"]
        for path, ops in schema["paths"].items()
        if path.startswith("/commandcenter/")
        for op in ops.values()
        if "requestBody" in op
    ]
    assert len(bodies) == 3  # POST and PUT EmailServer, POST Action/Test
    assert all(set(content) == {"application/json"} for content in bodies)


@pytest.mark.django_db
def test_unknown_paths_are_commvaults_404(cv: APIClient) -> None:
    for path in ("/commandcenter/api/V4/Nothing", "/commandcenter/api", "/commandcenter/api/"):
        for method in ("get", "post", "put", "delete", "options"):
            assert_error(getattr(cv, method)(path), 404)
