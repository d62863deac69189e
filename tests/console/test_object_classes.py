"""Object class pages: the list, create and edit with the fields table, field add / edit /
delete, unique names and limits next to the name, deletions an integration forbids, and what a
user without permission sees."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.test import Client

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.integrations.models import ObjectClass, ObjectClassField
from tests.console.test_credentials import error_for
from tests.integrations.factories import (
    make_field,
    make_imanage_auth,
    make_integration,
    make_object_class,
)

pytestmark = pytest.mark.django_db

LIST = "/console/object-classes/"
NEW = "/console/object-classes/new/"


def page_of(oc: ObjectClass) -> str:
    return f"{LIST}{oc.pk}/"


def used_by_integration(actor: User) -> tuple[ObjectClass, ObjectClassField]:
    oc = make_object_class(actor)
    field = make_field(actor, oc)
    make_integration(
        actor,
        name="Filing",
        authentication_object=make_imanage_auth(actor),
        object_class=oc,
        field=field,
    )
    return oc, field


# --- object classes ------------------------------------------------------------------------


def test_list_shows_name_description_and_field_count(
    console_client: Client, admin_user: User
) -> None:
    matter = make_object_class(admin_user, "Matter", "A legal case")
    make_field(admin_user, matter, "Matter number")
    make_field(admin_user, matter, "Client number")
    make_object_class(admin_user, "Contract")

    html = console_client.get(LIST).content.decode()

    assert "Matter" in html and "A legal case" in html and "Contract" in html
    assert '<td data-label="Fields">2</td>' in html
    assert '<td data-label="Fields">0</td>' in html
    most = console_client.get(LIST, {"ordering": "-fields"}).content.decode()
    assert most.index("A legal case") < most.index("Contract")


def test_create_opens_the_class_page_and_records_the_event(console_client: Client) -> None:
    response = console_client.post(NEW, {"name": "Matter", "description": "A legal case"})

    oc = ObjectClass.objects.get()
    assert response.status_code == 302 and response["Location"] == page_of(oc)
    assert oc.description == "A legal case"
    assert Event.objects.filter(
        resource_type="object_class", resource_id=str(oc.pk), action="created"
    ).exists()
    page = console_client.get(page_of(oc)).content.decode()
    assert "Object class Matter created." in page and "Add a field" in page


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "This field is required."),
        ("x" * 101, "Ensure this field has no more than 100 characters."),
        ("Mat\nter", "may not contain control characters"),
    ],
)
def test_bad_name_is_shown_next_to_the_name(
    console_client: Client, name: str, message: str
) -> None:
    response = console_client.post(NEW, {"name": name, "description": ""})
    assert response.status_code == 400
    assert message in error_for(response.content.decode(), "name")
    assert not ObjectClass.objects.exists()


def test_duplicate_name_is_refused_next_to_the_name(
    console_client: Client, admin_user: User
) -> None:
    make_object_class(admin_user, "Matter")
    response = console_client.post(NEW, {"name": "Matter"})
    assert response.status_code == 400
    assert "This field must be unique." in error_for(response.content.decode(), "name")
    assert ObjectClass.objects.count() == 1


def test_rename_and_duplicate_rename(console_client: Client, admin_user: User) -> None:
    oc = make_object_class(admin_user, "Matter")
    make_object_class(admin_user, "Contract")

    taken = console_client.post(page_of(oc), {"name": "Contract", "description": ""})
    assert taken.status_code == 400
    assert "This field must be unique." in error_for(taken.content.decode(), "name")
    oc.refresh_from_db()
    assert oc.name == "Matter"

    ok = console_client.post(page_of(oc), {"name": "Case", "description": "Renamed"})
    assert ok.status_code == 302
    oc.refresh_from_db()
    assert (oc.name, oc.description) == ("Case", "Renamed")


def test_delete_class_with_its_fields(console_client: Client, admin_user: User) -> None:
    oc = make_object_class(admin_user)
    make_field(admin_user, oc)
    url = f"{page_of(oc)}delete/"
    assert "Its 1 field will be deleted too." in console_client.get(url).content.decode()

    assert console_client.post(url).status_code == 302
    assert not ObjectClass.objects.exists() and not ObjectClassField.objects.exists()


def test_delete_class_used_by_an_integration_is_refused(
    console_client: Client, admin_user: User
) -> None:
    oc, _ = used_by_integration(admin_user)
    response = console_client.post(f"{page_of(oc)}delete/")
    assert response.status_code == 400
    assert (
        "This object class is used by an integration and cannot be deleted."
        in response.content.decode()
    )
    assert ObjectClass.objects.filter(pk=oc.pk).exists()


# --- fields --------------------------------------------------------------------------------


def test_class_page_lists_fields_with_controls(console_client: Client, admin_user: User) -> None:
    oc = make_object_class(admin_user)
    field = make_field(admin_user, oc, "Matter number", "The DMS key")
    html = console_client.get(page_of(oc)).content.decode()
    assert "Matter number" in html and "The DMS key" in html
    assert f"{page_of(oc)}fields/{field.pk}/" in html
    assert f"{page_of(oc)}fields/{field.pk}/delete/" in html
    # The class's form and the add-field form do not share ids.
    assert html.count('id="id_name"') == 1 and 'id="new-field-name"' in html


def test_add_field(console_client: Client, admin_user: User) -> None:
    oc = make_object_class(admin_user)
    response = console_client.post(
        f"{page_of(oc)}fields/new/", {"name": "Matter number", "description": ""}
    )
    assert response.status_code == 302 and response["Location"] == page_of(oc) + "#fields"
    assert list(oc.fields.values_list("name", flat=True)) == ["Matter number"]
    assert Event.objects.filter(resource_type="object_class_field", action="created").exists()


def test_duplicate_field_name_in_the_class_is_refused(
    console_client: Client, admin_user: User
) -> None:
    oc = make_object_class(admin_user)
    make_field(admin_user, oc, "Matter number")
    other = make_object_class(admin_user, "Contract")
    make_field(admin_user, other, "Number")

    response = console_client.post(f"{page_of(oc)}fields/new/", {"name": "Matter number"})
    assert response.status_code == 400
    assert "This field must be unique." in error_for(response.content.decode(), "name")
    assert oc.fields.count() == 1
    # Unique per class only.
    ok = console_client.post(f"{page_of(oc)}fields/new/", {"name": "Number"})
    assert ok.status_code == 302


def test_edit_field(console_client: Client, admin_user: User) -> None:
    oc = make_object_class(admin_user)
    field = make_field(admin_user, oc, "Matter number")
    url = f"{page_of(oc)}fields/{field.pk}/"
    assert 'value="Matter number"' in console_client.get(url).content.decode()

    too_long = console_client.post(url, {"name": "n" * 101})
    assert too_long.status_code == 400
    assert "no more than 100 characters" in error_for(too_long.content.decode(), "name")

    assert console_client.post(url, {"name": "Number", "description": "Key"}).status_code == 302
    field.refresh_from_db()
    assert (field.name, field.description) == ("Number", "Key")


def test_field_of_another_class_is_not_found(console_client: Client, admin_user: User) -> None:
    oc = make_object_class(admin_user)
    other = make_object_class(admin_user, "Contract")
    field = make_field(admin_user, other)
    assert console_client.get(f"{page_of(oc)}fields/{field.pk}/").status_code == 404


def test_delete_field(console_client: Client, admin_user: User) -> None:
    oc = make_object_class(admin_user)
    field = make_field(admin_user, oc)
    response = console_client.post(f"{page_of(oc)}fields/{field.pk}/delete/")
    assert response.status_code == 302
    assert not ObjectClassField.objects.exists()


def test_delete_field_used_by_an_integration_is_refused(
    console_client: Client, admin_user: User
) -> None:
    oc, field = used_by_integration(admin_user)
    response = console_client.post(f"{page_of(oc)}fields/{field.pk}/delete/")
    assert response.status_code == 400
    assert "is used by an integration and cannot be deleted" in response.content.decode()
    assert ObjectClassField.objects.filter(pk=field.pk).exists()


# --- permissions ---------------------------------------------------------------------------


def test_view_only_user_sees_no_controls_and_forged_posts_are_refused(
    make_user: Callable[..., User],
    console_client_for: Callable[[User], Client],
    admin_user: User,
) -> None:
    oc = make_object_class(admin_user)
    field = make_field(admin_user, oc)
    client = console_client_for(make_user("object_classes.list", "object_classes.view"))

    listing = client.get(LIST).content.decode()
    assert "Matter" in listing and "New object class" not in listing
    assert "/delete/" not in listing

    html = client.get(page_of(oc)).content.decode()
    assert "<fieldset disabled" in html and ">Save</button>" not in html
    assert "Add a field" not in html and "/delete/" not in html

    assert client.post(NEW, {"name": "X"}).status_code == 403
    assert client.post(page_of(oc), {"name": "X"}).status_code == 403
    assert client.post(f"{page_of(oc)}delete/").status_code == 403
    assert client.post(f"{page_of(oc)}fields/new/", {"name": "X"}).status_code == 403
    assert client.post(f"{page_of(oc)}fields/{field.pk}/", {"name": "X"}).status_code == 403
    assert client.post(f"{page_of(oc)}fields/{field.pk}/delete/").status_code == 403
    oc.refresh_from_db()
    field.refresh_from_db()
    assert oc.name == "Matter" and field.name == "Matter number"
    assert ObjectClass.objects.count() == 1 and ObjectClassField.objects.count() == 1


def test_create_permission_allows_adding_fields_but_not_editing(
    make_user: Callable[..., User],
    console_client_for: Callable[[User], Client],
    admin_user: User,
) -> None:
    oc = make_object_class(admin_user)
    client = console_client_for(
        make_user("object_classes.list", "object_classes.view", "object_classes.create")
    )
    html = client.get(page_of(oc)).content.decode()
    assert "Add a field" in html and "<fieldset disabled" in html
    assert client.post(f"{page_of(oc)}fields/new/", {"name": "Number"}).status_code == 302
