"""``limit`` and ``offset`` on every native list and autocomplete: a malformed value is a 400
naming the parameter in DRF's words (never silently the default); good values page."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core.pagination import MAX_OFFSET
from tests.core.routes import Route, fill, routes
from tests.integrations.factories import make_object_class

INVALID = "A valid integer is required."


def _lists() -> list[Route]:
    """Every GET route of the native API that is not about one object: the lists and the
    autocompletes (discovered, so a new one is covered the day it is added)."""
    return [
        r
        for r in routes()
        if r.pattern.startswith("api/") and r.detail is False and r.action("get") is not None
    ]


LISTS = _lists()


@pytest.mark.django_db
def test_the_discovery_finds_every_list_and_autocomplete() -> None:
    actions = sorted({r.actions["get"] for r in LISTS})
    assert actions == ["autocomplete", "list"]
    patterns = " ".join(r.pattern for r in LISTS)
    for resource in (
        "integrations",
        "messages",
        "users",
        "roles",
        "api-keys",
        "object-classes",
        "fields",
        "authentication-objects",
    ):
        assert f"{resource}/$" in patterns, resource
    assert len([r for r in LISTS if r.action("get") == "autocomplete"]) == 4


def _path(route: Route, user: User) -> str:
    object_class = make_object_class(user, name="Matter")
    path = fill(route.pattern, {"object_class_pk": str(object_class.pk)})
    assert path is not None
    return path


@pytest.mark.django_db
@pytest.mark.parametrize("route", LISTS, ids=[r.pattern for r in LISTS])
@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ({"limit": "abc"}, {"limit": [INVALID]}),
        ({"limit": "1.5"}, {"limit": [INVALID]}),
        ({"limit": " 5"}, {"limit": [INVALID]}),
        ({"limit": "-1"}, {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ({"limit": "0"}, {"limit": ["Ensure this value is greater than or equal to 1."]}),
        ({"offset": "abc"}, {"offset": [INVALID]}),
        ({"offset": "1.5"}, {"offset": [INVALID]}),
        ({"offset": "-1"}, {"offset": ["Ensure this value is greater than or equal to 0."]}),
        (
            {"offset": "9" * 30},
            {"offset": [f"Ensure this value is less than or equal to {MAX_OFFSET}."]},
        ),
        ({"limit": "x", "offset": "-2"}, {"limit": [INVALID], "offset": [
            "Ensure this value is greater than or equal to 0."
        ]}),
    ],
    ids=["limit-abc", "limit-1.5", "limit-space", "limit-neg", "limit-0", "offset-abc",
         "offset-1.5", "offset-neg", "offset-huge", "both"],
)  # fmt: skip
def test_a_malformed_limit_or_offset_is_a_400_naming_it(
    route: Route,
    query: dict[str, str],
    errors: dict[str, list[str]],
    admin_user: User,
    admin_client: APIClient,
) -> None:
    r = admin_client.get(_path(route, admin_user), query)
    assert r.status_code == 400, (route.pattern, r.status_code, r.content[:300])
    assert r.json() == errors


@pytest.mark.django_db
@pytest.mark.parametrize("route", LISTS, ids=[r.pattern for r in LISTS])
@pytest.mark.parametrize(
    "query", [{}, {"limit": ""}, {"limit": "2", "offset": "0"}, {"offset": str(MAX_OFFSET)}]
)
def test_good_or_empty_values_page(
    route: Route, query: dict[str, str], admin_user: User, admin_client: APIClient
) -> None:
    r = admin_client.get(_path(route, admin_user), query)
    assert r.status_code == 200, (route.pattern, r.content[:300])
    if route.action("get") == "list":
        body: dict[str, Any] = r.json()
        assert body["limit"] == int(query.get("limit") or 20)
        assert body["offset"] == int(query.get("offset") or 0)
    if query.get("offset") == str(MAX_OFFSET):
        assert r.json()["results"] == []


@pytest.mark.django_db
def test_a_limit_above_the_maximum_is_served_as_the_maximum(admin_client: APIClient) -> None:
    body = admin_client.get("/api/roles/", {"limit": "1000000"}).json()
    assert body["limit"] == 1000


@pytest.mark.django_db
def test_autocomplete_pages_with_limit_and_offset(
    admin_user: User, admin_client: APIClient
) -> None:
    for name in ("Alpha", "Beta", "Gamma", "Delta"):
        make_object_class(admin_user, name=name)
    url = "/api/object-classes/autocomplete/"
    texts = [x["text"] for x in admin_client.get(url).json()["results"]]
    assert texts == ["Alpha", "Beta", "Delta", "Gamma"]
    page = admin_client.get(url, {"limit": 2, "offset": 1}).json()["results"]
    assert [x["text"] for x in page] == ["Beta", "Delta"]
    assert len(admin_client.get(url, {"limit": 1000}).json()["results"]) == 4
