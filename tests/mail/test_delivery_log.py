"""One log line per delivery attempt, on ``outbound.delivery`` at INFO: message, attempt,
configuration, server, each recipient's SMTP reply, outcome and duration — and never the
password, the subject or the body.

A real aiosmtpd server on loopback (STARTTLS and AUTH, with scripted refusals); messages go
in through the API and out through ``outbound worker --batch``.
"""

from __future__ import annotations

import base64
import logging
import re
import ssl

import pytest
from rest_framework.test import APIClient

from outbound.mail.models import Attempt
from tests.mail.test_sender import (
    SENTINEL_PASSWORD,
    _fresh_sender_state,  # noqa: F401  (autouse: no pooled connection between tests)
    configure,
    run_worker,
    submit,
)
from tests.support.smtp import Scripted, smtp_server

SUBJECT = "Sentinel-subject-41f0-never-logged"
BODY = "Sentinel-body-9a3c-never-logged\n"


@pytest.mark.django_db(transaction=True)
def test_each_attempt_logs_one_line_with_its_results_and_no_secret_or_content(
    admin_client: APIClient,
    server_tls: ssl.SSLContext,
    trust_test_ca: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    recorder = Scripted(defer={"later@example.com": -1}, refuse={"gone@example.com"})
    with smtp_server(
        starttls=server_tls, users={"mailer@example.com": SENTINEL_PASSWORD}, recorder=recorder
    ) as srv:
        config = configure(
            admin_client,
            srv,
            tls=True,
            username="mailer@example.com",
            password=SENTINEL_PASSWORD,
        )
        messages = {
            outcome: submit(admin_client, to=[to], subject=SUBJECT, text=BODY)
            for outcome, to in (
                ("sent", "Ann <ok@example.com>"),
                ("deferred", "later@example.com"),
                ("failed", "gone@example.com"),
            )
        }
        run_worker()
    assert recorder.logins == [("mailer@example.com", SENTINEL_PASSWORD)]  # it really logged in

    lines = [r for r in caplog.records if r.name == "outbound.delivery"]
    replies = {
        "sent": "ok@example.com 250 Message accepted",
        "deferred": "later@example.com 451 4.3.2 Please try again later",
        "failed": "gone@example.com 550 5.1.1 <gone@example.com>: Recipient address rejected: "
        "User unknown",
    }
    for outcome, message in messages.items():
        [line] = [r for r in lines if r.delivery["message"] == message.pk]  # type: ignore[attr-defined]
        assert line.levelno == logging.INFO
        [attempt] = Attempt.objects.filter(message=message)
        text = line.getMessage()
        assert f"message={message.pk} " in text
        assert f"message_id={message.message_id} " in text
        assert " attempt=1 " in text
        assert f" config={config.pk} " in text
        assert f" server=127.0.0.1:{srv.port} " in text
        assert f" outcome={outcome} " in text and attempt.outcome == outcome
        assert re.search(r" duration_ms=\d+ ", text)
        assert text.endswith(f"recipients=[{replies[outcome]}]")

    forbidden = [
        SENTINEL_PASSWORD,
        base64.b64encode(f"\0mailer@example.com\0{SENTINEL_PASSWORD}".encode()).decode(),
        SUBJECT,
        BODY.strip(),
    ]
    ours = [r for r in caplog.records if r.name.startswith(("outbound", "django_tasks"))]
    assert ours
    for record in ours:
        for value in forbidden:
            assert value not in record.getMessage()
            assert value not in repr(getattr(record, "delivery", ""))
