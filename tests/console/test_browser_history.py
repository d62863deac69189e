"""History in a real browser: each change shows the way it came in — the console, an API
shape over real HTTP — and the page filters on it."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

import pytest
from playwright.sync_api import expect

from outbound.accounts.models import User
from tests.console.conftest import Console

pytestmark = pytest.mark.browser


def _api(base_url: str, method: str, path: str, body: dict[str, Any], token: str = "") -> Any:
    request = urllib.request.Request(  # the live server, on loopback
        base_url + path,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json"}
        | ({"Authorization": f"JWT {token}"} if token else {}),
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_history_shows_which_way_each_change_came_in(
    console: Console, phone: Console, admin_user: User
) -> None:
    from tests.conftest import PASSWORD

    page = console.page
    console.sign_in("admin")
    console.goto("/console/roles/new/")
    page.get_by_label("Name").fill("Auditors")
    page.get_by_role("button", name="Create role").click()
    expect(page.get_by_text("Auditors").first).to_be_visible()

    # The same kind of change through the ALX API, over HTTP to the live server.
    token = _api(
        console.base_url, "POST", "/api/auth/token/", {"username": "admin", "password": PASSWORD}
    )["access"]
    _api(
        console.base_url,
        "PATCH",
        "/api/administration/smtp-settings/",
        {"host": "smtp.example.com", "port": 587, "tls": True, "password": "p"},
        token,
    )

    console.goto("/console/history/")
    sources = page.locator('td[data-label="Source"]')
    expect(sources.first).to_have_text("ALX API")  # newest first
    expect(page.locator("tbody tr").filter(has_text="Auditors")).to_contain_text("Console")
    assert console.tables_fit()

    page.get_by_label("Source", exact=True).select_option("console")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(sources).to_have_text(["Console"])
    # A source links to its events.
    console.goto("/console/history/")
    page.locator("tbody tr").first.get_by_role("link", name="ALX API").click()
    expect(page.get_by_label("Source", exact=True)).to_have_value("alx")
    expect(sources).to_have_text(["ALX API", "ALX API"])  # created, then activated

    phone.sign_in("admin")
    phone.goto("/console/history/")
    expect(phone.page.locator('td[data-label="Source"]').first).to_be_visible()
    assert phone.scroll_width() == 390
