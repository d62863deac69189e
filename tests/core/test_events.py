"""The event stream: one event per write, in the write's transaction, in sequence order."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.exceptions import ValidationError

from outbound.accounts.models import User
from outbound.core.events import record_event, resource_details
from outbound.core.models import Event
from outbound.integrations import services as auth_services
from outbound.integrations.models import AuthenticationObject
from outbound.mail import services as mail_services
from outbound.mail.models import SmtpConfig
from tests.core.helpers import CLIENT_SECRET, SMTP_PASSWORD, make_auth_object, make_smtp_config

AUTH = "authentication_object"


def events_of(resource_type: str, resource_id: Any) -> list[Event]:
    return list(Event.objects.filter(resource_type=resource_type, resource_id=str(resource_id)))


@pytest.fixture
def failing_event_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every event write fail, as a full disk or a lost connection would."""

    def boom(self: Event, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("event store unavailable")

    monkeypatch.setattr(Event, "save", boom)


@pytest.mark.django_db
def test_create_update_delete_each_record_one_event(admin_user: User) -> None:
    obj = make_auth_object(admin_user)
    pk = obj.pk
    auth_services.authentication_object_update(
        obj=obj, data={"params": {"tenant_id": "tenant-2", "client_secret": "s2"}}, actor=admin_user
    )
    auth_services.authentication_object_update(
        obj=obj, data={"params": {"tenant_id": "tenant-2"}}, actor=admin_user
    )  # no change, no event
    auth_services.authentication_object_delete(
        obj=AuthenticationObject.objects.get(pk=pk), actor=admin_user
    )

    events = events_of(AUTH, pk)
    assert [e.action for e in events] == ["created", "updated", "deleted"]
    created, updated, _ = events
    assert {"name", "provider", "tenant_id", "client_id", "client_secret"} <= set(
        created.changed_fields
    )
    assert created.changed_fields == sorted(created.changed_fields)
    assert sorted(updated.changed_fields) == ["client_secret", "tenant_id"]
    assert all(e.actor == admin_user and e.actor_username == "admin" for e in events)


@pytest.mark.django_db
def test_smtp_config_write_records_event(admin_user: User) -> None:
    config = make_smtp_config(admin_user)
    [event] = events_of("smtp_config", config.pk)
    assert event.action == "created"
    assert {"host", "port", "username", "password"} <= set(event.changed_fields)


@pytest.mark.django_db
def test_event_without_actor_has_empty_username() -> None:
    event = record_event(resource_type="thing", resource_id=7, action="created", actor=None)
    assert event.actor is None
    assert event.actor_username == ""
    assert event.resource_id == "7"


@pytest.mark.django_db(transaction=True)
def test_failed_event_write_leaves_no_authentication_object(
    admin_user: User, failing_event_write: None
) -> None:
    with pytest.raises(RuntimeError):
        make_auth_object(admin_user)
    assert not AuthenticationObject.objects.exists()
    assert not Event.objects.filter(resource_type=AUTH).exists()


@pytest.mark.django_db(transaction=True)
def test_failed_event_write_leaves_no_smtp_config(
    admin_user: User, failing_event_write: None
) -> None:
    with pytest.raises(RuntimeError):
        make_smtp_config(admin_user)
    assert not SmtpConfig.objects.exists()
    assert not Event.objects.filter(resource_type="smtp_config").exists()


@pytest.mark.django_db(transaction=True)
def test_failed_event_write_leaves_the_row_unchanged(
    admin_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    obj = make_auth_object(admin_user)
    obj_pk = obj.pk  # a model delete clears obj.pk, even when the transaction rolls back
    config = make_smtp_config(admin_user)
    before = Event.objects.count()

    def boom(self: Event, *args: Any, **kwargs: Any) -> None:
        raise RuntimeError("event store unavailable")

    monkeypatch.setattr(Event, "save", boom)

    with pytest.raises(RuntimeError):
        auth_services.authentication_object_update(
            obj=obj, data={"name": "Renamed", "params": {"client_secret": "new"}}, actor=admin_user
        )
    with pytest.raises(RuntimeError):
        mail_services.smtp_config_update(
            config=config, data={"host": "changed.example.com", "password": "new"}, actor=admin_user
        )
    with pytest.raises(RuntimeError):
        auth_services.authentication_object_delete(obj=obj, actor=admin_user)

    obj = AuthenticationObject.objects.get(pk=obj_pk)
    assert obj.name == "Contoso"
    assert obj.get_secret("client_secret") == CLIENT_SECRET
    config = SmtpConfig.objects.get(pk=config.pk)
    assert config.host == "smtp.example.com"
    assert config.get_secret("password") == SMTP_PASSWORD
    monkeypatch.undo()
    assert Event.objects.count() == before


@pytest.mark.django_db(transaction=True)
def test_refused_write_records_no_event(admin_user: User) -> None:
    make_auth_object(admin_user)
    before = Event.objects.count()
    with pytest.raises(ValidationError):
        make_auth_object(admin_user)  # same name
    with pytest.raises(ValidationError):
        make_smtp_config(admin_user, host="bad host")
    assert Event.objects.count() == before
    assert AuthenticationObject.objects.count() == 1
    assert not SmtpConfig.objects.exists()


@pytest.mark.django_db
def test_sequence_strictly_increases_and_is_never_reused(admin_user: User) -> None:
    make_auth_object(admin_user, name="A")
    make_smtp_config(admin_user)
    obj = make_auth_object(admin_user, name="B")
    auth_services.authentication_object_delete(obj=obj, actor=admin_user)
    sequences = list(
        Event.objects.order_by("created_at", "sequence").values_list("sequence", flat=True)
    )
    assert sequences == sorted(set(sequences))

    last = Event.objects.order_by("sequence").last()
    assert last is not None
    last_sequence = last.sequence
    last.delete()
    after = make_auth_object(admin_user, name="C")
    assert events_of(AUTH, after.pk)[0].sequence > last_sequence


@pytest.mark.django_db
def test_resource_details_follow_the_events(admin_user: User) -> None:
    obj = make_auth_object(admin_user)
    auth_services.authentication_object_update(obj=obj, data={"name": "New"}, actor=admin_user)
    details = resource_details(AUTH, obj.pk)
    events = events_of(AUTH, obj.pk)
    assert details.sequence == events[-1].sequence
    assert details.creation_date == events[0].created_at
    assert details.change_date == events[-1].created_at
    assert resource_details(AUTH, 999_999).sequence == 0


@pytest.mark.django_db
def test_changed_fields_never_hold_secret_values(admin_user: User) -> None:
    obj = make_auth_object(admin_user)
    config = make_smtp_config(admin_user)
    auth_services.authentication_object_update(
        obj=obj, data={"params": {"client_secret": "rotated-client-secret"}}, actor=admin_user
    )
    mail_services.smtp_config_update(
        config=config, data={"password": "rotated-smtp-password"}, actor=admin_user
    )

    secrets = {SMTP_PASSWORD, CLIENT_SECRET, "rotated-client-secret", "rotated-smtp-password"}
    for event in Event.objects.all():
        assert not secrets & set(event.changed_fields)
        assert not any(s in repr(event.changed_fields) for s in secrets)
    updates = Event.objects.filter(action="updated")
    assert sorted(e.changed_fields for e in updates) == [["client_secret"], ["password"]]
