"""The Messages pages: what the sender did with each message, for those with messages.view."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from outbound.accounts.models import User
from outbound.mail import outbox, sender, services
from outbound.mail.models import Message
from tests.support.smtp import Recorder, smtp_server

pytestmark = pytest.mark.django_db


def deliver_through(recorder: Recorder, subject: str, admin_user: User) -> Message:
    with smtp_server(recorder=recorder) as server:
        config = services.smtp_config_create(
            data={
                "host": "127.0.0.1",
                "port": server.port,
                "security": "none",
                "sender_address": "app@example.com",
            },
            actor=None,
            activate=True,
        )
        message, _ = outbox.message_submit(
            data={"to": ["ann@example.com"], "subject": subject, "text": "Hello.\n"},
            actor=admin_user,
        )
        sender.deliver(message.pk)
    services.smtp_config_delete(config=config, actor=None)
    message.refresh_from_db()
    return message


def test_list_and_detail_show_status_and_each_recipients_reply(
    console_client: Client, admin_user: User
) -> None:
    sent = deliver_through(Recorder(), "Welcome", admin_user)
    failed = deliver_through(Recorder(rcpt_reply="550 5.1.1 no such user"), "Bounce", admin_user)
    assert (sent.status, failed.status) == ("sent", "failed")

    listing = console_client.get("/console/messages/").content.decode()
    assert "Welcome" in listing and "Bounce" in listing
    assert listing.index("Bounce") < listing.index("Welcome")  # newest first

    only_failed = console_client.get("/console/messages/?status=failed").content.decode()
    assert "Bounce" in only_failed and "Welcome" not in only_failed

    detail = console_client.get(f"/console/messages/{failed.pk}/").content.decode()
    assert "ann@example.com" in detail
    assert "550 5.1.1 no such user" in detail
    assert "Hello." not in detail  # bodies are not shown


def test_messages_need_messages_view(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    client = console_client_for(make_user("messages.send"))
    assert client.get("/console/messages/").status_code == 403
    assert "/console/messages/" not in client.get("/console/").content.decode()
    viewer = console_client_for(make_user("messages.view"))
    assert viewer.get("/console/messages/").status_code == 200


def test_server_column_shows_the_server_each_attempt_used(
    console_client: Client, admin_user: User
) -> None:
    """Not the configuration as it is now: it may have been edited (or deleted) since."""
    recorder = Recorder()
    with smtp_server(recorder=recorder) as first, smtp_server(recorder=recorder) as second:
        config = services.smtp_config_create(
            data={
                "host": "127.0.0.1",
                "port": first.port,
                "security": "none",
                "sender_address": "app@example.com",
            },
            actor=None,
            activate=True,
        )
        message, _ = outbox.message_submit(
            data={"to": ["ann@example.com"], "subject": "Moved", "text": "Hello.\n"},
            actor=admin_user,
        )
        sender.deliver(message.pk)
        # The same configuration now points elsewhere; the next message goes there.
        services.smtp_config_update(config=config, data={"port": second.port}, actor=None)
        later, _ = outbox.message_submit(
            data={"to": ["bob@example.com"], "subject": "Later", "text": "Hi.\n"},
            actor=admin_user,
        )
        sender.deliver(later.pk)
    services.smtp_config_update(config=config, data={"host": "relay.example.com"}, actor=None)

    listing = console_client.get("/console/messages/").content.decode()
    rows = listing.replace("<wbr>", "").split("<tr>")  # wrap points between host labels
    moved = next(r for r in rows if "Moved" in r)
    assert f'data-label="Server">127.0.0.1:{first.port}<' in moved
    assert "relay.example.com" not in moved
    later_row = next(r for r in rows if "Later" in r)
    assert f'data-label="Server">127.0.0.1:{second.port}<' in later_row
    detail = console_client.get(f"/console/messages/{message.pk}/").content.decode()
    assert f"127.0.0.1:{first.port}" in detail and "relay.example.com" not in detail


def test_server_column_is_empty_before_any_attempt(
    console_client: Client, admin_user: User
) -> None:
    config = services.smtp_config_create(
        data={"host": "smtp.example.com", "port": 587, "sender_address": "app@example.com"},
        actor=None,
        activate=True,
    )
    outbox.message_submit(
        data={"to": ["ann@example.com"], "subject": "Waiting", "text": "Hi.\n"}, actor=admin_user
    )
    row = next(
        r
        for r in console_client.get("/console/messages/").content.decode().split("<tr>")
        if "Waiting" in r
    )
    assert 'data-label="Server">—<' in row
    assert config.host not in row
