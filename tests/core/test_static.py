"""Swagger UI works offline: its assets are served by Outbound itself."""

from __future__ import annotations

import re

import pytest
from django.test import Client


@pytest.mark.django_db
def test_swagger_ui_and_its_assets_are_served_locally(client: Client) -> None:
    page = client.get("/api/docs/")
    assert page.status_code == 200
    sources = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page.content.decode())
    assert sources
    for src in sources:
        assert src.startswith("/static/"), src  # nothing from a CDN
        assert client.get(src).status_code == 200, src


@pytest.mark.django_db
def test_schema_is_served(client: Client) -> None:
    r = client.get("/api/schema/", HTTP_ACCEPT="application/json")
    assert r.status_code == 200
    assert "/api/administration/smtp-settings/" in r.json()["paths"]
