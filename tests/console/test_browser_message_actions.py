"""The message page's buttons in a real browser: retry a deferred message now, cancel it
through the confirmation page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from outbound.accounts.models import User
from outbound.mail import outbox, services
from outbound.mail.models import Message
from tests.console.conftest import Console

pytestmark = pytest.mark.browser


def deferred_message(admin_user: User) -> Message:
    services.smtp_config_create(
        data={"host": "127.0.0.1", "port": 2525, "security": "none", "sender_address": "a@x.org"},
        actor=None,
        activate=True,
    )
    message, _ = outbox.message_submit(
        data={"to": ["ann@example.com"], "subject": "Quarterly figures", "text": "Hi.\n"},
        actor=admin_user,
    )
    later = timezone.now() + timedelta(hours=1)
    Message.objects.filter(pk=message.pk).update(
        status="deferred", attempt_count=1, next_attempt_at=later, last_error="451 try later"
    )
    return message


def test_retry_now_then_cancel(console: Console, admin_user: Any) -> None:
    message = deferred_message(admin_user)
    console.sign_in("admin")
    page = console.page
    console.goto(f"/console/messages/{message.pk}/")
    page.get_by_role("button", name="Retry now").click()
    expect(page.get_by_role("status")).to_contain_text("is due now")
    message.refresh_from_db()
    assert message.status == "deferred" and message.next_attempt_at <= timezone.now()

    page.get_by_role("link", name="Cancel message").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(f"Cancel message {message.pk}?")
    page.get_by_role("link", name="Keep it").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Deferred")
    assert Message.objects.get(pk=message.pk).status == "deferred"

    page.get_by_role("link", name="Cancel message").click()
    page.get_by_role("button", name="Cancel message").click()
    expect(page.get_by_role("status")).to_contain_text("cancelled: it will not be sent")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Cancelled")
    expect(page.get_by_role("button", name="Retry now")).to_have_count(0)
    expect(page.get_by_role("link", name="Cancel message")).to_have_count(0)
    assert Message.objects.get(pk=message.pk).status == "cancelled"
