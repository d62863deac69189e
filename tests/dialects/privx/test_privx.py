"""The PrivX dialect as a PrivX client sees it: ``/settings``, ``/testsmtp``, scopes, errors."""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.core.models import Event
from outbound.mail.models import SmtpConfig
from tests.conftest import client_for
from tests.support.smtp import smtp_server

PREFIX = "/workflow-engine/api/v1"
SETTINGS = f"{PREFIX}/settings"
TEST = f"{PREFIX}/testsmtp"
NATIVE = "/api/administration/smtp-settings/"
SECRET = "Sentinel-privx-9d1e"
ERROR_KEYS = {"error_code", "error_message", "property", "details"}

BASE: dict[str, Any] = {
    "smtp_server": "smtp.example.com",
    "smtp_server_port": 587,
    "smtp_server_enabled": True,
    "smtp_server_username": "mailer",
    "smtp_server_password": SECRET,
    "smtp_server_protocol": "starttls",
    "smtp_server_insecure_verify": False,
    "smtp_sender_address": "privx@example.com",
    "smtp_retry_attempts": 0,
}
SENDER = "smtp_sender_address"
USERNAME = "smtp_server_username"
SHOWN = {k: v for k, v in BASE.items() if k != "smtp_server_password"}


@pytest.fixture
def privx(admin_user: Any) -> APIClient:
    return client_for(admin_user, "Bearer")


def put(client: APIClient, body: Any) -> Any:
    return client.put(SETTINGS, body, format="json")


def assert_error(r: Any, status: int, code: str, prop: str | None = None) -> dict[str, Any]:
    assert r.status_code == status, r.content
    body = r.json()
    assert set(body) == ERROR_KEYS
    assert body["error_code"] == code, body
    if prop is not None:
        assert body["property"] == prop, body
    for item in body["details"]:
        assert set(item) == ERROR_KEYS
    return body


# --- settings -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_get_before_anything_is_configured_shows_zero_values(privx: APIClient) -> None:
    r = privx.get(SETTINGS)
    assert r.status_code == 200
    assert r.json() == {
        "smtp_server": "",
        "smtp_server_port": 0,
        "smtp_server_enabled": False,
        "smtp_server_username": "",
        "smtp_server_protocol": "none",
        "smtp_server_insecure_verify": False,
        "smtp_sender_address": "",
        "smtp_retry_attempts": 0,
    }


@pytest.mark.django_db
def test_put_creates_the_active_configuration_and_get_reads_it(privx: APIClient) -> None:
    r = put(privx, BASE)
    assert r.status_code == 200, r.content
    assert r.json() == SHOWN
    assert "smtp_server_password" not in r.json()
    assert privx.get(SETTINGS).json() == SHOWN
    config = SmtpConfig.objects.get()
    assert config.is_active and config.security == "starttls"
    assert config.get_secret("password") == SECRET
    assert SECRET not in privx.get(SETTINGS).content.decode()
    actions = list(
        Event.objects.filter(resource_type="smtp_config").values_list("action", flat=True)
    )
    assert actions == ["created", "activated"]


@pytest.mark.django_db
def test_unknown_settings_keys_are_ignored(privx: APIClient) -> None:
    r = put(privx, {**BASE, "action_on_timeout": "deny", "requests_timeout": 3600})
    assert r.status_code == 200, r.content
    assert r.json() == SHOWN


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("protocol", "security", "native_tls"),
    [("none", "none", False), ("starttls", "starttls", True), ("tls", "ssl", True)],
)
def test_protocols_map_to_core_security(
    privx: APIClient, protocol: str, security: str, native_tls: bool
) -> None:
    r = put(privx, {**BASE, "smtp_server_protocol": protocol, "smtp_server_port": 465})
    assert r.status_code == 200, r.content
    assert r.json()["smtp_server_protocol"] == protocol
    assert SmtpConfig.objects.get().security == security
    assert privx.get(NATIVE).json()["tls"] is native_tls


@pytest.mark.django_db
@pytest.mark.parametrize("password", [None, "", "omit"])
def test_omitted_null_or_empty_password_keeps_the_stored_one(
    privx: APIClient, password: str | None
) -> None:
    put(privx, BASE)
    body = {**BASE, SENDER: "other@example.com"}
    if password == "omit":
        del body["smtp_server_password"]
    else:
        body["smtp_server_password"] = password
    assert put(privx, body).status_code == 200
    config = SmtpConfig.objects.get()
    assert config.sender_address == "other@example.com"
    assert config.get_secret("password") == SECRET


