"""Integration pages over the Django test client: what each user sees and what is saved."""

from __future__ import annotations

import html
import re
import socket
import ssl
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest
from django.db.models import ProtectedError
from django.test import Client

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.integrations import services
from outbound.integrations.models import (
    AuthenticationObject,
    Integration,
    ObjectClass,
)
from outbound.integrations.types import REGISTRY, IntegrationType, TypeField
from tests.console.conftest import error_for
from tests.integrations.factories import (
    IMANAGE_CLIENT_SECRET,
    IMANAGE_PASSWORD,
    make_field,
    make_imanage_auth,
    make_integration,
    make_object_class,
)
from tests.support.imanage import IManageServer, imanage_server

pytestmark = pytest.mark.django_db

LIST = "/console/integrations/"
NEW = "/console/integrations/new/"


def edit_url(integration: Integration) -> str:
    return f"/console/integrations/{integration.pk}/"


def names_in(page: str) -> list[str]:
    """The integration names of the list's rows, in order."""
    return [html.unescape(n) for n in re.findall(r"data-name>([^<]*)</(?:a|span)>", page)]


@pytest.fixture
def setup(admin_user: User) -> dict[str, Any]:
    """An iManage authentication object, two object classes with a field each."""
    matter = make_object_class(admin_user, "Matter")
    client_class = make_object_class(admin_user, "Client")
    return {
        "auth": make_imanage_auth(admin_user),
        "matter": matter,
        "client": client_class,
        "matter_no": make_field(admin_user, matter, "Matter number"),
        "client_no": make_field(admin_user, client_class, "Client number"),
    }


def integration(setup: dict[str, Any], name: str, **data: Any) -> Integration:
    """An iManage integration filed on Matter; ``data`` overrides any field."""
    data.setdefault("authentication_object", setup["auth"])
    data.setdefault("object_class", setup["matter"])
    data.setdefault("field", setup["matter_no"])
    return make_integration(None, name=name, **data)


