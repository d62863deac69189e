"""The Hitachi Ops Center Analyzer dialect as a Hitachi client sees it, over real HTTP and SMTP."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from django.db import OperationalError, connection
from rest_framework.test import APIClient

from outbound.accounts import services as account_services
from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.mail import selectors
from outbound.mail.models import SmtpConfig
from tests.conftest import PASSWORD, client_for
from tests.support.smtp import smtp_server

LIST_URL = "/Analytics/v1/objects/EmailServerSettings"
URL = LIST_URL + "/mailServerSetting%230"
TEMPLATE_URL = "/Analytics/v1/services/EmailServerSettings/actions/sendTestMail"
INVOKE_URL = TEMPLATE_URL + "/invoke"
NATIVE_URL = "/api/administration/smtp-settings/"
ERROR_KEYS = {"errorSource", "message", "messageID", "application"}
# The seed's example request, verbatim (numeric instanceID included).
SEED_BODY = {
    "instanceID": 1234568790,
    "hostname": "172.17.17.116",
    "authenticationEnabled": True,
    "userId": "user1",
    "updatePassword": True,
    "password": "a2FzaGltYTE=",
    "senderAddress": "user@example.com",
    "secureConnection": "Plain",
    "portNumber": 25,
}


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def basic(username: str, password: str = PASSWORD) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Basic {b64(f'{username}:{password}')}")
    return client


def assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == ERROR_KEYS
    assert body["application"] == "Analytics"
    assert body["messageID"].endswith("-E")
    return body


@pytest.fixture
def hitachi(admin_user: User) -> APIClient:
    return basic("admin")


@pytest.mark.django_db
def test_list_is_empty_before_anything_is_configured(hitachi: APIClient) -> None:
    r = hitachi.get(LIST_URL)
    assert r.status_code == 200
    assert r.json() == {
        "data": [],
        "pagination": {"page": 1, "pageSize": 0, "numPages": 1, "totalCount": 0},
        "count": 0,
    }


@pytest.mark.django_db
def test_the_seed_example_creates_the_active_configuration(
    hitachi: APIClient, admin_client: APIClient
) -> None:
    r = hitachi.put(URL, SEED_BODY, format="json")
    assert r.status_code == 200, r.content
    expected = {
        "instanceID": "mailServerSetting#0",
        "hostname": "172.17.17.116",
        "authenticationEnabled": True,
        "userId": "user1",
        "senderAddress": "user@example.com",
        "secureConnection": "Plain",
        "portNumber": 25,
    }
    assert r.json() == expected  # never password / updatePassword
    config = SmtpConfig.objects.get()
    assert config.is_active and config.security == "none"
    assert config.get_secret("password") == "kashima1"
    listed = hitachi.get(LIST_URL).json()
    assert listed["data"] == [expected]
    assert listed["count"] == 1 and listed["pagination"]["totalCount"] == 1
    assert hitachi.get(URL).json() == expected
    # ... and the native API reads what Hitachi wrote.
    native = admin_client.get(NATIVE_URL).data
    assert native["host"] == "172.17.17.116" and native["port"] == 25
    assert native["tls"] is False and native["username"] == "user1"
    assert native["from_email"] == "user@example.com"
    assert Event.objects.filter(resource_type="smtp_config", action="created").count() == 1


@pytest.mark.django_db
def test_a_native_write_is_read_through_hitachi(
    hitachi: APIClient, admin_client: APIClient
) -> None:
    r = admin_client.patch(
        NATIVE_URL,
        {
            "host": "smtp.example.com",
            "port": 465,
            "tls": True,
            "username": "mailer",
            "password": "pw",
            "from_email": "noreply@example.com",
        },
        format="json",
    )
    assert r.status_code == 200, r.data
    assert hitachi.get(URL).json() == {
        "instanceID": "mailServerSetting#0",
        "hostname": "smtp.example.com",
        "authenticationEnabled": True,
        "userId": "mailer",
        "senderAddress": "noreply@example.com",
        "secureConnection": "TLS",
        "portNumber": 465,
    }


@pytest.mark.django_db
def test_update_password_false_keeps_the_stored_password(hitachi: APIClient) -> None:
    hitachi.put(URL, SEED_BODY, format="json")
    body = {**SEED_BODY, "updatePassword": False, "password": b64("ignored")}
    assert hitachi.put(URL, body, format="json").status_code == 200
    assert SmtpConfig.objects.get().get_secret("password") == "kashima1"
    body = {**SEED_BODY, "password": b64("s3cret-ü")}
    assert hitachi.put(URL, body, format="json").status_code == 200
    assert SmtpConfig.objects.get().get_secret("password") == "s3cret-ü"


@pytest.mark.django_db
def test_disabling_authentication_drops_user_and_password(hitachi: APIClient) -> None:
    hitachi.put(URL, SEED_BODY, format="json")
    r = hitachi.put(URL, {**SEED_BODY, "authenticationEnabled": False}, format="json")
    assert r.status_code == 200
    assert r.json()["authenticationEnabled"] is False
    assert "userId" not in r.json()
    config = SmtpConfig.objects.get()
    assert config.username == "" and not config.has_password


@pytest.mark.parametrize(
    ("given", "stored", "shown"),
    [
        ("Plain", "none", "Plain"),
        ("STARTTLS", "starttls", "STARTTLS"),
        ("TLS", "ssl", "TLS"),
        ("SSL", "ssl", "TLS"),
        ("starttls", "starttls", "STARTTLS"),
    ],
)
@pytest.mark.django_db
def test_secure_connection_mapping(hitachi: APIClient, given: str, stored: str, shown: str) -> None:
    r = hitachi.put(URL, {**SEED_BODY, "secureConnection": given}, format="json")
    assert r.status_code == 200
    assert r.json()["secureConnection"] == shown
    assert SmtpConfig.objects.get().security == stored


@pytest.mark.django_db
def test_a_new_port_keeps_the_secure_connection(hitachi: APIClient) -> None:
    hitachi.put(URL, {**SEED_BODY, "secureConnection": "STARTTLS"}, format="json")
    again = {"updatePassword": True, "password": SEED_BODY["password"]}
    r = hitachi.put(URL, {"portNumber": 465, **again}, format="json")
    assert r.json()["secureConnection"] == "STARTTLS"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**SEED_BODY, "password": "not base64!"}, "password"),
        ({**SEED_BODY, "secureConnection": "Telepathy"}, "secureConnection"),
        ({**SEED_BODY, "portNumber": 70000}, "portNumber"),
        ({**SEED_BODY, "hostname": "bad host!"}, "hostname"),
        ({**SEED_BODY, "senderAddress": "not-an-address"}, "senderAddress"),
        ({**SEED_BODY, "userId": ""}, "userId"),
        ({k: v for k, v in SEED_BODY.items() if k != "password"}, "password"),
        ({k: v for k, v in SEED_BODY.items() if k != "hostname"}, "hostname"),
    ],
)
@pytest.mark.django_db
def test_invalid_bodies_are_400_with_hitachi_names(
    hitachi: APIClient, body: dict[str, Any], field: str
) -> None:
    body_out = assert_error(hitachi.put(URL, body, format="json"), 400)
    assert f"{field}:" in body_out["message"]
    assert (
        body_out["errorSource"] == "/Analytics/v1/objects/EmailServerSettings/mailServerSetting%230"
    )
    assert "not base64!" not in body_out["message"]
    assert not SmtpConfig.objects.exists()


@pytest.mark.django_db
def test_malformed_json_is_400(hitachi: APIClient) -> None:
    r = hitachi.put(URL, "{not json", content_type="application/json")
    assert_error(r, 400)


@pytest.mark.django_db
def test_unknown_instance_and_path_and_method(hitachi: APIClient) -> None:
    assert_error(hitachi.put(LIST_URL + "/mailServerSetting%231", SEED_BODY, format="json"), 404)
    assert_error(hitachi.get(URL), 404)  # nothing configured yet
    assert_error(hitachi.get("/Analytics/v1/objects/Nothing"), 404)
    assert_error(hitachi.delete(URL), 405)


@pytest.mark.django_db
def test_authentication_and_permissions(make_user: Callable[..., User]) -> None:
    r = APIClient().get(LIST_URL)
    assert_error(r, 401)
    assert r["WWW-Authenticate"].startswith("Basic")
    viewer = make_user("outbound_mail_setup.view")
    assert_error(basic(viewer.username, "wrong").get(LIST_URL), 401)
    assert basic(viewer.username).get(LIST_URL).status_code == 200
    assert_error(basic(viewer.username).put(URL, SEED_BODY, format="json"), 403)
    assert_error(basic(viewer.username).post(INVOKE_URL, {}, format="json"), 403)
    nobody = make_user()
    assert_error(basic(nobody.username).get(LIST_URL), 403)
    assert_error(client_for(nobody, "Bearer").get(TEMPLATE_URL), 403)
    editor = make_user("outbound_mail_setup.view", "outbound_mail_setup.edit")
    r = client_for(editor, "Bearer").put(URL, SEED_BODY, format="json")
    assert r.status_code == 200
    assert SmtpConfig.objects.get().modified_by == editor
    assert_error(APIClient(HTTP_AUTHORIZATION="Bearer nonsense").get(LIST_URL), 401)


@pytest.mark.django_db
def test_failed_basic_logins_are_throttled_per_username(
    settings: Any, make_user: Callable[..., User]
) -> None:
    settings.OUTBOUND_LOGIN_FAILURES = 3
    user = make_user("outbound_mail_setup.view")
    for _ in range(3):
        assert_error(basic(user.username, "guess").get(LIST_URL), 401)
    r = basic(user.username).get(LIST_URL)  # even the right password, for now
    assert_error(r, 429)
    assert int(r["Retry-After"]) > 0


@pytest.mark.django_db
def test_an_unavailable_database_is_412(
    hitachi: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down() -> None:
        raise OperationalError("connection refused")

    monkeypatch.setattr(selectors, "active_smtp_config", down)
    body = assert_error(hitachi.get(LIST_URL), 412)
    assert "connection refused" not in body["message"]


@pytest.mark.django_db
def test_the_action_template(hitachi: APIClient) -> None:
    hitachi.put(URL, SEED_BODY, format="json")
    r = hitachi.get(TEMPLATE_URL)
    assert r.status_code == 200
    body = r.json()
    assert body["name"] == "sendTestMail"
    assert body["method"] == "POST"
    assert body["href"] == "http://testserver" + INVOKE_URL
    assert body["parameters"] == [
        {
            "destinationAddresses": [],
            "emailSetting": {
                "instanceID": "mailServerSetting#0",
                "hostname": "172.17.17.116",
                "authenticationEnabled": True,
                "userId": "user1",
                "senderAddress": "user@example.com",
                "secureConnection": "Plain",
                "portNumber": 25,
                "updatePassword": False,
            },
        }
    ]
    assert "password" not in r.content.decode()


@pytest.mark.django_db
def test_send_test_mail_with_the_stored_password(
    hitachi: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": "pa55"}) as server:
        setting = {
            "hostname": server.host,
            "portNumber": server.port,
            "secureConnection": "STARTTLS",
            "authenticationEnabled": True,
            "userId": "mailer",
            "updatePassword": True,
            "password": b64("pa55"),
            "senderAddress": "alerts@example.com",
        }
        assert hitachi.put(URL, setting, format="json").status_code == 200
        # The template, filled in and sent back as is: the stored password is used.
        template = hitachi.get(TEMPLATE_URL).json()
        params = template["parameters"][0]
        params["destinationAddresses"] = ["ops@example.com", "dba@example.com"]
        r = hitachi.post(INVOKE_URL, {"parameters": [params]}, format="json")
        assert r.status_code == 200, r.content
        job = r.json()
        assert job["state"] == "success"
        assert [x["destinationAddress"] for x in job["result"]] == [
            "ops@example.com",
            "dba@example.com",
        ]
        assert any(s.get("tls_version") for s in job["result"][0]["steps"])
        assert [m.rcpt_tos for m in server.recorder.messages] == [
            ["ops@example.com"],
            ["dba@example.com"],
        ]
        assert server.recorder.messages[0].mail_from == "alerts@example.com"
        assert set(server.recorder.logins) == {("mailer", "pa55")}
        assert "pa55" not in r.content.decode()


@pytest.mark.django_db
def test_send_test_mail_reports_a_refused_login(
    hitachi: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": "pa55"}) as server:
        setting = {
            "hostname": server.host,
            "portNumber": server.port,
            "secureConnection": "STARTTLS",
            "authenticationEnabled": True,
            "userId": "mailer",
            "updatePassword": True,
            "password": b64("wrong-one"),
            "senderAddress": "alerts@example.com",
        }
        body = {
            "parameters": [{"destinationAddresses": ["ops@example.com"], "emailSetting": setting}]
        }
        r = hitachi.post(INVOKE_URL, body, format="json")
        error = assert_error(r, 400)
        assert "ops@example.com" in error["message"]
        assert "wrong-one" not in r.content.decode()
        assert server.recorder.messages == []
    assert not SmtpConfig.objects.exists()  # a test writes nothing


@pytest.mark.django_db
def test_send_test_mail_without_auth_on_a_plain_server(hitachi: APIClient) -> None:
    with smtp_server() as server:
        setting = {
            "hostname": server.host,
            "portNumber": server.port,
            "secureConnection": "Plain",
            "authenticationEnabled": False,
            "senderAddress": "alerts@example.com",
        }
        body = {
            "parameters": [{"destinationAddresses": ["ops@example.com"], "emailSetting": setting}]
        }
        r = hitachi.post(INVOKE_URL, body, format="json")
        assert r.status_code == 200, r.content
        assert len(server.recorder.messages) == 1


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"parameters": []},
        {"parameters": [{"destinationAddresses": []}]},
        {"parameters": [{"destinationAddresses": ["not-an-address"]}]},
    ],
)
@pytest.mark.django_db
def test_send_test_mail_invalid_bodies(hitachi: APIClient, body: dict[str, Any]) -> None:
    assert_error(hitachi.post(INVOKE_URL, body, format="json"), 400)


@pytest.mark.django_db
def test_send_test_mail_needs_settings_to_test(hitachi: APIClient) -> None:
    body = {"parameters": [{"destinationAddresses": ["ops@example.com"]}]}
    error = assert_error(hitachi.post(INVOKE_URL, body, format="json"), 400)
    assert "emailSetting.hostname:" in error["message"]


# --- updatePassword: false ignores the password, whatever it holds ------------------------


@pytest.mark.parametrize("password", [None, "not base64!", 12345, ["x"], {"a": 1}, ""])
@pytest.mark.django_db
def test_update_password_false_ignores_whatever_password_holds(
    hitachi: APIClient, password: Any
) -> None:
    hitachi.put(URL, SEED_BODY, format="json")
    body = {**SEED_BODY, "updatePassword": False, "password": password}
    r = hitachi.put(URL, body, format="json")
    assert r.status_code == 200, r.content
    assert SmtpConfig.objects.get().get_secret("password") == "kashima1"


@pytest.mark.django_db
def test_a_null_password_changes_nothing_and_update_password_true_needs_one(
    hitachi: APIClient,
) -> None:
    hitachi.put(URL, SEED_BODY, format="json")
    body = {k: v for k, v in SEED_BODY.items() if k != "updatePassword"}
    assert hitachi.put(URL, {**body, "password": None}, format="json").status_code == 200
    assert SmtpConfig.objects.get().get_secret("password") == "kashima1"
    error = assert_error(hitachi.put(URL, {**SEED_BODY, "password": None}, format="json"), 400)
    assert "password:" in error["message"]
    error = assert_error(hitachi.put(URL, {**SEED_BODY, "password": 5}, format="json"), 400)
    assert "password:" in error["message"]
    assert SmtpConfig.objects.get().get_secret("password") == "kashima1"


# --- Basic: one password hash per credential, not per request -------------------------------


@pytest.fixture
def hasher_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every password check (the slow hash) made through the user model."""
    calls: list[str] = []
    original = User.check_password

    def counting(self: User, raw_password: str) -> bool:
        calls.append(self.username)
        return original(self, raw_password)

    monkeypatch.setattr(User, "check_password", counting)
    return calls


