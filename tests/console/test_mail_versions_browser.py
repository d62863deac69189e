"""A configuration's versions in a real browser: two edits, the versions, a comparison, and a
rollback through its confirmation."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from outbound.core.events import event_source
from outbound.core.models import EventSource
from outbound.mail import services
from outbound.mail.models import SmtpConfig
from tests.console.conftest import Console

pytestmark = pytest.mark.browser


def test_edit_twice_compare_and_roll_back(console: Console, admin_user: Any) -> None:
    page = console.page
    with event_source(EventSource.NATIVE):  # version 1 came in through the API
        config = services.smtp_config_create(
            data={
                "host": "smtp.example.com",
                "port": 587,
                "security": "starttls",
                "username": "mailer",
                "password": "first-secret",
                "sender_address": "noreply@example.com",
                "sender_name": "Platform",
                "description": "Primary relay",
            },
            actor=admin_user,
            activate=True,
        )
    services.smtp_config_create(
        data={"host": "spare.example.com", "port": 25, "security": "none", "standby": 1},
        actor=admin_user,
    )
    console.sign_in("admin")

    # Two edits through the form: the sender's name, then the timeout and the password.
    console.goto(f"/console/mail/{config.pk}/")
    page.get_by_label("Sender name").fill("Platform Notifications")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    console.goto(f"/console/mail/{config.pk}/")
    page.get_by_label("Timeout (seconds)").fill("20")
    page.get_by_label("Password", exact=True).fill("second-secret")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_role("status")).to_contain_text("saved")

    # The list: which is active, which serves, the standby's rank.
    active_row = page.locator("tbody tr", has_text="smtp.example.com")
    expect(active_row).to_contain_text("Active")
    expect(active_row).to_contain_text("Serving now")
    expect(page.locator("tbody tr", has_text="spare.example.com")).to_contain_text("Rank 1")

    # The versions, newest first.
    active_row.get_by_role("link", name="Versions").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Versions of smtp.example.com")
    rows = page.locator("table.versions tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0)).to_contain_text("Current")
    expect(rows.nth(0)).to_contain_text("Password")
    expect(rows.nth(0)).to_contain_text("Timeout (seconds)")
    expect(rows.nth(1)).to_contain_text("Sender name")
    expect(rows.nth(1)).to_contain_text("Console")
    expect(rows.nth(1)).to_contain_text("admin")
    assert console.tables_fit()
    console.shot("mail-versions")

    # Compare the first version with the current one.
    page.get_by_label("Compare version").select_option("1")
    page.get_by_label("with version").select_option("3")
    page.get_by_role("button", name="Compare").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Version 1 and version 3")
    sender = page.locator('tr[data-field="sender_name"]')
    expect(sender).to_have_class("changed")
    expect(sender).to_contain_text("Platform Notifications")
    expect(page.locator('tr[data-field="host"]')).to_have_class("same")
    expect(page.locator('tr[data-field="password"]')).to_contain_text("Password changed")
    assert "first-secret" not in page.content() and "second-secret" not in page.content()
    assert console.tables_fit()
    console.shot("mail-version-compare")

    # Roll back to version 1: a confirmation first, then the form shows the restored values.
    page.get_by_role("link", name="Versions", exact=True).click()
    rows.nth(2).get_by_role("link", name="Roll back").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("to version 1?")
    expect(page.locator('tr[data-field="sender_name"]')).to_contain_text("Platform")
    config.refresh_from_db()
    assert config.version == 3  # asking changed nothing
    console.shot("mail-version-rollback")
    page.get_by_role("button", name="Roll back to version 1").click()
    expect(page.get_by_role("status")).to_contain_text(
        "rolled back to version 1: saved as version 4."
    )
    expect(page.get_by_label("Sender name")).to_have_value("Platform")
    expect(page.get_by_label("Timeout (seconds)")).to_have_value("")
    config = SmtpConfig.objects.get(pk=config.pk)
    assert config.version == 4 and config.get_secret("password") == "first-secret"


def test_versions_and_comparison_fit_a_phone(phone: Console, admin_user: Any) -> None:
    config = services.smtp_config_create(
        data={"host": "relay.mail.example.com", "port": 25, "security": "none"}, actor=admin_user
    )
    services.smtp_config_update(
        config=config,
        data={"failure_emails": ["ops@example.com", "oncall.team@example.com"]},
        actor=admin_user,
    )
    phone.sign_in("admin")
    for path in ("versions/", "versions/compare/?old=1&new=2", "versions/1/rollback/"):
        phone.goto(f"/console/mail/{config.pk}/{path}")
        assert phone.scroll_width() <= 390, path
        assert phone.tables_fit(), path
    expect(phone.page.locator('tr[data-field="failure_emails"]')).to_contain_text("Changed")
