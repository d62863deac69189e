"""``/api/authentication-objects/``: CRUD, secrets never echoed, filters, autocomplete, rights."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.integrations.models import AuthenticationObject
from outbound.mail.services import smtp_config_create
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

URL = "/api/authentication-objects/"
SECRET = "client-s3cret-value"
DEFAULT_AUTHORITY = "https://login.microsoftonline.com"
DEFAULT_SCOPE = "https://outlook.office365.com/.default"
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
REQUIRED = "This field is required."
CONTROL = "This field may not contain control characters."
VALID: dict[str, Any] = {
    "name": "Contoso",
    "provider": "microsoft_client_credentials",
    "tenant_id": "tenant-1",
    "client_id": "client-1",
    "client_secret": SECRET,
}
PUBLIC_KEYS = {
    "id",
    "name",
    "provider",
    "created_at",
    "modified_at",
    "tenant_id",
    "client_id",
    "authority_url",
    "scope",
    "has_client_secret",
}


def detail_url(pk: int) -> str:
    return f"{URL}{pk}/"


def create(client: APIClient, **changes: Any) -> dict[str, Any]:
    response = client.post(URL, {**VALID, **changes}, format="json")
    assert response.status_code == 201, response.content
    return response.json()


def stored(pk: int) -> AuthenticationObject:
    return AuthenticationObject.objects.get(pk=pk)


def test_create_returns_the_object_without_its_secret(admin_client: APIClient) -> None:
    response = admin_client.post(URL, VALID, format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == PUBLIC_KEYS
    assert isinstance(body["id"], int)
    assert body["name"] == "Contoso"
    assert body["provider"] == "microsoft_client_credentials"
    assert body["tenant_id"] == "tenant-1"
    assert body["client_id"] == "client-1"
    assert body["authority_url"] == DEFAULT_AUTHORITY
    assert body["scope"] == DEFAULT_SCOPE
    assert body["has_client_secret"] is True
    assert SECRET not in response.content.decode()
    assert stored(body["id"]).get_secret("client_secret") == SECRET
    assert SECRET not in repr(stored(body["id"]).parameters)


def test_read_and_list_never_carry_the_secret(admin_client: APIClient) -> None:
    pk = create(admin_client)["id"]
    for response in (admin_client.get(detail_url(pk)), admin_client.get(URL)):
        assert response.status_code == 200
        assert SECRET not in response.content.decode()
        assert "client_secret" not in response.json().get("results", [response.json()])[0]
    assert admin_client.get(detail_url(pk)).json()["has_client_secret"] is True


def test_create_with_own_authority_and_scope(admin_client: APIClient) -> None:
    body = create(
        admin_client, authority_url="https://login.example.com", scope="api://app/.default"
    )
    assert body["authority_url"] == "https://login.example.com"
    assert body["scope"] == "api://app/.default"
    again = admin_client.get(detail_url(body["id"])).json()
    assert again["authority_url"] == "https://login.example.com"
    assert again["scope"] == "api://app/.default"


def test_blank_optional_parameters_take_their_defaults(admin_client: APIClient) -> None:
    body = create(admin_client, authority_url="", scope="")
    assert body["authority_url"] == DEFAULT_AUTHORITY
    assert body["scope"] == DEFAULT_SCOPE


def test_missing_required_fields_are_all_reported(admin_client: APIClient) -> None:
    response = admin_client.post(URL, {"provider": "microsoft_client_credentials"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "name": [REQUIRED],
        "tenant_id": [REQUIRED],
        "client_id": [REQUIRED],
        "client_secret": [REQUIRED],
    }
    response = admin_client.post(URL, {}, format="json")
    assert response.status_code == 400
    assert response.json()["name"] == [REQUIRED]
    assert response.json()["provider"] == [REQUIRED]
    assert not AuthenticationObject.objects.exists()


@pytest.mark.parametrize("field", ["name", "tenant_id", "client_id", "client_secret"])
def test_each_required_field_is_required(admin_client: APIClient, field: str) -> None:
    body = {k: v for k, v in VALID.items() if k != field}
    response = admin_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json() == {field: [REQUIRED]}
    assert not AuthenticationObject.objects.exists()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"provider": "google"}, "provider"),
        ({"tenant_id": ""}, "tenant_id"),
        ({"client_secret": ""}, "client_secret"),
        ({"authority_url": "not a url"}, "authority_url"),
        ({"authority_url": "http://login.example.com"}, "authority_url"),  # token needs HTTPS
        ({"name": "x" * 101}, "name"),
        ({"tenant_id": "t" * 101}, "tenant_id"),
    ],
)
def test_invalid_values_are_refused(
    admin_client: APIClient, changes: dict[str, Any], field: str
) -> None:
    response = admin_client.post(URL, {**VALID, **changes}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not AuthenticationObject.objects.exists()


def test_duplicate_name_is_refused(admin_client: APIClient) -> None:
    create(admin_client)
    response = admin_client.post(URL, {**VALID, "client_secret": "other"}, format="json")
    assert response.status_code == 400
    assert "name" in response.json()
    assert AuthenticationObject.objects.count() == 1


@pytest.mark.parametrize(
    "field",
    ["name", "provider", "tenant_id", "client_id", "client_secret", "authority_url", "scope"],
)
@pytest.mark.parametrize("value", ["a\r\nb", "a\nb", "\rab", "ab\n", "ab\r\n", "a\x00b"])
def test_control_characters_are_refused_on_create(
    admin_client: APIClient, field: str, value: str
) -> None:
    base = {**VALID, "authority_url": DEFAULT_AUTHORITY, "scope": DEFAULT_SCOPE}
    original = base[field]
    tainted = original[:8] + value + original[8:] if field in {"authority_url", "scope"} else value
    response = admin_client.post(URL, {**base, field: tainted}, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not AuthenticationObject.objects.exists()


@pytest.mark.parametrize("field", ["name", "tenant_id", "client_id", "client_secret", "scope"])
def test_control_characters_are_refused_on_update(admin_client: APIClient, field: str) -> None:
    pk = create(admin_client)["id"]
    before = admin_client.get(detail_url(pk)).json()
    response = admin_client.patch(detail_url(pk), {field: "evil\r\nX-Injected: 1"}, format="json")
    assert response.status_code == 400
    assert response.json()[field] == [CONTROL]
    assert admin_client.get(detail_url(pk)).json() == before
    assert stored(pk).get_secret("client_secret") == SECRET


def test_patch_without_secret_keeps_it(admin_client: APIClient) -> None:
    pk = create(admin_client)["id"]
    response = admin_client.patch(
        detail_url(pk), {"name": "Renamed", "scope": "https://example.com/.default"}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Renamed"
    assert body["scope"] == "https://example.com/.default"
    assert body["client_id"] == "client-1"
    assert body["has_client_secret"] is True
    assert stored(pk).get_secret("client_secret") == SECRET


def test_patch_with_secret_replaces_it(admin_client: APIClient) -> None:
    pk = create(admin_client)["id"]
    response = admin_client.patch(detail_url(pk), {"client_secret": "new-secret"}, format="json")
    assert response.status_code == 200
    assert "new-secret" not in response.content.decode()
    assert response.json()["has_client_secret"] is True
    assert stored(pk).get_secret("client_secret") == "new-secret"


def test_patch_blank_authority_restores_the_default(admin_client: APIClient) -> None:
    pk = create(admin_client, authority_url="https://login.example.com")["id"]
    response = admin_client.patch(
        detail_url(pk), {"authority_url": "", "client_secret": "again"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["authority_url"] == DEFAULT_AUTHORITY


def test_provider_cannot_change(admin_client: APIClient) -> None:
    pk = create(admin_client)["id"]
    response = admin_client.patch(detail_url(pk), {"provider": "google"}, format="json")
    assert response.status_code == 400
    assert "provider" in response.json()


def test_put_replaces_the_public_fields(admin_client: APIClient) -> None:
    pk = create(admin_client)["id"]
    body = {**VALID, "name": "Fabrikam", "tenant_id": "t2", "client_id": "c2"}
    response = admin_client.put(detail_url(pk), {**body, "client_secret": "s2"}, format="json")
    assert response.status_code == 200
    assert response.json()["name"] == "Fabrikam"
    assert response.json()["tenant_id"] == "t2"
    assert stored(pk).get_secret("client_secret") == "s2"


def test_delete_removes_the_object(admin_client: APIClient) -> None:
    pk = create(admin_client)["id"]
    response = admin_client.delete(detail_url(pk))
    assert response.status_code == 204
    assert not AuthenticationObject.objects.filter(pk=pk).exists()
    assert admin_client.get(detail_url(pk)).status_code == 404
    assert Event.objects.filter(resource_id=str(pk), action="deleted").count() == 1


def test_delete_of_an_object_in_use_is_refused(admin_client: APIClient, admin_user: User) -> None:
    pk = create(admin_client)["id"]
    config = smtp_config_create(
        data={
            "host": "smtp.office365.com",
            "port": 587,
            "username": "mailer@example.com",
            "authorization_method": "microsoft_client_credentials",
            "authentication_object": stored(pk),
        },
        actor=admin_user,
    )
    response = admin_client.delete(detail_url(pk))
    assert response.status_code == 400
    assert "SMTP configuration" in response.content.decode()
    assert AuthenticationObject.objects.filter(pk=pk).exists()
    assert config.authentication_object_id == pk
    assert not Event.objects.filter(resource_id=str(pk), action="deleted").exists()


def test_unknown_or_non_integer_id_is_not_found(admin_client: APIClient) -> None:
    pk = create(admin_client)["id"]
    assert admin_client.get(detail_url(pk + 1)).status_code == 404
    assert admin_client.get(f"{URL}abc/").status_code == 404
    assert admin_client.get(f"{URL}abc/").json() == {"detail": "Not found."}


def test_list_envelope_and_paging(admin_client: APIClient) -> None:
    for name in ("Charlie", "Alpha", "Bravo"):
        create(admin_client, name=name)
    body = admin_client.get(URL, {"limit": 2}).json()
    assert set(body) == {
        "limit",
        "offset",
        "total_count",
        "filtered_count",
        "next",
        "previous",
        "results",
    }
    assert body["limit"] == 2
    assert body["offset"] == 0
    assert body["total_count"] == 3
    assert body["filtered_count"] == 3
    assert body["previous"] is None
    assert [r["name"] for r in body["results"]] == ["Alpha", "Bravo"]
    second = admin_client.get(body["next"]).json()
    assert second["offset"] == 2
    assert second["next"] is None
    assert second["previous"] is not None
    assert [r["name"] for r in second["results"]] == ["Charlie"]


def test_filters_change_filtered_count_not_total_count(admin_client: APIClient) -> None:
    for name in ("Alpha", "Bravo"):
        create(admin_client, name=name)
    body = admin_client.get(URL, {"provider": "microsoft_client_credentials"}).json()
    assert body["filtered_count"] == body["total_count"] == 2
    body = admin_client.get(URL, {"name": "Bravo"}).json()
    assert (body["total_count"], body["filtered_count"]) == (2, 1)
    assert [r["name"] for r in body["results"]] == ["Bravo"]
    response = admin_client.get(URL, {"provider": "google"})
    assert response.status_code == 400
    assert "provider" in response.json()


def test_autocomplete_matches_case_insensitively(admin_client: APIClient) -> None:
    ids = {name: create(admin_client, name=name)["id"] for name in ("Contoso", "Fabrikam", "Acon")}
    response = admin_client.get(f"{URL}autocomplete/", {"text__icontains": "CON"})
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"value": ids["Acon"], "text": "Acon"},
            {"value": ids["Contoso"], "text": "Contoso"},
        ]
    }
    everything = admin_client.get(f"{URL}autocomplete/").json()["results"]
    assert [r["text"] for r in everything] == ["Acon", "Contoso", "Fabrikam"]
    assert admin_client.get(f"{URL}autocomplete/", {"text__icontains": "zzz"}).json() == {
        "results": []
    }


def test_writes_through_the_api_record_events_with_the_actor(admin_client: APIClient) -> None:
    pk = create(admin_client)["id"]
    admin_client.patch(detail_url(pk), {"client_secret": "rotated"}, format="json")
    events = list(Event.objects.filter(resource_type="authentication_object", resource_id=str(pk)))
    assert [e.action for e in events] == ["created", "updated"]
    assert all(e.actor_username == "admin" for e in events)
    assert events[1].changed_fields == ["client_secret"]
    assert SECRET not in repr([e.changed_fields for e in events])


# --- permissions -------------------------------------------------------------------------

ALL = [f"authentication_objects.{a}" for a in ("list", "view", "create", "edit", "delete")]
Request = Callable[[APIClient, int], Any]
ACTIONS: list[tuple[str, Request, int]] = [
    ("list", lambda c, pk: c.get(URL), 200),
    ("view", lambda c, pk: c.get(detail_url(pk)), 200),
    ("create", lambda c, pk: c.post(URL, {**VALID, "name": "New"}, format="json"), 201),
    ("edit", lambda c, pk: c.patch(detail_url(pk), {"name": "Edited"}, format="json"), 200),
    ("edit", lambda c, pk: c.put(detail_url(pk), {**VALID, "name": "Put"}, format="json"), 200),
    ("delete", lambda c, pk: c.delete(detail_url(pk)), 204),
]


@pytest.mark.parametrize(("action", "request_", "status"), ACTIONS)
def test_each_action_needs_its_permission(
    admin_client: APIClient,
    make_user: Callable[..., User],
    action: str,
    request_: Request,
    status: int,
) -> None:
    pk = create(admin_client)["id"]
    needed = f"authentication_objects.{action}"
    without = client_for(make_user(*[p for p in ALL if p != needed]))
    response = request_(without, pk)
    assert response.status_code == 403
    assert response.json() == FORBIDDEN
    assert stored(pk).name == "Contoso"
    assert AuthenticationObject.objects.count() == 1

    response = request_(client_for(make_user(needed)), pk)
    assert response.status_code == status, response.content


def test_anonymous_requests_are_refused(admin_client: APIClient) -> None:
    pk = create(admin_client)["id"]
    anonymous = client_for(None)
    assert anonymous.get(URL).status_code == 401
    assert anonymous.get(detail_url(pk)).status_code == 401
    assert anonymous.post(URL, {**VALID, "name": "New"}, format="json").status_code == 401
    assert anonymous.delete(detail_url(pk)).status_code == 401
    assert anonymous.get(f"{URL}autocomplete/").status_code == 401
    assert AuthenticationObject.objects.count() == 1
