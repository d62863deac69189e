"""A saved secret never follows a changed destination (issue 10 §1, §8 High).

In every API shape a write that changes where the saved password goes (host, port, TLS mode,
username, authorization method) without bringing the password again is refused on the
password field, in that shape's error format, and nothing is saved. The same holds for the
endpoints of authentication objects. And should a path forget the rule, the ciphertext is
bound to its destination, so it cannot be opened for another one.
"""

from __future__ import annotations

import base64
import importlib
import ssl
from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from rest_framework.test import APIClient

from outbound.core.models import Event
from outbound.core.rotation import rebind
from outbound.core.secrets import Key, KeyRing, SecretDecryptionError, keyring, new_key
from outbound.integrations import services as integration_services
from outbound.integrations.microsoft import TokenError, fetch_token
from outbound.integrations.models import AuthenticationObject
from outbound.integrations.providers import SECRETS_UNREADABLE
from outbound.integrations.services import SECRET_AGAIN
from outbound.mail import services
from outbound.mail.models import SmtpConfig
from outbound.mail.sender import TemporaryFailure, target_for
from outbound.mail.services import PASSWORD_AGAIN
from tests.conftest import client_for
from tests.dialects.test_round_trips import COMMVAULT, HITACHI, NATIVE, PRIVX, ZITADEL
from tests.support.smtp import smtp_server
from tests.support.tokens import token_endpoint

SAVED = "saved-pass-123"
EVIL = "attacker.example.net"
MESSAGE = PASSWORD_AGAIN
assert MESSAGE == (
    "Enter the password again: the server or user changed, so the saved password is not reused."
)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


@pytest.fixture
def saved(admin_user: Any) -> SmtpConfig:
    return services.smtp_config_create(
        data={
            "host": "smtp.example.com",
            "port": 587,
            "security": "starttls",
            "username": "mailer",
            "password": SAVED,
            "sender_address": "noreply@example.com",
        },
        actor=admin_user,
        activate=True,
    )


# Each shape's write that moves the configuration to another host, with and without the
# password, and where that shape puts the refusal.
def _native(c: APIClient, cfg: SmtpConfig, pw: str | None) -> Any:
    body: dict[str, Any] = {"host": EVIL, "port": 2525}
    if pw:
        body["password"] = pw
    return c.patch(NATIVE, body, format="json")


def _zitadel(c: APIClient, cfg: SmtpConfig, pw: str | None) -> Any:
    body: dict[str, Any] = {
        "senderAddress": "noreply@example.com",
        "senderName": "Platform",
        "tls": True,
        "host": f"{EVIL}:587",
        "user": "mailer",
    }
    if pw:
        body["password"] = pw
    return c.put(f"{ZITADEL}/{cfg.pk}", body, format="json")


def _hitachi(c: APIClient, cfg: SmtpConfig, pw: str | None) -> Any:
    body: dict[str, Any] = {"hostname": EVIL, "updatePassword": False}
    if pw:
        body.update(updatePassword=True, password=b64(pw))
    return c.put(HITACHI, body, format="json")


def _commvault(c: APIClient, cfg: SmtpConfig, pw: str | None) -> Any:
    body: dict[str, Any] = {"SMTPServerName": EVIL}
    if pw:
        body["password"] = b64(pw)
    return c.put(COMMVAULT, body, format="json")


def _privx(c: APIClient, cfg: SmtpConfig, pw: str | None) -> Any:
    body: dict[str, Any] = {"smtp_server": EVIL}
    if pw:
        body["smtp_server_password"] = pw
    return c.put(PRIVX, body, format="json")


def _native_message(body: Any) -> str:
    return str(body["password"][0])


def _zitadel_message(body: Any) -> str:
    assert body["code"] == 3  # InvalidArgument
    return str(body["message"])


def _hitachi_message(body: Any) -> str:
    return str(body["message"])


def _commvault_message(body: Any) -> str:
    assert body["errorCode"] == 400
    return str(body["errorMessage"])


def _privx_message(body: Any) -> str:
    assert body["property"] == "smtp_server_password"
    return str(body["error_message"])


