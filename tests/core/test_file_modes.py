"""``var/`` and the SQLite database hold session keys, sealed secrets and message bodies: the
directory is 0700 and every file in it 0600, from the first start and after an upgrade from
looser modes, whatever the umask. Checked on the real ``outbound`` command."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

SHOW_MODES = (
    "import os; from django.conf import settings; from django.db import connection; "
    "connection.ensure_connection(); "
    "print(' '.join(f'{n}={os.stat(settings.VAR_DIR / n).st_mode & 0o777:o}' "
    "for n in sorted(os.listdir(settings.VAR_DIR))))"
)


def outbound(var: Path, *args: str) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "OUTBOUND_SECRET_KEY", "DJANGO_SECRET_KEY")
    }
    env.update(OUTBOUND_VAR_DIR=str(var), DJANGO_SETTINGS_MODULE="outbound.settings")
    done = subprocess.run(
        [sys.executable, "-m", "outbound", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        # A permissive umask, as many systems have: the modes must not depend on it.
        preexec_fn=lambda: os.umask(0o022),
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes_while_open(var: Path) -> dict[str, int]:
    """Every file in ``var`` with a connection open (so the -wal and -shm files exist)."""
    line = outbound(var, "shell", "-c", SHOW_MODES).strip().splitlines()[-1]
    return {name: int(m, 8) for name, m in (item.split("=") for item in line.split())}


@pytest.mark.django_db  # the suite's autouse settings fixture clears the cache
def test_a_first_start_creates_var_0700_and_its_files_0600(tmp_path: Path) -> None:
    var = tmp_path / "var"
    outbound(var, "migrate", "--noinput")
    assert mode(var) == 0o700
    assert mode(var / "outbound.sqlite3") == 0o600
    assert mode(var / "django-secret.key") == 0o600
    found = modes_while_open(var)
    assert {"outbound.sqlite3", "outbound.sqlite3-wal", "outbound.sqlite3-shm"} <= set(found)
    assert found == dict.fromkeys(found, 0o600)


@pytest.mark.django_db
def test_an_upgrade_tightens_what_an_older_version_left_readable(tmp_path: Path) -> None:
    var = tmp_path / "var"
    var.mkdir(mode=0o755)
    os.chmod(var, 0o755)
    db = var / "outbound.sqlite3"
    keep = sqlite3.connect(db)  # an older version's database, in WAL mode, still open
    keep.execute("PRAGMA journal_mode=WAL")
    keep.execute("CREATE TABLE t (x)")
    keep.commit()
    for name in ("outbound.sqlite3", "outbound.sqlite3-wal", "outbound.sqlite3-shm"):
        os.chmod(var / name, 0o644)
    try:
        outbound(var, "migrate", "--noinput")
        found = modes_while_open(var)
    finally:
        keep.close()
    assert mode(var) == 0o700
    assert {"outbound.sqlite3", "outbound.sqlite3-wal", "outbound.sqlite3-shm"} <= set(found)
    assert found == dict.fromkeys(found, 0o600)


@pytest.mark.django_db  # the suite's autouse settings fixture clears the cache
@pytest.mark.parametrize("existing", [True, False])
def test_a_deployment_that_keeps_nothing_in_var_leaves_it_alone(
    tmp_path: Path, existing: bool
) -> None:
    """PostgreSQL and both keys in the environment: Outbound writes nothing under var/, so it
    neither creates one nor tightens a shared one (a process started in ``/`` sees ``/var``)."""
    var = tmp_path / "var"
    if existing:
        var.mkdir()
        os.chmod(var, 0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith("OUTBOUND_")}
    env.update(
        OUTBOUND_HOME=str(tmp_path),
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/unused",
        DJANGO_SECRET_KEY="x" * 50,
        OUTBOUND_SECRET_KEY="a passphrase for the test",
    )
    subprocess.run(
        [sys.executable, "-c", "import outbound.settings"], env=env, check=True, timeout=60
    )
    assert var.exists() is existing
    if existing:
        assert mode(var) == 0o755
