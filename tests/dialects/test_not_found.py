"""Under every API prefix, what no route matches and what Django raises itself (an unreadable
request, a crash) is answered in that API shape's JSON error body, never Django's HTML."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from outbound import api_errors
from outbound.accounts.models import User
from outbound.core.permissions import HasOutboundPermission
from tests.conftest import client_for

KEYS = {
    "api": {"detail"},
    "admin/v1": {"code", "message", "details"},
    "Analytics/v1": {"errorSource", "message", "messageID", "application"},
    "commandcenter/api": {"errorMessage", "errorCode"},
    "workflow-engine/api/v1": {"error_code", "error_message", "property", "details"},
}
# One authenticated operation per shape, to make crash.
OPERATIONS = {
    "api": "/api/administration/smtp-settings/",
    "admin/v1": "/admin/v1/smtp/1",
    "Analytics/v1": "/Analytics/v1/objects/EmailServerSettings",
    "commandcenter/api": "/commandcenter/api/V4/EmailServer",
    "workflow-engine/api/v1": "/workflow-engine/api/v1/settings",
}
METHODS = ("get", "post", "put", "patch", "delete", "options")


def unmatched(prefix: str) -> list[str]:
    return [
        f"/{prefix}",
        f"/{prefix}/",
        f"/{prefix}/nothing-here",
        f"/{prefix}/nothing/here/either/",
        f"/{prefix}/a%20b%23c",
    ]


def assert_shaped(response: Any, prefix: str, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.content[:200])
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = json.loads(response.content)
    assert set(body) == KEYS[prefix], body
    if prefix == "admin/v1":
        assert body["code"] == {404: 5, 500: 13, 400: 3, 403: 7}[status]
    if prefix == "commandcenter/api":
        assert body["errorCode"] == status
    if prefix == "Analytics/v1":
        assert body["application"] == "Analytics"
    return body


@pytest.mark.django_db
def test_every_api_prefix_has_a_shape() -> None:
    assert {shape.prefix for shape in api_errors.SHAPES} == set(KEYS)


@pytest.mark.django_db
@pytest.mark.parametrize("prefix", list(KEYS))
def test_unmatched_urls_are_a_json_404_in_the_shape(prefix: str) -> None:
    # Django's client with CSRF checks on, as a browser-less API client is not exempt by
    # itself: a POST to nowhere is a 404, not Django's CSRF page.
    client = Client(enforce_csrf_checks=True)
    for path in unmatched(prefix):
        for method in METHODS:
            response = getattr(client, method)(path)
            assert_shaped(response, prefix, 404)
        head = client.head(path)
        assert head.status_code == 404 and head["Content-Type"].startswith("application/json")


@pytest.mark.django_db
def test_unmatched_urls_near_real_ones(admin_client: APIClient) -> None:
    assert_shaped(admin_client.get("/api/schema/nothing"), "api", 404)
    assert_shaped(admin_client.get("/api/docs/nothing"), "api", 404)
    assert_shaped(admin_client.get("/api/administration/nothing/"), "api", 404)
    assert_shaped(
        admin_client.get("/Analytics/v1/objects/EmailServerSettings/"), "Analytics/v1", 404
    )
    assert_shaped(
        admin_client.get("/workflow-engine/api/v1/settings/"), "workflow-engine/api/v1", 404
    )
    assert_shaped(admin_client.post("/commandcenter/api/V4/Nothing"), "commandcenter/api", 404)
    # Django's 405s under /api/ are JSON too, also where success is YAML or HTML.
    for path in ("/api/schema/", "/api/docs/"):
        assert_shaped(admin_client.post(path), "api", 405)
    # A real route without its trailing slash is still redirected to it, as Django does.
    r = admin_client.get("/api/administration/smtp-settings")
    assert r.status_code == 301 and r["Location"].endswith("/api/administration/smtp-settings/")
    # Elsewhere (the console) Django's own pages stay.
    page = Client().get("/console/nothing-here/")
    assert page.status_code == 404 and page["Content-Type"].startswith("text/html")


@pytest.mark.django_db
@pytest.mark.parametrize("prefix", list(KEYS))
def test_a_crash_is_a_json_500_in_the_shape(
    prefix: str, admin_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    def crash(*args: Any, **kwargs: Any) -> bool:
        raise RuntimeError("a bug, with a secret: hunter2")

    monkeypatch.setattr(HasOutboundPermission, "has_permission", crash)
    client = client_for(admin_user, "Bearer")
    if prefix == "Analytics/v1":
        pass  # Bearer works for Hitachi too
    if prefix == "commandcenter/api":
        from outbound.accounts import services as account_services

        _, key = account_services.api_key_create(
            owner=admin_user, name="cv", permissions=[], actor=admin_user
        )
        client = APIClient(HTTP_AUTHTOKEN=key)
    client.raise_request_exception = False
    body = assert_shaped(client.get(OPERATIONS[prefix]), prefix, 500)
    assert "hunter2" not in str(body) and "RuntimeError" not in str(body)


@pytest.mark.django_db
def test_a_request_django_refuses_is_a_json_400(admin_client: APIClient, settings: Any) -> None:
    settings.DATA_UPLOAD_MAX_NUMBER_FIELDS = 5
    admin_client.raise_request_exception = False
    query = "&".join(f"f{i}=1" for i in range(10))
    r = admin_client.get(f"/api/integrations/?{query}")
    assert_shaped(r, "api", 400)


@pytest.mark.django_db
@pytest.mark.parametrize("prefix", list(KEYS))
@pytest.mark.parametrize(
    ("handler", "status"),
    [
        (lambda r: api_errors.bad_request(r, Exception("bad")), 400),
        (lambda r: api_errors.permission_denied(r, Exception("no")), 403),
        (lambda r: api_errors.page_not_found(r, Exception("gone")), 404),
        (api_errors.server_error, 500),
    ],
    ids=["400", "403", "404", "500"],
)
def test_djangos_error_handlers_answer_in_the_shape(prefix: str, handler: Any, status: int) -> None:
    request = RequestFactory().get(f"/{prefix}/somewhere")
    assert_shaped(handler(request), prefix, status)
    elsewhere = handler(RequestFactory().get("/console/somewhere"))
    assert elsewhere.status_code == status
    assert elsewhere["Content-Type"].startswith("text/html")