@pytest.mark.django_db
def test_a_correct_basic_credential_is_hashed_once(
    hitachi: APIClient, hasher_calls: list[str]
) -> None:
    assert hitachi.get(LIST_URL).status_code == 200
    assert hasher_calls == ["admin"]
    for _ in range(3):
        assert hitachi.get(LIST_URL).status_code == 200
    assert hasher_calls == ["admin"]  # verified once, then remembered


@pytest.mark.django_db
def test_a_remembered_credential_ends_with_a_password_change(
    admin_user: User, hitachi: APIClient, hasher_calls: list[str]
) -> None:
    assert hitachi.get(LIST_URL).status_code == 200
    account_services.user_update(
        user=admin_user, data={"password": "a-brand-new-passphrase"}, actor=admin_user
    )
    assert_error(hitachi.get(LIST_URL), 401)  # the old password, though it was remembered
    assert basic("admin", "a-brand-new-passphrase").get(LIST_URL).status_code == 200
    admin_user.refresh_from_db()
    admin_user.is_active = False
    admin_user.save()
    assert_error(basic("admin", "a-brand-new-passphrase").get(LIST_URL), 401)


@pytest.mark.django_db
def test_wrong_passwords_still_count_while_a_credential_is_remembered(
    settings: Any, make_user: Callable[..., User], hasher_calls: list[str]
) -> None:
    settings.OUTBOUND_LOGIN_FAILURES = 3
    user = make_user("outbound_mail_setup.view")
    assert basic(user.username).get(LIST_URL).status_code == 200  # now remembered
    for _ in range(3):
        assert_error(basic(user.username, "guess").get(LIST_URL), 401)
    assert len(hasher_calls) == 4  # every wrong guess is really checked
    # Locked: the remembered right password is refused too, so the lock is no oracle.
    assert_error(basic(user.username).get(LIST_URL), 429)


