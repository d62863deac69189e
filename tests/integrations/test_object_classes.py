"""``/api/object-classes/`` and ``/api/object-classes/{id}/fields/``: CRUD with integer ids,
the autocompletes the integrations OPTIONS document names, unique names (fields: per class),
deletions an integration forbids (also of authentication objects), events, and the
permission matrix of every endpoint."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.core.permissions import all_permissions
from outbound.integrations.models import (
    AuthenticationObject,
    Integration,
    ObjectClass,
    ObjectClassField,
)
from tests.conftest import client_for
from tests.integrations.factories import (
    make_field,
    make_imanage_auth,
    make_integration,
    make_object_class,
)

pytestmark = pytest.mark.django_db

URL = "/api/object-classes/"
UNIQUE = {"name": ["This field must be unique."]}
NOT_FOUND = {"detail": "Not found."}
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
UNAUTHENTICATED = {"detail": "Authentication credentials were not provided."}
KEYS = {"id", "name", "description", "created_at", "modified_at"}


def fields_url(object_class_id: int) -> str:
    return f"{URL}{object_class_id}/fields/"


def created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.content
    body: dict[str, Any] = response.json()
    return body


# --- object classes ------------------------------------------------------------------------


def test_object_class_crud_with_integer_ids(admin_client: APIClient) -> None:
    body = created(
        admin_client.post(URL, {"name": "Matter", "description": "A case"}, format="json")
    )
    assert set(body) == KEYS
    assert isinstance(body["id"], int)
    assert (body["name"], body["description"]) == ("Matter", "A case")
    detail = f"{URL}{body['id']}/"

    assert admin_client.get(detail).json() == body
    created(admin_client.post(URL, {"name": "Client"}, format="json"))
    listing = admin_client.get(URL).json()
    assert (listing["total_count"], listing["filtered_count"]) == (2, 2)
    assert [r["name"] for r in listing["results"]] == ["Client", "Matter"]

    patched = admin_client.patch(detail, {"description": "A legal matter"}, format="json")
    assert patched.status_code == 200
    assert patched.json()["name"] == "Matter"
    assert patched.json()["description"] == "A legal matter"
    put = admin_client.put(detail, {"name": "Case"}, format="json")
    assert put.status_code == 200
    assert ObjectClass.objects.get(pk=body["id"]).name == "Case"

    assert admin_client.delete(detail).status_code == 204
    assert admin_client.get(detail).status_code == 404
    assert list(ObjectClass.objects.values_list("name", flat=True)) == ["Client"]


def test_list_filters_by_name(admin_user: User, admin_client: APIClient) -> None:
    for name in ("Matter", "Client", "Matter archive"):
        make_object_class(admin_user, name=name)
    body = admin_client.get(URL, {"name__icontains": "MATTER"}).json()
    assert [r["name"] for r in body["results"]] == ["Matter", "Matter archive"]
    assert (body["total_count"], body["filtered_count"]) == (3, 2)


@pytest.mark.parametrize("pk", ["abc", "999999", "-1", "1e3"])
def test_an_unknown_or_malformed_id_is_not_found(
    admin_user: User, admin_client: APIClient, pk: str
) -> None:
    make_object_class(admin_user)
    for response in (
        admin_client.get(f"{URL}{pk}/"),
        admin_client.patch(f"{URL}{pk}/", {"name": "X"}, format="json"),
        admin_client.delete(f"{URL}{pk}/"),
    ):
        assert response.status_code == 404
        assert response.json() == NOT_FOUND
    assert list(ObjectClass.objects.values_list("name", flat=True)) == ["Matter"]


def test_object_class_names_are_unique(admin_user: User, admin_client: APIClient) -> None:
    make_object_class(admin_user, name="Matter")
    other = make_object_class(admin_user, name="Client")

    response = admin_client.post(URL, {"name": "Matter"}, format="json")
    assert response.status_code == 400
    assert response.json() == UNIQUE
    response = admin_client.patch(f"{URL}{other.pk}/", {"name": "Matter"}, format="json")
    assert response.status_code == 400
    assert response.json() == UNIQUE
    assert sorted(ObjectClass.objects.values_list("name", flat=True)) == ["Client", "Matter"]
    # Saving a class under its own name is no conflict.
    same = admin_client.patch(f"{URL}{other.pk}/", {"name": "Client"}, format="json")
    assert same.status_code == 200


def test_surrounding_spaces_do_not_make_a_different_name(admin_client: APIClient) -> None:
    body = created(admin_client.post(URL, {"name": "  Matter "}, format="json"))
    assert body["name"] == "Matter"
    response = admin_client.post(URL, {"name": "Matter  "}, format="json")
    assert response.status_code == 400
    assert response.json() == UNIQUE
    assert ObjectClass.objects.count() == 1


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"name": ["This field is required."]}),
        ({"name": ""}, {"name": ["This field may not be blank."]}),
        ({"name": "   "}, {"name": ["This field may not be blank."]}),
        ({"name": None}, {"name": ["This field may not be null."]}),
        ({"name": "x" * 101}, {"name": ["Ensure this field has no more than 100 characters."]}),
        ({"name": "Matter\n"}, {"name": ["This field may not contain control characters."]}),
        (
            {"name": "Matter", "description": "x" * 501},
            {"description": ["Ensure this field has no more than 500 characters."]},
        ),
        (
            {"name": "Matter", "description": "a\x00b"},
            {"description": ["This field may not contain control characters."]},
        ),
        ({"name": "Matter", "description": None}, {"description": ["This field may not be null."]}),
    ],
)
def test_invalid_object_classes_are_refused(
    admin_client: APIClient, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    response = admin_client.post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json() == errors
    assert not ObjectClass.objects.exists()


# --- fields of an object class ---------------------------------------------------------------


def test_field_crud_within_its_class(admin_user: User, admin_client: APIClient) -> None:
    matter = make_object_class(admin_user, name="Matter")
    client_class = make_object_class(admin_user, name="Client")
    make_field(admin_user, client_class, name="Client code")

    # ``object_class`` comes from the URL; a body naming another class cannot move it.
    body = created(
        admin_client.post(
            fields_url(matter.pk),
            {"name": "Number", "description": "d", "object_class": client_class.pk},
            format="json",
        )
    )
    assert set(body) == KEYS | {"object_class"}
    assert isinstance(body["id"], int)
    assert (body["object_class"], body["name"], body["description"]) == (matter.pk, "Number", "d")
    created(admin_client.post(fields_url(matter.pk), {"name": "Year"}, format="json"))
    detail = f"{fields_url(matter.pk)}{body['id']}/"

    assert admin_client.get(detail).json() == body
    listing = admin_client.get(fields_url(matter.pk)).json()
    assert [r["name"] for r in listing["results"]] == ["Number", "Year"]
    assert (listing["total_count"], listing["filtered_count"]) == (2, 2)

    patched = admin_client.patch(detail, {"name": "Matter number"}, format="json")
    assert patched.status_code == 200
    assert patched.json()["name"] == "Matter number"
    put = admin_client.put(detail, {"name": "No.", "description": ""}, format="json")
    assert put.status_code == 200
    assert (put.json()["name"], put.json()["description"]) == ("No.", "")

    assert admin_client.delete(detail).status_code == 204
    assert admin_client.get(detail).status_code == 404
    assert sorted(ObjectClassField.objects.values_list("name", flat=True)) == [
        "Client code",
        "Year",
    ]


def test_a_field_is_reached_only_through_its_own_class(
    admin_user: User, admin_client: APIClient
) -> None:
    matter = make_object_class(admin_user, name="Matter")
    other = make_object_class(admin_user, name="Client")
    field = make_field(admin_user, other, name="Client code")
    wrong = f"{fields_url(matter.pk)}{field.pk}/"
    for response in (
        admin_client.get(wrong),
        admin_client.patch(wrong, {"name": "Taken over"}, format="json"),
        admin_client.delete(wrong),
    ):
        assert response.status_code == 404
        assert response.json() == NOT_FOUND
    assert ObjectClassField.objects.get(pk=field.pk).name == "Client code"
    assert admin_client.get(fields_url(matter.pk)).json()["results"] == []


@pytest.mark.parametrize("class_id", ["999999", "abc"])
def test_fields_of_a_missing_object_class_are_not_found(
    admin_client: APIClient, class_id: str
) -> None:
    url = f"{URL}{class_id}/fields/"
    for response in (
        admin_client.get(url),
        admin_client.post(url, {"name": "Number"}, format="json"),
        admin_client.get(f"{url}1/"),
        admin_client.get(f"{url}autocomplete/", {"text__icontains": "n"}),
    ):
        assert response.status_code == 404
        assert response.json() == NOT_FOUND
    assert not ObjectClassField.objects.exists()


def test_field_names_are_unique_per_class_only(admin_user: User, admin_client: APIClient) -> None:
    matter = make_object_class(admin_user, name="Matter")
    client_class = make_object_class(admin_user, name="Client")
    created(admin_client.post(fields_url(matter.pk), {"name": "Number"}, format="json"))
    # The same name in another class is fine.
    created(admin_client.post(fields_url(client_class.pk), {"name": "Number"}, format="json"))

    response = admin_client.post(fields_url(matter.pk), {"name": "Number"}, format="json")
    assert response.status_code == 400
    assert response.json() == UNIQUE
    response = admin_client.post(fields_url(matter.pk), {"name": " Number "}, format="json")
    assert response.status_code == 400
    assert response.json() == UNIQUE

    year = created(admin_client.post(fields_url(matter.pk), {"name": "Year"}, format="json"))
    response = admin_client.patch(
        f"{fields_url(matter.pk)}{year['id']}/", {"name": "Number"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == UNIQUE
    assert sorted(ObjectClassField.objects.values_list("object_class__name", "name")) == [
        ("Client", "Number"),
        ("Matter", "Number"),
        ("Matter", "Year"),
    ]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"name": ["This field is required."]}),
        ({"name": " "}, {"name": ["This field may not be blank."]}),
        ({"name": None}, {"name": ["This field may not be null."]}),
        ({"name": "x" * 101}, {"name": ["Ensure this field has no more than 100 characters."]}),
        ({"name": "No.\t1"}, {"name": ["This field may not contain control characters."]}),
    ],
)
def test_invalid_fields_are_refused(
    admin_user: User, admin_client: APIClient, body: dict[str, Any], errors: dict[str, Any]
) -> None:
    matter = make_object_class(admin_user)
    response = admin_client.post(fields_url(matter.pk), body, format="json")
    assert response.status_code == 400
    assert response.json() == errors
    assert not ObjectClassField.objects.exists()


# --- autocompletes ---------------------------------------------------------------------------


def test_object_class_autocomplete(admin_user: User, make_user: Callable[..., User]) -> None:
    ids = {n: make_object_class(admin_user, name=n).pk for n in ("Matter", "Client", "Submatter")}
    client = client_for(make_user())  # authentication only
    response = client.get(f"{URL}autocomplete/", {"text__icontains": "MAT"})
    assert response.status_code == 200
    assert response.json() == {
        "results": [
            {"value": ids["Matter"], "text": "Matter"},
            {"value": ids["Submatter"], "text": "Submatter"},
        ]
    }
    everything = client.get(f"{URL}autocomplete/").json()["results"]
    assert [r["text"] for r in everything] == ["Client", "Matter", "Submatter"]
    assert client.get(f"{URL}autocomplete/", {"text__icontains": "zzz"}).json() == {"results": []}


def test_field_autocomplete_offers_the_fields_of_that_class_only(
    admin_user: User, make_user: Callable[..., User]
) -> None:
    matter = make_object_class(admin_user, name="Matter")
    other = make_object_class(admin_user, name="Client")
    number = make_field(admin_user, matter, name="Matter number")
    make_field(admin_user, matter, name="Year")
    make_field(admin_user, other, name="Client number")
    client = client_for(make_user())
    response = client.get(f"{fields_url(matter.pk)}autocomplete/", {"text__icontains": "NUMBER"})
    assert response.status_code == 200
    assert response.json() == {"results": [{"value": number.pk, "text": "Matter number"}]}
    everything = client.get(f"{fields_url(matter.pk)}autocomplete/").json()["results"]
    assert [r["text"] for r in everything] == ["Matter number", "Year"]


# --- deletions an integration forbids ---------------------------------------------------------


@dataclass
class InUse:
    auth: AuthenticationObject
    object_class: ObjectClass
    field: ObjectClassField
    integration: Integration


@pytest.fixture
def in_use(admin_user: User) -> InUse:
    auth = make_imanage_auth(admin_user)
    object_class = make_object_class(admin_user)
    field = make_field(admin_user, object_class)
    make_field(admin_user, object_class, name="Spare")
    integration = make_integration(
        admin_user,
        name="Filing",
        authentication_object=auth,
        object_class=object_class,
        field=field,
    )
    return InUse(auth, object_class, field, integration)


def in_use_message(what: str) -> dict[str, list[str]]:
    return {"non_field_errors": [f"This {what} is used by an integration and cannot be deleted."]}


def test_an_object_class_an_integration_uses_is_kept(
    in_use: InUse, admin_client: APIClient
) -> None:
    events = Event.objects.count()
    response = admin_client.delete(f"{URL}{in_use.object_class.pk}/")
    assert response.status_code == 400
    assert response.json() == in_use_message("object class")
    assert ObjectClass.objects.filter(pk=in_use.object_class.pk).exists()
    assert ObjectClassField.objects.filter(object_class=in_use.object_class).count() == 2
    assert Event.objects.count() == events

    assert admin_client.delete(f"/api/integrations/{in_use.integration.uuid}/").status_code == 204
    assert admin_client.delete(f"{URL}{in_use.object_class.pk}/").status_code == 204
    assert not ObjectClassField.objects.exists()


def test_an_object_class_field_an_integration_uses_is_kept(
    in_use: InUse, admin_client: APIClient
) -> None:
    url = f"{fields_url(in_use.object_class.pk)}{in_use.field.pk}/"
    response = admin_client.delete(url)
    assert response.status_code == 400
    assert response.json() == in_use_message("object class field")
    assert ObjectClassField.objects.filter(pk=in_use.field.pk).exists()

    # A sibling field no integration uses can go.
    spare = ObjectClassField.objects.get(name="Spare")
    assert (
        admin_client.delete(f"{fields_url(in_use.object_class.pk)}{spare.pk}/").status_code == 204
    )
    # Once the integration points at another field, the first one can go too.
    other = make_field(None, in_use.object_class, name="Other")
    patch = admin_client.patch(
        f"/api/integrations/{in_use.integration.uuid}/",
        {"object_class_field": other.pk},
        format="json",
    )
    assert patch.status_code == 200, patch.content
    assert admin_client.delete(url).status_code == 204


def test_an_authentication_object_an_integration_uses_is_kept(
    in_use: InUse, admin_client: APIClient
) -> None:
    response = admin_client.delete(f"/api/authentication-objects/{in_use.auth.pk}/")
    assert response.status_code == 400
    assert response.json() == in_use_message("authentication object")
    assert AuthenticationObject.objects.filter(pk=in_use.auth.pk).exists()
    assert Integration.objects.get().authentication_object_id == in_use.auth.pk

    assert admin_client.delete(f"/api/integrations/{in_use.integration.uuid}/").status_code == 204
    assert admin_client.delete(f"/api/authentication-objects/{in_use.auth.pk}/").status_code == 204


# --- events ----------------------------------------------------------------------------------


def events(resource_type: str) -> list[tuple[str, str, list[str], str]]:
    return [
        (e.resource_id, e.action, e.changed_fields, e.actor_username)
        for e in Event.objects.filter(resource_type=resource_type)
    ]


def test_every_write_is_recorded_with_who_did_it(
    make_user: Callable[..., User],
) -> None:
    editor = make_user(*(p for p in all_permissions() if p.startswith("object_classes.")))
    client = client_for(editor)
    who = editor.username
    oc = created(client.post(URL, {"name": "Matter"}, format="json"))["id"]
    field = created(
        client.post(fields_url(oc), {"name": "Number", "description": "d"}, format="json")
    )["id"]
    client.patch(f"{URL}{oc}/", {"description": "Cases"}, format="json")
    client.patch(f"{URL}{oc}/", {"description": "Cases"}, format="json")  # no change, no event
    client.patch(f"{fields_url(oc)}{field}/", {"name": "No."}, format="json")
    assert client.delete(f"{URL}{oc}/").status_code == 204

    assert events("object_class") == [
        (str(oc), "created", ["name"], who),
        (str(oc), "updated", ["description"], who),
        (str(oc), "deleted", [], who),
    ]
    assert events("object_class_field") == [
        (str(field), "created", ["description", "name"], who),
        (str(field), "updated", ["name"], who),
        (str(field), "deleted", [], who),  # went with its class
    ]


def test_refused_writes_record_nothing(admin_user: User, admin_client: APIClient) -> None:
    make_object_class(admin_user, name="Matter")
    before = Event.objects.count()
    admin_client.post(URL, {"name": "Matter"}, format="json")
    admin_client.post(URL, {"name": ""}, format="json")
    admin_client.post(f"{URL}999999/fields/", {"name": "Number"}, format="json")
    assert Event.objects.count() == before


# --- who may reach which endpoint --------------------------------------------------------------


@dataclass
class World:
    object_class: ObjectClass
    field: ObjectClassField


@pytest.fixture
def world(admin_user: User) -> World:
    object_class = make_object_class(admin_user, name="Matter")
    return World(object_class, make_field(admin_user, object_class, name="Number"))


@dataclass(frozen=True)
class Endpoint:
    name: str
    permission: str | None  # None: authentication only
    method: str
    path: str  # formatted with the world's ids
    body: dict[str, Any] | None
    success: int

    def call(self, client: APIClient, world: World) -> Any:
        url = self.path.format(oc=world.object_class.pk, field=world.field.pk)
        return getattr(client, self.method)(url, self.body, format="json")


CLASS = "/api/object-classes/{oc}/"
FIELDS = "/api/object-classes/{oc}/fields/"
FIELD = "/api/object-classes/{oc}/fields/{field}/"
ENDPOINTS = [
    Endpoint("list", "object_classes.list", "get", URL, None, 200),
    Endpoint("retrieve", "object_classes.view", "get", CLASS, None, 200),
    Endpoint("create", "object_classes.create", "post", URL, {"name": "Client"}, 201),
    Endpoint("update", "object_classes.edit", "put", CLASS, {"name": "Case"}, 200),
    Endpoint("partial_update", "object_classes.edit", "patch", CLASS, {"name": "Case"}, 200),
    Endpoint("destroy", "object_classes.delete", "delete", CLASS, None, 204),
    Endpoint("fields-list", "object_classes.list", "get", FIELDS, None, 200),
    Endpoint("fields-retrieve", "object_classes.view", "get", FIELD, None, 200),
    Endpoint("fields-create", "object_classes.create", "post", FIELDS, {"name": "Year"}, 201),
    Endpoint("fields-update", "object_classes.edit", "put", FIELD, {"name": "No."}, 200),
    Endpoint("fields-partial_update", "object_classes.edit", "patch", FIELD, {"name": "No."}, 200),
    Endpoint("fields-destroy", "object_classes.delete", "delete", FIELD, None, 204),
]
AUTOCOMPLETES = [
    Endpoint("autocomplete", None, "get", f"{URL}autocomplete/?text__icontains=mat", None, 200),
    Endpoint("fields-autocomplete", None, "get", f"{FIELDS}autocomplete/", None, 200),
]


def untouched(world: World) -> None:
    assert list(ObjectClass.objects.values_list("name", flat=True)) == ["Matter"]
    assert list(ObjectClassField.objects.values_list("name", flat=True)) == ["Number"]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_every_permission_but_the_needed_one_is_a_403(
    world: World, make_user: Callable[..., User], endpoint: Endpoint
) -> None:
    user = make_user(*(p for p in all_permissions() if p != endpoint.permission))
    response = endpoint.call(client_for(user), world)
    assert response.status_code == 403
    assert response.json() == FORBIDDEN
    untouched(world)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.name for e in ENDPOINTS])
def test_the_one_permission_suffices(
    world: World, make_user: Callable[..., User], endpoint: Endpoint
) -> None:
    response = endpoint.call(client_for(make_user(endpoint.permission)), world)
    assert response.status_code == endpoint.success, response.content
    classes = sorted(ObjectClass.objects.values_list("name", flat=True))
    fields = sorted(ObjectClassField.objects.values_list("name", flat=True))
    expected = {
        "create": (["Client", "Matter"], ["Number"]),
        "update": (["Case"], ["Number"]),
        "partial_update": (["Case"], ["Number"]),
        "destroy": ([], []),
        "fields-create": (["Matter"], ["Number", "Year"]),
        "fields-update": (["Matter"], ["No."]),
        "fields-partial_update": (["Matter"], ["No."]),
        "fields-destroy": (["Matter"], []),
    }.get(endpoint.name, (["Matter"], ["Number"]))
    assert (classes, fields) == expected


@pytest.mark.parametrize("endpoint", AUTOCOMPLETES, ids=[e.name for e in AUTOCOMPLETES])
def test_autocompletes_need_authentication_only(
    world: World, make_user: Callable[..., User], endpoint: Endpoint
) -> None:
    response = endpoint.call(client_for(make_user()), world)
    assert response.status_code == 200
    assert len(response.json()["results"]) == 1


@pytest.mark.parametrize(
    "endpoint", ENDPOINTS + AUTOCOMPLETES, ids=[e.name for e in ENDPOINTS + AUTOCOMPLETES]
)
def test_anonymous_callers_get_a_401(world: World, endpoint: Endpoint) -> None:
    response = endpoint.call(client_for(None), world)
    assert response.status_code == 401
    assert response.json() == UNAUTHENTICATED
    untouched(world)


@pytest.mark.parametrize(
    "path", ["/api/users/permissions/object_classes", "/api/users/permissions/object_classes/"]
)
def test_the_permissions_endpoint_returns_the_callers_flags(
    make_user: Callable[..., User], path: str
) -> None:
    user = make_user("object_classes.list", "object_classes.delete", "integrations.view")
    response = client_for(user).get(path)
    assert response.status_code == 200
    assert response.json() == {
        "list": True,
        "view": False,
        "create": False,
        "edit": False,
        "delete": True,
    }


@pytest.mark.django_db
def test_descriptions_may_span_lines(admin_client: APIClient) -> None:
    r = admin_client.post(
        "/api/object-classes/",
        {"name": "Matter", "description": "Line one\r\nLine two\twith a tab"},
        format="json",
    )
    assert r.status_code == 201, r.data
    assert r.data["description"] == "Line one\r\nLine two\twith a tab"