@pytest.mark.django_db
def test_clearing_the_username_forgets_the_password(privx: APIClient) -> None:
    put(privx, BASE)
    r = put(privx, {"smtp_server_username": ""})
    assert r.status_code == 200
    config = SmtpConfig.objects.get()
    assert config.username == "" and not config.has_password


@pytest.mark.django_db
def test_enabled_false_deactivates_and_true_reactivates_the_same_configuration(
    privx: APIClient,
) -> None:
    put(privx, BASE)
    r = put(privx, {**BASE, "smtp_server_enabled": False})
    assert r.status_code == 200
    assert r.json() == {**SHOWN, "smtp_server_enabled": False}
    assert privx.get(SETTINGS).json() == {**SHOWN, "smtp_server_enabled": False}
    assert not SmtpConfig.objects.get().is_active
    assert privx.get(NATIVE).json()["host"] == ""  # nothing active for the platform
    # Saving while disabled changes the same row and keeps it disabled.
    r = put(privx, {**BASE, "smtp_server_enabled": False, "smtp_server": "other.example.com"})
    assert r.json()["smtp_server"] == "other.example.com"
    assert not r.json()["smtp_server_enabled"]
    r = put(privx, {"smtp_server_enabled": True})
    assert r.json() == {**SHOWN, "smtp_server": "other.example.com"}
    assert SmtpConfig.objects.count() == 1 and SmtpConfig.objects.get().is_active
    actions = list(
        Event.objects.filter(resource_type="smtp_config").values_list("action", flat=True)
    )
    assert actions == ["created", "activated", "deactivated", "updated", "activated"]


@pytest.mark.django_db
def test_disabled_empty_settings_store_nothing(privx: APIClient) -> None:
    empty = privx.get(SETTINGS).json()
    r = put(privx, empty)
    assert r.status_code == 200
    assert r.json() == empty
    assert SmtpConfig.objects.count() == 0


@pytest.mark.django_db
def test_put_disabled_first_creates_an_inactive_configuration(privx: APIClient) -> None:
    r = put(privx, {**BASE, "smtp_server_enabled": False})
    assert r.status_code == 200
    assert not r.json()["smtp_server_enabled"]
    assert not SmtpConfig.objects.get().is_active


# --- validation errors ---------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "code", "prop"),
    [
        ({"smtp_server_port": "587"}, "VALUE_INCORRECT_TYPE", "smtp_server_port"),
        ({"smtp_server_port": 70000}, "VALUE_OUT_OF_BOUNDS", "smtp_server_port"),
        ({"smtp_server_port": True}, "VALUE_INCORRECT_TYPE", "smtp_server_port"),
        ({"smtp_server_enabled": "yes"}, "VALUE_INCORRECT_TYPE", "smtp_server_enabled"),
        ({"smtp_server": 42}, "VALUE_INCORRECT_TYPE", "smtp_server"),
        ({"smtp_server_protocol": "ssl"}, "VALUE_OUT_OF_BOUNDS", "smtp_server_protocol"),
        (
            {"smtp_server_insecure_verify": True},
            "VALUE_OUT_OF_BOUNDS",
            "smtp_server_insecure_verify",
        ),
        ({"smtp_retry_attempts": 3}, "VALUE_OUT_OF_BOUNDS", "smtp_retry_attempts"),
        ({"smtp_retry_attempts": -1}, "VALUE_OUT_OF_BOUNDS", "smtp_retry_attempts"),
        ({"smtp_retry_attempts": "3"}, "VALUE_INCORRECT_TYPE", "smtp_retry_attempts"),
        ({"smtp_server": ""}, "REQUIRED_VALUE_MISSING", "smtp_server"),
        ({"smtp_server": "bad host!"}, "VALUE_INCORRECT_FORMAT", "smtp_server"),
        (
            {"smtp_sender_address": "not-an-address"},
            "VALUE_INCORRECT_FORMAT",
            "smtp_sender_address",
        ),
        (
            {"smtp_server_username": "a\r\nRCPT TO:<x>"},
            "VALUE_INCORRECT_FORMAT",
            "smtp_server_username",
        ),
    ],
)
def test_invalid_values_are_refused_with_privx_error_codes(
    privx: APIClient, change: dict[str, Any], code: str, prop: str
) -> None:
    body = assert_error(put(privx, {**BASE, **change}), 400, code, prop)
    assert body["details"][0]["error_code"] == code
    assert SmtpConfig.objects.count() == 0


