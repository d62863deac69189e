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
