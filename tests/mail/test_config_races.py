"""A change racing a delete, two deletes racing, a rollback racing a later update: every API
shape answers what happened (a 404 in its own error shape, one 204, the version the rollback
saved), never a 500, and records each change once.

Each race is played twice: deterministically on any database (the row is deleted between the
view's lookup and the service's write), and on PostgreSQL for real, with threads blocked on
the row's lock while another transaction deletes it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection, transaction
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.dialects.privx import views as privx_views
from outbound.dialects.zitadel.views import ZitadelView
from outbound.mail import services
from outbound.mail.api import version_views
from outbound.mail.api.config_views import SmtpConfigurationViewSet
from outbound.mail.models import SmtpConfig
from outbound.webhooks import services as webhook_services
from outbound.webhooks.models import WebhookDelivery
from tests.conftest import client_for
from tests.support.smtp import free_port

URL = "/api/smtp-configurations/"
ZITADEL = "/admin/v1/smtp"
PRIVX = "/workflow-engine/api/v1/settings"
DELETED = "The SMTP configuration was deleted."
NATIVE_GONE = {"detail": DELETED, "error_code": "not_found"}
BODY: dict[str, Any] = {
    "host": "smtp.example.com",
    "port": 587,
    "security": "starttls",
    "username": "mailer@example.com",
    "password": "s3cret-Pa55word",
    "sender_address": "app@example.com",
}

postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="row locks that block: PostgreSQL"
)


def make_config(client: APIClient, *, active: bool = False, **fields: Any) -> int:
    r = client.post(URL, {**BODY, **fields}, format="json")
    assert r.status_code == 201, r.content
    pk = int(r.json()["id"])
    if active:
        assert client.post(f"{URL}{pk}/activate/", {}, format="json").status_code == 200
    return pk


def config_events(pk: int) -> list[str]:
    rows = Event.objects.filter(resource_type="smtp_config", resource_id=pk).order_by("sequence")
    return [e.action for e in rows]


def assert_zitadel_not_found(r: Any) -> None:
    assert r.status_code == 404, r.content
    body = r.json()
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == 5, body  # gRPC NotFound
    assert body["message"].startswith(DELETED), body


def assert_privx_not_found(r: Any) -> None:
    assert r.status_code == 404, r.content
    body = r.json()
    assert set(body) == {"error_code", "error_message", "property", "details"}, body
    assert body["error_message"] == DELETED


# --- deterministic: the row is deleted between the view's lookup and the service's write ----


def delete_after(lookup: Callable[..., Any]) -> Callable[..., Any]:
    """``lookup`` as it was, then the row is deleted (by someone else): a stale instance."""

    def stale(*args: Any, **kwargs: Any) -> Any:
        config = lookup(*args, **kwargs)
        SmtpConfig.objects.filter(pk=config.pk).delete()
        return config

    return stale


NATIVE_OPERATIONS: dict[str, tuple[str, str, dict[str, Any], bool]] = {
    # name: (method, path under the configuration, body, active before)
    "patch": ("patch", "", {"description": "changed"}, False),
    "activate": ("post", "activate/", {}, False),
    "deactivate": ("post", "deactivate/", {}, True),
    "delete": ("delete", "", {}, False),
}


@pytest.mark.django_db
@pytest.mark.parametrize("operation", sorted(NATIVE_OPERATIONS))
def test_native_change_of_a_configuration_deleted_meanwhile_is_a_404(
    admin_client: APIClient, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    method, tail, body, active = NATIVE_OPERATIONS[operation]
    pk = make_config(admin_client, active=active)
    before = config_events(pk)
    monkeypatch.setattr(
        SmtpConfigurationViewSet, "get_object", delete_after(SmtpConfigurationViewSet.get_object)
    )
    r = getattr(admin_client, method)(f"{URL}{pk}/{tail}", body, format="json")
    assert r.status_code == 404, r.content
    assert r.json() == NATIVE_GONE
    assert config_events(pk) == before  # nothing recorded for what did not happen
    assert not SmtpConfig.objects.filter(pk=pk).exists()


@pytest.mark.django_db
def test_native_rollback_of_a_configuration_deleted_meanwhile_is_a_404(
    admin_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pk = make_config(admin_client)
    admin_client.patch(f"{URL}{pk}/", {"port": 2525, "password": "an0ther-Pa55"}, format="json")
    monkeypatch.setattr(version_views, "_config", delete_after(version_views._config))
    r = admin_client.post(f"{URL}{pk}/rollback/", {"version": 1}, format="json")
    assert r.status_code == 404, r.content
    assert r.json() == NATIVE_GONE


ZITADEL_BODY = {
    "senderAddress": "noreply@example.com",
    "senderName": "ZITADEL",
    "tls": True,
    "host": "other.example.com:587",
    "user": "mailer",
    "password": "pw-again-123",
}
ZITADEL_OPERATIONS: dict[str, tuple[str, str, dict[str, Any], bool]] = {
    "update": ("put", "", ZITADEL_BODY, False),
    "password": ("put", "/password", {"password": "n3w-pa55word"}, False),
    "activate": ("post", "/_activate", {}, False),
    "deactivate": ("post", "/_deactivate", {}, True),
    "remove": ("delete", "", {}, False),
}


@pytest.mark.django_db
@pytest.mark.parametrize("operation", sorted(ZITADEL_OPERATIONS))
def test_zitadel_change_of_a_configuration_deleted_meanwhile_is_not_found(
    admin_client: APIClient, admin_user: User, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    method, tail, body, active = ZITADEL_OPERATIONS[operation]
    pk = make_config(admin_client, active=active)
    before = config_events(pk)
    monkeypatch.setattr(ZitadelView, "get_config", delete_after(ZitadelView.get_config))
    client = client_for(admin_user, "Bearer")
    r = getattr(client, method)(f"{ZITADEL}/{pk}{tail}", body, format="json")
    assert_zitadel_not_found(r)
    assert config_events(pk) == before


@pytest.mark.django_db
def test_privx_save_over_settings_deleted_meanwhile_is_not_found(
    admin_client: APIClient, admin_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    pk = make_config(admin_client)  # inactive: PrivX shows (and saves) it
    before = config_events(pk)
    monkeypatch.setattr(privx_views, "privx_config", delete_after(privx_views.privx_config))
    client = client_for(admin_user, "Bearer")
    body = {"smtp_server": "other.example.com", "smtp_server_enabled": False}
    r = client.put(PRIVX, body, format="json")
    assert_privx_not_found(r)
    assert config_events(pk) == before


@pytest.mark.django_db
def test_a_second_delete_of_the_same_configuration_is_refused_and_recorded_once(
    admin_client: APIClient, admin_user: User
) -> None:
    subscribe()
    pk = make_config(admin_client)
    first = SmtpConfig.objects.get(pk=pk)
    second = SmtpConfig.objects.get(pk=pk)  # looked up before the first delete
    services.smtp_config_delete(config=first, actor=admin_user, refuse_active=True)
    with pytest.raises(services.ServiceError) as refused:
        services.smtp_config_delete(config=second, actor=admin_user, refuse_active=True)
    assert (refused.value.status_code, refused.value.code) == (404, "not_found")
    with pytest.raises(services.ServiceError):  # ZITADEL's and the console's delete too
        services.smtp_config_delete(config=second, actor=admin_user)
    assert config_events(pk).count("deleted") == 1
    assert deleted_webhook_events(pk) == 1


def subscribe(actor: User | None = None) -> None:
    """A webhook for configuration changes (to a closed loopback port: what counts here is
    the delivery rows written with each change)."""
    webhook_services.create_webhook(
        actor=actor, url=f"http://127.0.0.1:{free_port()}/hook", events=["smtp_config.changed"]
    )
    webhook_services.SUBSCRIPTIONS.invalidate()  # at once, not on a commit that never comes


def deleted_webhook_events(pk: int) -> int:
    rows = WebhookDelivery.objects.filter(event_type="smtp_config.changed", attempt=1)
    return sum(
        1
        for d in rows
        if d.payload["data"].get("action") == "deleted"
        and (d.payload["data"].get("configuration") or {}).get("id") == pk
    )


# --- the rollback answers its own version ---------------------------------------------------


@pytest.mark.django_db
def test_rollback_answers_the_version_it_saved_not_a_later_one(
    admin_client: APIClient, admin_user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    pk = make_config(admin_client)
    r = admin_client.patch(f"{URL}{pk}/", {"port": 2525, "password": "an0ther-Pa55"}, format="json")
    assert r.status_code == 200, r.content
    rollback = services.smtp_config_rollback

    def then_a_later_update(**kwargs: Any) -> Any:
        answer = rollback(**kwargs)
        # Another admin's update commits right after the rollback, before it is answered.
        services.smtp_config_update(
            config=SmtpConfig.objects.get(pk=pk),
            data={"description": "a later change"},
            actor=admin_user,
        )
        return answer

    monkeypatch.setattr(services, "smtp_config_rollback", then_a_later_update)
    r = admin_client.post(f"{URL}{pk}/rollback/", {"version": 1}, format="json")
    assert r.status_code == 200, r.content
    answered = r.json()
    assert (answered["number"], answered["restored_from"]) == (3, 1)
    assert answered["values"]["port"] == 587 and answered["values"]["description"] == ""
    assert SmtpConfig.objects.get(pk=pk).version == 4  # the later update's


@pytest.mark.django_db
def test_a_rollback_that_changes_nothing_answers_the_current_version(
    admin_client: APIClient, admin_user: User
) -> None:
    pk = make_config(admin_client)
    admin_client.patch(f"{URL}{pk}/", {"port": 2525, "password": "an0ther-Pa55"}, format="json")
    config, version = services.smtp_config_rollback(
        config=SmtpConfig.objects.get(pk=pk), version=2, actor=admin_user
    )
    assert (config.version, version.number, version.restored_from) == (2, 2, None)


# --- PostgreSQL: real races on the row's lock ----------------------------------------------


def wait_for_lock_waiters(count: int) -> None:
    """Until ``count`` other sessions wait on a lock (the row's, held by this test: the
    first waiter waits on it, the next ones behind the first)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            # pg_stat_activity is read once per transaction unless its snapshot is cleared.
            cursor.execute("SELECT pg_stat_clear_snapshot()")
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0] >= count:
                return
        time.sleep(0.05)
    raise AssertionError(f"{count} requests never waited on the row's lock")


