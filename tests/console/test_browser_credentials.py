"""Credentials and object classes in a real browser: a credential created through the
generated form, the list at phone width, and an object class's page with its fields."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from outbound.integrations.models import AuthenticationObject
from tests.console.conftest import Console
from tests.integrations.factories import make_field, make_imanage_auth, make_object_class

pytestmark = pytest.mark.browser

SECRET = "browser-Client-S3cret"


def test_create_a_credential_through_the_generated_form(console: Console, admin_user: Any) -> None:
    make_imanage_auth(admin_user)
    page = console.page
    console.sign_in("admin")
    console.goto("/console/credentials/")
    page.get_by_role("link", name="New credential").click()

    page.get_by_label("Provider").select_option(label="Microsoft Client Credentials")
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_label("Authority URL")).to_have_value("https://login.microsoftonline.com")
    page.get_by_label("Name").fill("Office 365")
    page.get_by_label("Tenant ID").fill("tenant-1234")
    page.get_by_label("Client ID").fill("client-5678")
    # A required secret left empty: the error is announced next to it, nothing is saved.
    page.get_by_role("button", name="Create").click()
    secret = page.get_by_label("Client secret")
    expect(secret).to_have_attribute("aria-invalid", "true")
    expect(page.locator('[data-error-for="client_secret"]')).to_have_text("This field is required.")
    assert not AuthenticationObject.objects.filter(name="Office 365").exists()
    console.shot("credentials-form")

    secret.fill(SECRET)
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("status")).to_contain_text("Credential Office 365 created.")
    row = page.locator("tbody tr", has_text="Office 365")
    expect(row).to_contain_text("Microsoft Client Credentials")
    expect(row).to_contain_text("tenant-1234")
    expect(row).to_contain_text("Client secret: set")
    console.shot("credentials-list")
    assert SECRET not in page.content()

    row.get_by_role("link", name="Edit").click()
    expect(page.get_by_label("Client secret")).to_have_value("")
    expect(page.get_by_text("A value is saved; leave empty to keep it.")).to_be_visible()
    assert SECRET not in page.content()


def test_phone_width_credentials_and_object_class_pages(phone: Console, admin_user: Any) -> None:
    make_imanage_auth(admin_user, name="iManage production with a long name")
    make_imanage_auth(
        admin_user, name="iManage test", server_url="https://imanage-test.example.com"
    )
    matter = make_object_class(admin_user, "Matter", "A legal case handled by the firm")
    make_field(admin_user, matter, "Matter number", "The key iManage folders are matched on")
    make_field(admin_user, matter, "Client number")
    phone.sign_in("admin")

    phone.goto("/console/credentials/")
    expect(phone.page.get_by_text("iManage test")).to_be_visible()
    assert phone.scroll_width() == 390

    phone.goto(f"/console/object-classes/{matter.pk}/")
    expect(phone.page.get_by_role("heading", name="Matter", exact=True)).to_be_visible()
    assert phone.scroll_width() == 390


def test_object_class_page_adds_a_field(console: Console, admin_user: Any) -> None:
    matter = make_object_class(admin_user, "Matter", "A legal case handled by the firm")
    make_field(admin_user, matter, "Matter number", "The key iManage folders are matched on")
    page = console.page
    console.sign_in("admin")
    console.goto(f"/console/object-classes/{matter.pk}/")

    form = page.locator("form.add-field")
    form.get_by_label("Name").fill("Client number")
    form.get_by_label("Description").fill("The client the matter belongs to")
    form.get_by_role("button", name="Add field").click()

    expect(page.get_by_role("status")).to_contain_text("Field Client number added to Matter.")
    fields = page.locator("#fields tbody tr")
    expect(fields).to_have_count(2)
    expect(fields.first).to_contain_text("Client number")
    console.shot("object-classes")
