"""``/api/administration/smtp-settings/``: the seed's GET, PATCH and OPTIONS, row by row."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.core.models import Event
from outbound.integrations import services as integration_services
from outbound.mail.models import SmtpConfig

URL = "/api/administration/smtp-settings/"
TEST_URL = URL + "test/"
BASE = {
    "password": "Passwod",
    "username": "ticket.branch.mailserver@autologyx.net",
    "port": 10587,
    "tls": True,
    "host": "clust.mx.nwc.xxx",
    "from_email": "example1@email.com",
    "failure_email": "example6@email.com, example7@email.com",
}


@pytest.fixture
def configured(admin_client: APIClient) -> dict[str, Any]:
    r = admin_client.patch(URL, BASE, format="json")
    assert r.status_code == 200, r.data
    return r.data


@pytest.mark.django_db
def test_first_patch_creates_the_active_configuration(admin_client: APIClient) -> None:
    assert admin_client.get(URL).data == {
        "username": "", "port": None, "tls": False, "host": "", "from_email": "",
        "failure_email": "", "authorization_method": "username_and_password",
        "authentication_object": None,
    }  # fmt: skip
    r = admin_client.patch(URL, BASE, format="json")
    assert r.status_code == 200
    assert r.data == {
        "username": "ticket.branch.mailserver@autologyx.net",
        "port": 10587,
        "tls": True,
        "host": "clust.mx.nwc.xxx",
        "from_email": "example1@email.com",
        "failure_email": "example6@email.com, example7@email.com",
        "authorization_method": "username_and_password",
        "authentication_object": None,
    }
    assert admin_client.get(URL).data == r.data
    config = SmtpConfig.objects.get()
    assert config.is_active and config.security == "starttls"
    assert config.get_secret("password") == "Passwod"


@pytest.mark.django_db
def test_tls_on_465_is_implicit_tls(admin_client: APIClient) -> None:
    admin_client.patch(URL, {**BASE, "port": 465}, format="json")
    assert SmtpConfig.objects.get().security == "ssl"
    admin_client.patch(URL, {"tls": False, "password": BASE["password"]}, format="json")
    assert SmtpConfig.objects.get().security == "none"
    assert admin_client.get(URL).data["tls"] is False


@pytest.mark.django_db
@pytest.mark.parametrize("missing", ["host", "port"])
def test_first_patch_must_bring_host_and_port(admin_client: APIClient, missing: str) -> None:
    body = {k: v for k, v in BASE.items() if k != missing}
    r = admin_client.patch(URL, body, format="json")
    assert r.status_code == 400
    assert r.data == {missing: ["This field is required."]}
    assert not SmtpConfig.objects.exists()
    assert not Event.objects.filter(resource_type="smtp_config").exists()


@pytest.mark.django_db
def test_later_patch_may_omit_anything_and_keeps_the_password(
    admin_client: APIClient, configured: dict[str, Any]
) -> None:
    r = admin_client.patch(URL, {"from_email": "new@email.com"}, format="json")
    assert r.status_code == 200
    assert r.data == {**configured, "from_email": "new@email.com"}
    config = SmtpConfig.objects.get()
    assert config.get_secret("password") == "Passwod"
    assert admin_client.patch(URL, {}, format="json").status_code == 200
    assert SmtpConfig.objects.count() == 1


@pytest.mark.django_db
def test_patch_records_field_names_but_never_values(
    admin_client: APIClient, configured: dict[str, Any]
) -> None:
    admin_client.patch(URL, {"password": "An0ther-secret", "port": 2525}, format="json")
    event = Event.objects.filter(resource_type="smtp_config", action="updated").get()
    assert event.changed_fields == ["password", "port"]
    assert event.actor_username == "admin"
    for e in Event.objects.all():
        assert "An0ther-secret" not in str(e.changed_fields)
        assert "Passwod" not in str(e.changed_fields)


# Every row of the seed's PATCH error table (and the same rules on the test endpoint).
ERROR_ROWS: list[tuple[dict[str, Any], str, str]] = [
    ({"username": ""}, "username", "This field may not be blank."),
    ({"username": None}, "username", "This field may not be null."),
    ({"username": "u" * 255}, "username", "Ensure this field has no more than 254 characters."),
    ({"password": ""}, "password", "This field may not be blank."),
    ({"password": None}, "password", "This field may not be null."),
    ({"password": "p" * 129}, "password", "Ensure this field has no more than 128 characters."),
    ({"port": "abc"}, "port", "A valid integer is required."),
    ({"port": -1}, "port", "Ensure this value is greater than or equal to 0."),
    ({"port": 65536}, "port", "Ensure this value is less than or equal to 65535."),
    ({"tls": "maybe"}, "tls", "Must be a valid boolean."),
    ({"host": "h" * 64}, "host", "Ensure this field has no more than 63 characters."),
    (
        {"from_email": "a" * 243 + "@example.com"},
        "from_email",
        "Ensure this field has no more than 254 characters.",
    ),
    (
        {"failure_email": ", ".join(f"user{i:03}@example-domain.com" for i in range(11))},
        "failure_email",
        "Ensure this field has no more than 255 characters.",
    ),
    (
        {"failure_email": ",".join(f"u{i}@x.io" for i in range(11))},
        "failure_email",
        "Up to 10 items allowed.",
    ),
    (
        {"authorization_method": "carrier_pigeon"},
        "authorization_method",
        "carrier_pigeon is not a valid choice.",
    ),
    (
        {"authorization_method": "microsoft_client_credentials"},
        "authentication_object",
        "This field is required.",
    ),
    ({"authentication_object": 999}, "authentication_object", "999 is not a valid choice."),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field", "message"), ERROR_ROWS)
def test_patch_error_rows(
    admin_client: APIClient,
    configured: dict[str, Any],
    body: dict[str, Any],
    field: str,
    message: str,
) -> None:
    before = SmtpConfig.objects.get()
    events = Event.objects.count()
    r = admin_client.patch(URL, body, format="json")
    assert r.status_code == 400
    assert r.data[field] == [message]
    after = SmtpConfig.objects.get()
    assert (after.modified_at, after.sealed_secrets) == (before.modified_at, before.sealed_secrets)
    assert Event.objects.count() == events


TEST_ROWS = [row for row in ERROR_ROWS if row[1] in {"username", "password", "port", "tls", "host"}]


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "field", "message"), TEST_ROWS)
def test_test_endpoint_error_rows(
    admin_client: APIClient,
    configured: dict[str, Any],
    body: dict[str, Any],
    field: str,
    message: str,
) -> None:
    r = admin_client.post(TEST_URL, body, format="json")
    assert r.status_code == 400
    assert r.data[field] == [message]


@pytest.mark.django_db
def test_test_endpoint_requires_port_and_host_when_nothing_is_stored(
    admin_client: APIClient,
) -> None:
    r = admin_client.post(TEST_URL, {"username": "u", "password": "p"}, format="json")
    assert r.status_code == 400
    assert r.data["host"] == ["This field is required."]
    assert r.data["port"] == ["This field is required."]


@pytest.mark.django_db
def test_wrong_provider_for_microsoft_is_not_a_valid_choice(
    admin_client: APIClient, configured: dict[str, Any], admin_user: Any
) -> None:
    obj = integration_services.authentication_object_create(
        name="graph",
        provider="microsoft_client_credentials",
        params={"tenant_id": "t", "client_id": "c", "client_secret": "s"},
        actor=admin_user,
    )
    r = admin_client.patch(
        URL,
        {"authorization_method": "microsoft_client_credentials", "authentication_object": obj.pk},
        format="json",
    )
    assert r.status_code == 200
    assert r.data["authentication_object"] == obj.pk
    other = integration_services.authentication_object_create(
        name="dms",
        provider="imanage",
        params={
            "server_url": "https://dms.example.com",
            "username": "u",
            "password": "p",
            "client_id": "c",
            "client_secret": "s",
        },
        actor=admin_user,
    )
    r = admin_client.patch(URL, {"authentication_object": other.pk}, format="json")
    assert r.status_code == 400
    assert r.data == {"authentication_object": [f"{other.pk} is not a valid choice."]}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("host", "smtp.example.com\r\nRCPT TO:<x@y>"),
        ("host", "smtp.example.com\r\n"),
        ("username", "mailer\r\n"),
        ("failure_email", "ok@example.com,\nother@example.com"),
        ("host", "smtp example com"),
        ("username", "user\nname"),
        ("username", "user\u2028name"),
        ("from_email", "a@example.com\r\nBcc: victim@example.com"),
        ("from_email", "not-an-address"),
        ("failure_email", "ok@example.com, bad\n@example.com"),
    ],
)
def test_control_characters_and_bad_syntax_are_refused(
    admin_client: APIClient, configured: dict[str, Any], field: str, value: str
) -> None:
    r = admin_client.patch(URL, {field: value}, format="json")
    assert r.status_code == 400
    assert field in r.data
    assert SmtpConfig.objects.get().host == "clust.mx.nwc.xxx"


@pytest.mark.django_db
def test_permissions(
    make_user: Callable[..., Any], api_client_for: Callable[..., APIClient]
) -> None:
    denied = {"detail": "You do not have permission to perform this action."}
    nobody = api_client_for(make_user())
    viewer = api_client_for(make_user("outbound_mail_setup.view"))
    editor = api_client_for(make_user("outbound_mail_setup.view", "outbound_mail_setup.edit"))

    assert api_client_for(None).get(URL).status_code == 401
    assert api_client_for(None).options(URL).status_code == 401
    assert nobody.get(URL).status_code == 403
    assert nobody.get(URL).data == denied
    assert nobody.options(URL).status_code == 200  # OPTIONS needs authentication only
    assert viewer.get(URL).status_code == 200
    assert viewer.patch(URL, BASE, format="json").data == denied
    assert viewer.post(TEST_URL, {}, format="json").status_code == 403
    assert editor.patch(URL, BASE, format="json").status_code == 200


@pytest.mark.django_db
def test_bearer_scheme_is_accepted_too(
    admin_user: Any, api_client_for: Callable[..., APIClient]
) -> None:
    assert api_client_for(admin_user, "Bearer").get(URL).status_code == 200


@pytest.mark.django_db
def test_options_document_is_the_seeds(admin_client: APIClient) -> None:
    # The seed's document, verbatim (tests/mail/alx_smtp_settings_options.json).
    expected = json.loads((Path(__file__).parent / "alx_smtp_settings_options.json").read_text())
    assert admin_client.options(URL).json() == expected


@pytest.mark.django_db
def test_get_never_returns_the_password(
    admin_client: APIClient, configured: dict[str, Any]
) -> None:
    r = admin_client.get(URL)
    assert "password" not in r.data
    assert "Passwod" not in r.content.decode()