def form_data(setup: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    data = {
        "type": "1",
        "name": "Matters to iManage",
        "description": "Files matter documents",
        "is_enabled": "on",
        "authentication_object": str(setup["auth"].pk),
        "object_class": str(setup["matter"].pk),
        "object_class_field": str(setup["matter_no"].pk),
        "folder": "/Matters",
        "dedupe": "on",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def set_created(item: Integration, when: datetime) -> None:
    Integration.objects.filter(pk=item.pk).update(created_at=when)


# --- a second, made-up type: the registry alone gives it a form ------------------------------


class Ticketing(IntegrationType):
    """A test-only type with a secret, an unscoped pk and a default-true flag."""

    id = 99
    label = "Ticketing"
    authentication_providers = ("microsoft_client_credentials",)
    requires: ClassVar[tuple[str, ...]] = ("authentication_object",)
    fields = (
        TypeField("queue", "string", required=True, max_length=20, label="Queue"),
        TypeField(
            "api_token", "string", required=True, max_length=64, secret=True, label="API token"
        ),
        TypeField("notify", "bool", default=True, label="Notify on failure"),
        TypeField(
            "home_class", "pk", model=ObjectClass, model_name="ObjectClass", label="Home class"
        ),
    )


@pytest.fixture
def ticketing(admin_user: User) -> Iterator[AuthenticationObject]:
    """Registers :class:`Ticketing`, yields a Microsoft authentication object it can use."""
    REGISTRY[Ticketing.id] = Ticketing
    try:
        yield services.authentication_object_create(
            name="Graph app",
            provider="microsoft_client_credentials",
            params={"tenant_id": "t", "client_id": "c", "client_secret": "graph-client-s3cret"},
            actor=admin_user,
        )
    finally:
        del REGISTRY[Ticketing.id]


# --- the list ----------------------------------------------------------------------------------


def test_list_shows_each_integration_and_the_limit(console_client: Client, setup: dict) -> None:
    integration(setup, "Alpha", is_enabled=True, description="First one")
    integration(setup, "Beta")
    page = console_client.get(LIST).content.decode()
    assert names_in(page) == ["Beta", "Alpha"]  # newest first, as the API
    assert page.count(">iManage</td>") == 2
    assert page.count('class="badge ok">Enabled<') == 1
    assert page.count('class="badge off">Disabled<') == 1
    assert "iManage prod" in page and ">Matter</td>" in page and "First one" in page
    assert "2 of at most 100 integrations." in page
    assert 'href="/console/integrations/new/"' in page
    assert IMANAGE_PASSWORD not in page and IMANAGE_CLIENT_SECRET not in page


def test_list_filters_like_the_api(console_client: Client, setup: dict, ticketing: Any) -> None:
    integration(setup, "Matters Alpha", is_enabled=True)
    integration(setup, "Clients Beta")
    integration(setup, "matters gamma")
    services.integration_create(
        type_id=Ticketing.id,
        data={
            "name": "Tickets",
            "authentication_object": ticketing,
            "queue": "q",
            "api_token": "t",
        },
        actor=None,
    )

    def names(**params: str) -> list[str]:
        response = console_client.get(LIST, params)
        assert response.status_code == 200
        return sorted(names_in(response.content.decode()))

    assert names(name__icontains="MATTERS") == ["Matters Alpha", "matters gamma"]
    assert names(is_enabled="true") == ["Matters Alpha"]
    assert names(is_enabled="false", name__icontains="a") == ["Clients Beta", "matters gamma"]
    assert names(type="99") == ["Tickets"]
    assert names(type="1", is_enabled="") == ["Clients Beta", "Matters Alpha", "matters gamma"]
    page = console_client.get(LIST, {"name__icontains": "zzz"}).content.decode()
    assert "No integration matches these filters." in page


def test_created_between_takes_in_the_whole_last_day(console_client: Client, setup: dict) -> None:
    for name, day, hour in (("April", 30, 23), ("May 1st", 1, 0), ("May 2nd late", 2, 23)):
        item = integration(setup, name)
        set_created(item, datetime(2025, 5 if day < 30 else 4, day, hour, 59, tzinfo=UTC))
    later = integration(setup, "May 3rd")
    set_created(later, datetime(2025, 5, 3, 0, 0, tzinfo=UTC))

    page = console_client.get(
        LIST, {"created_at__gte": "2025-05-01", "created_at__lte": "2025-05-02"}
    ).content.decode()

    assert sorted(names_in(page)) == ["May 1st", "May 2nd late"]
    assert 'value="2025-05-01"' in page  # the filter keeps its value


def test_invalid_filters_are_explained_not_a_500(console_client: Client, setup: dict) -> None:
    integration(setup, "Alpha")
    response = console_client.get(
        LIST, {"created_at__gte": "yesterday", "is_enabled": "maybe", "type": "7"}
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert error_for(page, "created_at__gte") == "Enter a valid date."
    assert error_for(page, "is_enabled") == "maybe is not a valid choice."
    assert error_for(page, "type") == "7 is not a valid choice."
    assert names_in(page) == []

    backwards = console_client.get(
        LIST, {"created_at__gte": "2025-05-02", "created_at__lte": "2025-05-01"}
    )
    assert backwards.status_code == 400
    assert "on or after" in error_for(backwards.content.decode(), "created_at__lte")

    far = console_client.get(
        LIST, {"created_at__gte": "0001-01-01", "created_at__lte": "9999-12-31"}
    )
    assert far.status_code == 200
    assert names_in(far.content.decode()) == ["Alpha"]

    bad_sort = console_client.get(LIST, {"ordering": "password"})
    assert bad_sort.status_code == 400
    assert "Sort: Select a valid choice" in html.unescape(bad_sort.content.decode())


def test_columns_sort_both_ways(console_client: Client, admin_user: User, setup: dict) -> None:
    other = make_imanage_auth(admin_user, name="A first auth")
    integration(setup, "Bravo")
    integration(setup, "alpha")
    make_integration(
        None,
        name="Charlie",
        authentication_object=other,
        object_class=setup["client"],
        field=setup["client_no"],
    )

    def order(ordering: str) -> list[str]:
        return names_in(console_client.get(LIST, {"ordering": ordering}).content.decode())

    assert order("name") == ["Bravo", "Charlie", "alpha"]  # as the database compares
    assert order("-name") == ["alpha", "Charlie", "Bravo"]
    assert order("authentication_object") == ["Charlie", "Bravo", "alpha"]
    assert order("object_class")[0] == "Charlie"
    assert order("-created_at") == ["Charlie", "alpha", "Bravo"]
    page = console_client.get(LIST, {"ordering": "name", "name__icontains": "a"}).content.decode()
    # The header toggles to descending and keeps the filter.
    assert 'aria-sort="ascending"><a href="?name__icontains=a&amp;ordering=-name"' in page


def test_pages_of_twenty_keep_the_filters(console_client: Client, setup: dict) -> None:
    for n in range(23):
        integration(setup, f"Integration {n:02d}")
    first = console_client.get(LIST, {"ordering": "name", "name__icontains": "integration"})
    page = first.content.decode()
    assert len(names_in(page)) == 20
    assert "Page 1 of 2 · 23 in all" in page
    assert "?ordering=name&amp;name__icontains=integration&amp;page=2" in page
    second = console_client.get(
        LIST, {"ordering": "name", "name__icontains": "integration", "page": "2"}
    )
    assert names_in(second.content.decode()) == [f"Integration {n}" for n in (20, 21, 22)]


def test_at_the_limit_new_is_not_offered_and_create_says_why(
    console_client: Client, setup: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(services, "INTEGRATION_LIMIT", 1)
    integration(setup, "Only one")
    page = console_client.get(LIST).content.decode()
    assert "1 of at most 1 integrations. The limit is reached" in page
    assert 'href="/console/integrations/new/"' not in page

    response = console_client.post(NEW, form_data(setup))
    assert response.status_code == 400
    assert services.LIMIT_MESSAGE in response.content.decode()
    assert Integration.objects.count() == 1


# --- create ---------------------------------------------------------------------------------


def test_new_with_one_type_shows_its_form(console_client: Client, setup: dict) -> None:
    page = console_client.get(NEW).content.decode()
    assert "New iManage integration" in page
    for label in ("Object class field", "Folder", "Deduplicate documents"):
        assert f">{label}" in page
    # The scoped field offers every class's fields, labelled with their class.
    assert '<optgroup label="Client">' in page
    assert "Client / Client number" in page and "Matter / Matter number" in page


def test_only_credentials_the_type_accepts_are_offered(
    console_client: Client, setup: dict, ticketing: AuthenticationObject
) -> None:
    page = console_client.get(NEW, {"type": "1"}).content.decode()
    assert "iManage prod" in page
    assert "Graph app" not in page
    response = console_client.post(NEW, form_data(setup, authentication_object=str(ticketing.pk)))
    assert response.status_code == 400
    assert error_for(response.content.decode(), "authentication_object") == (
        f"{ticketing.pk} is not a valid choice."
    )
    assert Integration.objects.count() == 0


def test_create_saves_through_the_service_and_records_the_event(
    console_client: Client, setup: dict
) -> None:
    response = console_client.post(NEW, form_data(setup))
    assert response.status_code == 302
    assert response["Location"] == LIST
    item = Integration.objects.get()
    assert (item.type, item.name, item.is_enabled) == (1, "Matters to iManage", True)
    assert item.authentication_object == setup["auth"]
    assert item.parameters == {
        "object_class_field": setup["matter_no"].pk,
        "folder": "/Matters",
        "dedupe": True,
    }
    event = Event.objects.get(resource_type="integration", action="created")
    assert event.resource_id == str(item.pk)
    assert event.actor_username == "admin"
    assert "folder" in event.changed_fields
    assert "Integration Matters to iManage created." in console_client.get(LIST).content.decode()


def test_duplicate_name_is_shown_next_to_the_name(console_client: Client, setup: dict) -> None:
    integration(setup, "Matters to iManage")
    response = console_client.post(NEW, form_data(setup))
    assert response.status_code == 400
    assert error_for(response.content.decode(), "name") == "This field must be unique."
    assert Integration.objects.count() == 1


def test_missing_required_fields_are_shown_next_to_them(
    console_client: Client, setup: dict
) -> None:
    response = console_client.post(
        NEW, form_data(setup, folder="", object_class_field="", name="x" * 101)
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert error_for(page, "folder") == "This field is required."
    assert error_for(page, "object_class_field") == "This field is required."
    assert error_for(page, "name") == "Ensure this field has no more than 100 characters."
    assert 'maxlength="255"' in page  # the folder's limit, from the registry
    assert Integration.objects.count() == 0


def test_a_field_of_another_object_class_is_refused_by_the_service(
    console_client: Client, setup: dict
) -> None:
    data = form_data(setup, object_class_field=str(setup["client_no"].pk))
    response = console_client.post(NEW, data)
    assert response.status_code == 400
    message = error_for(response.content.decode(), "object_class_field")
    assert message == f'Invalid pk "{setup["client_no"].pk}" - ObjectClassField does not exist.'
    assert Integration.objects.count() == 0


def test_control_characters_are_refused_next_to_the_field(
    console_client: Client, setup: dict
) -> None:
    response = console_client.post(NEW, form_data(setup, folder="/Mat\x07ters"))
    assert response.status_code == 400
    assert error_for(response.content.decode(), "folder")
    assert Integration.objects.count() == 0


def test_a_registered_type_gets_a_picker_entry_and_a_form(
    console_client: Client, setup: dict, ticketing: AuthenticationObject
) -> None:
    picker = console_client.get(NEW).content.decode()
    assert "?type=1" in picker and "?type=99" in picker
    assert "Settings: Queue, API token, Notify on failure, Home class" in picker
    assert console_client.get(NEW, {"type": "42"}).status_code == 400

    page = console_client.get(NEW, {"type": "99"}).content.decode()
    assert "New Ticketing integration" in page
    assert 'name="api_token"' in page and 'type="password"' in page
    assert 'name="notify"' in page and "checked" in page  # its default

    data = {
        "type": "99",
        "name": "Tickets",
        "authentication_object": str(ticketing.pk),
        "queue": "ops",
        "api_token": "tok-s3cret",
        "notify": "on",
        "home_class": str(setup["matter"].pk),
    }
    assert console_client.post(NEW, data).status_code == 302
    item = Integration.objects.get(name="Tickets")
    assert item.type == 99
    assert item.parameters == {"queue": "ops", "notify": True, "home_class": setup["matter"].pk}
    assert item.get_secret("api_token") == "tok-s3cret"
    event = Event.objects.get(resource_type="integration", resource_id=str(item.pk))
    assert "tok-s3cret" not in str(event.changed_fields)


# --- edit -----------------------------------------------------------------------------------


def test_edit_shows_the_saved_values_and_saves_changes(console_client: Client, setup: dict) -> None:
    item = integration(setup, "Matters", folder="/Old")
    page = console_client.get(edit_url(item)).content.decode()
    assert 'value="/Old"' in page and 'value="Matters"' in page
    assert f'<option value="{setup["matter_no"].pk}" selected>' in page

    data = form_data(setup, name="Matters renamed", folder="/New", dedupe=None, is_enabled=None)
    response = console_client.post(edit_url(item), data)
    assert response.status_code == 302
    item.refresh_from_db()
    assert (item.name, item.is_enabled) == ("Matters renamed", False)
    assert item.parameters["folder"] == "/New" and item.parameters["dedupe"] is False
    event = Event.objects.get(resource_type="integration", action="updated")
    assert set(event.changed_fields) >= {"name", "description", "folder"}


def test_edit_errors_stay_on_the_page(console_client: Client, setup: dict) -> None:
    integration(setup, "Taken")
    item = integration(setup, "Mine")
    response = console_client.post(edit_url(item), form_data(setup, name="Taken"))
    assert response.status_code == 400
    assert error_for(response.content.decode(), "name") == "This field must be unique."
    item.refresh_from_db()
    assert item.name == "Mine"


def test_a_secret_is_never_shown_and_empty_keeps_it(
    console_client: Client, setup: dict, ticketing: AuthenticationObject
) -> None:
    item = services.integration_create(
        type_id=Ticketing.id,
        data={
            "name": "Tickets",
            "authentication_object": ticketing,
            "queue": "ops",
            "api_token": "stored-tok-s3cret",
        },
        actor=None,
    )
    page = console_client.get(edit_url(item)).content.decode()
    assert "stored-tok-s3cret" not in page
    assert "A value is saved; leave empty to keep it." in page
    base = {
        "name": "Tickets",
        "authentication_object": str(ticketing.pk),
        "queue": "ops2",
        "api_token": "",
    }
    assert console_client.post(edit_url(item), base).status_code == 302
    item.refresh_from_db()
    assert item.get_secret("api_token") == "stored-tok-s3cret"
    assert item.parameters["queue"] == "ops2"

    console_client.post(edit_url(item), {**base, "api_token": "new-tok"})
    item.refresh_from_db()
    assert item.get_secret("api_token") == "new-tok"
    listing = console_client.get(LIST).content.decode()
    assert "new-tok" not in listing and "stored-tok-s3cret" not in listing


def test_an_unknown_integration_is_404(console_client: Client) -> None:
    missing = "/console/integrations/00000000-0000-0000-0000-000000000000/"
    assert console_client.get(missing).status_code == 404
    assert console_client.get("/console/integrations/not-a-uuid/").status_code == 404


# --- delete ---------------------------------------------------------------------------------


def test_delete_asks_first_then_deletes(console_client: Client, setup: dict) -> None:
    item = integration(setup, "Going away", is_enabled=True)
    url = f"{edit_url(item)}delete/"
    confirm = console_client.get(url).content.decode()
    assert "Delete integration “Going away”?" in confirm
    assert "It is enabled" in confirm
    assert Integration.objects.filter(pk=item.pk).exists()

    response = console_client.post(url)
    assert response.status_code == 302
    assert not Integration.objects.filter(pk=item.pk).exists()
    assert Event.objects.filter(resource_id=str(item.pk), action="deleted").exists()
    assert "Integration Going away deleted." in console_client.get(LIST).content.decode()


def test_a_refused_delete_is_explained_on_the_confirm_page(
    console_client: Client, setup: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    item = integration(setup, "Kept")

    def refuse(**kwargs: Any) -> None:
        raise ProtectedError("in use", set())

    monkeypatch.setattr(services, "integration_delete", refuse)
    response = console_client.post(f"{edit_url(item)}delete/")
    assert response.status_code == 400
    assert "This object is in use and cannot be deleted." in response.content.decode()
    assert Integration.objects.filter(pk=item.pk).exists()


# --- the test action ----------------------------------------------------------------------


@pytest.fixture
def imanage(server_tls: ssl.SSLContext, trust_test_ca: str) -> Iterator[IManageServer]:
    with imanage_server(server_tls) as server:
        yield server


def imanage_auth(server: IManageServer, password: str | None = None) -> AuthenticationObject:
    return services.authentication_object_create(
        name="Local iManage",
        provider="imanage",
        params={
            "server_url": server.url,
            "username": server.username,
            "password": password or server.password,
            "client_id": server.client_id,
            "client_secret": server.client_secret,
        },
        actor=None,
    )


def run_test(client: Client, item: Integration) -> str:
    response = client.post(f"{edit_url(item)}test/")
    assert response.status_code == 200
    return response.content.decode()


def writes() -> tuple[int, int]:
    return Integration.objects.count(), Event.objects.count()


def test_the_test_signs_in_with_the_saved_credentials(
    console_client: Client, setup: dict, imanage: IManageServer
) -> None:
    item = integration(setup, "Local", authentication_object=imanage_auth(imanage))
    before = writes()
    page = run_test(console_client, item)
    assert 'data-result="ok"' in page and "Connection successfully tested." in page
    assert [r["password"] for r in imanage.requests] == [[imanage.password]]
    assert writes() == before
    for secret in (imanage.password, imanage.client_secret, imanage.token):
        assert secret not in page


def test_wrong_credentials_fail_the_test(
    console_client: Client, setup: dict, imanage: IManageServer
) -> None:
    auth = imanage_auth(imanage, password="not-the-password")
    item = integration(setup, "Local", authentication_object=auth)
    page = run_test(console_client, item)
    assert 'data-result="fail"' in page
    assert "<li>Authentication failed.</li>" in page
    assert "not-the-password" not in page


def test_an_unreachable_server_is_a_failed_test_not_a_500(
    console_client: Client, setup: dict, trust_test_ca: str
) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    auth = make_imanage_auth(None, name="Nowhere", server_url=f"https://127.0.0.1:{port}")
    item = integration(setup, "Nowhere", authentication_object=auth)
    page = run_test(console_client, item)
    assert 'data-result="fail"' in page
    assert "The iManage server could not be reached" in page


# --- permissions ----------------------------------------------------------------------------


def test_a_read_only_user_sees_but_cannot_change(
    console_client_for: Callable[[User], Client],
    make_user: Callable[..., User],
    setup: dict,
) -> None:
    item = integration(setup, "Look only")
    client = console_client_for(make_user("integrations.list", "integrations.view"))

    listing = client.get(LIST).content.decode()
    assert names_in(listing) == ["Look only"]
    assert "New integration" not in listing
    assert "/delete/" not in listing and ">Edit<" not in listing
    assert ">View<" in listing

    list_only = console_client_for(make_user("integrations.list")).get(LIST).content.decode()
    assert names_in(list_only) == ["Look only"]
    assert edit_url(item) not in list_only  # no link to a page that would answer 403

    detail = client.get(edit_url(item))
    assert detail.status_code == 200
    page = detail.content.decode()
    assert "<fieldset disabled" in page
    assert ">Save<" not in page and ">Test<" not in page and "/delete/" not in page

    data = form_data(setup, name="Hacked")
    assert client.post(NEW, data).status_code == 403
    assert client.get(NEW).status_code == 403
    assert client.post(edit_url(item), data).status_code == 403
    assert client.post(f"{edit_url(item)}delete/").status_code == 403
    assert client.post(f"{edit_url(item)}test/").status_code == 403
    assert list(Integration.objects.values_list("name", flat=True)) == ["Look only"]


def test_without_list_the_page_is_refused(
    console_client_for: Callable[[User], Client], make_user: Callable[..., User]
) -> None:
    client = console_client_for(make_user("integrations.view"))
    response = client.get(LIST)
    assert response.status_code == 403
    assert "integrations.list" in response.content.decode()


def test_the_test_action_needs_create_as_in_the_api(
    console_client_for: Callable[[User], Client],
    make_user: Callable[..., User],
    setup: dict,
) -> None:
    item = integration(setup, "Edit only")
    editor = console_client_for(
        make_user("integrations.list", "integrations.view", "integrations.edit")
    )
    page = editor.get(edit_url(item)).content.decode()
    assert ">Save<" in page and ">Test<" not in page
    assert editor.post(f"{edit_url(item)}test/").status_code == 403


def test_tests_share_the_apis_budget(
    console_client: Client, setup: dict, imanage: IManageServer, settings: Any
) -> None:
    settings.OUTBOUND_TEST_RATE = "1/min"
    item = integration(setup, "Local", authentication_object=imanage_auth(imanage))
    run_test(console_client, item)
    second = console_client.post(f"{edit_url(item)}test/")
    assert second.status_code == 429
    assert "Too many tests. Try again in" in second.content.decode()
    assert len(imanage.requests) == 1
