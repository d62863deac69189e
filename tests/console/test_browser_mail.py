"""Outbound mail in a real browser: create, activate, test live against a local server."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from outbound.mail import services
from outbound.mail.models import SmtpConfig
from tests.conftest import PASSWORD
from tests.console.conftest import Console
from tests.support.smtp import Scripted, smtp_server

pytestmark = pytest.mark.browser


def test_sign_in_create_activate_and_test_live(
    console: Console, admin_user: Any, server_tls: Any, trust_test_ca: str
) -> None:
    page = console.page
    with smtp_server(starttls=server_tls, users={"mailer": "s3cret-pass"}) as server:
        console.sign_in("admin")
        console.goto("/console/mail/")
        expect(page.get_by_text("No SMTP configuration yet")).to_be_visible()
        page.get_by_role("link", name="New configuration").click()

        page.get_by_label("Host").fill("localhost")
        page.get_by_label("Port").fill(str(server.port))
        page.get_by_label("Connection security").select_option("starttls")
        page.get_by_label("Username").fill("mailer")
        page.get_by_label("Password", exact=True).fill("s3cret-pass")
        page.get_by_label("Sender address").fill("noreply@example.com")
        page.get_by_label("Send a test mail to").fill("ops@example.com")

        page.get_by_role("button", name="Test").click()
        report = page.locator("#test-report")
        expect(report.locator("[data-result]")).to_contain_text(
            "Connection successfully tested.", timeout=15_000
        )
        steps = report.locator("li.step")
        expect(steps.filter(has_text="STARTTLS").first).to_contain_text("TLSv1.")
        expect(steps.filter(has_text="Sign in (AUTH)")).to_contain_text("235")
        expect(report).to_contain_text("certificate")
        assert server.recorder.logins == [("mailer", "s3cret-pass")]
        assert [m.rcpt_tos for m in server.recorder.messages] == [["ops@example.com"]]
        console.shot("mail-test")
        assert SmtpConfig.objects.count() == 0  # a test saves nothing

        page.get_by_role("button", name="Save and activate").click()
        expect(page.get_by_role("status")).to_contain_text("created and activated")
        row = page.locator("tbody tr").first
        expect(row).to_contain_text("Active")
        expect(row).to_contain_text(f"localhost:{server.port}")
        console.shot("mail-list")

        config = SmtpConfig.objects.get()
        assert config.is_active and config.get_secret("password") == "s3cret-pass"

        # The saved password is never shown; the form says one is set.
        row.get_by_role("link", name="Edit").click()
        expect(page.get_by_label("Password", exact=True)).to_have_value("")
        expect(
            page.get_by_text("A password is saved; leave this empty to keep it.")
        ).to_be_visible()
        assert "s3cret-pass" not in page.content()


def test_validation_error_shown_next_to_the_field(console: Console, admin_user: Any) -> None:
    page = console.page
    console.sign_in("admin")
    console.goto("/console/mail/new/")
    page.get_by_label("Host").fill("bad host\nname")
    page.get_by_label("Port").fill("587")
    page.get_by_label("Sender address").fill("not-an-address")
    page.get_by_role("button", name="Save", exact=True).click()
    sender = page.get_by_label("Sender address")
    expect(sender).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Host")).to_be_focused()  # the first field in error
    error_id = sender.get_attribute("aria-describedby").split()[-1]
    expect(page.locator(f"#{error_id}")).to_contain_text("Enter a valid email address.")
    console.shot("mail-form-error")
    assert SmtpConfig.objects.count() == 0


def test_failed_test_shows_the_failing_step_live(console: Console, admin_user: Any) -> None:
    page = console.page
    console.sign_in("admin")
    with smtp_server() as server:  # plain server: no STARTTLS offered
        console.goto("/console/mail/new/")
        page.get_by_label("Host").fill("127.0.0.1")
        page.get_by_label("Port").fill(str(server.port))
        page.get_by_role("button", name="Test").click()
        report = page.locator("#test-report")
        expect(report.locator("[data-result]")).to_have_attribute("data-result", "fail")
        expect(report.locator("li.step.fail")).to_contain_text("STARTTLS")


def test_keyboard_alone_signs_in_and_reaches_the_mail_form(
    console: Console, admin_user: Any
) -> None:
    page = console.page
    console.goto("/console/sign-in/")
    for _ in range(6):  # skip link, brand, then the form
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "id_username":
            break
    page.keyboard.type("admin")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url("**/console/")
    console.goto("/console/mail/new/")
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")  # from <main>, the first control of the page: past the menu
    expect(page.locator("main").get_by_role("link", name="Outbound mail")).to_be_focused()


def test_phone_width_has_no_horizontal_scrolling(phone: Console, admin_user: Any) -> None:
    services.smtp_config_create(
        data={
            "host": "a-rather-long-host-name.mail.example.com",
            "port": 587,
            "sender_address": "notifications@example.com",
        },
        actor=None,
        activate=True,
    )
    phone.sign_in("admin")
    for path in ("/console/", "/console/mail/", "/console/mail/new/"):
        phone.goto(path)
        assert phone.scroll_width() <= 390, path
    phone.goto("/console/mail/")
    phone.shot("phone-mail-list")


def test_steps_appear_while_the_test_is_still_running(console: Console, admin_user: Any) -> None:
    page = console.page
    console.sign_in("admin")
    # The server waits before answering RCPT, so the send step is still running when the
    # earlier steps must already be on screen.
    with smtp_server(recorder=Scripted(rcpt_delays=[1.5])) as server:
        console.goto("/console/mail/new/")
        page.get_by_label("Host").fill("127.0.0.1")
        page.get_by_label("Port").fill(str(server.port))
        page.get_by_label("Connection security").select_option("none")
        page.get_by_label("Sender address").fill("noreply@example.com")
        page.get_by_label("Send a test mail to").fill("ops@example.com")
        page.get_by_role("button", name="Test").click()
        report = page.locator("#test-report")
        expect(report.locator("li.step").filter(has_text="EHLO")).to_be_visible(timeout=1_000)
        expect(report.locator(".result")).to_have_text("Testing…")
        expect(report.locator("li.step").filter(has_text="Send the test mail")).to_have_count(0)
        expect(report.locator("[data-result]")).to_have_attribute("data-result", "ok")
        expect(report.locator("li.step").filter(has_text="Send the test mail")).to_have_count(1)


def test_duplicate_activate_with_the_keyboard_and_delete_with_confirmation(
    console: Console, admin_user: Any
) -> None:
    page = console.page
    original = services.smtp_config_create(
        data={"host": "relay.example.com", "port": 25, "security": "none", "description": "Relay"},
        actor=None,
    )
    console.sign_in("admin")
    console.goto("/console/mail/")
    page.get_by_role("link", name="Duplicate").click()
    expect(page.get_by_label("Host")).to_have_value("relay.example.com")
    expect(page.get_by_label("Description")).to_have_value("Copy of Relay")
    page.get_by_label("Port").fill("2525")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.locator("tbody tr")).to_have_count(2)

    # Activate the copy with the keyboard alone.
    copy = page.locator("tbody tr").filter(has_text="relay.example.com:2525")
    copy.get_by_role("button", name="Activate").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("is now the active configuration")
    assert SmtpConfig.objects.get(is_active=True).port == 2525

    # Delete asks first; Cancel keeps it, Delete removes it.
    page.locator("tbody tr").filter(has_text="Inactive").get_by_role("link", name="Delete").click()
    expect(page.get_by_role("heading")).to_contain_text("Delete SMTP configuration")
    page.get_by_role("link", name="Cancel").click()
    assert SmtpConfig.objects.filter(pk=original.pk).exists()
    page.locator("tbody tr").filter(has_text="Inactive").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete").click()
    expect(page.get_by_role("status")).to_contain_text("deleted")
    assert not SmtpConfig.objects.filter(pk=original.pk).exists()
