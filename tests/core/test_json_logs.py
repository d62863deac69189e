"""OUTBOUND_LOG_FORMAT=json: every line one JSON object (the application's, the worker's,
gunicorn's error and access logs), with the delivery line's fields as fields; never a secret or
a message's content. Unset or ``text``: the lines as they always were."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.utils.module_loading import import_string
from rest_framework.test import APIClient

from outbound.core.logging import JsonFormatter
from outbound.mail.models import Message
from tests.mail.test_sender import configure, run_worker, submit
from tests.support.smtp import Scripted, free_port, smtp_server

ROOT = Path(__file__).resolve().parents[2]
SENTINEL_PASSWORD = "Sentinel-pw-json-4a7c-never-logged"
SENTINEL_CONTENT = "Sentinel-content-json-91e2-never-logged"

pytestmark = pytest.mark.django_db  # the autouse settings fixture clears the (database) cache


def _record(name: str, msg: str, args: Any = (), **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord(name, logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_a_line_has_the_fields_the_extras_and_the_exception() -> None:
    formatter = JsonFormatter()
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        record = logging.LogRecord(
            "outbound.x", logging.ERROR, __file__, 1, "failed %s", ("once",), sys.exc_info()
        )
    record.__dict__["delivery"] = {"message": 7, "outcome": "sent"}
    line = formatter.format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert entry["logger"] == "outbound.x"
    assert entry["event"] == "failed once"
    assert entry["timestamp"].endswith("Z") and "T" in entry["timestamp"]
    assert entry["delivery"] == {"message": 7, "outcome": "sent"}
    assert "RuntimeError: boom" in entry["exception"]
    assert "Traceback" in entry["exception"]
    # An extra never overwrites the line's own fields; odd values are written as text.
    entry = json.loads(formatter.format(_record("x", "hi", event="other", when=object())))
    assert entry["event"] == "hi"
    assert entry["when"].startswith("<object object")


def test_the_access_line_has_the_request_fields_and_none_of_its_headers() -> None:
    atoms = {
        "h": "127.0.0.1",
        "m": "POST",
        "U": "/api/messages/",
        "q": "token=secret-query",
        "s": "202",
        "M": 12,
        "a": "curl/8",
        "{authorization}i": "Bearer secret-header",
        "{cookie}i": "sessionid=secret-cookie",
    }
    record = _record("gunicorn.access", '%(h)s "%(m)s %(U)s" %(s)s', (atoms,))
    entry = json.loads(JsonFormatter().format(record))
    assert entry["event"] == '127.0.0.1 "POST /api/messages/" 202'
    assert {k: entry[k] for k in ("method", "path", "status", "duration_ms")} == {
        "method": "POST",
        "path": "/api/messages/",
        "status": 202,
        "duration_ms": 12,
    }
    assert entry["remote_addr"] == "127.0.0.1"
    assert entry["user_agent"] == "curl/8"
    assert "secret" not in json.dumps(entry)


def _env(tmp_path: Path, **changes: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "OUTBOUND_LOG_FORMAT"}}
    env.update(OUTBOUND_VAR_DIR=str(tmp_path / "var"), DJANGO_SETTINGS_MODULE="outbound.settings")
    env.update(changes)
    return env


_LOG_SOMETHING = """
import django, logging
django.setup()
log = logging.getLogger("outbound.test")
log.info("hello %s", "there", extra={"delivery": {"attempt": 2}})
try:
    1 / 0
except ZeroDivisionError:
    log.exception("it failed")