SHAPES: dict[str, tuple[Callable[..., Any], Callable[[Any], str]]] = {
    "native": (_native, _native_message),
    "zitadel": (_zitadel, _zitadel_message),
    "hitachi": (_hitachi, _hitachi_message),
    "commvault": (_commvault, _commvault_message),
    "privx": (_privx, _privx_message),
}


@pytest.mark.django_db
@pytest.mark.parametrize("shape", SHAPES)
def test_a_new_host_without_the_password_is_refused_in_every_shape(
    clients: dict[str, APIClient], saved: SmtpConfig, shape: str
) -> None:
    write, message_of = SHAPES[shape]
    events = Event.objects.count()

    refused = write(clients[shape], saved, None)

    assert refused.status_code == 400, refused.content
    assert MESSAGE in message_of(refused.json())
    assert SAVED not in refused.content.decode()
    stored = SmtpConfig.objects.get(pk=saved.pk)
    assert (stored.host, stored.port) == ("smtp.example.com", 587)  # nothing saved
    assert stored.get_secret("password") == SAVED
    assert Event.objects.count() == events

    accepted = write(clients[shape], saved, "typed-again")
    assert accepted.status_code == 200, accepted.content
    stored = SmtpConfig.objects.get(pk=saved.pk)
    assert stored.host == EVIL
    assert stored.get_secret("password") == "typed-again"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"host": EVIL},
        {"port": 2525},
        {"security": "ssl"},
        {"security": "none"},
        {"username": "someone-else"},
    ],
)
def test_each_destination_field_needs_the_password_again(
    saved: SmtpConfig, admin_user: Any, change: dict[str, Any]
) -> None:
    with pytest.raises(ValidationError) as refused:
        services.smtp_config_update(config=saved, data=change, actor=admin_user)
    assert refused.value.message_dict == {"password": [PASSWORD_AGAIN]}
    assert SmtpConfig.objects.get(pk=saved.pk).get_secret("password") == SAVED

    done = services.smtp_config_update(
        config=saved, data={**change, "password": "again"}, actor=admin_user
    )
    assert SmtpConfig.objects.get(pk=done.pk).get_secret("password") == "again"


@pytest.mark.django_db
def test_the_same_destination_keeps_the_password_and_errors_come_together(
    saved: SmtpConfig, admin_user: Any
) -> None:
    services.smtp_config_update(
        config=saved, data={"sender_name": "Platform", "timeout": 5}, actor=admin_user
    )
    assert SmtpConfig.objects.get(pk=saved.pk).get_secret("password") == SAVED
    # A bad field and a moved password are both named in one answer.
    with pytest.raises(ValidationError) as refused:
        services.smtp_config_update(
            config=saved, data={"host": EVIL, "sender_address": "nope"}, actor=admin_user
        )
    assert set(refused.value.message_dict) == {"password", "sender_address"}


@pytest.mark.django_db
def test_switching_to_microsoft_drops_the_password(saved: SmtpConfig, admin_user: Any) -> None:
    graph = integration_services.authentication_object_create(
        name="graph",
        provider="microsoft_client_credentials",
        params={"tenant_id": "t", "client_id": "c", "client_secret": "s"},
        actor=admin_user,
    )
    config = services.smtp_config_update(
        config=saved,
        data={
            "authorization_method": "microsoft_client_credentials",
            "authentication_object": graph,
        },
        actor=admin_user,
    )
    assert not SmtpConfig.objects.get(pk=config.pk).has_password
    # Back to a password: there is none to follow, so one must be given to test.
    back = services.smtp_config_update(
        config=config, data={"authorization_method": "username_and_password"}, actor=admin_user
    )
    assert not back.has_password


@pytest.mark.django_db
def test_a_password_bound_to_its_server_does_not_open_for_another(
    saved: SmtpConfig, admin_user: Any
) -> None:
    """A write that skips the services (here: a raw UPDATE) cannot make the password follow."""
    with smtp_server(users={"mailer": SAVED}, auth_require_tls=False) as elsewhere:
        SmtpConfig.objects.filter(pk=saved.pk).update(
            host="127.0.0.1", port=elsewhere.port, security="none"
        )
        moved = SmtpConfig.objects.get(pk=saved.pk)
        with pytest.raises(SecretDecryptionError):
            moved.get_secret("password")
        with pytest.raises(TemporaryFailure):  # the sender does not send it
            target_for(moved)
        with pytest.raises(ValidationError) as refused:  # nor does a test
            services.smtp_config_test(stored=moved, data={})
        assert "password" in refused.value.message_dict
    assert elsewhere.recorder.logins == []


