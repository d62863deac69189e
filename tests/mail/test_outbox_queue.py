"""The outbox is the queue: claiming batches (oldest due first, never a message another
worker holds, expired leases taken over), giving back what a stopping worker did not try,
the configuration active *now* within a batch, and the bulk writer the results go through.
On SQLite and PostgreSQL alike (CI runs both)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connections
from django.db.models import prefetch_related_objects
from django.utils import timezone
from rest_framework.test import APIClient

from outbound.core import bulk
from outbound.mail import sender
from outbound.mail.models import Attempt, Message, MessageStatus, Recipient, SmtpConfig
from tests.mail.test_sender import (
    _fresh_sender_state,  # noqa: F401  (autouse: no pooled connection between tests)
    configure,
    parsed,
    submit,
)
from tests.support.smtp import Scripted, smtp_server


def queued(n: int, **fields: Any) -> list[Message]:
    """``n`` outbox rows written directly, due now (one recipient each)."""
    now = timezone.now()
    messages = Message.objects.bulk_create(
        Message(subject=f"m{i}", text="x\n", message_id=f"<{i}.{now.timestamp()}@t>",
                next_attempt_at=now - timedelta(seconds=n - i), **fields)
        for i in range(n)
    )  # fmt: skip
    Recipient.objects.bulk_create(
        Recipient(message=m, kind="to", address=f"r{m.pk}@example.com") for m in messages
    )
    return messages


@pytest.mark.django_db(transaction=True)
def test_a_claim_takes_the_oldest_due_messages_and_never_one_held_by_a_live_lease() -> None:
    now = timezone.now()
    waiting = queued(5)
    later = queued(1)[0]
    Message.objects.filter(pk=later.pk).update(next_attempt_at=now + timedelta(hours=1))
    held, expired = queued(2)
    Message.objects.filter(pk=held.pk).update(
        status=MessageStatus.SENDING, lease_owner="other", lease_until=now + timedelta(hours=1)
    )
    Message.objects.filter(pk=expired.pk).update(
        status=MessageStatus.SENDING, lease_owner="dead", lease_until=now - timedelta(minutes=1),
        next_attempt_at=now - timedelta(hours=1), attempt_count=1,
    )  # fmt: skip

    lease, first = sender.claim(limit=3)
    # The expired lease is the oldest due (it was due an hour ago), then the queue in order.
    assert [m.pk for m in first] == [expired.pk, waiting[0].pk, waiting[1].pk]
    assert all(m.status == MessageStatus.SENDING and m.lease_owner == lease.owner for m in first)
    assert [m.attempt_count for m in first] == [2, 1, 1]
    assert first[1].text == "x\n" and first[1].recipients.count() == 1  # whole rows

    _, rest = sender.claim(limit=10)
    assert [m.pk for m in rest] == [w.pk for w in waiting[2:]]  # not the held, not the later
    assert sender.claim(limit=10)[1] == []
    assert Message.objects.get(pk=held.pk).lease_owner == "other"


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_share_a_message() -> None:
    queued(120)
    taken: list[list[int]] = []
    start = threading.Barrier(4)

    def claim_all() -> None:
        mine: list[int] = []
        try:
            start.wait(5)
            while True:
                _, batch = sender.claim(limit=7)
                if not batch:
                    break
                mine.extend(m.pk for m in batch)
        finally:
            taken.append(mine)
            connections.close_all()

    threads = [threading.Thread(target=claim_all) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    everything = [pk for mine in taken for pk in mine]
    assert len(everything) == 120 and len(set(everything)) == 120


@pytest.mark.django_db(transaction=True)
def test_a_stopping_worker_gives_back_what_it_did_not_try(admin_client: APIClient) -> None:
    with smtp_server(recorder=Scripted()) as srv:
        configure(admin_client, srv)
        retried = submit(admin_client, subject="retried")
        Message.objects.filter(pk=retried.pk).update(attempt_count=2, status="deferred")
        fresh = [submit(admin_client, subject=f"fresh {n}") for n in range(3)]
        stop = threading.Event()
        original = sender._attempt

        def attempt_then_stop(*args: Any, **kwargs: Any) -> Any:
            stop.set()  # as SIGTERM would, while the first message is being sent
            return original(*args, **kwargs)

        sender._attempt = attempt_then_stop  # type: ignore[assignment]
        try:
            results = sender.deliver_due(limit=10, stop=stop)
        finally:
            sender._attempt = original  # type: ignore[assignment]
    assert results == {retried.pk: "sent"}  # the oldest: tried, recorded
    assert len(srv.recorder.messages) == 1
    for message in fresh:
        message.refresh_from_db()
        assert (message.status, message.attempt_count, message.lease_owner) == ("queued", 0, "")
        assert message.lease_until is None
    assert Attempt.objects.filter(message__in=fresh).count() == 0
    assert sender.claim(limit=10)[1] != []  # due again at once for the next worker


@pytest.mark.django_db(transaction=True)
def test_a_configuration_change_reaches_a_batch_in_progress(
    admin_client: APIClient, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sender, "CONFIG_RECHECK", 0.2)
    with smtp_server(recorder=Scripted(data_delay=0.1)) as old, smtp_server() as new:
        configure(admin_client, old)
        ids = [submit(admin_client, subject=f"n{n}").pk for n in range(12)]
        changed = threading.Event()

        def change() -> None:
            try:
                while len(old.recorder.messages) < 2:
                    threading.Event().wait(0.01)
                configure(admin_client, new)
                changed.set()
            finally:
                connections.close_all()

        changer = threading.Thread(target=change)
        changer.start()
        results = sender.deliver_due(limit=50)
        changer.join(10)
    assert changed.is_set()
    assert set(results) == set(ids) and set(results.values()) == {"sent"}
    # Old server for the first messages, the new one for the rest of the same batch.
    assert 2 <= len(old.recorder.messages) < 12
    assert len(old.recorder.messages) + len(new.recorder.messages) == 12
    last = [parsed(e)["Subject"] for e in new.recorder.messages]
    assert last == [f"n{n}" for n in range(12 - len(last), 12)]
    assert Attempt.objects.filter(message_id__in=ids).count() == 12


@pytest.mark.django_db
def test_bulk_rows_get_their_own_values_and_only_where_the_condition_still_holds() -> None:
    a, b, c = queued(3)
    now = timezone.now()
    written = bulk.update_rows(
        Message,
        {
            a.pk: {"status": "sent", "sent_at": now, "attempt_count": 1, "last_error": ""},
            b.pk: {"status": "deferred", "sent_at": None, "attempt_count": 2, "last_error": "4"},
            c.pk: {"status": "sent", "sent_at": now, "attempt_count": 3, "last_error": ""},
        },
        where={"lease_owner": ""},
    )
    assert written == 3
    rows = {m.pk: m for m in Message.objects.filter(pk__in=[a.pk, b.pk, c.pk])}
    assert (rows[a.pk].status, rows[a.pk].sent_at, rows[a.pk].attempt_count) == ("sent", now, 1)
    assert (rows[b.pk].status, rows[b.pk].sent_at, rows[b.pk].last_error) == ("deferred", None, "4")
    assert rows[c.pk].attempt_count == 3

    Message.objects.filter(pk=b.pk).update(lease_owner="someone")
    same = {"status": "failed", "sent_at": None, "attempt_count": 9, "last_error": "x"}
    assert bulk.update_rows(Message, {a.pk: same, b.pk: same}, where={"lease_owner": ""}) == 1
    assert Message.objects.get(pk=b.pk).status == "deferred"  # its condition no longer held
    assert Message.objects.get(pk=a.pk).attempt_count == 9


@pytest.mark.django_db(transaction=True)
def test_a_delivery_noted_by_a_worker_that_died_is_recorded_not_sent_again(
    admin_client: APIClient,
) -> None:
    with smtp_server(recorder=Scripted(refuse={"no@example.com"})) as srv:
        configure(admin_client, srv)
        message = submit(admin_client, to=["yes@example.com", "no@example.com"])
        # A worker claims it, sends it, notes the result ... and dies before the bulk write.
        lease, [claimed] = sender.claim(limit=10)
        prefetch_related_objects([claimed], "recipients", "attachments")
        tried = sender._attempt(claimed, SmtpConfig.objects.get(is_active=True), lease)
        assert tried is not None
        sender._note(lease, tried)
        sender.NOTES.flush()
        assert len(srv.recorder.messages) == 1
        noted = Message.objects.get(pk=message.pk)
        assert noted.status == "sending" and noted.outcome_note is not None
        # Its lease runs out; another worker takes the message over.
        Message.objects.filter(pk=message.pk).update(
            lease_until=timezone.now() - timedelta(minutes=1)
        )
        assert sender.deliver_due(limit=10) == {message.pk: "sent"}
    assert len(srv.recorder.messages) == 1  # recorded from the note, not sent again
    message.refresh_from_db()
    assert (message.status, message.attempt_count, message.outcome_note) == ("sent", 1, None)
    assert {r.address: (r.status, r.smtp_code) for r in message.recipients.all()} == {
        "yes@example.com": ("sent", 250),
        "no@example.com": ("failed", 550),
    }
    [attempt] = Attempt.objects.filter(message=message)
    assert (attempt.number, attempt.outcome) == (1, "sent")
    assert attempt.worker == sender.WORKER_ID[:64] and attempt.finished_at is not None
    assert Message.objects.filter(is_failure_notice=True).count() == 1  # for no@example.com