@pytest.mark.django_db
def test_the_cache_holds_no_password(hitachi: APIClient) -> None:
    assert hitachi.get(LIST_URL).status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT cache_key, value FROM outbound_cache")
        rows = cursor.fetchall()
    assert rows
    encoded = base64.b64encode(PASSWORD.encode()).decode()
    for key, value in rows:
        for text in (PASSWORD, encoded):
            assert text not in key and text not in str(value)
        decoded = base64.b64decode(value)  # the database cache stores base64 of a pickle
        assert PASSWORD.encode() not in decoded


# --- JSON only -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_only_json_bodies_are_taken_and_offered(hitachi: APIClient) -> None:
    r = hitachi.put(URL, {"hostname": "smtp.example.com"}, format="multipart")
    assert_error(r, 415)
    r = hitachi.generic(
        "PUT", URL, "hostname=smtp.example.com", content_type="application/x-www-form-urlencoded"
    )
    assert_error(r, 415)
    assert not SmtpConfig.objects.exists()
    schema = hitachi.get("/api/schema/", {"format": "json"}).json()
    bodies = [
        op["requestBody"]["content"]
        for path, ops in schema["paths"].items()
        if path.startswith("/Analytics/")
        for op in ops.values()
        if "requestBody" in op
    ]
    assert len(bodies) == 2  # PUT EmailServerSettings/{id}, POST …/invoke
    assert all(set(content) == {"application/json"} for content in bodies)


