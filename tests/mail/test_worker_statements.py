"""What the worker asks of the database per delivered message: a bounded number of SQL
statements (counted, not timed), and a body that is never written again once queued."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from outbound.mail import sender
from outbound.mail.models import Message
from tests.mail.test_sender import (
    _fresh_sender_state,  # noqa: F401  (autouse: no pooled connection between tests)
    configure,
    submit,
)
from tests.support.smtp import Scripted, smtp_server

N = 40


@pytest.mark.django_db(transaction=True)
def test_the_worker_spends_a_bounded_number_of_statements_per_message(
    admin_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    with smtp_server(recorder=Scripted(pipelining=True)) as srv:
        configure(admin_client, srv)
        for _ in range(N):
            submit(admin_client, html="<p>" + "x" * 2000 + "</p>")
        notes: list[str] = []
        write_note = sender.NOTES.submit

        def note_taker(sql: str, params: list[Any]) -> None:
            notes.append(sql)
            write_note(sql, params)

        monkeypatch.setattr(sender.NOTES, "submit", note_taker)
        with CaptureQueriesContext(connection) as ctx:
            call_command("worker", batch=True)
    assert Message.objects.filter(status="sent").count() == N
    assert len(srv.recorder.messages) == N
    statements = [q["sql"] for q in ctx.captured_queries]
    # A batch costs a fixed handful whatever its size: the claim (one UPDATE … RETURNING),
    # the configuration, recipients and attachments of the batch, one transaction for all
    # the results (lease check, messages, recipients, attempts), and the empty claim that
    # ends the run; the attempts opened at the claim (and any left under way by a dead
    # worker closed as interrupted); plus the worker's own registration for /readyz
    # (clearing day-old rows, its first beat, and its row removed when it stops).
    # And one write-ahead note per delivered message (its result on its row the moment the
    # server accepted it, so a worker dying before the bulk write does not cause a resend),
    # written by the note writer's thread on a connection of its own.
    # And the webhook subscriptions, read at most once a second per process: nobody
    # subscribes here, so no event is built and nothing else is written.
    assert len(notes) == N, len(notes)
    assert len(statements) <= 27, statements  # BEGIN/COMMIT counted
    assert len([s for s in statements if "webhooks_" in s]) <= 1
    statements += notes
    assert len(statements) / N <= 2  # the budget
    rewrites = [s for s in statements if s.startswith('UPDATE "mail_message"') and "x" * 100 in s]
    assert rewrites == []  # the results are written without the body
