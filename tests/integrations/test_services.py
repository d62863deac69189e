"""Authentication-object services: the checks every caller gets, not only the API."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.core.exceptions import ValidationError

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.integrations import services
from outbound.integrations.models import AuthenticationObject
from outbound.mail.services import smtp_config_create
from tests.core.helpers import CLIENT_SECRET, make_auth_object

pytestmark = pytest.mark.django_db

PROVIDER = "microsoft_client_credentials"


def test_create_seals_the_secret_and_fills_defaults(admin_user: User) -> None:
    obj = make_auth_object(admin_user)
    row = AuthenticationObject.objects.get(pk=obj.pk)
    assert row.parameters == {
        "tenant_id": "tenant-1",
        "client_id": "client-1",
        "authority_url": "https://login.microsoftonline.com",
        "scope": "https://outlook.office365.com/.default",
    }
    assert row.get_secret("client_secret") == CLIENT_SECRET
    assert row.created_by == row.modified_by == admin_user


@pytest.mark.parametrize("name", ["Line\nbreak", "Carriage\rreturn", "Nul\x00", "Tab\tname"])
def test_name_with_control_characters_is_refused(admin_user: User, name: str) -> None:
    with pytest.raises(ValidationError) as info:
        make_auth_object(admin_user, name=name)
    assert "name" in info.value.message_dict
    assert not AuthenticationObject.objects.exists()

    obj = make_auth_object(admin_user)
    with pytest.raises(ValidationError):
        services.authentication_object_update(obj=obj, data={"name": name}, actor=admin_user)
    assert AuthenticationObject.objects.get(pk=obj.pk).name == "Contoso"


def test_unknown_provider_is_a_validation_error(admin_user: User) -> None:
    with pytest.raises(ValidationError) as info:
        services.authentication_object_create(
            name="X", provider="google", params={}, actor=admin_user
        )
    assert "provider" in info.value.message_dict


def test_blank_required_parameter_on_update_is_refused(admin_user: User) -> None:
    obj = make_auth_object(admin_user)
    with pytest.raises(ValidationError) as info:
        services.authentication_object_update(
            obj=obj, data={"params": {"tenant_id": ""}}, actor=admin_user
        )
    assert info.value.message_dict == {"tenant_id": ["This field may not be blank."]}
    assert AuthenticationObject.objects.get(pk=obj.pk).param("tenant_id") == "tenant-1"


def test_non_https_authority_is_refused(admin_user: User) -> None:
    obj = make_auth_object(admin_user)
    for url in ("http://login.example.com", "ftp://login.example.com", "login.example.com"):
        with pytest.raises(ValidationError) as info:
            services.authentication_object_update(
                obj=obj, data={"params": {"authority_url": url}}, actor=admin_user
            )
        assert "authority_url" in info.value.message_dict


def test_update_records_who_changed_it(admin_user: User, make_user: Callable[..., User]) -> None:
    obj = make_auth_object(admin_user)
    editor = make_user("authentication_objects.edit")
    services.authentication_object_update(obj=obj, data={"name": "New"}, actor=editor)
    row = AuthenticationObject.objects.get(pk=obj.pk)
    assert row.created_by == admin_user
    assert row.modified_by == editor
    assert Event.objects.filter(action="updated").get().actor == editor


def test_object_used_by_an_smtp_configuration_is_kept(admin_user: User) -> None:
    obj = make_auth_object(admin_user)
    smtp_config_create(
        data={
            "host": "smtp.office365.com",
            "port": 587,
            "username": "mailer@example.com",
            "authorization_method": PROVIDER,
            "authentication_object": obj,
        },
        actor=admin_user,
    )
    with pytest.raises(ValidationError):
        services.authentication_object_delete(obj=obj, actor=admin_user)
    assert AuthenticationObject.objects.filter(pk=obj.pk).exists()
    assert not Event.objects.filter(action="deleted").exists()
