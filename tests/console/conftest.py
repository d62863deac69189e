"""Console fixtures: a signed-in Django test client, and a headless Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright) signed in to a live server.

Set ``OUTBOUND_SCREENSHOTS=<dir>`` (``make screenshots``) to have :meth:`Console.shot` save
each page it is asked to; otherwise it saves nothing.
"""

from __future__ import annotations

import html
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PASSWORD

CHROMIUM = os.environ.get("OUTBOUND_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def error_for(page: str, name: str) -> str:
    """The text of the error slot next to field ``name`` (unescaped)."""
    match = re.search(rf'data-error-for="{name}">(.*?)</p>', page, re.S)
    assert match, f"no error slot for {name}"
    return html.unescape(match.group(1))


# --- the browser -------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium package")
    # Playwright's sync API keeps an event loop on this thread; Django's ORM calls made by the
    # test itself (fixtures, assertions) are still plain synchronous code.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@dataclass
class Console:
    """One browser page on the live server."""

    page: Any
    base_url: str

    def url(self, path: str) -> str:
        return self.base_url + path

    def goto(self, path: str) -> Any:
        return self.page.goto(self.url(path))

    def sign_in(self, username: str, password: str = PASSWORD) -> None:
        self.goto("/console/sign-in/")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()
        self.page.wait_for_url("**/console/**")

    def scroll_width(self) -> int:
        """The page's width: more than the viewport means horizontal scrolling."""
        return int(self.page.evaluate("document.documentElement.scrollWidth"))

    def tables_fit(self) -> bool:
        """Every table ends inside the page's content box (none pushed past its edge)."""
        return bool(
            self.page.evaluate(
                """() => {
                  const main = document.querySelector("main");
                  const edge = main.getBoundingClientRect().right
                    - parseFloat(getComputedStyle(main).paddingRight);
                  return [...document.querySelectorAll("table")]
                    .every((t) => t.getBoundingClientRect().right <= edge + 0.5);
                }"""
            )
        )

    def shot(self, name: str, *, mask: list[Any] | None = None) -> None:
        """Save a full-page screenshot under $OUTBOUND_SCREENSHOTS (``make screenshots``);
        ``mask``: locators painted over (e.g. a key that must not land in the repository)."""
        folder = os.environ.get("OUTBOUND_SCREENSHOTS")
        if folder:
            Path(folder).mkdir(parents=True, exist_ok=True)
            path = str(Path(folder) / f"{name}.png")
            self.page.screenshot(path=path, full_page=True, mask=mask or [])


@pytest.fixture
def console(browser: Any, live_server: Any) -> Iterator[Console]:
    """A desktop-sized (1280x800) page; call ``console.sign_in(username)`` first."""
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield Console(page=page, base_url=live_server.url)
    finally:
        context.close()


@pytest.fixture
def phone(browser: Any, live_server: Any) -> Iterator[Console]:
    """A phone-sized (390x844) page."""
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        yield Console(page=page, base_url=live_server.url)
    finally:
        context.close()