def start(calls: list[Callable[[], Any]], results: list[Any]) -> list[threading.Thread]:
    def worker(i: int) -> None:
        from django.db import connection as thread_connection

        try:
            results[i] = calls[i]()
        except Exception as exc:  # asserted on by the test
            results[i] = exc
        finally:
            thread_connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    return threads


def race_with_delete(pk: int, calls: list[Callable[[], Any]], *, delete: bool) -> list[Any]:
    """Hold ``pk``'s row lock while ``calls`` run in threads and wait on it; then (with
    ``delete``) delete the row and commit, as a concurrent DELETE does."""
    results: list[Any] = [None] * len(calls)
    with transaction.atomic():
        SmtpConfig.objects.select_for_update().get(pk=pk)
        threads = start(calls, results)
        wait_for_lock_waiters(len(calls))
        if delete:
            SmtpConfig.objects.filter(pk=pk).delete()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    return results


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("operation", sorted(NATIVE_OPERATIONS))
def test_native_change_racing_a_delete_on_postgresql_is_a_404(
    admin_user: User, operation: str
) -> None:
    method, tail, body, active = NATIVE_OPERATIONS[operation]
    client = client_for(admin_user)
    pk = make_config(client, active=active)
    before = config_events(pk)

    def call() -> Any:
        return getattr(client, method)(f"{URL}{pk}/{tail}", body, format="json")

    [r] = race_with_delete(pk, [call], delete=True)
    assert not isinstance(r, Exception), r
    assert r.status_code == 404, r.content
    assert r.json() == NATIVE_GONE
    assert config_events(pk) == before


