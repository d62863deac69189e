"""Automatic failover (issue 14) against real aiosmtpd servers on loopback: a primary (the
active configuration) and a standby.

- The primary stops mid-stream: after ``OUTBOUND_FAILOVER_AFTER`` server-level failures the
  messages go on through the standby, none lost and none twice (counted by Message-ID at both
  servers), the ones the failures deferred without waiting for their backoff; one event, one
  webhook event, one notice to the primary's failure addresses.
- The primary back on the same port: the probe passes and delivery fails back.
- Recipient refusals never fail over; no standby passing its probe, no switch.
- The admin activating another configuration resets the state.
- Two real ``outbound worker`` processes share one state: one switch, one event.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.policy import SMTP as SMTP_POLICY
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from outbound.core.models import Event
from outbound.mail import failover, sender, services
from outbound.mail.choices import Security
from outbound.mail.models import FailoverState, Message, MessageStatus, SmtpConfig
from outbound.mail.sender import TokenCache
from outbound.webhooks import services as webhook_services
from outbound.webhooks.models import WebhookDelivery
from tests.conftest import client_for
from tests.mail.test_worker_process import (  # noqa: F401  (fixtures)
    SMTP_PASSWORD,
    SMTP_USER,
    Workers,
    key,
    wait_for,
    workers,
)
from tests.support.smtp import PasswordAuthenticator, Recorder, free_port

pytestmark = pytest.mark.django_db(transaction=True)

ALERTS = "ops@example.com"


class Server:
    """An aiosmtpd server with AUTH that can be stopped and started again on the same port."""

    def __init__(self, recorder: Recorder | None = None) -> None:
        self.host, self.port = "127.0.0.1", free_port()
        self.recorder = recorder or Recorder()
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(
            self.recorder,
            hostname=self.host,
            port=self.port,
            authenticator=PasswordAuthenticator({SMTP_USER: SMTP_PASSWORD}, self.recorder),
            auth_require_tls=False,
            auth_required=True,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                self.controller.start()
                return
            except Exception:  # the port a moment after a stop
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def ids(self) -> list[str]:
        """The Message-IDs of the copies accepted, duplicates kept."""
        return [
            str(message_from_bytes(e.original_content or b"", policy=SMTP_POLICY)["Message-ID"])
            for e in list(self.recorder.messages)
        ]


@dataclass
class RefusingSender(Recorder):
    """Answers MAIL FROM with ``mail_reply`` while it is set (the server's own trouble)."""

    mail_reply: str | None = None

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list
    ) -> str:
        if self.mail_reply:
            return self.mail_reply
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"


@pytest.fixture
def primary() -> Iterator[Server]:
    server = Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def standby() -> Iterator[Server]:
    server = Server()
    server.start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _fast(settings: Any) -> Iterator[None]:
    sender.POOL.discard()
    sender.TOKENS = TokenCache()
    failover.FAILOVER.__init__()  # type: ignore[misc]
    settings.OUTBOUND_FAILOVER_AFTER = 3
    settings.OUTBOUND_FAILBACK_PROBE = 0.5
    # Long backoff: a deferred message comes back soon only if the failover makes it due.
    settings.OUTBOUND_RETRY_MIN_BACKOFF = 300
    settings.OUTBOUND_RETRY_MAX_BACKOFF = 600
    yield
    sender.POOL.discard()
    failover.FAILOVER.__init__()  # type: ignore[misc]


def config_for(
    server: Server, actor: Any, *, standby: int | None = None, **data: Any
) -> SmtpConfig:
    return services.smtp_config_create(
        data={
            "host": server.host,
            "port": server.port,
            "security": Security.NONE,
            "username": SMTP_USER,
            "password": SMTP_PASSWORD,
            "sender_address": "app@example.com",
            "failure_emails": [ALERTS],
            "standby": standby,
            **data,
        },
        actor=actor,
        activate=standby is None,
    )


def submit(client: Any, n: int, start: int = 0) -> list[int]:
    bodies = [
        {"to": [f"user{i}@example.com"], "subject": f"message {i}", "text": f"body {i}\n"}
        for i in range(start, start + n)
    ]
    response = client.post("/api/messages/batch/", {"messages": bodies}, format="json")
    assert response.status_code == 202, response.content[:500]
    return [result["id"] for result in response.json()["results"]]


