"""``/api/integrations/``: create, read, update and delete of typed (iManage) configurations.

Every row of the seed's POST and PATCH error tables (common and iManage), the 100-item limit,
the 403/404 bodies, the response shape with ``_meta`` labels and permissions, and the events a
write records. A refused write changes no row and records no event.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.utils.dateparse import parse_datetime
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.integrations import services
from outbound.integrations.models import (
    AuthenticationObject,
    Integration,
    ObjectClass,
    ObjectClassField,
)
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

URL = "/api/integrations/"
AUTH_URL = "/api/authentication-objects/"
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
NOT_FOUND = {"detail": "Not found."}
LIMIT_BODY = {
    "detail": "Limit of 100 Integrations has been exceeded.",
    "error_code": "ERR_LIMIT_EXCEEDED",
}
REQUIRED = "This field is required."
BLANK = "This field may not be blank."
NULL = "This field may not be null."
UNIQUE = "This field must be unique."
TYPE_IMMUTABLE = "The type of an integration cannot be changed."
PERMISSIONS = ("list", "view", "create", "edit", "delete")
RESPONSE_KEYS = {
    "uuid",
    "type",
    "name",
    "description",
    "is_enabled",
    "authentication_object",
    "object_class",
    "folder",
    "object_class_field",
    "dedupe",
    "created_at",
    "created_by",
    "modified_at",
    "modified_by",
    "_meta",
}
IMANAGE_SECRETS = ("imanage-Pa55word", "imanage-client-s3cret")


def incorrect_type(type_name: str) -> str:
    return f"Incorrect type. Expected pk value, received {type_name}."


def does_not_exist(model_name: str, value: Any) -> str:
    return f'Invalid pk "{value}" - {model_name} does not exist.'


def when(text: str) -> datetime:
    parsed = parse_datetime(text)
    assert parsed is not None, text
    return parsed


def detail_url(key: Any) -> str:
    return f"{URL}{key}/"


def make_auth_object(
    client: APIClient, name: str = "iManage cloud", provider: str = "imanage"
) -> int:
    body: dict[str, Any]
    if provider == "imanage":
        body = {
            "server_url": "https://imanage.example.com",
            "username": "filer@example.com",
            "password": IMANAGE_SECRETS[0],
            "client_id": "alx-client",
            "client_secret": IMANAGE_SECRETS[1],
        }
    else:
        body = {"tenant_id": "tenant-1", "client_id": "client-1", "client_secret": "ms-secret"}
    response = client.post(AUTH_URL, {"name": name, "provider": provider, **body}, format="json")
    assert response.status_code == 201, response.content
    return int(response.json()["id"])


class World:
    """Related rows an integration points at: an iManage authentication object and two
    object classes with their fields."""

    def __init__(self, client: APIClient, actor: User) -> None:
        self.auth = make_auth_object(client)
        self.matter = services.object_class_create(data={"name": "Matter"}, actor=actor)
        self.matter_number = services.object_class_field_create(
            object_class=self.matter, data={"name": "Matter number"}, actor=actor
        )
        self.matter_client = services.object_class_field_create(
            object_class=self.matter, data={"name": "Client code"}, actor=actor
        )
        self.contract = services.object_class_create(data={"name": "Contract"}, actor=actor)
        self.contract_ref = services.object_class_field_create(
            object_class=self.contract, data={"name": "Contract reference"}, actor=actor
        )

    def body(self, **changes: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": 1,
            "name": "Matters to iManage",
            "authentication_object": self.auth,
            "object_class": self.matter.pk,
            "folder": "Matters/Incoming",
            "object_class_field": self.matter_number.pk,
        }
        body.update(changes)
        return body


@pytest.fixture
def world(admin_client: APIClient, admin_user: User) -> World:
    return World(admin_client, admin_user)


def create(client: APIClient, world: World, **changes: Any) -> dict[str, Any]:
    response = client.post(URL, world.body(**changes), format="json")
    assert response.status_code == 201, response.content
    return dict(response.json())


def integration_events() -> list[Event]:
    return list(Event.objects.filter(resource_type="integration"))


def snapshot() -> tuple[list[dict[str, Any]], int]:
    """Every integration row as stored (values, timestamps) and the number of events."""
    rows = list(Integration.objects.order_by("name").values())
    return rows, Event.objects.count()


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


# --- POST ------------------------------------------------------------------------------------

MISSING = object()

# (field, value or MISSING, expected messages for ``field``); ``{world.*}`` resolved below.
POST_ERRORS: list[tuple[str, Any, list[str]]] = [
    ("type", MISSING, [REQUIRED]),
    ("type", 9, ['"9" is not a valid choice.']),
    ("type", "imanage", ['"imanage" is not a valid choice.']),
    ("type", None, [NULL]),
    ("name", MISSING, [REQUIRED]),
    ("name", "", [BLANK]),
    ("name", None, [NULL]),
    ("name", "n" * 101, ["Ensure this field has no more than 100 characters."]),
    ("description", None, [NULL]),
    ("description", "d" * 501, ["Ensure this field has no more than 500 characters."]),
    ("is_enabled", None, [NULL]),
    ("authentication_object", "abc", [incorrect_type("str")]),
    ("authentication_object", [1], [incorrect_type("list")]),
    ("authentication_object", True, [incorrect_type("bool")]),
    ("authentication_object", 1.5, [incorrect_type("float")]),
    ("authentication_object", 987654, [does_not_exist("AuthenticationObjectData", 987654)]),
    ("object_class", "abc", [incorrect_type("str")]),
    ("object_class", {"id": 1}, [incorrect_type("dict")]),
    ("object_class", 987654, [does_not_exist("ObjectClass", 987654)]),
    ("folder", MISSING, [REQUIRED]),
    ("folder", "", [BLANK]),
    ("folder", "   ", [BLANK]),
    ("folder", None, [NULL]),
    ("folder", "f" * 256, ["Ensure this field has no more than 255 characters."]),
    ("object_class_field", "abc", [incorrect_type("str")]),
    ("object_class_field", 1.0, [incorrect_type("float")]),
    ("object_class_field", 987654, [does_not_exist("ObjectClassField", 987654)]),
    ("dedupe", None, [NULL]),
]


@pytest.mark.parametrize(
    ("field", "value", "messages"),
    POST_ERRORS,
    ids=[f"{f}-{'missing' if v is MISSING else repr(v)[:12]}" for f, v, _ in POST_ERRORS],
)
def test_post_error_rows(
    admin_client: APIClient, world: World, field: str, value: Any, messages: list[str]
) -> None:
    body = without(world.body(), field) if value is MISSING else world.body(**{field: value})
    before = snapshot()

    response = admin_client.post(URL, body, format="json")

    assert response.status_code == 400
    assert response.json() == {field: messages}
    assert snapshot() == before


def test_post_name_must_be_unique(admin_client: APIClient, world: World) -> None:
    create(admin_client, world, name="Matters")
    before = snapshot()

    response = admin_client.post(URL, world.body(name="Matters"), format="json")

    assert response.status_code == 400
    assert response.json() == {"name": [UNIQUE]}
    assert snapshot() == before


def test_post_reports_every_invalid_field_at_once(admin_client: APIClient, world: World) -> None:
    response = admin_client.post(
        URL, {"type": 1, "name": "", "authentication_object": "x"}, format="json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "name": [BLANK],
        "authentication_object": [incorrect_type("str")],
        "object_class": [REQUIRED],
        "folder": [REQUIRED],
        "object_class_field": [REQUIRED],
    }
    assert not Integration.objects.exists()


def test_post_authentication_object_of_another_provider_is_refused(
    admin_client: APIClient, world: World
) -> None:
    microsoft = make_auth_object(
        admin_client, name="Contoso", provider="microsoft_client_credentials"
    )
    before = snapshot()

    response = admin_client.post(URL, world.body(authentication_object=microsoft), format="json")

    assert response.status_code == 400
    assert response.json() == {
        "authentication_object": [does_not_exist("AuthenticationObjectData", microsoft)]
    }
    assert snapshot() == before


def test_post_object_class_field_of_another_object_class_is_refused(
    admin_client: APIClient, world: World
) -> None:
    before = snapshot()

    response = admin_client.post(
        URL, world.body(object_class_field=world.contract_ref.pk), format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "object_class_field": [does_not_exist("ObjectClassField", world.contract_ref.pk)]
    }
    assert snapshot() == before


def test_post_with_a_control_character_in_the_folder_is_refused(
    admin_client: APIClient, world: World
) -> None:
    response = admin_client.post(URL, world.body(folder="Matters\r\nBcc: x"), format="json")
    assert response.status_code == 400
    assert set(response.json()) == {"folder"}
    assert not Integration.objects.exists()


def test_the_101st_integration_is_refused(
    admin_client: APIClient, admin_user: User, world: World
) -> None:
    auth = AuthenticationObject.objects.get(pk=world.auth)
    for n in range(services.INTEGRATION_LIMIT):
        services.integration_create(
            type_id=1,
            data={
                "name": f"Integration {n:03}",
                "authentication_object": auth,
                "object_class": world.matter,
                "folder": "F",
                "object_class_field": world.matter_number,
            },
            actor=admin_user,
        )
    assert Integration.objects.count() == 100
    events = Event.objects.count()

    response = admin_client.post(URL, world.body(name="One too many"), format="json")

    assert response.status_code == 400
    assert response.json() == LIMIT_BODY
    assert Integration.objects.count() == 100
    assert not Integration.objects.filter(name="One too many").exists()
    assert Event.objects.count() == events

    # Deleting one makes room again.
    oldest = Integration.objects.order_by("name")[0]
    assert admin_client.delete(detail_url(oldest.uuid)).status_code == 204
    assert admin_client.post(URL, world.body(name="One too many"), format="json").status_code == 201
    assert Integration.objects.count() == 100


@pytest.mark.parametrize(
    "held", [(), tuple(f"integrations.{p}" for p in PERMISSIONS if p != "create")]
)
def test_post_needs_integrations_create(
    make_user: Callable[..., User], world: World, held: tuple[str, ...]
) -> None:
    client = client_for(make_user(*held))
    response = client.post(URL, world.body(), format="json")
    assert response.status_code == 403
    assert response.json() == FORBIDDEN
    assert not Integration.objects.exists()
    assert integration_events() == []


def test_post_with_only_integrations_create_succeeds(
    make_user: Callable[..., User], world: World
) -> None:
    creator = make_user("integrations.create")
    response = client_for(creator).post(URL, world.body(), format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["created_by"] == {"id": creator.pk, "username": creator.username}
    assert body["_meta"]["permissions"] == {
        "list": False,
        "view": False,
        "create": True,
        "edit": False,
        "delete": False,
    }


def test_anonymous_callers_are_refused(world: World) -> None:
    anonymous = client_for(None)
    assert anonymous.post(URL, world.body(), format="json").status_code == 401
    assert anonymous.get(detail_url(uuid.uuid4())).status_code == 401
    assert not Integration.objects.exists()


# --- response shape ---------------------------------------------------------------------------


def test_create_answers_201_with_the_whole_configuration(
    admin_client: APIClient, admin_user: User, world: World
) -> None:
    response = admin_client.post(URL, world.body(), format="json")

    assert response.status_code == 201
    body = response.json()
    assert set(body) == RESPONSE_KEYS
    stored = Integration.objects.get()
    assert body["uuid"] == str(stored.uuid)
    assert body["type"] == 1
    assert body["name"] == "Matters to iManage"
    assert body["description"] == ""
    assert body["is_enabled"] is False
    assert body["authentication_object"] == world.auth
    assert body["object_class"] == world.matter.pk
    assert body["folder"] == "Matters/Incoming"
    assert body["object_class_field"] == world.matter_number.pk
    assert body["dedupe"] is False
    admin = {"id": admin_user.pk, "username": "admin"}
    assert body["created_by"] == admin
    assert body["modified_by"] == admin
    assert when(body["created_at"]) == stored.created_at
    assert when(body["modified_at"]) == stored.modified_at
    assert body["_meta"] == {
        "labels": {
            "type": "iManage",
            "authentication_object": "iManage cloud",
            "object_class": "Matter",
            "object_class_field": "Matter number",
        },
        "permissions": dict.fromkeys(PERMISSIONS, True),
    }
    for secret in IMANAGE_SECRETS:
        assert secret not in response.content.decode()


def test_create_keeps_every_given_value(admin_client: APIClient, world: World) -> None:
    body = create(
        admin_client,
        world,
        description="Files matter documents",
        is_enabled=True,
        dedupe=True,
        folder="  Spaced folder  ",
        name="  Spaced name  ",
    )
    again = admin_client.get(detail_url(body["uuid"]))
    assert again.status_code == 200
    assert again.json() == body
    assert body["description"] == "Files matter documents"
    assert body["is_enabled"] is True
    assert body["dedupe"] is True
    assert body["folder"] == "Spaced folder"  # surrounding blanks dropped, as for the name
    assert body["name"] == "Spaced name"


def test_type_may_be_given_as_a_string(admin_client: APIClient, world: World) -> None:
    assert create(admin_client, world, type="1")["type"] == 1


def test_get_answers_the_same_shape(admin_client: APIClient, world: World) -> None:
    created = create(admin_client, world)
    response = admin_client.get(detail_url(created["uuid"]))
    assert response.status_code == 200
    assert response.json() == created


def test_timestamps_read_the_same_in_the_list_and_the_detail(
    admin_client: APIClient, world: World
) -> None:
    # The list reads SQLite's stored text instead of datetimes: a whole second (no fraction)
    # and a value written in another time zone must still print as DRF prints them.
    created = create(admin_client, world)
    Integration.objects.filter(uuid=created["uuid"]).update(
        created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        modified_at=datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=timezone(timedelta(hours=5))),
    )

    listed = admin_client.get(URL).json()["results"][0]
    detail = admin_client.get(detail_url(created["uuid"])).json()

    for body in (listed, detail):
        assert body["created_at"] == "2026-01-02T03:04:05Z"
        assert body["modified_at"] == "2026-01-01T22:04:05.000007Z"
    assert listed == detail


def test_list_filters_and_ordering_do_not_apply_to_a_detail_url(
    admin_client: APIClient, world: World
) -> None:
    created = create(admin_client, world)
    url = detail_url(created["uuid"])
    for query in ("?name=Other", "?ordering=bogus", "?created_at__gte=garbage", "?type=9"):
        response = admin_client.get(url + query)
        assert response.status_code == 200, query
        assert response.json() == created
    patched = admin_client.patch(url + "?name=Other", {"is_enabled": True}, format="json")
    assert patched.status_code == 200
    assert admin_client.delete(url + "?ordering=bogus").status_code == 204


def test_a_viewer_sees_only_its_own_permissions(
    admin_client: APIClient, make_user: Callable[..., User], world: World
) -> None:
    created = create(admin_client, world)
    viewer = client_for(make_user("integrations.view", "integrations.list"))

    response = viewer.get(detail_url(created["uuid"]))

    assert response.status_code == 200
    assert response.json()["_meta"]["permissions"] == {
        "list": True,
        "view": True,
        "create": False,
        "edit": False,
        "delete": False,
    }
    assert response.json()["_meta"]["labels"] == created["_meta"]["labels"]
    assert viewer.patch(detail_url(created["uuid"]), {"name": "X"}, format="json").json() == (
        FORBIDDEN
    )
    assert viewer.delete(detail_url(created["uuid"])).status_code == 403
    assert Integration.objects.get().name == created["name"]


def test_labels_follow_renamed_related_objects(
    admin_client: APIClient, admin_user: User, world: World
) -> None:
    created = create(admin_client, world)
    services.object_class_update(obj=world.matter, data={"name": "Case"}, actor=admin_user)
    services.object_class_field_update(
        obj=world.matter_number, data={"name": "Case number"}, actor=admin_user
    )
    renamed = admin_client.patch(f"{AUTH_URL}{world.auth}/", {"name": "iManage EU"}, format="json")
    assert renamed.status_code == 200

    labels = admin_client.get(detail_url(created["uuid"])).json()["_meta"]["labels"]

    assert labels == {
        "type": "iManage",
        "authentication_object": "iManage EU",
        "object_class": "Case",
        "object_class_field": "Case number",
    }


# --- events ------------------------------------------------------------------------------------


def test_create_records_one_event_with_field_names_only(
    admin_client: APIClient, admin_user: User, world: World
) -> None:
    body = create(admin_client, world, description="Secret plan", is_enabled=True, dedupe=True)

    (event,) = integration_events()
    assert event.action == "created"
    assert event.resource_id == body["uuid"]
    assert event.actor == admin_user
    assert set(event.changed_fields) >= {
        "type",
        "name",
        "description",
        "is_enabled",
        "authentication_object",
        "object_class",
        "folder",
        "object_class_field",
        "dedupe",
    }
    assert set(event.changed_fields) <= RESPONSE_KEYS
    for value in ("Secret plan", "Matters/Incoming", "Matters to iManage"):
        assert value not in repr(event.changed_fields)


def test_update_records_the_changed_field_names(
    admin_client: APIClient, make_user: Callable[..., User], world: World
) -> None:
    created = create(admin_client, world)
    editor = make_user("integrations.edit", username="editor")

    response = client_for(editor).patch(
        detail_url(created["uuid"]),
        {"description": "Now documented", "folder": "Matters/2025", "name": created["name"]},
        format="json",
    )

    assert response.status_code == 200
    event = integration_events()[-1]
    assert event.action == "updated"
    assert event.resource_id == created["uuid"]
    assert event.changed_fields == ["description", "folder"]
    assert event.actor == editor


def test_a_patch_that_changes_nothing_records_no_event(
    admin_client: APIClient, world: World
) -> None:
    created = create(admin_client, world)
    before = snapshot()

    response = admin_client.patch(
        detail_url(created["uuid"]),
        {"name": created["name"], "folder": created["folder"], "type": 1},
        format="json",
    )

    assert response.status_code == 200
    assert response.json() == created
    assert snapshot() == before


def test_delete_answers_204_removes_the_row_and_records_it(
    admin_client: APIClient, admin_user: User, world: World
) -> None:
    created = create(admin_client, world)

    response = admin_client.delete(detail_url(created["uuid"]))

    assert response.status_code == 204
    assert response.content == b""
    assert not Integration.objects.exists()
    event = integration_events()[-1]
    assert (event.action, event.resource_id, event.actor) == (
        "deleted",
        created["uuid"],
        admin_user,
    )
    assert admin_client.get(detail_url(created["uuid"])).json() == NOT_FOUND
    # Its authentication object and object class are free to go now.
    assert admin_client.delete(f"{AUTH_URL}{world.auth}/").status_code == 204


# --- PATCH -------------------------------------------------------------------------------------

PATCH_ERRORS: list[tuple[str, Any, list[str]]] = [
    ("name", "", [BLANK]),
    ("name", None, [NULL]),
    ("name", "n" * 101, ["Ensure this field has no more than 100 characters."]),
    ("description", None, [NULL]),
    ("description", "d" * 501, ["Ensure this field has no more than 500 characters."]),
    ("is_enabled", None, [NULL]),
    ("authentication_object", "abc", [incorrect_type("str")]),
    ("authentication_object", None, [NULL]),
    ("authentication_object", 1.5, [incorrect_type("float")]),
    ("authentication_object", 987654, [does_not_exist("AuthenticationObjectData", 987654)]),
    ("object_class", "abc", [incorrect_type("str")]),
    ("object_class", None, [NULL]),
    ("object_class", 987654, [does_not_exist("ObjectClass", 987654)]),
    ("folder", "", [BLANK]),
    ("folder", " ", [BLANK]),
    ("folder", None, [NULL]),
    ("folder", "f" * 256, ["Ensure this field has no more than 255 characters."]),
    ("object_class_field", "abc", [incorrect_type("str")]),
    ("object_class_field", 2.0, [incorrect_type("float")]),
    ("object_class_field", None, [NULL]),
    ("object_class_field", 987654, [does_not_exist("ObjectClassField", 987654)]),
    ("dedupe", None, [NULL]),
]


@pytest.mark.parametrize(
    ("field", "value", "messages"),
    PATCH_ERRORS,
    ids=[f"{f}-{repr(v)[:12]}" for f, v, _ in PATCH_ERRORS],
)
def test_patch_error_rows(
    admin_client: APIClient, world: World, field: str, value: Any, messages: list[str]
) -> None:
    created = create(admin_client, world)
    before = snapshot()

    response = admin_client.patch(detail_url(created["uuid"]), {field: value}, format="json")

    assert response.status_code == 400
    assert response.json() == {field: messages}
    assert snapshot() == before
    assert admin_client.get(detail_url(created["uuid"])).json() == created


def test_patch_name_must_be_unique(admin_client: APIClient, world: World) -> None:
    create(admin_client, world, name="First")
    second = create(admin_client, world, name="Second")
    before = snapshot()

    response = admin_client.patch(detail_url(second["uuid"]), {"name": "First"}, format="json")

    assert response.status_code == 400
    assert response.json() == {"name": [UNIQUE]}
    assert snapshot() == before


def test_patch_keeps_its_own_name(admin_client: APIClient, world: World) -> None:
    created = create(admin_client, world)
    response = admin_client.patch(
        detail_url(created["uuid"]), {"name": created["name"], "is_enabled": True}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["is_enabled"] is True


def test_patch_changes_only_what_is_sent(
    admin_client: APIClient, make_user: Callable[..., User], world: World, admin_user: User
) -> None:
    created = create(admin_client, world, description="Before")
    editor = make_user("integrations.edit", username="editor")

    response = client_for(editor).patch(
        detail_url(created["uuid"]),
        {"name": "Renamed", "is_enabled": True, "dedupe": True, "folder": "Elsewhere"},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Renamed"
    assert body["is_enabled"] is True
    assert body["dedupe"] is True
    assert body["folder"] == "Elsewhere"
    for key in ("uuid", "type", "description", "authentication_object", "object_class"):
        assert body[key] == created[key]
    assert body["object_class_field"] == created["object_class_field"]
    assert body["created_by"] == {"id": admin_user.pk, "username": "admin"}
    assert body["created_at"] == created["created_at"]
    assert body["modified_by"] == {"id": editor.pk, "username": "editor"}
    assert when(body["modified_at"]) > when(created["modified_at"])
    assert body["_meta"]["permissions"] == {
        "list": False,
        "view": False,
        "create": False,
        "edit": True,
        "delete": False,
    }
    assert admin_client.get(detail_url(created["uuid"])).json()["name"] == "Renamed"


def test_patch_cannot_change_the_type(admin_client: APIClient, world: World) -> None:
    created = create(admin_client, world)
    before = snapshot()

    for value in (2, "2", "iManage", [1]):
        response = admin_client.patch(
            detail_url(created["uuid"]), {"type": value, "name": "Changed"}, format="json"
        )
        assert response.status_code == 400, value
        assert response.json() == {"type": [TYPE_IMMUTABLE]}
    response = admin_client.patch(detail_url(created["uuid"]), {"type": None}, format="json")
    assert response.status_code == 400
    assert response.json() == {"type": [NULL]}
    assert snapshot() == before


def test_patch_with_the_same_type_is_accepted(admin_client: APIClient, world: World) -> None:
    created = create(admin_client, world)
    for value in (1, "1"):
        response = admin_client.patch(
            detail_url(created["uuid"]), {"type": value, "name": f"Same {value}"}, format="json"
        )
        assert response.status_code == 200
        assert response.json()["type"] == 1
        assert response.json()["name"] == f"Same {value}"


def test_patch_object_class_field_of_another_object_class_is_refused(
    admin_client: APIClient, world: World
) -> None:
    created = create(admin_client, world)
    before = snapshot()

    response = admin_client.patch(
        detail_url(created["uuid"]), {"object_class_field": world.contract_ref.pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "object_class_field": [does_not_exist("ObjectClassField", world.contract_ref.pk)]
    }
    assert snapshot() == before


def test_patch_object_class_without_a_matching_field_is_refused(
    admin_client: APIClient, world: World
) -> None:
    created = create(admin_client, world)
    before = snapshot()

    response = admin_client.patch(
        detail_url(created["uuid"]), {"object_class": world.contract.pk}, format="json"
    )

    assert response.status_code == 400
    # The kept field belongs to the old object class: for the new one it does not exist.
    assert response.json() == {
        "object_class_field": [does_not_exist("ObjectClassField", world.matter_number.pk)]
    }
    assert snapshot() == before


def test_patch_object_class_together_with_its_field(admin_client: APIClient, world: World) -> None:
    created = create(admin_client, world)

    response = admin_client.patch(
        detail_url(created["uuid"]),
        {"object_class": world.contract.pk, "object_class_field": world.contract_ref.pk},
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["object_class"] == world.contract.pk
    assert body["object_class_field"] == world.contract_ref.pk
    assert body["_meta"]["labels"]["object_class"] == "Contract"
    assert body["_meta"]["labels"]["object_class_field"] == "Contract reference"
    assert integration_events()[-1].changed_fields == ["object_class", "object_class_field"]


def test_patch_authentication_object_of_another_provider_is_refused(
    admin_client: APIClient, world: World
) -> None:
    created = create(admin_client, world)
    microsoft = make_auth_object(
        admin_client, name="Contoso", provider="microsoft_client_credentials"
    )
    before = snapshot()

    response = admin_client.patch(
        detail_url(created["uuid"]), {"authentication_object": microsoft}, format="json"
    )

    assert response.status_code == 400
    assert response.json() == {
        "authentication_object": [does_not_exist("AuthenticationObjectData", microsoft)]
    }
    assert snapshot() == before


def test_patch_to_another_imanage_authentication_object(
    admin_client: APIClient, world: World
) -> None:
    created = create(admin_client, world)
    other = make_auth_object(admin_client, name="iManage EU")

    response = admin_client.patch(
        detail_url(created["uuid"]), {"authentication_object": other}, format="json"
    )

    assert response.status_code == 200
    assert response.json()["authentication_object"] == other
    assert response.json()["_meta"]["labels"]["authentication_object"] == "iManage EU"


# --- permissions and missing objects -----------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "needed"), [("get", "view"), ("patch", "edit"), ("delete", "delete")]
)
def test_each_detail_action_needs_its_permission(
    admin_client: APIClient,
    make_user: Callable[..., User],
    world: World,
    method: str,
    needed: str,
) -> None:
    created = create(admin_client, world)
    url = detail_url(created["uuid"])
    without_it = client_for(make_user(*(f"integrations.{p}" for p in PERMISSIONS if p != needed)))
    with_only_it = client_for(make_user(f"integrations.{needed}"))
    before = snapshot()

    body = None if method == "get" else {"name": "X"}  # GET data would become a filter

    refused = getattr(without_it, method)(url, body, format="json")

    assert refused.status_code == 403
    assert refused.json() == FORBIDDEN
    assert snapshot() == before

    allowed = getattr(with_only_it, method)(url, body, format="json")
    assert allowed.status_code == {"get": 200, "patch": 200, "delete": 204}[method]


@pytest.mark.parametrize("method", ["get", "patch", "delete"])
@pytest.mark.parametrize("key", [str(uuid.uuid4()), "not-a-uuid", "123", "test-x"])
def test_missing_or_malformed_uuid_is_not_found(
    admin_client: APIClient, world: World, method: str, key: str
) -> None:
    create(admin_client, world)
    before = snapshot()

    body = None if method == "get" else {"name": "X"}
    response = getattr(admin_client, method)(detail_url(key), body, format="json")

    assert response.status_code == 404
    assert response.json() == NOT_FOUND
    assert snapshot() == before


def test_put_is_not_offered(admin_client: APIClient, world: World) -> None:
    created = create(admin_client, world)
    before = snapshot()
    response = admin_client.put(detail_url(created["uuid"]), world.body(name="X"), format="json")
    assert response.status_code == 405
    assert response.json() == {"detail": 'Method "PUT" not allowed.'}
    assert snapshot() == before


def test_related_objects_in_use_cannot_be_deleted(
    admin_client: APIClient, admin_user: User, world: World
) -> None:
    create(admin_client, world)
    assert admin_client.delete(f"{AUTH_URL}{world.auth}/").status_code == 400
    with pytest.raises(ValidationError):
        services.object_class_delete(obj=world.matter, actor=admin_user)
    with pytest.raises(ValidationError):
        services.object_class_field_delete(obj=world.matter_number, actor=admin_user)
    assert ObjectClass.objects.filter(pk=world.matter.pk).exists()
    assert ObjectClassField.objects.filter(pk=world.matter_number.pk).exists()


# --- OPTIONS -----------------------------------------------------------------------------------


def test_options_describes_the_imanage_schema_and_the_limit(
    make_user: Callable[..., User],
) -> None:
    response = client_for(make_user()).options(URL)

    assert response.status_code == 200
    body = response.json()
    assert body["restrictions"] == {"limit_items": 100}
    schema = {entry["alias"]: entry for entry in body["details"]["schema"]}
    assert schema["type"]["values"] == [{"value": 1, "text": "iManage"}]
    assert schema["name"] == {
        "alias": "name",
        "type": "string",
        "required": True,
        "validators": [{"type": "min_length", "length": 1}, {"type": "max_length", "length": 100}],
    }
    (imanage,) = body["details"]["schema_by_type"]
    assert imanage["type"] == 1
    by_alias = {entry["alias"]: entry for entry in imanage["schema"]}
    assert by_alias["authentication_object"]["autocomplete"] == (
        "/api/authentication-objects/autocomplete/?text__icontains="
    )
    assert by_alias["object_class"]["required"] is True
    assert by_alias["object_class_field"] == {
        "alias": "object_class_field",
        "type": "enum",
        "required": True,
        "autocomplete": "/api/object-classes/{object_class}/fields/autocomplete/?text__icontains=",
    }
    assert by_alias["folder"] == {
        "alias": "folder",
        "type": "string",
        "required": True,
        "validators": [{"type": "min_length", "length": 1}, {"type": "max_length", "length": 255}],
    }
