"""Every console page without parameters, as the superuser sees it: served from this origin
only, every input labelled, and a Content-Security-Policy that forbids anything else."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

pytestmark = pytest.mark.django_db


def _console_paths() -> list[str]:
    """Every console URL that takes no parameters (lists, start pages, create forms)."""
    console = next(
        p
        for p in get_resolver().url_patterns
        if isinstance(p, URLResolver) and p.namespace == "console"
    )
    found: list[str] = []

    def walk(patterns: list[URLPattern | URLResolver], prefix: str) -> None:
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if "<" in route:
                continue
            if isinstance(pattern, URLResolver):
                walk(pattern.url_patterns, route)
            else:
                found.append("/console/" + route)

    walk(console.url_patterns, "")
    return sorted(set(found))


GET_PAGES = [p for p in _console_paths() if not re.search(r"(sign-out|/test)/$", p)]


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.labels: set[str] = set()
        self.controls: list[tuple[str, dict[str, str | None]]] = []
        self.assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "label" and a.get("for"):
            self.labels.add(str(a["for"]))
        if tag in {"input", "select", "textarea"} and a.get("type") not in {
            "hidden",
            "submit",
            "button",
        }:
            self.controls.append((tag, a))
        if tag in {"script", "img"} and a.get("src"):
            self.assets.append(str(a["src"]))
        if tag == "link" and a.get("href"):
            self.assets.append(str(a["href"]))
        if "style" in a or any(k.startswith("on") for k in a):
            raise AssertionError(f"inline style or handler on <{tag}>: the CSP would block it")


def test_the_pages_are_discovered() -> None:
    assert {"/console/", "/console/mail/", "/console/mail/new/"} <= set(GET_PAGES)


@pytest.mark.parametrize("path", GET_PAGES)
def test_page_is_local_labelled_and_locked_down(console_client: Client, path: str) -> None:
    client = Client() if path == "/console/sign-in/" else console_client
    response = client.get(path)
    assert response.status_code == 200, path
    assert "default-src 'self'" in response["Content-Security-Policy"]
    parser = _Inputs()
    parser.feed(response.content.decode())
    assert all(a.startswith("/static/") for a in parser.assets), parser.assets
    for tag, attrs in parser.controls:
        labelled = attrs.get("id") in parser.labels or attrs.get("aria-label")
        assert labelled, f"{path}: <{tag} name={attrs.get('name')}> has no label"


def test_every_page_names_a_local_favicon_and_favicon_ico_is_not_a_404(
    client: Client, console_client: Client
) -> None:
    for page in (client.get("/console/sign-in/"), console_client.get("/console/")):
        icon = re.search(
            r'<link rel="icon" href="([^"]+)" type="image/svg\+xml">', page.content.decode()
        )
        assert icon and icon.group(1) == "/static/console/favicon.svg"
    served = client.get("/static/console/favicon.svg")
    assert served.status_code == 200
    assert served["Content-Type"] == "image/svg+xml"
    legacy = client.get("/favicon.ico")  # what browsers ask for on pages without the link
    assert legacy.status_code == 301 and legacy["Location"] == "/static/console/favicon.svg"
