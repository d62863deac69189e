"""Secrets at rest: AES-GCM under OUTBOUND_SECRET_KEY with a key id, bound to their row."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from django.db import connection

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.core.secrets import (
    Key,
    KeyRing,
    SecretDecryptionError,
    binding_text,
    keyring,
    new_key,
    read_key_texts,
    reset_keyring,
)
from outbound.integrations.models import AuthenticationObject
from outbound.mail.models import SmtpConfig
from tests.core.helpers import CLIENT_SECRET, SMTP_PASSWORD, make_auth_object, make_smtp_config

pytestmark = pytest.mark.django_db


def file_mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A permissive umask, so a 0600 file cannot owe its mode to the umask."""
    previous = os.umask(0)
    yield
    os.umask(previous)


def raw_rows(table: str) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {table}")
        return list(cursor.fetchall())


@pytest.mark.parametrize(
    "key_text", [new_key(), "a long operator passphrase not base64"], ids=["base64", "passphrase"]
)
def test_secret_is_aes_gcm_under_the_configured_key(
    settings: Any, admin_user: User, key_text: str
) -> None:
    settings.OUTBOUND_SECRET_KEY = key_text
    reset_keyring(None)  # read the key from the settings, as a running server does
    config = make_smtp_config(admin_user)

    token = SmtpConfig.objects.get(pk=config.pk).sealed_secrets["password"]
    prefix, kid, blob = token.split("$", 2)
    key = Key.from_text(key_text)
    assert prefix == "enc1"
    assert kid == key.kid
    raw = base64.urlsafe_b64decode(blob)
    # bound to its row, its field and the destination it was saved for
    destination = binding_text(
        (config.host, config.port, config.security, config.username, config.authorization_method)
    )
    context = f"mail.smtpconfig:{config.uid}:password@{destination}".encode()
    assert AESGCM(key.material).decrypt(raw[:12], raw[12:], context) == SMTP_PASSWORD.encode()
    assert SmtpConfig.objects.get(pk=config.pk).get_secret("password") == SMTP_PASSWORD


def test_same_secret_sealed_twice_gives_different_ciphertexts(admin_user: User) -> None:
    first = make_smtp_config(admin_user)
    second = make_smtp_config(admin_user, host="smtp2.example.com")
    assert first.sealed_secrets["password"] != second.sealed_secrets["password"]
    assert first.get_secret("password") == second.get_secret("password") == SMTP_PASSWORD


def test_smtp_password_copied_onto_another_row_does_not_decrypt(admin_user: User) -> None:
    source = make_smtp_config(admin_user, password="source-password")
    target = make_smtp_config(admin_user, password="target-password", host="other.example.com")
    SmtpConfig.objects.filter(pk=target.pk).update(sealed_secrets=source.sealed_secrets)

    copied = SmtpConfig.objects.get(pk=target.pk)
    assert copied.has_password
    with pytest.raises(SecretDecryptionError):
        copied.get_secret("password")
    assert SmtpConfig.objects.get(pk=source.pk).get_secret("password") == "source-password"


def test_client_secret_copied_onto_another_row_does_not_decrypt(admin_user: User) -> None:
    source = make_auth_object(admin_user, name="Source", client_secret="source-secret")
    target = make_auth_object(admin_user, name="Target", client_secret="target-secret")
    AuthenticationObject.objects.filter(pk=target.pk).update(sealed_secrets=source.sealed_secrets)

    with pytest.raises(SecretDecryptionError):
        AuthenticationObject.objects.get(pk=target.pk).get_secret("client_secret")


def test_ciphertext_moved_to_another_model_or_field_does_not_decrypt(admin_user: User) -> None:
    obj = make_auth_object(admin_user)
    config = make_smtp_config(admin_user)
    # Same row, other field name.
    config.sealed_secrets = {"other": config.sealed_secrets["password"]}
    with pytest.raises(SecretDecryptionError):
        config.get_secret("other")
    # Other model, the client secret offered as an SMTP password.
    config.sealed_secrets = {"password": obj.sealed_secrets["client_secret"]}
    with pytest.raises(SecretDecryptionError):
        config.get_secret("password")


def test_raw_database_read_shows_no_plaintext(admin_user: User) -> None:
    config = make_smtp_config(admin_user)
    obj = make_auth_object(admin_user)
    kid = keyring().primary.kid

    for table, secret in (
        ("mail_smtpconfig", SMTP_PASSWORD),
        ("integrations_authenticationobject", CLIENT_SECRET),
    ):
        rows = raw_rows(table)
        assert len(rows) == 1
        dump = repr(rows)
        assert secret not in dump
        assert f"enc1${kid}$" in dump
    assert SMTP_PASSWORD not in repr(raw_rows("core_event"))
    assert CLIENT_SECRET not in repr(raw_rows("core_event"))
    assert config.get_secret("password") == SMTP_PASSWORD
    assert obj.get_secret("client_secret") == CLIENT_SECRET


