"""``outbound rotate-key``: every stored secret re-encrypted under a new key, in both modes."""

from __future__ import annotations

import stat
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from outbound.__main__ import main
from outbound.accounts.models import User
from outbound.core.management.commands import rotate_key as rotate_key_command
from outbound.core.rotation import reseal_all
from outbound.core.secrets import (
    Key,
    KeyRing,
    SecretDecryptionError,
    keyring,
    new_key,
    reset_keyring,
    write_key_file,
)
from outbound.integrations.models import AuthenticationObject
from outbound.mail.models import SmtpConfig, SmtpConfigVersion
from tests.core.helpers import CLIENT_SECRET, SMTP_PASSWORD, make_auth_object, make_smtp_config

pytestmark = pytest.mark.django_db

# The SMTP password, its version's copy (see SmtpConfigVersion) and the client secret.
RESEALED = "Re-encrypted 3 secret(s)"


def rotate() -> str:
    out = StringIO()
    call_command("rotate_key", stdout=out)
    return out.getvalue()


def stored_tokens() -> list[str]:
    tokens = [t for c in SmtpConfig.objects.all() for t in c.sealed_secrets.values()]
    tokens += [t for o in AuthenticationObject.objects.all() for t in o.sealed_secrets.values()]
    tokens += [t for v in SmtpConfigVersion.objects.all() for t in v.sealed_secrets.values()]
    return tokens


def assert_secrets_readable(kid: str) -> None:
    """Every secret opens with the ring the settings give a fresh process, under ``kid``."""
    reset_keyring(None)
    smtp = SmtpConfig.objects.get()
    obj = AuthenticationObject.objects.get()
    assert smtp.get_secret("password") == SMTP_PASSWORD
    assert smtp.versions.get().get_secret("password") == SMTP_PASSWORD
    assert obj.get_secret("client_secret") == CLIENT_SECRET
    assert {KeyRing.kid_of(t) for t in stored_tokens()} == {kid}


@pytest.fixture
def key_file(settings: Any, tmp_path: Path) -> Path:
    """Key file mode: no OUTBOUND_SECRET_KEY, one old key in the file."""
    path = tmp_path / "secret.key"
    path.write_text(new_key() + "\n")
    path.chmod(0o600)
    settings.OUTBOUND_SECRET_KEY = ""
    settings.OUTBOUND_SECRET_KEY_FILE = path
    reset_keyring(None)
    return path


def test_key_file_mode_replaces_the_key_and_reseals_everything(
    key_file: Path, admin_user: User
) -> None:
    old = key_file.read_text().strip()
    make_smtp_config(admin_user)
    make_auth_object(admin_user)
    assert {KeyRing.kid_of(t) for t in stored_tokens()} == {Key.from_text(old).kid}

    out = rotate()

    lines = key_file.read_text().splitlines()
    assert len(lines) == 1
    new = lines[0]
    assert new != old
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert sorted(p.name for p in key_file.parent.iterdir()) == ["secret.key"]
    assert RESEALED in out
    assert Key.from_text(new).kid in out
    assert_secrets_readable(Key.from_text(new).kid)
    # The old key no longer opens anything: the secrets really were re-encrypted.
    old_ring = KeyRing.from_texts([old])
    with pytest.raises(SecretDecryptionError):
        old_ring.decrypt(
            SmtpConfig.objects.get().sealed_secrets["password"],
            context=SmtpConfig.objects.get().secret_context("password"),
        )


