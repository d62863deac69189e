"""JSON log lines (``OUTBOUND_LOG_FORMAT=json``): one object per line, for log shippers.

Every line carries ``timestamp`` (ISO 8601, UTC), ``level``, ``logger``, ``process`` and
``event`` (the formatted message), then whatever ``extra`` the code passed (the delivery
line's ``delivery`` object, for one), and ``exception`` (the traceback, as one string) when
there is one. Gunicorn's access line also gets ``method``, ``path``, ``status``,
``duration_ms``, ``remote_addr`` and ``user_agent``, taken from the atoms gunicorn logs it
with — only those: the atoms also hold every request header (cookies, authorization).

Nothing is added that the text format does not already show, apart from extras, which the
code chooses (and which never hold a secret or a body, like the text).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

# A record's own attributes; everything else on it came in through ``extra``.
_RECORD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

# Gunicorn's access-log atoms (record.args) → fields of the line.
_ACCESS_ATOMS = {
    "m": "method",
    "U": "path",
    "s": "status",
    "M": "duration_ms",
    "h": "remote_addr",
    "a": "user_agent",
}


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON (stdlib ``json``, ASCII-only)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "process": record.process,
            "event": record.getMessage(),
        }
        if record.name == "gunicorn.access" and isinstance(record.args, Mapping):
            entry.update(_access_fields(record.args))
        for key, value in record.__dict__.items():
            if key not in _RECORD_ATTRIBUTES and not key.startswith("_"):
                entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        try:
            return json.dumps(entry, default=_jsonable)
        except (TypeError, ValueError):  # an extra json cannot take (a cycle, odd keys)
            return json.dumps(
                {k: v if isinstance(v, str | int) else repr(v) for k, v in entry.items()}
            )


def _timestamp(created: float) -> str:
    moment = datetime.fromtimestamp(created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _access_fields(atoms: Mapping[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for atom, field in _ACCESS_ATOMS.items():
        value = atoms.get(atom)
        if value is None or value == "-":
            continue
        if field == "status" and str(value).isdigit():
            value = int(value)
        fields[field] = value
    return fields


def _jsonable(value: Any) -> Any:
    """What json cannot encode itself: a request (Django's ``extra``) by its method and path
    only (not its query string or headers); anything else by ``str``."""
    method, path = getattr(value, "method", None), getattr(value, "path", None)
    if isinstance(method, str) and isinstance(path, str):
        return {"method": method, "path": path}
    if isinstance(value, set | frozenset):
        return list(value)
    return str(value)