@pytest.fixture
def microsoft(admin_user: Any) -> AuthenticationObject:
    return integration_services.authentication_object_create(
        name="O365",
        provider="microsoft_client_credentials",
        params={"tenant_id": "tenant-1", "client_id": "client-1", "client_secret": "cs-1"},
        actor=admin_user,
    )


@pytest.fixture
def imanage(admin_user: Any) -> AuthenticationObject:
    return integration_services.authentication_object_create(
        name="DMS",
        provider="imanage",
        params={
            "server_url": "https://dms.example.com",
            "username": "dms-user",
            "password": "dms-pass",
            "client_id": "dms-client",
            "client_secret": "dms-secret",
        },
        actor=admin_user,
    )


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fixture", "change", "secrets"),
    [
        ("microsoft", {"authority_url": "https://login.attacker.example.net"}, ["client_secret"]),
        ("microsoft", {"tenant_id": "tenant-2"}, ["client_secret"]),
        ("microsoft", {"client_id": "client-2"}, ["client_secret"]),
        (
            "imanage",
            {"server_url": "https://dms.attacker.example.net"},
            ["client_secret", "password"],
        ),
        ("imanage", {"client_id": "other"}, ["client_secret", "password"]),
        ("imanage", {"username": "other"}, ["client_secret", "password"]),
    ],
)
def test_a_credential_endpoint_change_needs_its_secrets_again(
    request: pytest.FixtureRequest,
    admin_user: Any,
    fixture: str,
    change: dict[str, str],
    secrets: list[str],
) -> None:
    obj: AuthenticationObject = request.getfixturevalue(fixture)
    before = AuthenticationObject.objects.get(pk=obj.pk).parameters
    api = client_for(admin_user)
    url = f"/api/authentication-objects/{obj.pk}/"

    refused = api.patch(url, change, format="json")
    assert refused.status_code == 400
    assert refused.json() == {name: [SECRET_AGAIN] for name in secrets}
    assert AuthenticationObject.objects.get(pk=obj.pk).parameters == before

    again = {name: f"new-{name}" for name in secrets}
    assert api.patch(url, {**change, **again}, format="json").status_code == 200
    stored = AuthenticationObject.objects.get(pk=obj.pk)
    assert all(stored.get_secret(name) == f"new-{name}" for name in secrets)


@pytest.mark.django_db
def test_a_client_secret_is_never_posted_to_an_authority_it_was_not_saved_for(
    microsoft: AuthenticationObject, server_tls: ssl.SSLContext, trust_test_ca: str
) -> None:
    with token_endpoint(server_tls, client_secret="cs-1") as attacker:
        params = {**microsoft.parameters, "authority_url": attacker.url}
        AuthenticationObject.objects.filter(pk=microsoft.pk).update(parameters=params)
        moved = AuthenticationObject.objects.get(pk=microsoft.pk)
        with pytest.raises(TokenError, match="enter it again"):
            fetch_token(moved, timeout=5)
    assert attacker.requests == []
    assert SECRETS_UNREADABLE.startswith("The saved secret cannot be read")


@pytest.mark.django_db
def test_the_migration_rebinds_secrets_saved_before(saved: SmtpConfig) -> None:
    migration = importlib.import_module(
        "outbound.mail.migrations.0004_bind_password_to_destination"
    )
    legacy = keyring().encrypt(SAVED, context=f"mail.smtpconfig:{saved.uid}:password")
    SmtpConfig.objects.filter(pk=saved.pk).update(sealed_secrets={"password": legacy})
    with pytest.raises(SecretDecryptionError):
        SmtpConfig.objects.get(pk=saved.pk).get_secret("password")

    rows = SmtpConfig.objects.exclude(sealed_secrets={})
    assert rebind(rows, old_context=migration._legacy, new_context=migration._bound) == 1
    assert SmtpConfig.objects.get(pk=saved.pk).get_secret("password") == SAVED