@pytest.mark.django_db
def test_refused_keys_say_why(privx: APIClient) -> None:
    body = assert_error(
        put(privx, {**BASE, "smtp_server_insecure_verify": True}), 400, "VALUE_OUT_OF_BOUNDS"
    )
    assert "always verifies" in body["error_message"]
    body = assert_error(put(privx, {**BASE, "smtp_retry_attempts": 5}), 400, "VALUE_OUT_OF_BOUNDS")
    assert "retry attempts cannot be set" in body["error_message"]


@pytest.mark.django_db
def test_first_put_without_a_server_is_required_value_missing(privx: APIClient) -> None:
    body = assert_error(
        put(privx, {"smtp_server_enabled": True}), 400, "REQUIRED_VALUE_MISSING", "smtp_server"
    )
    props = {d["property"] for d in body["details"]}
    assert props == {"smtp_server", "smtp_server_port"}
    assert all(d["error_code"] == "REQUIRED_VALUE_MISSING" for d in body["details"])


@pytest.mark.django_db
def test_every_bad_key_is_listed_in_details(privx: APIClient) -> None:
    body = assert_error(
        put(privx, {**BASE, "smtp_server_port": "x", "smtp_server_protocol": "ssl"}),
        400,
        "VALUE_INCORRECT_TYPE",
    )
    assert {d["property"] for d in body["details"]} == {
        "smtp_server_port",
        "smtp_server_protocol",
    }


@pytest.mark.django_db
def test_malformed_and_non_object_bodies_are_bad_requests(privx: APIClient) -> None:
    r = privx.put(SETTINGS, "{not json", content_type="application/json")
    assert_error(r, 400, "BAD_REQUEST")
    assert_error(put(privx, [1, 2]), 400, "BAD_REQUEST")
    assert_error(privx.post(TEST, "{", content_type="application/json"), 400, "BAD_REQUEST")


@pytest.mark.django_db
def test_unknown_paths_and_methods_answer_privx_errors(privx: APIClient) -> None:
    assert_error(privx.get(f"{PREFIX}/nothing-here"), 404, "GENERAL_ERROR")
    assert_error(privx.delete(SETTINGS), 405, "BAD_REQUEST")
    assert_error(privx.get(TEST), 405, "BAD_REQUEST")


# --- auth and scopes ------------------------------------------------------------------------


@pytest.mark.django_db
def test_missing_or_invalid_token_is_401(admin_user: Any) -> None:
    r = APIClient().get(SETTINGS)
    assert_error(r, 401, "GENERAL_ERROR")
    assert r["WWW-Authenticate"].startswith("Bearer")
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Bearer not-a-jwt")
    assert_error(bad.put(SETTINGS, BASE, format="json"), 401, "GENERAL_ERROR")
    assert_error(bad.post(TEST, {}, format="json"), 401, "GENERAL_ERROR")


@pytest.mark.django_db
def test_scopes(make_user: Callable[..., Any]) -> None:
    viewer = client_for(make_user("outbound_mail_setup.view"), "Bearer")
    editor = client_for(make_user("outbound_mail_setup.edit"), "Bearer")
    nobody = client_for(make_user(), "Bearer")
    assert viewer.get(SETTINGS).status_code == 200
    assert editor.get(SETTINGS).status_code == 200  # workflowsManage/admin include viewing
    body = assert_error(nobody.get(SETTINGS), 403, "PERMISSION_DENIED")
    assert "workflowsView" in body["error_message"]
    body = assert_error(viewer.put(SETTINGS, BASE, format="json"), 403, "PERMISSION_DENIED")
    assert "workflowsManage" in body["error_message"]
    assert_error(viewer.post(TEST, {}, format="json"), 403, "PERMISSION_DENIED")
    assert SmtpConfig.objects.count() == 0
    assert editor.put(SETTINGS, BASE, format="json").status_code == 200


# --- round trips with the native API --------------------------------------------------------


@pytest.mark.django_db
def test_written_through_privx_read_through_native(
    privx: APIClient, admin_client: APIClient
) -> None:
    put(privx, {**BASE, "smtp_server_protocol": "tls", "smtp_server_port": 465})
    native = admin_client.get(NATIVE).json()
    assert native["host"] == "smtp.example.com"
    assert native["port"] == 465
    assert native["tls"] is True
    assert native["username"] == "mailer"
    assert native["from_email"] == "privx@example.com"


