"""API keys in a real browser: create one, read it from the result page, use it against the
API, revoke it; the list and the result page at phone width."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from outbound.accounts import services
from outbound.accounts.models import ApiKey, User
from tests.console.conftest import PHONE, Console

pytestmark = pytest.mark.browser


def api_status(key: str) -> int:
    """``GET /api/messages/`` (needs ``messages.view``) with the key, as a service sends it."""
    return Client().get("/api/messages/", HTTP_AUTHORIZATION=f"Api-Key {key}").status_code


def test_create_use_and_revoke_a_key(
    console: Console, phone: Console, admin_user: User, make_user: Any
) -> None:
    # A few rows besides the one made here: someone else's key, an expiring one, a revoked one.
    services.api_key_create(
        owner=make_user("messages.send", username="crm"),
        name="CRM notifications",
        permissions=["messages.send"],
        actor=admin_user,
    )
    services.api_key_create(
        owner=admin_user,
        name="Monitoring",
        permissions=["messages.view"],
        expires_at=timezone.now() + timedelta(days=90),
        actor=admin_user,
    )
    retired, _ = services.api_key_create(
        owner=admin_user, name="Retired batch job", permissions=[], actor=admin_user
    )
    services.api_key_revoke(key=retired, actor=admin_user)

    page = console.page
    console.sign_in("admin")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="API keys").click()
    page.get_by_role("link", name="New API key").click()
    page.get_by_label("Name").fill("Billing service")
    page.get_by_role("checkbox", name="view · Messages").check()
    page.get_by_role("checkbox", name="send · Messages").check()
    page.get_by_role("button", name="Create key").dblclick()  # one key all the same

    expect(page.get_by_role("heading", level=1)).to_contain_text("Billing service")
    expect(page.get_by_text("It will not be shown again.")).to_be_visible()
    field = page.get_by_label("API key", exact=True)
    expect(field).to_have_attribute("readonly", "")
    key = field.input_value()
    assert key.startswith("ob_")
    console.shot("api-key-created", mask=[field])  # no key, even a test one, in git

    assert api_status(key) == 200
    stored = ApiKey.objects.get(name="Billing service")  # exactly one
    assert stored.permissions == ["messages.send", "messages.view"]

    page.get_by_role("link", name="Done, I copied it").click()
    row = page.locator("tbody tr", has_text="Billing service")
    expect(row).to_contain_text(f"ob_{stored.prefix}_…")
    expect(row).to_contain_text("Active")
    expect(page.locator("tbody tr", has_text="Retired batch job")).to_contain_text("Revoked")
    expect(page.locator("tbody tr", has_text="CRM notifications")).to_contain_text("crm")
    assert key not in page.content()
    assert console.tables_fit()  # three dates and a Revoke button still fit 1280 px
    console.shot("api-keys")

    row.get_by_role("link", name="Revoke").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Revoke API key")
    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("status")).to_contain_text("revoked")
    expect(page.locator("tbody tr", has_text="Billing service")).to_contain_text("Revoked")
    assert api_status(key) == 401

    # At phone width: the list, the form and the result page need no horizontal scrolling.
    phone.sign_in("admin")
    phone.goto("/console/api-keys/")
    expect(phone.page.locator(".sort-bar")).to_be_visible()
    assert phone.scroll_width() == PHONE["width"]
    phone.page.get_by_role("link", name="New API key").click()
    assert phone.scroll_width() == PHONE["width"]
    phone.page.get_by_label("Name").fill("Phone test")
    phone.page.get_by_role("button", name="Create key").click()
    expect(phone.page.get_by_label("API key", exact=True)).to_be_visible()
    assert phone.scroll_width() == PHONE["width"]