@pytest.fixture
def microsoft_config(admin_user: Any, microsoft: AuthenticationObject) -> SmtpConfig:
    return services.smtp_config_create(
        data={
            "host": "smtp.office365.com",
            "port": 587,
            "security": "starttls",
            "username": "mailbox@contoso.com",
            "authorization_method": "microsoft_client_credentials",
            "authentication_object": microsoft,
            "sender_address": "mailbox@contoso.com",
        },
        actor=admin_user,
        activate=True,
    )


@pytest.mark.django_db
def test_a_microsoft_token_follows_a_new_server_only_when_a_credential_editor_says_so(
    clients: dict[str, APIClient],
    admin_user: Any,
    make_user: Callable[..., Any],
    microsoft_config: SmtpConfig,
    microsoft: AuthenticationObject,
) -> None:
    """The token is minted with the object's client secret: moving the configuration (or
    giving it another object) must name the object again, by someone who may edit objects."""
    # Saving first does not get around it (the test had the rule; now every write has it).
    r = clients["native"].patch(NATIVE, {"host": EVIL}, format="json")
    assert r.status_code == 400
    assert r.json() == {"authentication_object": [services.MICROSOFT_AGAIN]}
    r = clients["commvault"].put(COMMVAULT, {"SMTPServerName": EVIL}, format="json")
    assert r.status_code == 400 and services.MICROSOFT_AGAIN in r.json()["errorMessage"]

    mail_editor = client_for(make_user("outbound_mail_setup.view", "outbound_mail_setup.edit"))
    r = mail_editor.patch(NATIVE, {"host": EVIL, "authentication_object": microsoft.pk}, "json")
    assert r.status_code == 400
    assert r.json() == {"authentication_object": [services.MICROSOFT_NOT_PERMITTED]}
    assert SmtpConfig.objects.get(pk=microsoft_config.pk).host == "smtp.office365.com"

    # The same editor may change what does not move the token.
    r = mail_editor.patch(NATIVE, {"from_email": "other@contoso.com"}, format="json")
    assert r.status_code == 200

    r = clients["native"].patch(
        NATIVE, {"host": EVIL, "authentication_object": microsoft.pk}, "json"
    )
    assert r.status_code == 200
    assert SmtpConfig.objects.get(pk=microsoft_config.pk).host == EVIL


@pytest.mark.django_db
def test_a_smtp_test_with_a_client_secret_sealed_elsewhere_says_so_and_sends_nothing(
    microsoft_config: SmtpConfig,
    microsoft: AuthenticationObject,
    server_tls: ssl.SSLContext,
    trust_test_ca: str,
) -> None:
    with (
        token_endpoint(server_tls, client_secret="cs-1") as attacker,
        smtp_server(starttls=server_tls) as srv,
    ):
        params = {**microsoft.parameters, "authority_url": attacker.url}
        AuthenticationObject.objects.filter(pk=microsoft.pk).update(parameters=params)
        SmtpConfig.objects.filter(pk=microsoft_config.pk).update(host="127.0.0.1", port=srv.port)
        report = services.smtp_config_test(
            stored=SmtpConfig.objects.get(pk=microsoft_config.pk), data={}
        )
    assert not report.ok
    failed = [step for step in report.steps if not step.ok]
    assert [step.name for step in failed] == ["token"]
    assert failed[0].detail == SECRETS_UNREADABLE
    assert "Error" not in failed[0].detail
    assert attacker.requests == []
    assert srv.recorder.logins == []


@pytest.mark.django_db
def test_the_migration_stops_when_the_keys_cannot_open_a_secret(saved: SmtpConfig) -> None:
    migration = importlib.import_module(
        "outbound.mail.migrations.0004_bind_password_to_destination"
    )

    def rows() -> Any:
        return SmtpConfig.objects.exclude(sealed_secrets={})

    # already bound: nothing to do, and running it twice is harmless
    assert rebind(rows(), old_context=migration._legacy, new_context=migration._bound) == 0
    foreign = Key.from_text(new_key())
    sealed = KeyRing([foreign]).encrypt("x", context=f"mail.smtpconfig:{saved.uid}:password")
    SmtpConfig.objects.filter(pk=saved.pk).update(sealed_secrets={"password": sealed})
    with pytest.raises(SecretDecryptionError, match="OUTBOUND_SECRET_KEY"):
        rebind(rows(), old_context=migration._legacy, new_context=migration._bound)
