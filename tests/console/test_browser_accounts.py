"""Permissions, history, users and roles in a real browser: read-only pages for a user who
may only look, and the history and users pages at phone width."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from outbound.accounts import services as account_services
from outbound.accounts.models import Role, User
from outbound.mail import services as mail_services
from tests.conftest import PASSWORD
from tests.console.conftest import Console
from tests.integrations.factories import (
    make_field,
    make_imanage_auth,
    make_integration,
    make_object_class,
)

pytestmark = pytest.mark.browser

# Whatever changes something: none of it may be offered to a user who may only look.
CONTROLS = re.compile(r"^\s*(New|Edit|Delete|Activate|Deactivate|Test|Save|Duplicate)\b", re.I)


def _no_controls(page: Any) -> None:
    for role in ("link", "button"):
        names = [
            el.inner_text()
            for el in page.get_by_role(role).all()
            if el.is_visible() and CONTROLS.match(el.inner_text())
        ]
        assert names == [], f"{role}s offered: {names}"


def test_a_user_without_edit_sees_no_edit_controls(console: Console, admin_user: User) -> None:
    role = account_services.role_create(
        name="Lookers",
        permissions=["outbound_mail_setup.view", "integrations.list", "integrations.view"],
        actor=admin_user,
    )
    account_services.user_create(username="looker", password=PASSWORD, roles=[role])
    config = mail_services.smtp_config_create(
        data={
            "host": "smtp.example.com",
            "port": 587,
            "username": "mailer",
            "password": "smtp-Secret-4711",
        },
        actor=admin_user,
    )
    auth = make_imanage_auth(admin_user)
    klass = make_object_class(admin_user)
    integration = make_integration(
        admin_user,
        name="Matters",
        authentication_object=auth,
        object_class=klass,
        field=make_field(admin_user, klass),
    )
    page = console.page
    console.sign_in("looker")

    menu = page.get_by_role("navigation", name="Main")
    expect(menu.get_by_role("link", name="Outbound mail")).to_be_visible()
    expect(menu.get_by_role("link", name="Integrations")).to_be_visible()
    for hidden in ("Users", "Roles", "Credentials"):
        expect(menu.get_by_role("link", name=hidden)).to_have_count(0)

    console.goto("/console/mail/")
    expect(page.get_by_role("cell", name="smtp.example.com:587", exact=True)).to_be_visible()
    _no_controls(page)

    console.goto(f"/console/mail/{config.pk}/")
    expect(page.get_by_label("Host")).to_have_value("smtp.example.com")
    expect(page.get_by_label("Host")).to_be_disabled()
    expect(page.get_by_label("Port")).to_be_disabled()
    _no_controls(page)
    assert "smtp-Secret-4711" not in page.content()

    console.goto("/console/integrations/")
    expect(page.get_by_role("heading", name="Integrations")).to_be_visible()
    expect(page.get_by_text("Matters").first).to_be_visible()
    _no_controls(page)

    console.goto(f"/console/integrations/{integration.pk}/")
    expect(page.get_by_role("textbox", name="Name", exact=True)).to_be_disabled()
    _no_controls(page)

    # What is not offered is refused anyway.
    console.goto("/console/users/")
    expect(page.get_by_role("heading", name="Not allowed")).to_be_visible()


def test_history_users_and_roles_fit_a_phone(
    console: Console, phone: Console, admin_user: User
) -> None:
    mailers = account_services.role_create(
        name="Mailers",
        permissions=["outbound_mail_setup.view", "outbound_mail_setup.edit", "users.list"],
        actor=admin_user,
    )
    account_services.user_create(
        username="a-rather-long-username-for-a-phone",
        password=PASSWORD,
        email="someone.with.a.long.address@subdomain.example.com",
        roles=[mailers],
        actor=admin_user,
    )
    config = mail_services.smtp_config_create(
        data={"host": "smtp.example.com", "port": 587, "password": "smtp-Secret-4711"},
        actor=admin_user,
    )
    mail_services.smtp_config_update(
        config=config,
        data={"sender_address": "noreply@example.com", "sender_name": "Outbound"},
        actor=admin_user,
    )

    phone.sign_in("admin")
    page = phone.page
    phone.goto("/console/history/")
    expect(page.locator("ul.changes").first).to_contain_text("sender_address")
    expect(page.locator('td[data-label="Source"]').first).to_have_text("Command line")
    assert phone.scroll_width() == 390
    phone.goto("/console/users/")
    expect(page.get_by_text("a-rather-long-username-for-a-phone")).to_be_visible()
    assert phone.scroll_width() == 390

    console.sign_in("admin")
    page = console.page
    console.goto("/console/history/")
    page.get_by_label("Resource", exact=True).select_option("smtp_config")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    # Both changes were made by service calls outside a request: the command line's.
    expect(page.locator('td[data-label="Source"]')).to_have_text(["Command line"] * 2)
    assert console.tables_fit()
    console.shot("history")
    console.goto("/console/users/")
    console.shot("users")
    console.goto(f"/console/roles/{mailers.pk}/")
    expect(
        page.get_by_role("group", name="Users").get_by_label(re.compile("^list"))
    ).to_be_checked()
    assert console.scroll_width() == 1280
    console.shot("roles-form")
    assert Role.objects.count() == 1


# Each filter input's placeholder (or a select's longest option) against the room its box
# leaves for text: what does not fit is cut off on screen.
CUT_OFF = """
() => {
  const canvas = document.createElement("canvas").getContext("2d");
  return [...document.querySelectorAll("form.filters :is(input[placeholder], select)")]
    .map((el) => {
      const style = getComputedStyle(el);
      canvas.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
      const texts = el.tagName === "SELECT"
        ? [...el.options].map((o) => o.text) : [el.placeholder];
      const width = (t) => canvas.measureText(t).width;
      const text = texts.reduce((a, b) => (width(a) >= width(b) ? a : b));
      const arrow = el.tagName === "SELECT" ? 24 : 0;  // the select's own drop-down arrow
      const room = el.clientWidth - parseFloat(style.paddingLeft)
        - parseFloat(style.paddingRight) - arrow;
      return {name: el.name, text, need: width(text), room};
    })
    .filter((f) => f.need > f.room);
}
"""


def test_history_filters_show_their_whole_placeholders(
    console: Console, phone: Console, admin_user: User
) -> None:
    for screen in (console, phone):
        screen.sign_in("admin")
        screen.goto("/console/history/")
        assert screen.page.evaluate(CUT_OFF) == [], screen.page.viewport_size
