"""Outbound mail pages over the Django test client: what each user sees and what is saved."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.mail import services
from outbound.mail.models import SmtpConfig
from tests.conftest import PASSWORD
from tests.console.conftest import error_for
from tests.support.smtp import smtp_server

pytestmark = pytest.mark.django_db

FORM = {
    "host": "smtp.example.com",
    "port": "587",
    "security": "starttls",
    "authorization_method": "username_and_password",
    "username": "mailer",
    "password": "first-secret",
    "sender_address": "noreply@example.com",
    "failure_emails": "ops@example.com, oncall@example.com",
}


def make_config(**overrides: Any) -> SmtpConfig:
    data: dict[str, Any] = {
        "host": "smtp.example.com",
        "port": 587,
        "security": "starttls",
        "username": "mailer",
        "password": "stored-secret",
        "sender_address": "noreply@example.com",
        **overrides,
    }
    return services.smtp_config_create(data=data, actor=None)


# --- signing in ----------------------------------------------------------------------------


def test_pages_need_a_session(client: Client) -> None:
    response = client.get("/console/mail/")
    assert response.status_code == 302
    assert response["Location"] == "/console/sign-in/?next=/console/mail/"


def test_sign_in_goes_to_next_and_refuses_foreign_redirects(
    client: Client, admin_user: User
) -> None:
    data = {"username": "admin", "password": PASSWORD, "next": "/console/mail/"}
    assert client.post("/console/sign-in/", data)["Location"] == "/console/mail/"
    client.post("/console/sign-out/")
    data["next"] = "https://evil.example/"
    assert client.post("/console/sign-in/", data)["Location"] == "/console/"


def test_wrong_password_is_refused_and_failures_are_throttled(
    client: Client, admin_user: User, settings: Any
) -> None:
    settings.OUTBOUND_LOGIN_FAILURES = 2
    bad = {"username": "admin", "password": "wrong"}
    first = client.post("/console/sign-in/", bad)
    assert first.status_code == 400
    assert "No active account found with the given credentials" in first.content.decode()
    client.post("/console/sign-in/", bad)
    third = client.post("/console/sign-in/", {"username": "admin", "password": PASSWORD})
    assert third.status_code == 429  # even the right password waits out the window
    assert "Too many failed sign-ins" in third.content.decode()
    assert client.get("/console/mail/").status_code == 302


def test_sign_out_is_post_only(console_client: Client) -> None:
    assert console_client.get("/console/sign-out/").status_code == 405
    console_client.post("/console/sign-out/")
    assert console_client.get("/console/mail/").status_code == 302


def test_sign_in_needs_the_csrf_token(admin_user: User) -> None:
    client = Client(enforce_csrf_checks=True)
    response = client.post("/console/sign-in/", {"username": "admin", "password": PASSWORD})
    assert response.status_code == 403


# --- list, create, edit --------------------------------------------------------------------


def test_list_shows_each_configuration_and_which_is_active(console_client: Client) -> None:
    make_config(host="one.example.com")
    active = make_config(host="two.example.com")
    services.smtp_config_activate(config=active, actor=None)
    html = console_client.get("/console/mail/").content.decode()
    assert "one.example.com:587" in html and "two.example.com:587" in html
    assert html.count(">Active<") == 1
    assert "stored-secret" not in html


def test_create_saves_through_the_service_and_records_the_event(console_client: Client) -> None:
    response = console_client.post("/console/mail/new/", FORM)
    assert response.status_code == 302
    config = SmtpConfig.objects.get()
    assert not config.is_active
    assert config.failure_emails == ["ops@example.com", "oncall@example.com"]
    assert config.get_secret("password") == "first-secret"
    event = Event.objects.get(resource_type="smtp_config", action="created")
    assert event.actor_username == "admin"
    assert "first-secret" not in json.dumps(event.changed_fields)


def test_save_and_activate(console_client: Client) -> None:
    old = make_config(host="old.example.com")
    services.smtp_config_activate(config=old, actor=None)
    console_client.post("/console/mail/new/", {**FORM, "activate": "1"})
    new = SmtpConfig.objects.exclude(pk=old.pk).get()
    old.refresh_from_db()
    assert new.is_active and not old.is_active


def test_invalid_input_is_shown_next_to_the_field_and_nothing_is_saved(
    console_client: Client,
) -> None:
    response = console_client.post(
        "/console/mail/new/", {**FORM, "sender_address": "nope", "port": "70000"}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert 'data-error-for="port">Ensure this value is less than or equal to 65535.' in html
    assert SmtpConfig.objects.count() == 0


def test_service_errors_land_on_their_field(console_client: Client) -> None:
    # Microsoft credentials without an authentication object: the model's rule, not the form's.
    data = {**FORM, "authorization_method": "microsoft_client_credentials"}
    response = console_client.post("/console/mail/new/", data)
    assert response.status_code == 400
    assert 'data-error-for="authentication_object">This field is required.' in (
        response.content.decode()
    )
    assert SmtpConfig.objects.count() == 0


def test_edit_never_shows_the_password_and_empty_keeps_it(console_client: Client) -> None:
    config = make_config()
    page = console_client.get(f"/console/mail/{config.pk}/").content.decode()
    assert "stored-secret" not in page
    assert "A password is saved; leave this empty to keep it." in page
    data = {**FORM, "password": "", "sender_name": "Platform"}
    assert console_client.post(f"/console/mail/{config.pk}/", data).status_code == 302
    config.refresh_from_db()
    assert config.sender_name == "Platform"
    assert config.get_secret("password") == "stored-secret"
    # Another server must be given the password again (the services' rule).
    moved = console_client.post(f"/console/mail/{config.pk}/", {**data, "host": "smtp2.test"})
    assert moved.status_code == 400
    assert "Enter the password again" in error_for(moved.content.decode(), "password")


def test_edit_can_remove_the_password(console_client: Client) -> None:
    config = make_config()
    data = {**FORM, "password": "", "clear_password": "on"}
    console_client.post(f"/console/mail/{config.pk}/", data)
    config.refresh_from_db()
    assert not config.has_password


def test_duplicate_prefills_everything_but_the_password(console_client: Client) -> None:
    config = make_config(description="Primary relay", sender_name="Platform")
    page = console_client.get(f"/console/mail/new/?from={config.pk}").content.decode()
    assert 'value="smtp.example.com"' in page and 'value="Platform"' in page
    assert "Copy of Primary relay" in page
    assert "stored-secret" not in page
    assert "Passwords are not copied" in page


def test_activate_and_deactivate(console_client: Client) -> None:
    first, second = make_config(host="a.example.com"), make_config(host="b.example.com")
    console_client.post(f"/console/mail/{first.pk}/activation/", {"state": "on"})
    console_client.post(f"/console/mail/{second.pk}/activation/", {"state": "on"})
    assert list(SmtpConfig.objects.filter(is_active=True)) == [second]
    console_client.post(f"/console/mail/{second.pk}/activation/", {"state": "off"})
    assert not SmtpConfig.objects.filter(is_active=True).exists()


def test_delete_asks_first(console_client: Client) -> None:
    config = make_config()
    services.smtp_config_activate(config=config, actor=None)
    page = console_client.get(f"/console/mail/{config.pk}/delete/").content.decode()
    assert "It is the active configuration" in page
    assert SmtpConfig.objects.exists()
    console_client.post(f"/console/mail/{config.pk}/delete/")
    assert not SmtpConfig.objects.exists()


# --- permissions ---------------------------------------------------------------------------


def test_viewer_sees_settings_read_only_and_no_controls(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    config = make_config()
    viewer = console_client_for(make_user("outbound_mail_setup.view"))
    listing = viewer.get("/console/mail/").content.decode()
    for control in ("New configuration", "Duplicate", "Activate", ">Delete<", ">Edit<"):
        assert control not in listing
    page = viewer.get(f"/console/mail/{config.pk}/").content.decode()
    assert "<fieldset disabled" in page
    assert ">Save<" not in page and ">Test<" not in page


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "/console/mail/new/"),
        ("post", "/console/mail/{pk}/"),
        ("post", "/console/mail/{pk}/activation/"),
        ("post", "/console/mail/{pk}/delete/"),
        ("post", "/console/mail/{pk}/test/"),
        ("get", "/console/mail/new/"),
    ],
)
def test_viewer_is_refused_by_the_server_too(
    make_user: Callable[..., User],
    console_client_for: Callable[[User], Client],
    method: str,
    path: str,
) -> None:
    config = make_config()
    viewer = console_client_for(make_user("outbound_mail_setup.view"))
    response = getattr(viewer, method)(path.format(pk=config.pk), FORM)
    assert response.status_code == 403
    config.refresh_from_db()
    assert config.host == "smtp.example.com" and not config.is_active


def test_user_without_mail_permission_gets_403_and_no_menu_entry(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    client = console_client_for(make_user("integrations.list"))
    assert client.get("/console/mail/").status_code == 403
    assert "Outbound mail" not in client.get("/console/").content.decode()


# --- the connection test -------------------------------------------------------------------


def _server_form(port: int, **extra: str) -> dict[str, str]:
    return {**FORM, "host": "127.0.0.1", "port": str(port), "security": "none", **extra}


def test_live_test_streams_each_step_then_the_result(console_client: Client) -> None:
    with smtp_server(users={"mailer": "first-secret"}, auth_require_tls=False) as server:
        response = console_client.post(
            "/console/mail/test/",
            _server_form(server.port, receiver="ops@example.com"),
            HTTP_ACCEPT="application/x-ndjson",
        )
        assert response["Content-Type"] == "application/x-ndjson"
        lines = [json.loads(line) for line in b"".join(response.streaming_content).splitlines()]
    steps = [line["step"] for line in lines if "step" in line]
    assert [s["name"] for s in steps][-3:] == ["auth", "send", "quit"]
    assert all(s["ok"] and s["label"] for s in steps)
    assert lines[-1] == {"result": {"ok": True, "message": "Connection successfully tested."}}
    assert "first-secret" not in json.dumps(lines)
    assert SmtpConfig.objects.count() == 0


def test_live_test_reports_invalid_fields_as_json(console_client: Client) -> None:
    response = console_client.post(
        "/console/mail/test/",
        {**FORM, "host": "", "receiver": "not-an-address"},
        HTTP_ACCEPT="application/x-ndjson",
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert errors["host"] == ["This field is required."]
    assert errors["receiver"] == ["Enter a valid email address."]


def test_test_uses_the_saved_password_only_for_the_same_server(console_client: Client) -> None:
    with smtp_server(users={"mailer": "stored-secret"}, auth_require_tls=False) as server:
        config = make_config(host="127.0.0.1", port=server.port, security="none")
        same = {**_server_form(server.port), "password": ""}
        ok = console_client.post(f"/console/mail/{config.pk}/test/", same)
        assert ok.status_code == 200
        assert "Connection successfully tested." in ok.content.decode()  # no-script report
        assert server.recorder.logins == [("mailer", "stored-secret")]
        elsewhere = {**same, "host": "localhost"}
        refused = console_client.post(f"/console/mail/{config.pk}/test/", elsewhere)
    assert refused.status_code == 400
    assert "the saved password is not reused" in refused.content.decode()
    assert len(server.recorder.logins) == 1


def test_tests_share_the_apis_budget(console_client: Client, settings: Any) -> None:
    settings.OUTBOUND_TEST_RATE = "1/min"
    with smtp_server() as server:
        data = _server_form(server.port, username="")
        first = console_client.post("/console/mail/test/", data)
        assert "Connection successfully tested." in first.content.decode()
        second = console_client.post(
            "/console/mail/test/", data, HTTP_ACCEPT="application/x-ndjson"
        )
    assert second.status_code == 429
    assert second.json()["errors"]["__all__"][0].startswith("Too many tests. Try again in")


def test_microsoft_configuration_keeps_its_mailbox_and_credentials(
    console_client: Client,
) -> None:
    from outbound.integrations import services as integration_services

    credentials = integration_services.authentication_object_create(
        name="Graph mailer",
        provider="microsoft_client_credentials",
        params={"tenant_id": "t", "client_id": "c", "client_secret": "client-secret-value"},
        actor=None,
    )
    data = {
        **FORM,
        "authorization_method": "microsoft_client_credentials",
        "authentication_object": str(credentials.pk),
        "username": "mailbox@example.com",
        "password": "",
    }
    page = console_client.get("/console/mail/new/").content.decode()
    assert "Graph mailer" in page
    assert console_client.post("/console/mail/new/", data).status_code == 302
    config = SmtpConfig.objects.get()
    assert config.username == "mailbox@example.com"
    assert config.authentication_object == credentials
    edit = console_client.get(f"/console/mail/{config.pk}/").content.decode()
    assert "client-secret-value" not in edit


def test_posted_values_are_kept_out_of_error_reports(console_client: Client) -> None:
    from django.views.debug import SafeExceptionReporterFilter

    response = console_client.post("/console/mail/new/", {**FORM, "host": ""})
    params = SafeExceptionReporterFilter().get_post_parameters(response.wsgi_request)
    assert "first-secret" not in str(params)
    assert params["password"] == SafeExceptionReporterFilter.cleansed_substitute


def test_edit_and_activate_together(console_client: Client) -> None:
    first, second = make_config(host="a.example.com"), make_config(host="b.example.com")
    services.smtp_config_activate(config=first, actor=None)
    data = {**FORM, "host": "c.example.com", "activate": "1"}  # FORM brings the password
    assert console_client.post(f"/console/mail/{second.pk}/", data).status_code == 302
    second.refresh_from_db()
    first.refresh_from_db()
    assert second.host == "c.example.com" and second.is_active and not first.is_active
    actions = list(
        Event.objects.filter(resource_id=str(second.pk)).values_list("action", flat=True)
    )
    assert actions[-2:] == ["updated", "activated"]


@pytest.mark.parametrize(
    ("field", "api_field", "value"),
    [
        ("port", "port", "abc"),
        ("port", "port", "70000"),
        ("sender_address", "from_email", "not-an-address"),
        ("authorization_method", "authorization_method", "carrier-pigeon"),
    ],
)
def test_errors_read_as_the_apis(
    console_client: Client, admin_client: Any, field: str, api_field: str, value: str
) -> None:
    api = admin_client.patch(
        "/api/administration/smtp-settings/", {api_field: value}, format="json"
    )
    page = console_client.post("/console/mail/new/", {**FORM, field: value})
    assert api.status_code == page.status_code == 400
    assert error_for(page.content.decode(), field) == " ".join(api.data[api_field])


def test_a_timeout_that_is_not_a_number_reads_as_the_apis_words(console_client: Client) -> None:
    page = console_client.post("/console/mail/new/", {**FORM, "timeout": "soon"})
    assert error_for(page.content.decode(), "timeout") == "A valid number is required."


def test_a_submit_shows_every_field_error_at_once(console_client: Client) -> None:
    """The form refuses the port, the service the host and the sender: all three in one
    round, not one round per field."""
    bad = {**FORM, "host": "bad host!", "port": "70000", "sender_address": "nope"}
    page = console_client.post("/console/mail/new/", bad).content.decode()
    assert error_for(page, "port") == "Ensure this value is less than or equal to 65535."
    assert error_for(page, "host") == "Enter a valid host name or IP address."
    assert error_for(page, "sender_address") == "Enter a valid email address."
    # Asking the service about the other fields saved and recorded nothing.
    assert SmtpConfig.objects.count() == 0
    assert not Event.objects.exclude(resource_type="user").exists()


def test_an_edit_shows_every_field_error_at_once(console_client: Client) -> None:
    config = make_config()
    bad = {**FORM, "timeout": "soon", "reply_to_address": "nope", "failure_emails": "x"}
    page = console_client.post(f"/console/mail/{config.pk}/", bad).content.decode()
    assert error_for(page, "timeout") == "A valid number is required."
    assert error_for(page, "reply_to_address") == "Enter a valid email address."
    assert error_for(page, "failure_emails") == "Enter a valid email address."
    config.refresh_from_db()
    assert config.reply_to_address == "" and config.get_secret(config.SECRET_PASSWORD) == (
        "stored-secret"
    )
    assert not Event.objects.filter(action="updated").exists()


def test_a_new_server_without_the_password_and_other_errors_show_together(
    console_client: Client,
) -> None:
    config = make_config()
    bad = {**FORM, "password": "", "host": "smtp2.example.com", "port": "x", "sender_address": "@"}
    page = console_client.post(f"/console/mail/{config.pk}/", bad).content.decode()
    assert error_for(page, "port") == "A valid integer is required."
    assert error_for(page, "sender_address") == "Enter a valid email address."
    assert "Enter the password again" in error_for(page, "password")
    config.refresh_from_db()
    assert config.host == "smtp.example.com"
