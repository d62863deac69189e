"""SMTP PIPELINING (RFC 2920): MAIL, every RCPT and DATA go in one round trip when the
server offers it, with the same per-recipient results as one command at a time.

Real aiosmtpd servers on loopback (:class:`tests.support.smtp.Scripted`, which advertises
PIPELINING on request and counts the round trips of each mail transaction).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.mail import sender
from outbound.mail.models import Attempt
from tests.mail.test_sender import (
    _deliver_in_thread,
    _fresh_sender_state,  # noqa: F401  (autouse: no pooled connection between tests)
    _NoHeartbeat,
    configure,
    parsed,
    recipients,
    run_worker,
    script,
    submit,
)
from tests.support.smtp import DROP_AT_DATA, Scripted, smtp_server

TO = ["ok@example.com", "later@example.com", "gone@example.com"]


def trouble(**kwargs: Any) -> Scripted:
    """One recipient accepted, one deferred (451), one refused (550)."""
    return Scripted(defer={"later@example.com": -1}, refuse={"gone@example.com"}, **kwargs)


@pytest.mark.django_db(transaction=True)
def test_pipelining_gives_the_same_per_recipient_results_in_one_round_trip(
    admin_client: APIClient,
) -> None:
    results, round_trips, delivered = {}, {}, {}
    for pipelining in (False, True):
        with smtp_server(recorder=trouble(pipelining=pipelining)) as srv:
            configure(admin_client, srv)
            message = submit(admin_client, to=TO)
            run_worker()
        message.refresh_from_db()
        assert message.status == "deferred"  # later@ waits for its retry
        results[pipelining] = recipients(message)
        round_trips[pipelining] = script(srv).round_trips
        [envelope] = srv.recorder.messages
        delivered[pipelining] = envelope.rcpt_tos
    assert results[True] == results[False]
    assert results[True]["ok@example.com"][:2] == ("sent", 250)
    assert results[True]["later@example.com"][:2] == ("deferred", 451)
    assert results[True]["gone@example.com"][:2] == ("failed", 550)
    assert delivered[True] == delivered[False] == ["ok@example.com"]
    # MAIL, three RCPTs and DATA: five waits for a reply one by one, one when pipelined.
    assert round_trips == {False: 5, True: 1}


@pytest.mark.django_db(transaction=True)
def test_a_pipelined_message_nobody_accepted_is_not_sent_and_the_session_goes_on(
    admin_client: APIClient,
) -> None:
    with smtp_server(recorder=Scripted(pipelining=True, refuse={"gone@example.com"})) as srv:
        configure(admin_client, srv)
        refused = submit(admin_client, to=["gone@example.com"])
        accepted = submit(admin_client, to=["ok@example.com"])
        # One process, one pooled connection: the second message follows on the same one.
        assert sender.deliver(refused.pk) == "failed"
        assert sender.deliver(accepted.pk) == "sent"
        assert script(srv).connections == 1
    assert recipients(refused)["gone@example.com"][:2] == ("failed", 550)
    # Only the second message arrived (the DATA of the first was refused with 503).
    [envelope] = srv.recorder.messages
    assert envelope.rcpt_tos == ["ok@example.com"]
    assert parsed(envelope)["Message-ID"] == accepted.message_id


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("pipelining", [False, True])
def test_a_connection_dropped_after_rcpt_is_a_deferral(
    admin_client: APIClient, pipelining: bool
) -> None:
    recorder = Scripted(pipelining=pipelining, refuse={"gone@example.com"}, drops=[DROP_AT_DATA])
    with smtp_server(recorder=recorder) as srv:
        configure(admin_client, srv)
        message = submit(admin_client, to=["ok@example.com", "gone@example.com"])
        run_worker()
    message.refresh_from_db()
    assert message.status == "deferred" and message.sent_at is None
    assert recipients(message) == {
        "ok@example.com": ("deferred", None, "The server closed the connection."),
        "gone@example.com": (
            "failed",
            550,
            "5.1.1 <gone@example.com>: Recipient address rejected: User unknown",
        ),
    }
    assert srv.recorder.messages == []


@pytest.mark.django_db(transaction=True)
def test_a_pipelined_body_keeps_its_leading_dots(admin_client: APIClient) -> None:
    text = ".a line that starts with a dot\n.\n..two\nend\n"
    with smtp_server(recorder=Scripted(pipelining=True)) as srv:
        configure(admin_client, srv)
        message = submit(admin_client, text=text)
        run_worker()
    message.refresh_from_db()
    assert message.status == "sent"
    [envelope] = srv.recorder.messages
    body = parsed(envelope).get_body(("plain",))
    assert body is not None and body.get_content().replace("\r\n", "\n") == text


@pytest.mark.django_db(transaction=True)
def test_a_pipelining_worker_that_lost_its_lease_does_not_send_the_message_too(
    admin_client: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.OUTBOUND_SEND_LEASE = 0.3
    # The first worker's RCPT reply comes after its lease ran out (and its heartbeat is
    # cut off); a second worker has taken the message over meanwhile.
    monkeypatch.setattr(sender, "HEARTBEAT", _NoHeartbeat())
    with smtp_server(recorder=Scripted(pipelining=True, rcpt_delays=[1.0])) as srv:
        configure(admin_client, srv)
        message = submit(admin_client)
        results: list[str] = []
        stalled = threading.Thread(target=_deliver_in_thread, args=(message.pk, results, None))
        stalled.start()
        deadline = time.monotonic() + 5
        while not script(srv).rcpts and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.4)  # the first lease has run out
        assert sender.deliver(message.pk) == "sent"
        stalled.join(10)
    assert results == ["lease-lost"]
    assert len(srv.recorder.messages) == 1
    message.refresh_from_db()
    assert message.status == "sent"
    # Both attempts are listed: the one that lost its lease (closed as interrupted when the
    # second worker took the message over, then as lease-lost by its own worker) and the
    # one that sent it.
    attempts = list(Attempt.objects.filter(message=message).values_list("number", "outcome"))
    assert attempts == [(1, "lease-lost"), (2, "sent")]
