"""Private files: ``var/`` and the SQLite database hold session keys, sealed secrets and message
bodies, so only the service's own user may read them (directory 0700, files 0600).

Modes are only ever tightened (group and other bits removed), never loosened, and only on what
this user owns: an operator's stricter choice stands, and a shared directory someone else
owns is left alone.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
# SQLite's companions of a database file; -wal and -shm copy the database's mode when SQLite
# creates them, the journal too.
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal")


def tighten(path: Path) -> None:
    """Remove group and other permissions from ``path`` if it exists and is ours."""
    try:
        st = path.lstat()
    except OSError:
        return
    loose = stat.S_IMODE(st.st_mode) & 0o077
    if loose and not stat.S_ISLNK(st.st_mode) and st.st_uid == os.geteuid():
        os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o077)


# What Outbound keeps in its var/ directory: an existing directory is tightened only when it
# holds one of these, so a shared directory (``/var`` of a process started in ``/``) is left be.
OWN_FILES = ("outbound.sqlite3", "secret.key", "django-secret.key")


def private_dir(path: Path) -> None:
    """Create ``path`` (0700) if missing, and tighten it if an older Outbound left it open.

    Never fatal: on a read-only or foreign place the first real write says what is wrong.
    """
    try:
        if not path.exists():
            path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
        elif any((path / name).exists() for name in OWN_FILES):
            tighten(path)
    except OSError:
        return


def _sqlite_path(name: Any) -> Path | None:
    text = str(name or "")
    if not text or text == ":memory:" or text.startswith("file:"):
        return None  # in memory, or a URI whose file SQLite resolves itself
    return Path(text)


def private_sqlite(name: Any) -> None:
    """Before the database is first opened: create its file 0600 (SQLite would create it 0644,
    and its -wal and -shm files copy that mode), so it is never readable by others, not even
    for the moment between its creation and a chmod."""
    path = _sqlite_path(name)
    if path is None or not path.parent.is_dir():
        return  # nothing to prepare: SQLite reports a missing directory in its own words
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, PRIVATE_FILE))
    except FileExistsError:
        pass
    except OSError:
        return  # not ours to create (read-only place): the connection will say why
    tighten_sqlite(path)


def tighten_sqlite(name: Any) -> None:
    """Tighten an existing database file and its -wal, -shm and journal files."""
    path = _sqlite_path(name)
    if path is None:
        return
    for suffix in SQLITE_SUFFIXES:
        tighten(path.with_name(path.name + suffix))


def on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    """``connection_created``: every new SQLite connection tightens the files it uses (the
    -wal and -shm of a database created by an older version, a test database)."""
    if connection.vendor == "sqlite":
        tighten_sqlite(connection.settings_dict.get("NAME"))
