"""Webhooks in a real browser: create one pointing at a real receiver on 127.0.0.1, read the
signing secret once, press Test and see it delivered (and the receiver verify it with the
Standard Webhooks library), then the list with the last delivery."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.sync_api import expect
from standardwebhooks import Webhook as Verifier

from outbound.accounts.models import User
from outbound.webhooks import services
from outbound.webhooks.models import Webhook
from tests.console import test_webhooks as shared
from tests.console.conftest import PHONE, Console

pytestmark = pytest.mark.browser


@pytest.fixture
def receiver() -> Iterator[shared.Receiver]:
    yield from shared.serve()


def test_create_see_the_secret_once_and_test(
    console: Console,
    phone: Console,
    make_user: Callable[..., User],
    receiver: shared.Receiver,
    settings: Any,
) -> None:
    # The receiver is on loopback, on a high port, over plain http: open exactly that.
    settings.OUTBOUND_EGRESS_ALLOW = "127.0.0.0/8,:1024-65535"
    # An operator who also looks after mail (so the menu is a usual one).
    ops = make_user(
        *shared.ALL,
        "outbound_mail_setup.view",
        "messages.view",
        "integrations.list",
        username="ops",
    )
    # Another webhook besides the one made here, disabled, for the list.
    services.create_webhook(
        actor=ops,
        url="https://billing.example.com/hooks/outbound",
        events=["message.failed", "message.recipient_failed"],
        is_enabled=False,
        description="Billing: bounces",
    )

    page = console.page
    console.sign_in("ops")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
    page.get_by_role("link", name="New webhook").click()
    page.get_by_label("URL").fill(receiver.url)
    page.get_by_label("Description").fill("CRM: delivery status")
    page.get_by_label("message.sent").check()
    page.get_by_label("message.failed").check()
    page.get_by_role("button", name="Create webhook").dblclick()  # one webhook all the same

    expect(page.get_by_text("It will not be shown again.")).to_be_visible()
    expect(page.get_by_text("webhook-signature", exact=False).first).to_be_visible()
    field = page.get_by_label("Signing secret", exact=True)
    expect(field).to_have_attribute("readonly", "")
    secret = field.input_value()
    assert secret.startswith("whsec_")
    console.shot("webhook-created", mask=[field])  # no secret, even a test one, in git
    webhook = Webhook.objects.get(url=receiver.url)  # exactly one
    assert webhook.events == ["message.sent", "message.failed"]

    page.get_by_role("link", name="Done, I copied it").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("127.0.0.1")
    assert secret not in page.content()
    page.get_by_role("button", name="Test").click()
    expect(page.get_by_role("status")).to_contain_text(
        re.compile(r"Test event delivered: HTTP 204 in \d+ ms")
    )
    row = page.locator("table.deliveries tbody tr").first
    expect(row).to_contain_text("webhook.test")
    expect(row).to_contain_text("Delivered")
    expect(row.locator('td[data-label="HTTP"]')).to_have_text("204")
    assert len(receiver.received) == 1
    headers, body = receiver.received[0]
    assert Verifier(secret).verify(body, headers)["type"] == "webhook.test"

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Webhooks").click()
    created = page.locator("tbody tr", has_text="CRM: delivery status")
    expect(created).to_contain_text("Enabled")
    expect(created).to_contain_text("Delivered")
    expect(created).to_contain_text("message.sent")
    other = page.locator("tbody tr", has_text="Billing: bounces")
    expect(other).to_contain_text("Disabled")
    expect(other).to_contain_text("None yet")
    assert secret not in page.content()
    assert console.tables_fit()
    console.shot("webhooks-list")

    # At phone width the rows stack: nothing to scroll sideways, the secret nowhere.
    phone.sign_in("ops")
    phone.goto("/console/webhooks/")
    expect(phone.page.get_by_text("CRM: delivery status")).to_be_visible()
    assert phone.scroll_width() <= PHONE["width"]
    phone.page.get_by_role("link", name=receiver.url, exact=True).click()
    expect(phone.page.locator("table.deliveries tbody tr")).to_have_count(1)
    assert phone.scroll_width() <= PHONE["width"]
    assert secret not in phone.page.content()