# --- sendTestMail: one unit of the test budget per destination ---------------------------


@pytest.mark.django_db
def test_each_destination_spends_one_test_of_the_budget(
    hitachi: APIClient, admin_client: APIClient, settings: Any
) -> None:
    settings.OUTBOUND_TEST_RATE = "3/min"
    with smtp_server() as server:
        setting = {
            "hostname": server.host,
            "portNumber": server.port,
            "secureConnection": "Plain",
            "authenticationEnabled": False,
            "senderAddress": "alerts@example.com",
        }

        def invoke(*addresses: str) -> Any:
            test_mail = {"destinationAddresses": list(addresses), "emailSetting": setting}
            return hitachi.post(INVOKE_URL, {"parameters": [test_mail]}, format="json")

        too_many = invoke("a@example.com", "b@example.com", "c@example.com", "d@example.com")
        assert_error(too_many, 429)
        assert server.recorder.messages == []  # refused before any connection
        r = invoke("a@example.com", "b@example.com", "c@example.com")
        assert r.status_code == 200, r.content
        assert len(server.recorder.messages) == 3
        # Three connections spent the budget of three: the next test, in any shape, waits.
        assert_error(invoke("e@example.com"), 429)
        native = admin_client.post(
            "/api/administration/smtp-settings/test/",
            {"host": server.host, "port": server.port, "tls": False},
            format="json",
        )
        assert native.status_code == 429
        assert len(server.recorder.messages) == 3