@pytest.mark.django_db
def test_written_through_native_read_through_privx(
    privx: APIClient, admin_client: APIClient
) -> None:
    r = admin_client.patch(
        NATIVE,
        {
            "host": "native.example.com",
            "port": 25,
            "tls": False,
            "username": "nat",
            "password": SECRET,
            "from_email": "native@example.com",
        },
        format="json",
    )
    assert r.status_code == 200, r.content
    assert privx.get(SETTINGS).json() == {
        "smtp_server": "native.example.com",
        "smtp_server_port": 25,
        "smtp_server_enabled": True,
        "smtp_server_username": "nat",
        "smtp_server_protocol": "none",
        "smtp_server_insecure_verify": False,
        "smtp_sender_address": "native@example.com",
        "smtp_retry_attempts": 0,
    }
    # And a PrivX change lands on the same configuration.
    put(privx, {"smtp_server_port": 2525, "smtp_server_password": "again"})
    assert admin_client.get(NATIVE).json()["port"] == 2525
    assert SmtpConfig.objects.count() == 1


# --- testsmtp against real servers ---------------------------------------------------------


def stored_settings(client: APIClient, host: str, port: int, **extra: Any) -> None:
    r = put(
        client,
        {**BASE, "smtp_server": host, "smtp_server_port": port, **extra},
    )
    assert r.status_code == 200, r.content


