"""Integrations in a real browser: filter and sort the list, create through the generated
form, and the list and form at phone width."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from outbound.integrations.models import Integration
from tests.console.conftest import Console
from tests.integrations.factories import (
    make_field,
    make_imanage_auth,
    make_integration,
    make_object_class,
)

pytestmark = pytest.mark.browser

NAMES = (
    ("Matters to iManage", True),
    ("Clients archive", False),
    ("Matters (old)", False),
    ("Billing exports", True),
    ("Archive of closed matters", True),
)


@pytest.fixture
def integrations(admin_user: Any) -> dict[str, Any]:
    matter = make_object_class(admin_user, "Matter")
    client_class = make_object_class(admin_user, "Client")
    setup = {
        "auth": make_imanage_auth(admin_user),
        "matter": matter,
        "matter_no": make_field(admin_user, matter, "Matter number"),
        "client": client_class,
        "client_no": make_field(admin_user, client_class, "Client number"),
    }
    for name, enabled in NAMES:
        make_integration(
            admin_user,
            name=name,
            authentication_object=setup["auth"],
            object_class=matter,
            field=setup["matter_no"],
            is_enabled=enabled,
            description=f"{name}: filed by the console tests",
        )
    return setup


def visible_names(console: Console) -> list[str]:
    return list(console.page.locator("tbody tr [data-name]").all_inner_texts())


def test_filter_and_sort_integrations(console: Console, integrations: dict[str, Any]) -> None:
    page = console.page
    console.sign_in("admin")
    console.goto("/console/integrations/")
    expect(page.get_by_text("5 of at most 100 integrations.")).to_be_visible()

    page.get_by_label("Name contains").fill("matters")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(3)
    assert sorted(visible_names(console)) == [
        "Archive of closed matters",
        "Matters (old)",
        "Matters to iManage",
    ]

    page.get_by_label("Enabled").select_option("Yes")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    assert sorted(visible_names(console)) == ["Archive of closed matters", "Matters to iManage"]
    expect(page.get_by_label("Name contains")).to_have_value("matters")  # filters are kept

    page.get_by_role("link", name="Clear").click()
    expect(page.locator("tbody tr")).to_have_count(5)

    page.get_by_role("columnheader", name="Name").get_by_role("link").click()
    expect(page.get_by_role("columnheader", name="Name")).to_have_attribute(
        "aria-sort", "ascending"
    )
    assert visible_names(console) == sorted(n for n, _ in NAMES)
    console.shot("integrations-list")

    page.get_by_role("columnheader", name="Name").get_by_role("link").click()
    expect(page.get_by_role("columnheader", name="Name")).to_have_attribute(
        "aria-sort", "descending"
    )
    assert visible_names(console) == sorted((n for n, _ in NAMES), reverse=True)

    # Sorting keeps the filter, and filtering keeps the sort.
    page.get_by_label("Enabled").select_option("No")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(2)
    assert visible_names(console) == ["Matters (old)", "Clients archive"]


def test_create_through_the_generated_form(console: Console, integrations: dict[str, Any]) -> None:
    page = console.page
    console.sign_in("admin")
    console.goto("/console/integrations/")
    page.get_by_role("link", name="New integration").click()
    expect(page.get_by_role("heading", name="New iManage integration")).to_be_visible()

    page.get_by_label(re.compile(r"^Name\W*$")).fill("New matters")
    page.get_by_label("Enabled").check()
    page.get_by_label("Authentication object").select_option("iManage prod")
    page.get_by_label(re.compile(r"^Object class\W*$")).select_option("Matter")
    # A field of another class: the service refuses it, next to the field.
    page.get_by_label("Object class field").select_option("Client / Client number")
    page.get_by_label("Folder").fill("/New matters")
    page.get_by_role("button", name="Create").click()
    field = page.get_by_label("Object class field")
    expect(field).to_have_attribute("aria-invalid", "true")
    error_id = field.get_attribute("aria-describedby").split()[-1]
    expect(page.locator(f"#{error_id}")).to_contain_text("ObjectClassField does not exist")
    console.shot("integrations-form")

    page.get_by_label("Object class field").select_option("Matter / Matter number")
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("status")).to_contain_text("Integration New matters created.")
    item = Integration.objects.get(name="New matters")
    assert item.is_enabled
    assert item.parameters["object_class_field"] == integrations["matter_no"].pk


def test_list_and_form_at_phone_width(phone: Console, integrations: dict[str, Any]) -> None:
    page = phone.page
    phone.sign_in("admin")
    phone.goto("/console/integrations/")
    expect(page.locator("tbody tr")).to_have_count(5)
    assert phone.scroll_width() <= 390
    # The header is hidden on a phone: the sort bar sorts instead.
    sort_bar = page.get_by_role("navigation", name="Sort")
    sort_bar.get_by_role("link", name="Name").click()
    expect(page.locator("tbody tr").first).to_contain_text("Archive of closed matters")
    assert phone.scroll_width() <= 390
    phone.shot("phone-integrations-list")
    item = Integration.objects.get(name="Matters to iManage")
    for path in ("/console/integrations/new/", f"/console/integrations/{item.pk}/"):
        phone.goto(path)
        assert phone.scroll_width() <= 390, path