"""


@pytest.mark.parametrize("log_format", ["", "text", "json"])
def test_the_settings_pick_the_format(tmp_path: Path, log_format: str) -> None:
    env = _env(tmp_path, OUTBOUND_LOG_FORMAT=log_format)
    run = subprocess.run(
        [sys.executable, "-c", _LOG_SOMETHING], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    lines = [line for line in run.stderr.splitlines() if "outbound.test" in line or "{" in line]
    if log_format == "json":
        entries = [json.loads(line) for line in run.stderr.splitlines()]
        mine = [e for e in entries if e["logger"] == "outbound.test"]
        assert [e["event"] for e in mine] == ["hello there", "it failed"]
        assert mine[0]["delivery"] == {"attempt": 2}
        assert "ZeroDivisionError" in mine[1]["exception"]
    else:  # as today: "<asctime> LEVEL logger message", the traceback on lines of its own
        assert " INFO outbound.test hello there" in lines[0]
        assert " ERROR outbound.test it failed" in run.stderr
        assert "Traceback (most recent call last):" in run.stderr
        with pytest.raises(json.JSONDecodeError):
            json.loads(run.stderr.splitlines()[0])


def test_an_unknown_format_is_refused(tmp_path: Path) -> None:
    env = _env(tmp_path, OUTBOUND_LOG_FORMAT="xml")
    run = subprocess.run(
        [sys.executable, "-c", _LOG_SOMETHING], env=env, capture_output=True, text=True, timeout=60
    )
    assert run.returncode != 0
    assert "OUTBOUND_LOG_FORMAT must be text or json" in run.stderr


@pytest.fixture
def json_lines(caplog: pytest.LogCaptureFixture) -> Iterator[io.StringIO]:
    """The console handler as OUTBOUND_LOG_FORMAT=json configures it (its formatter from
    settings.LOGGING), writing into a buffer, on the root logger, at DEBUG."""
    caplog.set_level(logging.DEBUG)
    spec = dict(django_settings.LOGGING["formatters"]["json"])
    formatter = import_string(spec.pop("()"))(**spec)
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(formatter)
    logging.getLogger().addHandler(handler)
    try:
        yield buffer
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.mark.django_db(transaction=True)
def test_delivery_lines_are_json_with_their_fields_and_no_secret_or_content(
    admin_client: APIClient,
    server_tls: Any,
    trust_test_ca: str,
    json_lines: io.StringIO,
) -> None:
    users = {"mailer@example.com": SENTINEL_PASSWORD}
    password = {"tls": True, "username": "mailer@example.com", "password": SENTINEL_PASSWORD}
    with (
        smtp_server(starttls=server_tls, users=users, recorder=Scripted()) as good,
        smtp_server(starttls=server_tls, users={"mailer@example.com": "x"}) as refusing,
    ):
        config = configure(admin_client, good, **password)
        sent = submit(admin_client, subject=SENTINEL_CONTENT, text=f"{SENTINEL_CONTENT}\n")
        run_worker()
        configure(admin_client, refusing, **password)  # the server refuses the password
        deferred = submit(admin_client, subject="refused", html=f"<p>{SENTINEL_CONTENT}</p>")
        run_worker()
        assert Message.objects.get(pk=sent.pk).status == "sent"
        assert Message.objects.get(pk=deferred.pk).status == "deferred"

    lines = json_lines.getvalue().splitlines()
    assert lines
    entries = [json.loads(line) for line in lines]  # every line one JSON object
    ours = [line for line, e in zip(lines, entries, strict=True) if e["logger"] != "mail.log"]
    assert len(ours) < len(lines)  # mail.log: the test server's own lines, which show the DATA
    for line in ours:
        assert SENTINEL_PASSWORD not in line
        assert SENTINEL_CONTENT not in line
    for entry in entries:
        assert {"timestamp", "level", "logger", "event"} <= entry.keys()
    delivery = {e["delivery"]["message"]: e for e in entries if e["logger"] == "outbound.delivery"}
    first = delivery[sent.pk]["delivery"]
    assert first["message_id"] == Message.objects.get(pk=sent.pk).message_id
    assert first["attempt"] == 1
    assert first["config"] == config.pk
    assert first["server"] == f"127.0.0.1:{good.port}"
    assert first["outcome"] == "sent"
    assert isinstance(first["duration_ms"], int)
    [recipient] = first["recipients"]
    assert recipient["address"] == "someone@example.com"
    assert (recipient["status"], recipient["smtp_code"]) == ("sent", 250)
    assert recipient["smtp_reply"] == "Message accepted"
    assert delivery[sent.pk]["level"] == "INFO"
    assert delivery[deferred.pk]["delivery"]["outcome"] == "deferred"


def test_gunicorn_writes_json_error_and_access_lines(tmp_path: Path) -> None:
    """``make run``'s gunicorn with gunicorn.conf.py: the access line names the request."""
    port = free_port()
    env = _env(tmp_path, OUTBOUND_LOG_FORMAT="json")
    out, err = tmp_path / "out", tmp_path / "err"
    command = [
        str(Path(sys.executable).with_name("gunicorn")),
        *("-c", "gunicorn.conf.py", "outbound.wsgi:application"),
        *("--bind", f"127.0.0.1:{port}", "--workers", "1", "--access-logfile", "-"),
    ]
    with out.open("w") as stdout, err.open("w") as stderr:
        server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=stdout, stderr=stderr)
    try:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/healthz", headers={"User-Agent": "json-logs-test/1"}
        )
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert server.poll() is None, err.read_text()
                assert time.monotonic() < deadline, err.read_text()
                time.sleep(0.1)
        deadline = time.monotonic() + 10
        while "/healthz" not in out.read_text() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    access = [json.loads(line) for line in out.read_text().splitlines()]
    errors = [json.loads(line) for line in err.read_text().splitlines()]
    assert any(e["logger"] == "gunicorn.error" for e in errors)
    (line,) = [e for e in access if e.get("path") == "/healthz"]
    assert line["logger"] == "gunicorn.access"
    assert line["method"] == "GET"
    assert line["status"] == 200
    assert line["remote_addr"] == "127.0.0.1"
    assert line["user_agent"] == "json-logs-test/1"
    assert isinstance(line["duration_ms"], int)
