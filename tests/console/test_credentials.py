"""Credentials pages: the list, the provider-generated forms (secrets write-only), inline
service errors, deletion refused while in use, and what a user without permission sees."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.integrations import services
from outbound.integrations.models import AuthenticationObject
from outbound.integrations.providers import PROVIDERS, Param, Provider
from outbound.mail.models import SmtpConfig
from tests.console.conftest import error_for
from tests.integrations.factories import (
    IMANAGE_CLIENT_SECRET,
    IMANAGE_PASSWORD,
    make_field,
    make_imanage_auth,
    make_integration,
    make_object_class,
)

pytestmark = pytest.mark.django_db

LIST = "/console/credentials/"
NEW = "/console/credentials/new/"
MS_SECRET = "ms-Client-S3cret-value"


def ms_body(**overrides: str) -> dict[str, str]:
    body = {
        "provider": "microsoft_client_credentials",
        "name": "Office 365",
        "tenant_id": "tenant-1234",
        "client_id": "client-5678",
        "client_secret": MS_SECRET,
        "authority_url": "https://login.microsoftonline.com",
        "scope": "https://outlook.office365.com/.default",
    }
    body.update(overrides)
    return body


def make_ms(actor: Any, name: str = "Office 365") -> AuthenticationObject:
    return services.authentication_object_create(
        name=name,
        provider="microsoft_client_credentials",
        params={"tenant_id": "tenant-1234", "client_id": "client-5678", "client_secret": MS_SECRET},
        actor=actor,
    )


def smtp_using(obj: AuthenticationObject) -> SmtpConfig:
    return SmtpConfig.objects.create(
        host="smtp.office365.com",
        port=587,
        authorization_method="microsoft_client_credentials",
        authentication_object=obj,
    )


# --- list ----------------------------------------------------------------------------------


def test_list_shows_provider_public_values_secret_state_and_use(
    console_client: Client, admin_user: User
) -> None:
    ms = make_ms(admin_user)
    imanage = make_imanage_auth(admin_user)
    oc = make_object_class(admin_user)
    make_integration(
        admin_user,
        name="Filing",
        authentication_object=imanage,
        object_class=oc,
        field=make_field(admin_user, oc),
    )
    smtp_using(ms)

    html = console_client.get(LIST).content.decode()

    assert "Office 365" in html and "iManage prod" in html
    assert "Microsoft Client Credentials" in html
    assert "tenant-1234" in html and "https://imanage.example.com" in html
    assert "Client secret:" in html and ">set<" in html
    assert "1 integration" in html and "1 SMTP configuration" in html
    for secret in (MS_SECRET, IMANAGE_PASSWORD, IMANAGE_CLIENT_SECRET):
        assert secret not in html


def test_list_filters_by_provider_and_sorts(console_client: Client, admin_user: User) -> None:
    make_ms(admin_user, name="Alpha")
    make_imanage_auth(admin_user, name="Beta")

    only_imanage = console_client.get(LIST, {"provider": "imanage"}).content.decode()
    assert "Beta" in only_imanage and "Alpha" not in only_imanage

    reversed_names = console_client.get(LIST, {"ordering": "-name"}).content.decode()
    assert reversed_names.index("Beta") < reversed_names.index("Alpha")


def test_empty_list(console_client: Client) -> None:
    response = console_client.get(LIST)
    assert response.status_code == 200
    assert "No credentials yet." in response.content.decode()


# --- create --------------------------------------------------------------------------------


def test_new_asks_for_the_provider_first(console_client: Client) -> None:
    html = console_client.get(NEW).content.decode()
    assert '<select name="provider"' in html
    assert "Microsoft Client Credentials" in html and "iManage" in html

    bad = console_client.get(NEW, {"provider": "nope"})
    assert bad.status_code == 400
    assert error_for(bad.content.decode(), "provider") == "nope is not a valid choice."


def test_form_is_generated_from_the_provider_params(console_client: Client) -> None:
    html = console_client.get(NEW, {"provider": "microsoft_client_credentials"}).content.decode()
    assert 'name="tenant_id"' in html and 'maxlength="100"' in html
    assert 'type="password" name="client_secret"' in html
    # Defaults are the initial values; a URL parameter says what it expects.
    assert 'value="https://login.microsoftonline.com"' in html
    assert 'type="url" name="authority_url"' in html
    assert "An https:// address." in html
    assert "Not set." in html


def test_a_provider_added_to_the_registry_gets_its_form(
    console_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = Provider(
        key="acme",
        label="Acme Vault",
        params=(Param("api_token", max_length=64, secret=True, label="API token"),),
    )
    monkeypatch.setitem(PROVIDERS, "acme", extra)
    html = console_client.get(NEW, {"provider": "acme"}).content.decode()
    assert "Acme Vault" in html
    assert 'type="password" name="api_token"' in html and 'maxlength="64"' in html


def test_create_saves_the_row_seals_the_secret_and_records_the_event(
    console_client: Client,
) -> None:
    response = console_client.post(NEW + "?provider=microsoft_client_credentials", ms_body())

    assert response.status_code == 302 and response["Location"] == LIST
    obj = AuthenticationObject.objects.get()
    assert obj.name == "Office 365" and obj.provider == "microsoft_client_credentials"
    assert obj.param("tenant_id") == "tenant-1234"
    assert obj.get_secret("client_secret") == MS_SECRET
    event = Event.objects.get(resource_type="authentication_object", action="created")
    assert event.resource_id == str(obj.pk)
    assert "client_secret" in event.changed_fields
    page = console_client.get(LIST).content.decode()
    assert "Credential Office 365 created." in page


def test_empty_optional_param_takes_the_default(console_client: Client) -> None:
    console_client.post(NEW, ms_body(authority_url="", scope=""))
    obj = AuthenticationObject.objects.get()
    assert obj.param("authority_url") == "https://login.microsoftonline.com"
    assert obj.param("scope") == "https://outlook.office365.com/.default"


def test_secrets_never_appear_in_pages(console_client: Client) -> None:
    console_client.post(NEW, ms_body())
    obj = AuthenticationObject.objects.get()

    for url in (LIST, f"/console/credentials/{obj.pk}/", f"/console/credentials/{obj.pk}/delete/"):
        html = console_client.get(url).content.decode()
        assert MS_SECRET not in html, url
    edit = console_client.get(f"/console/credentials/{obj.pk}/").content.decode()
    assert "A value is saved; leave empty to keep it." in edit


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"tenant_id": ""}, "tenant_id", "This field is required."),
        ({"client_secret": ""}, "client_secret", "This field is required."),
        ({"name": "x" * 101}, "name", "Ensure this field has no more than 100 characters."),
        ({"tenant_id": "t" * 101}, "tenant_id", "no more than 100 characters."),
        ({"authority_url": "http://login.example.com"}, "authority_url", "Enter a valid URL."),
        ({"name": "Office\n365"}, "name", "may not contain control characters"),
        ({"client_id": "abc\r\n"}, "client_id", "may not contain control characters"),
    ],
)
def test_bad_input_is_shown_next_to_its_field_and_nothing_is_saved(
    console_client: Client, body: dict[str, str], field: str, message: str
) -> None:
    response = console_client.post(NEW, ms_body(**body))

    assert response.status_code == 400
    assert message in error_for(response.content.decode(), field)
    assert not AuthenticationObject.objects.exists()
    assert MS_SECRET not in response.content.decode()  # the typed secret is not echoed


def test_duplicate_name_is_refused_next_to_the_name(
    console_client: Client, admin_user: User
) -> None:
    make_ms(admin_user)
    response = console_client.post(NEW, ms_body())

    assert response.status_code == 400
    assert "already exists" in error_for(response.content.decode(), "name")
    assert AuthenticationObject.objects.count() == 1


def test_create_without_permission_is_refused(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    client = console_client_for(make_user("authentication_objects.list"))
    assert client.get(NEW).status_code == 403
    assert client.post(NEW, ms_body()).status_code == 403
    assert not AuthenticationObject.objects.exists()


# --- edit ----------------------------------------------------------------------------------


def test_edit_keeps_an_empty_secret_and_changes_the_rest(
    console_client: Client, admin_user: User
) -> None:
    obj = make_ms(admin_user)
    url = f"/console/credentials/{obj.pk}/"
    html = console_client.get(url).content.decode()
    assert 'value="tenant-1234"' in html
    assert "The provider cannot be changed." in html

    scope = "https://graph.microsoft.com/.default"
    response = console_client.post(url, ms_body(name="O365", scope=scope, client_secret=""))

    assert response.status_code == 302
    obj.refresh_from_db()
    assert obj.name == "O365" and obj.param("scope") == scope
    assert obj.get_secret("client_secret") == MS_SECRET
    event = Event.objects.filter(resource_type="authentication_object", action="updated").get()
    assert set(event.changed_fields) == {"name", "scope"}
    # Another tenant is another destination: the saved secret does not follow it.
    refused = console_client.post(url, ms_body(tenant_id="tenant-9", client_secret=""))
    assert refused.status_code == 400
    assert "Enter this secret again" in error_for(refused.content.decode(), "client_secret")


def test_edit_replaces_a_secret_when_one_is_typed(console_client: Client, admin_user: User) -> None:
    obj = make_ms(admin_user)
    console_client.post(f"/console/credentials/{obj.pk}/", ms_body(client_secret="new-secret"))
    obj.refresh_from_db()
    assert obj.get_secret("client_secret") == "new-secret"


def test_provider_cannot_be_changed_on_edit(console_client: Client, admin_user: User) -> None:
    obj = make_ms(admin_user)
    response = console_client.post(
        f"/console/credentials/{obj.pk}/", ms_body(provider="imanage", name="Changed")
    )
    # The provider posted is ignored: the object's own provider's form is what is read.
    assert response.status_code == 302
    obj.refresh_from_db()
    assert obj.provider == "microsoft_client_credentials" and obj.name == "Changed"


def test_edit_error_keeps_the_row(console_client: Client, admin_user: User) -> None:
    obj = make_ms(admin_user)
    make_ms(admin_user, name="Taken")
    response = console_client.post(f"/console/credentials/{obj.pk}/", ms_body(name="Taken"))
    assert response.status_code == 400
    assert "already exists" in error_for(response.content.decode(), "name")
    obj.refresh_from_db()
    assert obj.name == "Office 365"


# --- delete --------------------------------------------------------------------------------


def test_delete_after_confirmation(console_client: Client, admin_user: User) -> None:
    obj = make_ms(admin_user)
    url = f"/console/credentials/{obj.pk}/delete/"
    assert "Delete credential “Office 365”?" in console_client.get(url).content.decode()

    response = console_client.post(url)

    assert response.status_code == 302
    assert not AuthenticationObject.objects.exists()
    assert Event.objects.filter(resource_type="authentication_object", action="deleted").exists()


def test_delete_in_use_by_an_integration_is_refused(
    console_client: Client, admin_user: User
) -> None:
    auth = make_imanage_auth(admin_user)
    oc = make_object_class(admin_user)
    make_integration(
        admin_user,
        name="Filing",
        authentication_object=auth,
        object_class=oc,
        field=make_field(admin_user, oc),
    )
    url = f"/console/credentials/{auth.pk}/delete/"
    assert "used by 1 integration" in console_client.get(url).content.decode()

    response = console_client.post(url)

    assert response.status_code == 400
    assert "is used by an integration and cannot be deleted" in response.content.decode()
    assert AuthenticationObject.objects.filter(pk=auth.pk).exists()


def test_delete_in_use_by_smtp_is_refused(console_client: Client, admin_user: User) -> None:
    obj = make_ms(admin_user)
    smtp_using(obj)
    response = console_client.post(f"/console/credentials/{obj.pk}/delete/")
    assert response.status_code == 400
    assert "used by an SMTP configuration" in response.content.decode()
    assert AuthenticationObject.objects.filter(pk=obj.pk).exists()


# --- permissions ---------------------------------------------------------------------------


def test_list_and_view_only_user_sees_no_controls_and_forged_posts_are_refused(
    make_user: Callable[..., User],
    console_client_for: Callable[[User], Client],
    admin_user: User,
) -> None:
    obj = make_ms(admin_user)
    client = console_client_for(
        make_user("authentication_objects.list", "authentication_objects.view")
    )

    listing = client.get(LIST).content.decode()
    assert "Office 365" in listing
    assert "New credential" not in listing
    assert f"/console/credentials/{obj.pk}/delete/" not in listing
    assert ">View</a>" in listing and ">Edit</a>" not in listing

    edit = client.get(f"/console/credentials/{obj.pk}/")
    assert edit.status_code == 200
    html = edit.content.decode()
    assert "<fieldset disabled" in html and ">Save</button>" not in html
    assert MS_SECRET not in html

    forged = client.post(f"/console/credentials/{obj.pk}/", ms_body(name="Hijacked"))
    assert forged.status_code == 403
    assert client.post(f"/console/credentials/{obj.pk}/delete/").status_code == 403
    obj.refresh_from_db()
    assert obj.name == "Office 365"


def test_list_only_user_cannot_open_a_credential(
    make_user: Callable[..., User],
    console_client_for: Callable[[User], Client],
    admin_user: User,
) -> None:
    obj = make_ms(admin_user)
    client = console_client_for(make_user("authentication_objects.list"))
    listing = client.get(LIST).content.decode()
    assert f"/console/credentials/{obj.pk}/" not in listing
    assert client.get(f"/console/credentials/{obj.pk}/").status_code == 403


def test_no_list_permission_no_menu_entry_and_403(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    client = console_client_for(make_user("object_classes.list"))
    assert client.get(LIST).status_code == 403
    assert 'href="/console/credentials/"' not in client.get("/console/").content.decode()
