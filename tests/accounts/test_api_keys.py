"""``/api/auth/api-keys/`` and ``Authorization: Api-Key …``: keys for services, shown once,
stored hashed, limited to a subset of their owner's permissions, revocable."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.forms.models import model_to_dict
from django.utils import timezone
from rest_framework.test import APIClient

from outbound.accounts import services
from outbound.accounts.models import ApiKey, User
from outbound.core.models import Event
from tests.conftest import client_for

URL = "/api/auth/api-keys/"
SMTP = "/api/administration/smtp-settings/"  # needs outbound_mail_setup.view
USERS = "/api/users/"  # needs users.list
INVALID = {"detail": "Invalid API key."}
ENVELOPE = {"limit", "offset", "total_count", "filtered_count", "next", "previous", "results"}


def with_key(key: str, scheme: str = "Api-Key") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {key}")
    return client


def create_key(client: APIClient, *permissions: str, **extra: Any) -> dict[str, Any]:
    r = client.post(URL, {"name": "ci", "permissions": list(permissions), **extra}, format="json")
    assert r.status_code == 201, r.data
    return dict(r.data)


def assert_invalid_key(response: Any) -> None:
    assert response.status_code == 401, response.data
    assert response.data == INVALID


@pytest.fixture
def owner(make_user: Callable[..., User]) -> User:
    """Holds both permissions; its keys get only the first."""
    return make_user("outbound_mail_setup.view", "users.list", username="owner")


@pytest.fixture
def owner_client(owner: User) -> APIClient:
    return client_for(owner)


# --- creating, and what the key can do --------------------------------------------------


@pytest.mark.django_db
def test_create_shows_the_key_once_and_it_works_within_its_permissions(
    owner: User, owner_client: APIClient
) -> None:
    r = owner_client.post(
        URL, {"name": "monitoring", "permissions": ["outbound_mail_setup.view"]}, format="json"
    )
    assert r.status_code == 201, r.data
    assert set(r.data) == {"id", "name", "prefix", "permissions", "created_at", "expires_at", "key"}
    assert r.data["name"] == "monitoring"
    assert r.data["permissions"] == ["outbound_mail_setup.view"]
    assert r.data["expires_at"] is None
    key = r.data["key"]
    assert ApiKey.objects.get(pk=r.data["id"]).owner == owner
    assert key.startswith(f"ob_{r.data['prefix']}_")
    assert len(key.split("_", 2)[2]) >= 43  # 32 random bytes, base64url

    client = with_key(key)
    assert client.get(SMTP).status_code == 200
    # The owner may list users, the key may not: it carries only what it was given.
    r = client.get(USERS)
    assert r.status_code == 403, r.data
    assert client.get("/api/users/permissions/users/").data == {
        "list": False,
        "view": False,
        "create": False,
        "edit": False,
        "delete": False,
    }
    # The owner's JWT keeps all the owner's permissions.
    assert owner_client.get(USERS).status_code == 200


@pytest.mark.django_db
def test_a_superusers_key_is_limited_too(admin_client: APIClient) -> None:
    key = create_key(admin_client, "outbound_mail_setup.view")["key"]
    assert with_key(key).get(SMTP).status_code == 200
    assert with_key(key).get(USERS).status_code == 403
    assert with_key(key).get("/api/roles/").status_code == 403


@pytest.mark.django_db
def test_the_scheme_name_is_case_insensitive(owner_client: APIClient) -> None:
    key = create_key(owner_client, "outbound_mail_setup.view")["key"]
    assert with_key(key, "api-key").get(SMTP).status_code == 200


@pytest.mark.django_db
def test_a_key_may_carry_only_permissions_its_creator_holds(
    make_user: Callable[..., User],
) -> None:
    client = client_for(make_user("outbound_mail_setup.view"))
    r = client.post(
        URL,
        {"name": "x", "permissions": ["outbound_mail_setup.view", "users.list", "roles.edit"]},
        format="json",
    )
    assert r.status_code == 400, r.data
    assert r.data == {
        "permissions": [
            'You cannot grant a permission you do not hold: "users.list".',
            'You cannot grant a permission you do not hold: "roles.edit".',
        ]
    }
    r = client.post(URL, {"name": "x", "permissions": ["nope.view"]}, format="json")
    assert r.status_code == 400
    assert r.data == {"permissions": ['"nope.view" is not a known permission.']}
    assert not ApiKey.objects.exists()
    assert not Event.objects.filter(resource_type="api_key").exists()


@pytest.mark.django_db
def test_create_validates_its_input(owner_client: APIClient) -> None:
    r = owner_client.post(URL, {"permissions": []}, format="json")
    assert r.status_code == 400
    assert "name" in r.data
    r = owner_client.post(URL, {"name": "n" * 101, "permissions": []}, format="json")
    assert r.status_code == 400
    assert "name" in r.data
    r = owner_client.post(URL, {"name": "x"}, format="json")
    assert r.status_code == 400
    assert "permissions" in r.data
    past = (timezone.now() - timedelta(minutes=1)).isoformat()
    r = owner_client.post(URL, {"name": "x", "permissions": [], "expires_at": past}, format="json")
    assert r.status_code == 400
    assert r.data == {"expires_at": ["The expiry must be in the future."]}
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_a_key_with_an_expiry_works_until_then(owner_client: APIClient) -> None:
    later = timezone.now() + timedelta(hours=1)
    created = create_key(owner_client, "outbound_mail_setup.view", expires_at=later.isoformat())
    assert created["expires_at"] is not None
    assert with_key(created["key"]).get(SMTP).status_code == 200
    ApiKey.objects.filter(pk=created["id"]).update(expires_at=timezone.now())
    assert_invalid_key(with_key(created["key"]).get(SMTP))


# --- the key is never shown again nor stored -------------------------------------------


@pytest.mark.django_db
def test_the_key_is_never_returned_again_nor_stored_in_plaintext(
    owner_client: APIClient,
) -> None:
    created = create_key(owner_client, "outbound_mail_setup.view")
    key = created["key"]
    secret = key.split("_", 2)[2]
    for r in (owner_client.get(URL), owner_client.get(f"{URL}{created['id']}/")):
        assert r.status_code == 200
        body = r.content.decode()
        assert secret not in body
        assert "hashed" not in body
        assert '"key"' not in body
    detail = owner_client.get(f"{URL}{created['id']}/").data
    assert detail["prefix"] == created["prefix"]
    assert detail["last_used_at"] is None
    assert detail["revoked_at"] is None

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {ApiKey._meta.db_table}")
        rows = cursor.fetchall()
    assert len(rows) == 1
    stored = " ".join(str(v) for v in rows[0])
    assert secret not in stored
    assert key not in stored
    assert created["prefix"] in stored  # the public part is what finds the row


@pytest.mark.django_db
def test_list_uses_the_envelope_and_shows_only_the_callers_keys(
    owner: User, owner_client: APIClient, make_user: Callable[..., User]
) -> None:
    mine = create_key(owner_client, "outbound_mail_setup.view")
    other_user = make_user("outbound_mail_setup.view")
    other_client = client_for(other_user)
    theirs = create_key(other_client, "outbound_mail_setup.view")

    r = owner_client.get(URL)
    assert r.status_code == 200
    assert set(r.data) == ENVELOPE
    assert r.data["total_count"] == 1
    assert [k["id"] for k in r.data["results"]] == [mine["id"]]
    assert r.data["results"][0]["owner"] == owner.pk
    # Someone else's key does not exist as far as the owner is concerned.
    assert owner_client.get(f"{URL}{theirs['id']}/").status_code == 404
    assert owner_client.delete(f"{URL}{theirs['id']}/").status_code == 404
    assert with_key(theirs["key"]).get(SMTP).status_code == 200


@pytest.mark.django_db
def test_a_superuser_sees_and_revokes_everyones_keys(
    admin_client: APIClient, owner_client: APIClient
) -> None:
    created = create_key(owner_client, "outbound_mail_setup.view")
    r = admin_client.get(URL)
    assert [k["id"] for k in r.data["results"]] == [created["id"]]
    assert admin_client.delete(f"{URL}{created['id']}/").status_code == 204
    assert_invalid_key(with_key(created["key"]).get(SMTP))


@pytest.mark.django_db
def test_keys_cannot_be_updated(owner_client: APIClient) -> None:
    created = create_key(owner_client, "outbound_mail_setup.view")
    r = owner_client.patch(f"{URL}{created['id']}/", {"permissions": []}, format="json")
    assert r.status_code == 405


@pytest.mark.django_db
def test_managing_keys_needs_a_signed_in_user(db: None) -> None:
    assert APIClient().get(URL).status_code == 401
    assert APIClient().post(URL, {"name": "x", "permissions": []}, format="json").status_code == 401


# --- when a key stops working -----------------------------------------------------------


@pytest.mark.django_db
def test_delete_revokes_at_once_and_keeps_the_row(owner_client: APIClient) -> None:
    created = create_key(owner_client, "outbound_mail_setup.view")
    client = with_key(created["key"])
    assert client.get(SMTP).status_code == 200
    r = owner_client.delete(f"{URL}{created['id']}/")
    assert r.status_code == 204
    assert_invalid_key(client.get(SMTP))
    detail = owner_client.get(f"{URL}{created['id']}/").data
    assert detail["revoked_at"] is not None
    # Revoking again changes nothing and records nothing.
    assert owner_client.delete(f"{URL}{created['id']}/").status_code == 204
    events = Event.objects.filter(resource_type="api_key", resource_id=str(created["id"]))
    assert [e.action for e in events] == ["created", "revoked"]


@pytest.mark.django_db
@pytest.mark.parametrize(
    "header",
    [
        "Api-Key garbage",
        "Api-Key ob_abcdefgh_" + "A" * 43,  # well-formed, unknown prefix
        "Api-Key ob_ABCDEFGH_" + "A" * 43,  # prefix outside the alphabet
        "Api-Key " + "ob_abcdefgh_" + "A" * 500,  # far too long
        "Api-Key",
        "Api-Key one two",
    ],
)
def test_garbage_keys_get_401(owner: User, header: str) -> None:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert_invalid_key(client.get(SMTP))


@pytest.mark.django_db
def test_a_known_prefix_with_a_wrong_secret_gets_401(owner_client: APIClient) -> None:
    key = create_key(owner_client, "outbound_mail_setup.view")["key"]
    prefix, secret = key.split("_", 2)[1:]
    wrong = "B" if secret[-1] != "B" else "C"
    assert_invalid_key(with_key(f"ob_{prefix}_{secret[:-1]}{wrong}").get(SMTP))
    assert_invalid_key(with_key(f"ob_{prefix}_").get(SMTP))
    assert with_key(key).get(SMTP).status_code == 200


@pytest.mark.django_db
def test_a_deactivated_owners_keys_stop_working(owner: User, owner_client: APIClient) -> None:
    key = create_key(owner_client, "outbound_mail_setup.view")["key"]
    owner.is_active = False
    owner.save()
    assert_invalid_key(with_key(key).get(SMTP))
    owner.is_active = True
    owner.save()
    assert with_key(key).get(SMTP).status_code == 200


@pytest.mark.django_db
def test_a_deleted_owners_keys_go_with_it(owner: User, owner_client: APIClient) -> None:
    key = create_key(owner_client, "outbound_mail_setup.view")["key"]
    owner.delete()
    assert not ApiKey.objects.exists()
    assert_invalid_key(with_key(key).get(SMTP))


@pytest.mark.django_db
def test_a_key_loses_what_its_owner_loses(owner: User, owner_client: APIClient) -> None:
    key = create_key(owner_client, "outbound_mail_setup.view")["key"]
    assert with_key(key).get(SMTP).status_code == 200
    role = owner.roles.get()
    role.permissions = ["users.list"]
    role.save()
    assert with_key(key).get(SMTP).status_code == 403
    # ...and does not gain what its owner gains beyond the key.
    role.permissions = ["outbound_mail_setup.view", "users.list", "roles.list"]
    role.save()
    assert with_key(key).get(SMTP).status_code == 200
    assert with_key(key).get("/api/roles/").status_code == 403


@pytest.mark.django_db
def test_last_used_at_is_written_at_most_once_a_minute(owner_client: APIClient) -> None:
    created = create_key(owner_client, "outbound_mail_setup.view")
    client = with_key(created["key"])
    assert ApiKey.objects.get(pk=created["id"]).last_used_at is None

    before = timezone.now()
    assert client.get(SMTP).status_code == 200
    first = ApiKey.objects.get(pk=created["id"]).last_used_at
    assert first is not None
    assert first >= before

    assert client.get(SMTP).status_code == 200  # within the minute: no write
    assert ApiKey.objects.get(pk=created["id"]).last_used_at == first

    long_ago = timezone.now() - timedelta(minutes=2)
    ApiKey.objects.filter(pk=created["id"]).update(last_used_at=long_ago)
    assert client.get(SMTP).status_code == 200
    latest = ApiKey.objects.get(pk=created["id"]).last_used_at
    assert latest is not None
    assert latest > long_ago + timedelta(minutes=1)
    assert owner_client.get(f"{URL}{created['id']}/").data["last_used_at"] is not None


# --- a key cannot manage keys -----------------------------------------------------------


@pytest.mark.django_db
def test_a_request_made_with_a_key_cannot_create_or_manage_keys(
    admin_client: APIClient,
) -> None:
    created = create_key(admin_client, "users.list", "users.view")
    client = with_key(created["key"])
    r = client.post(URL, {"name": "more", "permissions": ["users.list"]}, format="json")
    assert r.status_code == 403, r.data
    assert r.data == {"detail": "This cannot be done with an API key."}
    assert client.get(URL).status_code == 403
    assert client.get(f"{URL}{created['id']}/").status_code == 403
    assert client.delete(f"{URL}{created['id']}/").status_code == 403
    assert ApiKey.objects.count() == 1
    assert ApiKey.objects.get().revoked_at is None


@pytest.mark.django_db
def test_the_service_refuses_an_actor_acting_through_a_key(owner: User) -> None:
    owner._outbound_permission_limit = frozenset({"outbound_mail_setup.view"})  # type: ignore[attr-defined]
    with pytest.raises(PermissionDenied):
        services.api_key_create(
            owner=owner, name="x", permissions=["outbound_mail_setup.view"], actor=owner
        )
    assert not ApiKey.objects.exists()


# --- events -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_events_name_fields_and_hold_no_key_material(owner: User, owner_client: APIClient) -> None:
    created = create_key(owner_client, "outbound_mail_setup.view")
    with_key(created["key"]).get(SMTP)
    owner_client.delete(f"{URL}{created['id']}/")
    events = list(Event.objects.filter(resource_type="api_key"))
    assert [(e.action, e.actor, e.resource_id) for e in events] == [
        ("created", owner, str(created["id"])),
        ("revoked", owner, str(created["id"])),
    ]
    assert events[0].changed_fields == ["expires_at", "name", "permissions"]
    assert events[1].changed_fields == ["revoked_at"]
    text = json.dumps([model_to_dict(e) for e in Event.objects.all()], default=str)
    stored = ApiKey.objects.get(pk=created["id"]).hashed_key
    for material in (created["key"], created["key"].split("_", 2)[2], stored):
        assert material not in text


@pytest.mark.django_db
def test_create_rolls_back_when_its_event_fails(
    owner_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    class EventWriteFailed(Exception):
        pass

    def boom(**kwargs: Any) -> None:
        raise EventWriteFailed

    monkeypatch.setattr(services, "record_event", boom)
    with pytest.raises(EventWriteFailed):
        owner_client.post(URL, {"name": "x", "permissions": []}, format="json")
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_jwt_and_api_keys_work_side_by_side(owner: User, owner_client: APIClient) -> None:
    key = create_key(owner_client, "outbound_mail_setup.view")["key"]
    assert owner_client.get(USERS).status_code == 200
    assert client_for(owner, "Bearer").get(USERS).status_code == 200
    assert with_key(key).get(SMTP).status_code == 200
