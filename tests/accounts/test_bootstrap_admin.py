"""``outbound bootstrap-admin`` (run by ``make run``): the first administrator from the
environment, and one readable line instead of a traceback when the environment is wrong."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

from outbound.accounts.models import User
from tests.conftest import PASSWORD

OUTBOUND = Path(sys.executable).with_name("outbound")
# The shared test fixtures reach the test DB; the subprocesses use a database of their own.
pytestmark = pytest.mark.django_db


def _run(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``outbound <args>`` in a fresh home of its own (never the developer's or CI's DB)."""
    environ = {
        k: v for k, v in os.environ.items() if not k.startswith(("OUTBOUND_", "DATABASE_URL"))
    }
    environ.update(
        OUTBOUND_HOME=str(home),
        OUTBOUND_VAR_DIR=str(home / "var"),
        DATABASE_URL=f"sqlite:///{home / 'outbound.sqlite3'}",
        **env,
    )
    return subprocess.run(
        [str(OUTBOUND), *args], env=environ, capture_output=True, text=True, check=False
    )


def test_a_weak_password_is_one_line_naming_the_rule_and_exit_1(tmp_path: Path) -> None:
    assert _run(tmp_path, "migrate", "--noinput").returncode == 0
    result = _run(
        tmp_path,
        "bootstrap-admin",
        OUTBOUND_ADMIN_USERNAME="admin",
        OUTBOUND_ADMIN_PASSWORD="short",
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "OUTBOUND_ADMIN_PASSWORD: This password is too short. "
        "It must contain at least 8 characters."
    ]
    # Nothing was created: the next run, with a good password, creates the admin.
    result = _run(
        tmp_path,
        "bootstrap-admin",
        OUTBOUND_ADMIN_USERNAME="admin",
        OUTBOUND_ADMIN_PASSWORD=PASSWORD,
        OUTBOUND_ADMIN_EMAIL="admin@example.com",
    )
    assert result.returncode == 0, result.stderr
    assert "Created administrator 'admin'" in result.stdout


def _bootstrap(monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[int, str, str]:
    for name in ("USERNAME", "PASSWORD", "EMAIL"):
        monkeypatch.delenv(f"OUTBOUND_ADMIN_{name}", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(f"OUTBOUND_ADMIN_{name.upper()}", value)
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("bootstrap_admin", stdout=out, stderr=err)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue(), err.getvalue()
    return 0, out.getvalue(), err.getvalue()


def test_every_rule_the_password_breaks_is_on_the_one_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    code, _, err = _bootstrap(monkeypatch, username="admin", password="123")
    assert code == 1
    assert err.strip().splitlines() == [
        "OUTBOUND_ADMIN_PASSWORD: This password is too short. "
        "It must contain at least 8 characters. This password is too common."
    ]
    assert not User.objects.exists()


def test_admin_email_sets_the_bootstrap_admins_address(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = _bootstrap(
        monkeypatch, username="root", password=PASSWORD, email="ops@example.com"
    )
    assert code == 0
    assert "Created administrator 'root'" in out
    admin = User.objects.get(username="root")
    assert admin.is_superuser
    assert admin.email == "ops@example.com"


def test_admin_email_fills_in_an_existing_admin_without_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Whoever bootstrapped before the setting existed sets it and runs ``make run`` again."""
    _bootstrap(monkeypatch, username="root", password=PASSWORD)
    assert User.objects.get(username="root").email == ""
    code, out, _ = _bootstrap(
        monkeypatch, username="root", password=PASSWORD, email="ops@example.com"
    )
    assert code == 0
    assert User.objects.get(username="root").email == "ops@example.com"
    # An address already set (in the console, say) is never overwritten.
    code, out, _ = _bootstrap(
        monkeypatch, username="root", password=PASSWORD, email="other@example.com"
    )
    assert code == 0
    assert User.objects.get(username="root").email == "ops@example.com"
    assert "left unchanged" in out


def test_an_invalid_admin_email_is_one_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = _bootstrap(monkeypatch, username="root", password=PASSWORD, email="not-mail")
    assert code == 1
    assert err.strip().splitlines() == ["OUTBOUND_ADMIN_EMAIL: Enter a valid email address."]
    assert not User.objects.exists()