@pytest.mark.django_db
def test_testsmtp_with_an_empty_body_tests_the_stored_settings(
    privx: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": SECRET}) as srv:
        stored_settings(privx, srv.host, srv.port)
        r = privx.post(TEST, {}, format="json")
        r_nobody = privx.post(TEST)  # no body at all
    assert r.status_code == 200, r.content
    body = r.json()
    assert set(body) == {"status", "details"}
    assert body["status"] == "OK"
    details = body["details"]
    assert all(isinstance(v, str) for v in details.values())
    for step in ("resolve", "connect", "banner", "ehlo", "starttls", "auth", "quit"):
        assert details[step].startswith("ok ") and details[step].endswith(" ms"), step
    assert details["tls_version"].startswith("TLSv1")
    assert details["cipher"]
    assert details["auth_mechanism"] in {"PLAIN", "LOGIN"}
    assert details["auth_reply"].startswith("235")
    assert srv.recorder.logins == [("mailer", SECRET), ("mailer", SECRET)]
    assert srv.recorder.messages == []  # PrivX's test sends no mail
    assert r_nobody.status_code == 200 and r_nobody.json()["status"] == "OK"
    assert SECRET not in r.content.decode()


@pytest.mark.django_db
def test_testsmtp_reports_a_refused_login_as_error(
    privx: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with smtp_server(starttls=server_tls, users={"mailer": "the-real-one"}) as srv:
        stored_settings(privx, srv.host, srv.port)
        r = privx.post(TEST, {}, format="json")
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "ERROR"
    assert body["details"]["connect"].startswith("ok ")
    assert "535" in body["details"]["auth"]
    assert body["details"]["message"] == body["details"]["auth"]
    assert SECRET not in r.content.decode()


@pytest.mark.django_db
def test_testsmtp_tests_proposed_settings_without_saving_them(
    privx: APIClient, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    # aiosmtpd does not count implicit TLS as TLS for AUTH, hence auth_require_tls=False.
    with smtp_server(
        implicit_tls=server_tls, users={"other": "pw-2"}, auth_require_tls=False
    ) as srv:
        r = privx.post(
            TEST,
            {
                "smtp_server": srv.host,
                "smtp_server_port": srv.port,
                "smtp_server_protocol": "tls",
                "smtp_server_username": "other",
                "smtp_server_password": "pw-2",
                "smtp_server_enabled": True,
            },
            format="json",
        )
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["status"] == "OK", str(body["details"])
    assert body["details"]["tls"].startswith("ok ")
    assert "starttls" not in body["details"]
    assert srv.recorder.logins == [("other", "pw-2")]
    assert SmtpConfig.objects.count() == 0
    assert "pw-2" not in r.content.decode()


@pytest.mark.django_db
def test_testsmtp_with_plain_server_and_no_auth(privx: APIClient) -> None:
    with smtp_server() as srv:
        r = privx.post(
            TEST,
            {
                "smtp_server": srv.host,
                "smtp_server_port": srv.port,
                "smtp_server_protocol": "none",
                "smtp_server_username": "",
            },
            format="json",
        )
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "OK"
    assert "auth" not in r.json()["details"]


@pytest.mark.django_db
def test_testsmtp_connection_refused_is_error_not_500(privx: APIClient) -> None:
    with smtp_server() as srv:
        port = srv.port
    r = privx.post(
        TEST,
        {"smtp_server": "127.0.0.1", "smtp_server_port": port, "smtp_server_protocol": "none"},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert r.json()["status"] == "ERROR"
    assert "refused" in r.json()["details"]["connect"]


@pytest.mark.django_db
def test_testsmtp_errors(privx: APIClient, server_tls: ssl.SSLContext) -> None:
    # Nothing stored and nothing sent: the server is missing.
    assert_error(privx.post(TEST, {}, format="json"), 400, "REQUIRED_VALUE_MISSING", "smtp_server")
    # The stored password is not sent to another server.
    with smtp_server(starttls=server_tls, users={"mailer": SECRET}) as srv:
        stored_settings(privx, srv.host, srv.port)
        r = privx.post(TEST, {"smtp_server": "localhost"}, format="json")
    body = assert_error(r, 400, "REQUIRED_VALUE_MISSING", "smtp_server_password")
    assert SECRET not in r.content.decode()
    assert body["details"]
    assert_error(
        privx.post(TEST, {"smtp_server_insecure_verify": True}, format="json"),
        400,
        "VALUE_OUT_OF_BOUNDS",
        "smtp_server_insecure_verify",
    )


@pytest.mark.django_db
def test_testsmtp_is_throttled(privx: APIClient, settings: Any) -> None:
    settings.OUTBOUND_TEST_RATE = "1/min"
    privx.post(TEST, {}, format="json")
    r = privx.post(TEST, {}, format="json")
    assert_error(r, 429, "MAX_LOAD")
    assert "Retry-After" in r


@pytest.mark.django_db
def test_paths_are_spelled_as_privx_spells_them(privx: APIClient) -> None:
    assert_error(privx.get(f"{SETTINGS}/"), 404, "GENERAL_ERROR")
    assert_error(APIClient().get(f"{PREFIX}/nothing"), 404, "GENERAL_ERROR")
    assert privx.get(SETTINGS).status_code == 200


@pytest.mark.django_db
def test_put_records_only_real_changes(privx: APIClient) -> None:
    put(privx, BASE)
    put(privx, BASE)  # the same settings again (password included): nothing changed
    assert Event.objects.filter(resource_type="smtp_config").count() == 2
    put(privx, {**BASE, "smtp_server_password": "new-one"})
    event = Event.objects.filter(resource_type="smtp_config").latest("sequence")
    assert event.action == "updated"
    assert "new-one" not in str(event.__dict__)


@pytest.mark.django_db
def test_testsmtp_spends_the_same_budget_as_every_other_test(
    privx: APIClient, admin_client: APIClient, settings: Any
) -> None:
    settings.OUTBOUND_TEST_RATE = "1/min"
    # The native test spends the one unit (whatever its outcome) ...
    assert admin_client.post(NATIVE + "test/", {}, format="json").status_code != 429
    # ... so PrivX's test, which had a budget of its own, now waits too.
    r = privx.post(TEST, {}, format="json")
    assert_error(r, 429, "MAX_LOAD")
    assert "Retry-After" in r


@pytest.mark.django_db
def test_testsmtp_and_an_integration_test_share_the_budget(
    privx: APIClient, admin_client: APIClient, settings: Any
) -> None:
    settings.OUTBOUND_TEST_RATE = "1/min"
    assert privx.post(TEST, {}, format="json").status_code != 429
    r = admin_client.post("/api/integrations/test/", {"type": 1}, format="json")
    assert r.status_code == 429


@pytest.mark.django_db
def test_only_json_bodies_are_taken_and_offered(privx: APIClient) -> None:
    r = privx.put(SETTINGS, {"smtp_server": "smtp.example.com"}, format="multipart")
    assert_error(r, 415, "BAD_REQUEST")
    r = privx.generic(
        "PUT", SETTINGS, "smtp_server=smtp.example.com", "application/x-www-form-urlencoded"
    )
    assert_error(r, 415, "BAD_REQUEST")
    assert not SmtpConfig.objects.exists()
    schema = privx.get("/api/schema/", {"format": "json"}).json()
    bodies = [
        op["requestBody"]["content"]
        for path, ops in schema["paths"].items()
        if path.startswith(PREFIX)
        for op in ops.values()
        if "requestBody" in op
    ]
    assert len(bodies) == 2  # PUT settings, POST testsmtp
    assert all(set(content) == {"application/json"} for content in bodies)