def deliver_until(done: Callable[[], bool], timeout: float = 30, batch: int = 5) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not done in time"
        if not sender.deliver_due(limit=batch):
            time.sleep(0.05)


def message_ids(ids: list[int]) -> list[str]:
    return list(Message.objects.filter(pk__in=ids).values_list("message_id", flat=True))


def all_sent(ids: list[int]) -> bool:
    return Message.objects.filter(pk__in=ids, status=MessageStatus.SENT).count() == len(ids)


def events(action: str) -> list[Event]:
    return list(Event.objects.filter(resource_type="smtp_config", action=action))


def notices() -> list[Message]:
    return list(Message.objects.filter(is_failure_notice=True))


def state() -> FailoverState:
    return FailoverState.objects.get()


def test_the_primary_stops_mid_stream_the_standby_takes_over_then_it_fails_back(
    primary: Server, standby: Server, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    main = config_for(primary, admin_user)
    spare = config_for(standby, admin_user, standby=1)
    hook, _ = webhook_services.create_webhook(
        actor=admin_user,
        url=f"http://127.0.0.1:{free_port()}/hook",
        events=["smtp_config.failed_over", "smtp_config.failed_back"],
    )
    client = client_for(make_user("messages.send"))
    assert failover.serving_config_id() == main.pk

    ids = submit(client, 30)
    deliver_until(lambda: len(primary.recorder.messages) >= 10)
    primary.stop()  # mid-stream: 20 messages still to go
    # One message per batch: the failures before the switch are recorded (deferred, with a
    # backoff of minutes) before it happens, and still go out through the standby at once.
    deliver_until(lambda: all_sent(ids), batch=1)

    # None lost, none twice, the rest through the standby — without waiting for a backoff.
    arrived = Counter(primary.ids() + standby.ids())
    mine = set(message_ids(ids))
    assert {m: n for m, n in arrived.items() if m in mine} == dict.fromkeys(mine, 1)
    assert len([m for m in standby.ids() if m in mine]) >= 20 - 1
    assert failover.serving_config_id() == spare.pk
    assert SmtpConfig.objects.get(is_active=True) == main  # the admin's choice stays
    s = state()
    assert (s.primary_id, s.serving_id) == (main.pk, spare.pk)
    assert s.standby_probes[str(spare.pk)]["ok"] is True
    # One event, one webhook delivery for it, one notice to the failure addresses.
    [event] = events("failed_over")
    assert event.resource_id == str(main.pk)
    [delivery] = WebhookDelivery.objects.filter(webhook=hook, event_type="smtp_config.failed_over")
    assert delivery.payload["data"]["serving"]["id"] == spare.pk
    [notice] = notices()
    assert notice.recipients.get().address == ALERTS
    assert "failed over" in notice.subject
    deliver_until(lambda: Message.objects.get(pk=notice.pk).status == MessageStatus.SENT)
    assert notice.message_id in standby.ids()

    # The primary comes back on the same port: the probe passes, delivery fails back.
    primary.start()
    before = len(primary.recorder.messages)
    more = submit(client, 10, start=100)
    deliver_until(lambda: all_sent(more) and failover.serving_config_id() == main.pk)
    later = submit(client, 5, start=200)
    deliver_until(lambda: all_sent(later))
    assert set(message_ids(later)) <= set(primary.ids()[before:])
    [back] = events("failed_back")
    assert back.resource_id == str(main.pk)
    assert WebhookDelivery.objects.filter(event_type="smtp_config.failed_back").count() == 1
    assert state().serving_id is None and state().failures == 0
    arrived = Counter(primary.ids() + standby.ids())
    assert all(n == 1 for n in arrived.values()), arrived
    assert len(notices()) == 1


def test_a_4xx_to_mail_from_is_the_servers_failure(
    standby: Server, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    recorder = RefusingSender(mail_reply="451 4.3.0 Local trouble, try again later")
    primary = Server(recorder)
    primary.start()
    try:
        config_for(primary, admin_user)
        spare = config_for(standby, admin_user, standby=1)
        ids = submit(client_for(make_user("messages.send")), 6)
        deliver_until(lambda: all_sent(ids), batch=1)
        assert recorder.messages == []
        assert set(message_ids(ids)) <= set(standby.ids())
        assert failover.serving_config_id() == spare.pk
        assert len(events("failed_over")) == 1

        # Its probe tries MAIL FROM too: while it refuses envelopes it does not serve again.
        client = client_for(make_user("messages.send"))
        deadline = time.monotonic() + 2  # four probe periods
        while time.monotonic() < deadline:
            sender.deliver_due(limit=5)
            time.sleep(0.05)
        assert failover.serving_config_id() == spare.pk
        assert state().probe_ok is False and "451" in state().probe_detail
        recorder.mail_reply = None
        later = submit(client, 3, start=10)
        deliver_until(lambda: all_sent(later) and failover.serving_config_id() != spare.pk)
        assert events("failed_back") and len(events("failed_over")) == 1
    finally:
        primary.stop()


def test_recipient_refusals_never_fail_over(
    primary: Server, standby: Server, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    config_for(primary, admin_user)
    config_for(standby, admin_user, standby=1)
    client = client_for(make_user("messages.send"))
    primary.recorder.rcpt_reply = "450 4.2.1 Mailbox busy, try later"
    ids = submit(client, 4)
    deliver_until(lambda: not Message.objects.filter(status=MessageStatus.QUEUED).exists())
    primary.recorder.rcpt_reply = "550 5.1.1 No such user"
    ids += submit(client, 4, start=10)
    deliver_until(lambda: not Message.objects.filter(status=MessageStatus.QUEUED).exists())

    assert Message.objects.filter(pk__in=ids[:4], status=MessageStatus.DEFERRED).count() == 4
    assert Message.objects.filter(pk__in=ids[4:], status=MessageStatus.FAILED).count() == 4
    assert standby.recorder.messages == [] and standby.recorder.logins == []
    assert events("failed_over") == []
    assert not FailoverState.objects.filter(serving__isnull=False).exists()
    assert not FailoverState.objects.filter(failures__gt=0).exists()


def test_no_standby_passing_its_probe_no_switch(
    primary: Server, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    dead = Server()  # never started: nothing listens on its port
    main = config_for(primary, admin_user)
    spare = config_for(dead, admin_user, standby=1)
    client = client_for(make_user("messages.send"))
    primary.stop()
    ids = submit(client, 6)
    deliver_until(lambda: not Message.objects.filter(status=MessageStatus.QUEUED).exists())
    failover.FAILOVER.wait()  # its standby probes run in the background

    # Deferred as without a standby (with their backoff), nothing switched, nobody told.
    assert Message.objects.filter(pk__in=ids, status=MessageStatus.DEFERRED).count() == 6
    assert failover.serving_config_id() == main.pk
    s = state()
    assert s.serving_id is None and s.failures >= 3
    assert s.standby_probes[str(spare.pk)]["ok"] is False
    assert events("failed_over") == [] and notices() == []


def test_activating_another_configuration_resets_the_state(
    primary: Server, standby: Server, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    main = config_for(primary, admin_user)
    spare = config_for(standby, admin_user, standby=1)
    client = client_for(make_user("messages.send"))
    primary.stop()
    ids = submit(client, 5)
    deliver_until(lambda: all_sent(ids))
    assert failover.serving_config_id() == spare.pk

    other = Server()
    other.start()
    try:
        chosen = config_for(other, admin_user)  # the admin activates a third configuration
        assert failover.serving_config_id() == chosen.pk
        later = submit(client, 3, start=10)
        deliver_until(lambda: all_sent(later))
        assert set(message_ids(later)) <= set(other.ids())
        # Its own failures count from 0, for it.
        other.stop()
        late = submit(client, 1, start=20)
        deliver_until(lambda: not Message.objects.filter(pk__in=late, status="queued").exists())
        s = state()
        assert (s.primary_id, s.serving_id, s.failures) == (chosen.pk, None, 1)
        assert main.pk != chosen.pk
    finally:
        other.stop()


def test_two_worker_processes_share_one_state(
    workers: Workers,  # noqa: F811
    primary: Server,
    standby: Server,
    admin_user: Any,
    make_user: Callable[..., Any],
) -> None:
    main = config_for(primary, admin_user)
    spare = config_for(standby, admin_user, standby=1)
    workers.env.update(
        OUTBOUND_FAILOVER_AFTER="3",
        OUTBOUND_FAILBACK_PROBE="1",
        OUTBOUND_RETRY_MIN_BACKOFF="300",
        OUTBOUND_RETRY_MAX_BACKOFF="600",
        OUTBOUND_SMTP_TIMEOUT="3",
    )
    procs = [workers.start("--batch-size", "5") for _ in range(2)]
    for proc in procs:
        workers.wait_ready(proc)
    client = client_for(make_user("messages.send"))

    ids = submit(client, 200)
    wait_for(lambda: len(primary.recorder.messages) >= 40, 30, "the primary got nothing")
    primary.stop()
    wait_for(lambda: all_sent(ids), 60, "not all delivered after the primary stopped")
    time.sleep(0.5)
    mine = set(message_ids(ids))
    arrived = Counter(m for m in primary.ids() + standby.ids() if m in mine)
    assert arrived == Counter(dict.fromkeys(mine, 1)), workers.output()
    assert standby.ids(), workers.output()
    assert len(events("failed_over")) == 1, workers.output()
    assert len(notices()) == 1
    assert failover.serving_config_id() == spare.pk

    primary.start()
    wait_for(lambda: failover.serving_config_id() == main.pk, 30, "no fail-back")
    assert len(events("failed_back")) == 1
    more = submit(client, 20, start=1000)
    wait_for(lambda: all_sent(more), 30, "not delivered after the fail-back")
    assert set(message_ids(more)) <= set(primary.ids())


# --- the admin's actions reset the state; a restart; the settings (issue 14 review) ---------


@pytest.fixture
def third() -> Iterator[Server]:
    server = Server()
    server.start()
    yield server
    server.stop()


def failed_over_to(
    primary: Server, admin_user: Any, client: Any, standby: Server, third: Server
) -> tuple[SmtpConfig, SmtpConfig, SmtpConfig]:
    """The primary down, delivery failed over to the standby of rank 1 (rank 2 ready)."""
    main = config_for(primary, admin_user)
    first = config_for(standby, admin_user, standby=1)
    second = config_for(third, admin_user, standby=2)
    primary.stop()
    ids = submit(client, 4, start=900)
    deliver_until(lambda: all_sent(ids), batch=1)
    assert failover.serving_config_id() == first.pk
    return main, first, second


def fails_over_again(client: Any, to: Server, start: int) -> None:
    """With the primary still down, new messages are not stuck: its failures count again
    and the next standby takes over."""
    ids = submit(client, 4, start=start)
    deliver_until(lambda: all_sent(ids), batch=1)
    assert set(message_ids(ids)) <= set(to.ids())


def test_activating_the_standby_then_the_primary_again_while_it_is_down_resets_the_state(
    primary: Server, standby: Server, third: Server, admin_user: Any, make_user: Any
) -> None:
    client = client_for(make_user("messages.send"))
    main, first, second = failed_over_to(primary, admin_user, client, standby, third)
    services.smtp_config_activate(config=first, actor=admin_user)
    assert failover.serving_config_id() == first.pk
    services.smtp_config_activate(config=main, actor=admin_user)  # X again, still down
    s = state()
    assert (s.primary_id, s.serving_id, s.failures) == (main.pk, None, 0)
    assert failover.serving_config_id() == main.pk
    fails_over_again(client, third, 1000)  # first left the list when it was activated
    assert failover.serving_config_id() == second.pk


def test_a_serving_standby_taken_off_the_list_sends_delivery_back_with_an_event(
    primary: Server, standby: Server, third: Server, admin_user: Any, make_user: Any
) -> None:
    client = client_for(make_user("messages.send"))
    main, first, second = failed_over_to(primary, admin_user, client, standby, third)
    r = client_for(admin_user).patch(
        f"/api/smtp-configurations/{first.pk}/", {"standby": None}, format="json"
    )
    assert r.status_code == 200, r.content[:500]
    assert failover.serving_config_id() == main.pk
    [back] = events("failed_back")
    assert (back.resource_id, back.actor_id) == (str(main.pk), admin_user.pk)
    fails_over_again(client, third, 1000)
    assert failover.serving_config_id() == second.pk


def test_deleting_the_serving_standby_sends_delivery_back_with_an_event(
    primary: Server, standby: Server, third: Server, admin_user: Any, make_user: Any
) -> None:
    client = client_for(make_user("messages.send"))
    main, first, second = failed_over_to(primary, admin_user, client, standby, third)
    services.smtp_config_delete(config=first, actor=admin_user)  # the console's delete
    assert failover.serving_config_id() == main.pk
    assert [e.resource_id for e in events("failed_back")] == [str(main.pk)]
    fails_over_again(client, third, 1000)
    assert failover.serving_config_id() == second.pk


def test_deactivating_and_activating_the_primary_again_resets_the_state(
    primary: Server, standby: Server, third: Server, admin_user: Any, make_user: Any
) -> None:
    client = client_for(make_user("messages.send"))
    main, _, _ = failed_over_to(primary, admin_user, client, standby, third)
    services.smtp_config_deactivate(config=main, actor=admin_user)
    primary.start()  # the admin fixed it
    services.smtp_config_activate(config=main, actor=admin_user)
    assert failover.serving_config_id() == main.pk
    ids = submit(client, 3, start=1000)
    deliver_until(lambda: all_sent(ids))
    assert set(message_ids(ids)) <= set(primary.ids())


def test_after_a_restart_with_an_idle_queue_the_primary_is_probed(
    primary: Server, standby: Server, third: Server, admin_user: Any, make_user: Any
) -> None:
    client = client_for(make_user("messages.send"))
    main, _, _ = failed_over_to(primary, admin_user, client, standby, third)
    primary.start()
    failover.FAILOVER.__init__()  # type: ignore[misc]  # the worker restarted
    deadline = time.monotonic() + 15
    while failover.serving_config_id() != main.pk:  # the worker's idle loop
        assert time.monotonic() < deadline, "the primary was never probed"
        assert sender.deliver_due(limit=5) == {}
        time.sleep(0.05)
    assert [e.resource_id for e in events("failed_back")] == [str(main.pk)]


def test_a_success_of_another_worker_resets_the_shared_count(
    primary: Server, standby: Server, admin_user: Any, make_user: Any
) -> None:
    main = config_for(primary, admin_user)
    config_for(standby, admin_user, standby=1)
    one, two = failover.Failover(), failover.Failover()  # two workers
    one.serving(), two.serving()
    from django.utils import timezone

    for _ in range(2):
        assert one.observe(main, "failed", timezone.now()) is False
    assert state().failures == 2
    two.serving()  # its read shows the other worker's failures
    two.observe(main, "ok", timezone.now())
    assert state().failures == 0
    assert one.observe(main, "failed", timezone.now()) is False  # 1, not 3: no switch
    assert state().failures == 1 and state().serving_id is None


@pytest.mark.parametrize(
    ("name", "value"), [("OUTBOUND_FAILOVER_AFTER", "0"), ("OUTBOUND_FAILBACK_PROBE", "0.5")]
)
def test_settings_below_1_are_refused_at_startup(name: str, value: str) -> None:
    import os
    import subprocess
    import sys

    env = {**os.environ, name: value, "DJANGO_SETTINGS_MODULE": "outbound.settings"}
    done = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    assert "must be at least 1" in done.stderr


def test_delivery_does_not_wait_for_the_standby_probes(
    primary: Server, admin_user: Any, make_user: Callable[..., Any]
) -> None:
    import socket

    silent = socket.create_server(("127.0.0.1", 0))  # accepts, never greets
    silent.listen(8)
    try:
        config_for(primary, admin_user)
        port = silent.getsockname()[1]
        stuck = Server()
        stuck.port = port
        spare = config_for(stuck, admin_user, standby=1, timeout=3)
        primary.stop()
        ids = submit(client_for(make_user("messages.send")), 4)
        started = time.monotonic()
        assert len(sender.deliver_due(limit=4)) == 4  # the 3rd failure starts the probes
        assert time.monotonic() - started < 2  # not the standby's 3 s
        failover.FAILOVER.wait()
        assert state().standby_probes[str(spare.pk)]["ok"] is False
        assert Message.objects.filter(pk__in=ids, status=MessageStatus.DEFERRED).count() == 4
    finally:
        silent.close()