@postgres_only
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("operation", sorted(ZITADEL_OPERATIONS))
def test_zitadel_change_racing_a_delete_on_postgresql_is_not_found(
    admin_user: User, operation: str
) -> None:
    method, tail, body, active = ZITADEL_OPERATIONS[operation]
    pk = make_config(client_for(admin_user), active=active)
    client = client_for(admin_user, "Bearer")

    def call() -> Any:
        return getattr(client, method)(f"{ZITADEL}/{pk}{tail}", body, format="json")

    [r] = race_with_delete(pk, [call], delete=True)
    assert not isinstance(r, Exception), r
    assert_zitadel_not_found(r)


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_two_deletes_racing_on_postgresql_answer_204_once(admin_user: User) -> None:
    subscribe(admin_user)
    clients = [client_for(admin_user), client_for(admin_user)]
    pk = make_config(clients[0])
    deletes: list[Callable[[], Any]] = [
        lambda c=c: c.delete(f"{URL}{pk}/")  # type: ignore[misc]
        for c in clients
    ]
    results = race_with_delete(pk, deletes, delete=False)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(r.status_code for r in results) == [204, 404]
    refused = next(r for r in results if r.status_code == 404)
    assert refused.json() == NATIVE_GONE
    assert config_events(pk).count("deleted") == 1
    assert deleted_webhook_events(pk) == 1