def test_key_file_is_never_readable_by_others_during_rotation(
    key_file: Path, admin_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    leftover = key_file.with_suffix(".tmp")  # from an interrupted earlier rotation
    leftover.write_text("junk\n")
    leftover.chmod(0o644)
    make_smtp_config(admin_user)
    make_auth_object(admin_user)
    modes_while_resealing: list[int] = []

    def watching_reseal(ring: KeyRing) -> int:
        # Here the file holds the new and the old keys: the most valuable moment to leak it.
        modes_while_resealing.append(stat.S_IMODE(key_file.stat().st_mode))
        assert len(key_file.read_text().splitlines()) == 2
        return reseal_all(ring)

    monkeypatch.setattr(rotate_key_command, "reseal_all", watching_reseal)
    rotate()

    assert modes_while_resealing == [0o600]
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(key_file.read_text().splitlines()) == 1
    assert_secrets_readable(Key.from_text(key_file.read_text()).kid)


def test_write_key_file_resets_the_mode_of_a_leftover_temporary_file(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    leftover = key_file.with_suffix(".tmp")
    leftover.write_text("junk\n")
    leftover.chmod(0o644)
    write_key_file(key_file, ["k1", "k2"])
    assert key_file.read_text() == "k1\nk2\n"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert not leftover.exists()


def test_key_file_mode_twice_keeps_everything_readable(key_file: Path, admin_user: User) -> None:
    make_smtp_config(admin_user)
    make_auth_object(admin_user)
    rotate()
    first = key_file.read_text()
    rotate()
    assert key_file.read_text() != first
    assert_secrets_readable(Key.from_text(key_file.read_text()).kid)


def test_env_mode_reseals_under_the_first_key(
    settings: Any, tmp_path: Path, admin_user: User
) -> None:
    old, new = new_key(), new_key()
    settings.OUTBOUND_SECRET_KEY = old
    settings.OUTBOUND_SECRET_KEY_FILE = tmp_path / "secret.key"
    reset_keyring(None)
    make_smtp_config(admin_user)
    make_auth_object(admin_user)

    settings.OUTBOUND_SECRET_KEY = f"{new},{old}"
    out = rotate()

    assert RESEALED in out
    assert "Remove the old keys from OUTBOUND_SECRET_KEY" in out
    assert not (tmp_path / "secret.key").exists()  # env mode never writes a key file
    settings.OUTBOUND_SECRET_KEY = new  # the operator drops the old key
    assert_secrets_readable(Key.from_text(new).kid)
    # Running it again has nothing left to do.
    settings.OUTBOUND_SECRET_KEY = f"{new},{old}"
    assert "Re-encrypted 0 secret(s)" in rotate()


def test_failed_rotation_loses_no_key(key_file: Path, admin_user: User) -> None:
    make_smtp_config(admin_user)
    make_auth_object(admin_user)
    stranger = make_smtp_config(admin_user, host="stranger.example.com")
    foreign = KeyRing.from_texts([new_key()]).encrypt("x", context=stranger.secret_context("x"))
    SmtpConfig.objects.filter(pk=stranger.pk).update(sealed_secrets={"password": foreign})
    before = {c.pk: c.sealed_secrets for c in SmtpConfig.objects.all()}

    with pytest.raises(CommandError, match=rf"mail.smtpconfig #{stranger.pk}, secret 'password'"):
        rotate()

    # Nothing was re-sealed, and the key file still holds the key that opens the secrets.
    assert {c.pk: c.sealed_secrets for c in SmtpConfig.objects.all()} == before
    reset_keyring(None)
    readable = SmtpConfig.objects.exclude(pk=stranger.pk).get()
    assert readable.get_secret("password") == SMTP_PASSWORD
    assert AuthenticationObject.objects.get().get_secret("client_secret") == CLIENT_SECRET


def test_running_server_follows_a_rotation_made_by_another_process(
    key_file: Path, admin_user: User
) -> None:
    make_smtp_config(admin_user)
    make_auth_object(admin_user)
    server_ring = keyring()  # this process stands for a running server: ring already loaded

    # `outbound rotate-key` in another process: new key first, re-seal, drop the old key.
    new = new_key()
    write_key_file(key_file, [new, *key_file.read_text().split()])
    reseal_all(KeyRing.from_texts(key_file.read_text().split()))
    write_key_file(key_file, [new])

    assert keyring() is not server_ring
    config = SmtpConfig.objects.get()
    assert config.get_secret("password") == SMTP_PASSWORD
    # What the server seals now survives the old key's removal.
    config.set_secret("password", "after-rotation")
    assert KeyRing.kid_of(config.sealed_secrets["password"]) == Key.from_text(new).kid


@pytest.mark.django_db(transaction=True)  # the command line closes the database connections
def test_outbound_rotate_key_command_line(
    settings: Any, admin_user: User, capsys: pytest.CaptureFixture[str]
) -> None:
    old, new = new_key(), new_key()
    settings.OUTBOUND_SECRET_KEY = old
    reset_keyring(None)
    make_smtp_config(admin_user)
    make_auth_object(admin_user)
    settings.OUTBOUND_SECRET_KEY = f"{new},{old}"

    main(["outbound", "rotate-key"])

    assert RESEALED in capsys.readouterr().out
    settings.OUTBOUND_SECRET_KEY = new
    assert_secrets_readable(Key.from_text(new).kid)