def flip_byte(token: str, index: int) -> str:
    """The token with one byte of its nonce, ciphertext or tag inverted."""
    head, blob = token.rsplit("$", 1)
    raw = bytearray(base64.urlsafe_b64decode(blob))
    raw[index] ^= 0xFF
    return f"{head}${base64.urlsafe_b64encode(bytes(raw)).decode()}"


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: flip_byte(t, 0),  # nonce
        lambda t: flip_byte(t, 12),  # ciphertext
        lambda t: flip_byte(t, -1),  # tag
        lambda t: t.rsplit("$", 1)[0] + "$AAAA",  # blob shorter than a nonce
        lambda t: t.rsplit("$", 1)[0] + "$",  # blob missing
        lambda t: "enc1$deadbeef$" + t.rsplit("$", 1)[1],  # unknown key id
        lambda t: "enc2" + t[4:],  # unknown format
        lambda t: "not a sealed secret",
    ],
    ids=[
        "nonce",
        "ciphertext",
        "tag",
        "short",
        "empty",
        "unknown-kid",
        "unknown-prefix",
        "garbage",
    ],
)
def test_tampered_secret_raises_secret_decryption_error(admin_user: User, tamper: Any) -> None:
    config = make_smtp_config(admin_user)
    config.sealed_secrets = {"password": tamper(config.sealed_secrets["password"])}
    with pytest.raises(SecretDecryptionError):
        config.get_secret("password")


def test_secret_sealed_under_a_key_outside_the_ring_does_not_decrypt(admin_user: User) -> None:
    config = make_smtp_config(admin_user)
    reset_keyring(KeyRing.from_texts([new_key()]))
    with pytest.raises(SecretDecryptionError):
        SmtpConfig.objects.get(pk=config.pk).get_secret("password")


def test_every_key_of_the_ring_opens_the_first_seals(admin_user: User) -> None:
    old = new_key()
    reset_keyring(KeyRing.from_texts([old]))
    config = make_smtp_config(admin_user)
    new = new_key()
    reset_keyring(KeyRing.from_texts([new, old]))

    reloaded = SmtpConfig.objects.get(pk=config.pk)
    assert reloaded.get_secret("password") == SMTP_PASSWORD
    reloaded.set_secret("password", "fresh")
    assert KeyRing.kid_of(reloaded.sealed_secrets["password"]) == Key.from_text(new).kid


def test_no_key_configured_generates_a_private_key_file(
    tmp_path: Path, open_umask: None, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "var" / "secret.key"

    texts = read_key_texts("", key_file)

    assert len(texts) == 1
    assert len(base64.urlsafe_b64decode(texts[0])) == 32
    assert key_file.read_text() == texts[0] + "\n"
    assert file_mode(key_file) == 0o600
    assert "generated a new encryption key" in capsys.readouterr().err
    assert read_key_texts("", key_file) == texts  # later starts reuse the key
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["secret.key"]


def test_keyring_without_configured_key_uses_the_generated_file(
    settings: Any, tmp_path: Path, admin_user: User
) -> None:
    settings.OUTBOUND_SECRET_KEY = ""
    settings.OUTBOUND_SECRET_KEY_FILE = tmp_path / "secret.key"
    reset_keyring(None)
    config = make_smtp_config(admin_user)

    assert file_mode(tmp_path / "secret.key") == 0o600
    key = Key.from_text((tmp_path / "secret.key").read_text())
    assert KeyRing.kid_of(config.sealed_secrets["password"]) == key.kid
    reset_keyring(None)  # a restarted process reads the same file
    assert SmtpConfig.objects.get(pk=config.pk).get_secret("password") == SMTP_PASSWORD


def test_environment_key_wins_over_the_key_file(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    assert read_key_texts(" new , old ,", key_file) == ["new", "old"]
    assert not key_file.exists()


def test_empty_key_file_is_refused_not_treated_as_no_key(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_text("\n")
    with pytest.raises(ValueError, match="holds no key"):
        read_key_texts("", key_file)
    assert key_file.read_text() == "\n"


def test_events_never_carry_secret_values(admin_user: User) -> None:
    make_smtp_config(admin_user)
    make_auth_object(admin_user)
    fields = [f for e in Event.objects.all() for f in e.changed_fields]
    assert "password" in fields
    assert "client_secret" in fields
    dump = repr(list(Event.objects.values()))
    assert SMTP_PASSWORD not in dump
    assert CLIENT_SECRET not in dump
