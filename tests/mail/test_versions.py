"""Versions of SMTP configurations and the rollback, as an admin sees them: every API shape's
save is a version (ALX, Hitachi, the console, the native API), a rollback brings back the
settings and the password — proven by real AUTH logins and real sends through aiosmtpd — as a
new version, with its event and webhook; passwords appear in no answer, version or event;
concurrent rollbacks end consistent, without a 5xx (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
import ssl
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.core.rotation import reseal_all
from outbound.core.secrets import KeyRing, keyring, new_key, reset_keyring
from outbound.integrations import services as integration_services
from outbound.mail import services, versions
from outbound.mail.models import SmtpConfig, SmtpConfigVersion
from outbound.webhooks import services as webhook_services
from tests.conftest import client_for
from tests.dialects.hitachi.test_hitachi import SEED_BODY, basic
from tests.dialects.hitachi.test_hitachi import URL as HITACHI_URL
from tests.mail.test_sender import (
    _fresh_sender_state,  # noqa: F401  (autouse: no pooled connection between tests)
    configure,
    run_worker,
    submit,
)
from tests.mail.test_worker_process import (
    Workers,
    all_sent,
    key,  # noqa: F401  (the key ring shared with the worker process)
    wait_for,
    workers,  # noqa: F401
)
from tests.mail.test_worker_process import submit as submit_many
from tests.support.concurrency import run_concurrently
from tests.support.smtp import Recorder, Scripted, smtp_server
from tests.webhooks.conftest import Receiver, due_tasks, receiver  # noqa: F401

ALX = "/api/administration/smtp-settings/"
ALX_TEST = ALX + "test/"
PW_ONE = "Versioned-pw-one-4f1c-never-shown"
PW_TWO = "Versioned-pw-two-9a7e-never-shown"
BODY = {
    "host": "smtp.example.com",
    "port": 587,
    "tls": True,
    "username": "mailer@example.com",
    "password": PW_ONE,
    "from_email": "app@example.com",
    "failure_email": "ops@example.com",
}


def versions_url(config: SmtpConfig | int) -> str:
    return f"/api/smtp-configurations/{getattr(config, 'pk', config)}/versions/"


def rollback_url(config: SmtpConfig | int) -> str:
    return f"/api/smtp-configurations/{getattr(config, 'pk', config)}/rollback/"


def listed(client: APIClient, config: SmtpConfig) -> list[dict[str, Any]]:
    r = client.get(versions_url(config))
    assert r.status_code == 200, r.content
    return list(r.json()["results"])


def assert_no_password(*texts: str) -> None:
    for text in texts:
        assert PW_ONE not in text and PW_TWO not in text


# --- what is versioned ----------------------------------------------------------------------


@pytest.mark.django_db
def test_alx_saves_are_versions(admin_client: APIClient) -> None:
    r = admin_client.patch(ALX, BODY, format="json")
    assert r.status_code == 200, r.content
    config = SmtpConfig.objects.get()
    assert config.version == 1
    page = admin_client.get(versions_url(config)).json()
    assert (page["total_count"], page["filtered_count"]) == (1, 1)
    (first,) = page["results"]
    assert first["number"] == 1 and first["created_by"] == "admin" and first["source"] == "alx"
    assert first["has_password"] is True and first["restored_from"] is None
    assert set(first["changed_fields"]) >= {"host", "port", "username", "password"}
    assert first["values"] == {
        "description": "",
        "host": "smtp.example.com",
        "port": 587,
        "security": "starttls",
        "username": "mailer@example.com",
        "authorization_method": "username_and_password",
        "authentication_object": None,
        "sender_address": "app@example.com",
        "sender_name": "",
        "reply_to_address": "",
        "failure_emails": ["ops@example.com"],
        "timeout": None,
    }
    # A change is the next version; a save that changes nothing is none.
    for _ in range(2):
        r = admin_client.patch(ALX, {"from_email": "it@example.com"}, format="json")
        assert r.status_code == 200, r.content
    config.refresh_from_db()
    assert config.version == 2
    newest, oldest = listed(admin_client, config)
    assert newest["number"] == 2 and newest["changed_fields"] == ["sender_address"]
    assert newest["values"]["sender_address"] == "it@example.com"
    assert oldest["values"]["sender_address"] == "app@example.com"
    assert_no_password(json.dumps(page), json.dumps([newest, oldest]))


@pytest.mark.django_db
def test_native_saves_are_versions_and_the_configuration_names_its_latest(
    admin_client: APIClient,
) -> None:
    body = {"host": "smtp.example.com", "port": 465, "security": "tls", "username": "u"}
    r = admin_client.post("/api/smtp-configurations/", {**body, "password": PW_ONE}, format="json")
    assert r.status_code == 201, r.content
    url = f"/api/smtp-configurations/{r.json()['id']}/"
    assert r.json()["version"] == 1
    r = admin_client.patch(url, {"sender_name": "The App"}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["version"] == 2
    newest, oldest = admin_client.get(url + "versions/").json()["results"]
    assert (newest["number"], newest["source"], newest["changed_fields"]) == (
        2,
        "native",
        ["sender_name"],
    )
    # Named as the native API names them: implicit TLS is "tls".
    assert newest["values"]["security"] == oldest["values"]["security"] == "tls"
    r = admin_client.post(url + "rollback/", {"version": 1}, format="json")
    assert r.status_code == 200 and r.json()["number"] == 3
    assert admin_client.get(url).json()["version"] == 3
    assert admin_client.get(url).json()["sender_name"] == ""


@pytest.mark.django_db
def test_a_dialects_saves_are_versions_with_its_source(admin_user: User) -> None:
    r = basic("admin").put(HITACHI_URL, SEED_BODY, format="json")
    assert r.status_code == 200, r.content
    config = SmtpConfig.objects.get()
    (version,) = services.smtp_config_versions(config)
    assert (version.number, version.source, version.created_by_username) == (1, "hitachi", "admin")
    assert version.values["host"] == "172.17.17.116" and version.has_password
    r = basic("admin").put(HITACHI_URL, {**SEED_BODY, "portNumber": 2525}, format="json")
    assert r.status_code == 200, r.content
    config.refresh_from_db()
    newest = services.smtp_config_versions(config).first()
    assert newest is not None and config.version == newest.number == 2
    assert newest.source == "hitachi" and newest.changed_fields == ["password", "port"]


@pytest.mark.django_db
def test_console_saves_are_versions_with_its_source(
    admin_client: APIClient, console_client: Any
) -> None:
    admin_client.patch(ALX, BODY, format="json")
    config = SmtpConfig.objects.get()
    form = {
        "description": "Main relay",
        "host": config.host,
        "port": config.port,
        "security": config.security,
        "authorization_method": config.authorization_method,
        "username": config.username,
        "password": "",  # keeps the saved one
        "sender_address": config.sender_address,
        "sender_name": "",
        "reply_to_address": "",
        "failure_emails": "ops@example.com",
        "timeout": "",
        "standby": "",
    }
    r = console_client.post(f"/console/mail/{config.pk}/", form)
    assert r.status_code == 302, r.content.decode()[:2000]
    config.refresh_from_db()
    newest = services.smtp_config_versions(config).first()
    assert newest is not None and config.version == newest.number == 2
    assert (newest.source, newest.changed_fields) == ("console", ["description"])
    assert newest.has_password  # kept, so kept in the version too
    # The same form again changes nothing: no version.
    console_client.post(f"/console/mail/{config.pk}/", form)
    config.refresh_from_db()
    assert config.version == 2


@pytest.mark.django_db
def test_activation_and_the_standby_rank_are_not_versions(admin_user: User) -> None:
    primary = services.smtp_config_create(
        data={"host": "a.example.com", "port": 25}, actor=admin_user, activate=True
    )
    spare = services.smtp_config_create(
        data={"host": "b.example.com", "port": 25, "standby": 1}, actor=admin_user
    )
    services.smtp_config_update(config=spare, data={"standby": 2}, actor=admin_user)
    services.smtp_config_activate(config=spare, actor=admin_user)
    services.smtp_config_deactivate(config=spare, actor=admin_user)
    for config in (primary, spare):
        config.refresh_from_db()
        assert config.version == 1
        assert [v.number for v in services.smtp_config_versions(config)] == [1]


# --- rollback --------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_rollback_brings_back_the_server_and_its_password_for_the_next_message(
    admin_client: APIClient,
    admin_user: User,
    server_tls: ssl.SSLContext,
    trust_test_ca: str,
    receiver: Receiver,  # noqa: F811
    due_tasks: Callable[[], int],  # noqa: F811
) -> None:
    _, secret = webhook_services.create_webhook(
        actor=admin_user, url=receiver.url, events=["smtp_config.changed"]
    )
    first, second = Scripted(), Scripted()
    with (
        smtp_server(starttls=server_tls, users={"one@example.com": PW_ONE}, recorder=first) as a,
        smtp_server(starttls=server_tls, users={"two@example.com": PW_TWO}, recorder=second) as b,
    ):
        config = configure(admin_client, a, tls=True, username="one@example.com", password=PW_ONE)
        submit(admin_client)
        run_worker()
        assert len(first.messages) == 1
        # Version 2: another server, user and password. The sender follows.
        configure(admin_client, b, tls=True, username="two@example.com", password=PW_TWO)
        submit(admin_client)
        run_worker()
        assert (len(first.messages), len(second.messages)) == (1, 1)

        r = admin_client.post(rollback_url(config), {"version": 1}, format="json")
        assert r.status_code == 200, r.content
        restored = r.json()
        assert restored["number"] == 3 and restored["restored_from"] == 1
        assert restored["changed_fields"] == ["password", "port", "username"]
        assert restored["values"]["port"] == a.port and restored["has_password"] is True
        config.refresh_from_db()
        assert config.version == 3 and config.is_active
        assert (config.port, config.username) == (a.port, "one@example.com")

        # The connection test of the saved settings signs in with the restored password...
        logins = len(first.logins)
        tested = admin_client.post(ALX_TEST, {}, format="json")
        assert tested.status_code == 200, tested.content
        assert first.logins[logins:] == [("one@example.com", PW_ONE)]
        # ... and the next message goes through server one again, signed in with it.
        submit(admin_client)
        run_worker()
        assert (len(first.messages), len(second.messages)) == (2, 1)
        assert first.logins[-1] == ("one@example.com", PW_ONE)
        answers = [r.content.decode(), tested.content.decode()]

    assert [v["number"] for v in listed(admin_client, config)] == [3, 2, 1]
    event = Event.objects.filter(resource_type="smtp_config", action="rolled_back").get()
    assert event.resource_id == str(config.pk) and event.actor_username == "admin"
    assert event.changed_fields == ["password", "port", "username"] and event.source == "native"
    # The webhook: smtp_config.changed, action rolled_back (names, never values).
    receiver.wait_for(1)
    deadline = time.monotonic() + 15
    while not any(b["data"]["action"] == "rolled_back" for b in receiver.verified(secret)):
        assert time.monotonic() < deadline, [b["data"] for b in receiver.verified(secret)]
        due_tasks()
        time.sleep(0.05)
    (hook,) = [b for b in receiver.verified(secret) if b["data"]["action"] == "rolled_back"]
    assert hook["type"] == "smtp_config.changed"
    assert hook["data"]["changed_fields"] == ["password", "port", "username"]
    events_page = admin_client.get("/api/events/?resource_type=smtp_config").content.decode()
    assert_no_password(
        *answers,
        json.dumps(listed(admin_client, config)),
        events_page,
        *(p.body.decode() for p in receiver.posts()),
        json.dumps(list(SmtpConfigVersion.objects.values("values", "changed_fields"))),
        json.dumps(list(SmtpConfigVersion.objects.values_list("sealed_secrets", flat=True))),
    )


@pytest.mark.django_db(transaction=True)
def test_a_running_worker_sends_the_next_message_with_the_rolled_back_settings(
    workers: Workers,  # noqa: F811
    admin_user: User,
    make_user: Callable[..., User],
) -> None:
    first, second = Recorder(), Recorder()
    with (
        smtp_server(users={"one": PW_ONE}, auth_require_tls=False, recorder=first) as a,
        smtp_server(users={"two": PW_TWO}, auth_require_tls=False, recorder=second) as b,
    ):
        data = {"host": a.host, "port": a.port, "security": "none", "username": "one"}
        config = services.smtp_config_create(
            data={**data, "password": PW_ONE, "sender_address": "app@example.com"},
            actor=admin_user,
            activate=True,
        )
        services.smtp_config_update(
            config=config,
            data={"port": b.port, "username": "two", "password": PW_TWO},
            actor=admin_user,
        )
        worker = workers.start()
        workers.wait_ready(worker)
        client = client_for(make_user("messages.send"))
        before = submit_many(client, 2)
        wait_for(lambda: all_sent(before), 30, f"not sent through two:\n{workers.output()}")
        assert (len(first.messages), len(second.messages)) == (0, 2)

        r = client_for(admin_user).post(rollback_url(config), {"version": 1}, format="json")
        assert r.status_code == 200, r.content
        after = submit_many(client, 2)
        wait_for(lambda: all_sent(after), 30, f"not sent through one:\n{workers.output()}")
        # The same worker, still running: the next messages went through server one, signed
        # in with the password restored with it.
        assert (len(first.messages), len(second.messages)) == (2, 2), workers.output()
        assert set(first.logins) == {("one", PW_ONE)}
        assert workers.terminate(worker) == 0, workers.output()
        assert_no_password(workers.output())


@pytest.mark.django_db
def test_rollback_to_the_current_state_changes_nothing(admin_client: APIClient) -> None:
    admin_client.patch(ALX, BODY, format="json")
    config = SmtpConfig.objects.get()
    r = admin_client.post(rollback_url(config), {"version": 1}, format="json")
    assert r.status_code == 200 and r.json()["number"] == 1
    assert not Event.objects.filter(action="rolled_back").exists()
    config.refresh_from_db()
    assert config.version == 1


@pytest.mark.django_db
def test_rollback_keeps_activation_and_standby_and_removes_a_password_it_did_not_have(
    admin_user: User, admin_client: APIClient
) -> None:
    spare = services.smtp_config_create(
        data={"host": "b.example.com", "port": 25, "standby": 3}, actor=admin_user
    )
    services.smtp_config_update(
        config=spare,
        data={"username": "u", "password": PW_TWO, "description": "with login"},
        actor=admin_user,
    )
    r = admin_client.post(rollback_url(spare), {"version": 1}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["has_password"] is False and r.json()["number"] == 3
    spare.refresh_from_db()
    assert (spare.username, spare.description, spare.has_password) == ("", "", False)
    assert (spare.is_active, spare.standby) == (False, 3)
    # And forward again: version 2's password comes back with its user.
    r = admin_client.post(rollback_url(spare), {"version": 2}, format="json")
    assert r.status_code == 200, r.content
    spare.refresh_from_db()
    assert spare.get_secret("password") == PW_TWO and spare.username == "u"


@pytest.mark.django_db
def test_a_version_survives_key_rotation(admin_client: APIClient, admin_user: User) -> None:
    admin_client.patch(ALX, BODY, format="json")
    admin_client.patch(ALX, {"port": 2525, "password": PW_TWO}, format="json")
    config = SmtpConfig.objects.get()
    old = keyring()
    ring = KeyRing([KeyRing.from_texts([new_key()]).primary, *old.keys])
    assert reseal_all(ring) >= 3  # the configuration's password and both versions'
    reset_keyring(KeyRing([ring.primary]))  # the old key is gone
    restored, _ = services.smtp_config_rollback(config=config, version=1, actor=admin_user)
    assert restored.get_secret("password") == PW_ONE and restored.port == 587


@pytest.mark.django_db
def test_a_password_no_key_opens_is_refused_and_nothing_changes(
    admin_client: APIClient,
) -> None:
    admin_client.patch(ALX, BODY, format="json")
    admin_client.patch(ALX, {"port": 2525, "password": PW_TWO}, format="json")
    config = SmtpConfig.objects.get()
    reset_keyring(KeyRing.from_texts([new_key()]))  # the key it was sealed with is lost
    r = admin_client.post(rollback_url(config), {"version": 1}, format="json")
    assert r.status_code == 400
    assert "cannot be read" in r.json()["password"][0]
    config.refresh_from_db()
    assert (config.version, config.port) == (2, 2525)


@pytest.mark.django_db
def test_a_microsoft_object_comes_back_only_for_who_may_edit_objects(
    admin_user: User, make_user: Callable[..., User]
) -> None:
    objects = [
        integration_services.authentication_object_create(
            name=f"Graph {n}",
            provider="microsoft_client_credentials",
            params={"tenant_id": "t", "client_id": "c", "client_secret": "s"},
            actor=admin_user,
        )
        for n in (1, 2)
    ]
    data = {
        "host": "smtp.office365.com",
        "port": 587,
        "username": "box@example.com",
        "authorization_method": "microsoft_client_credentials",
    }
    config = services.smtp_config_create(
        data={**data, "authentication_object": objects[0]}, actor=admin_user
    )
    services.smtp_config_update(
        config=config, data={"authentication_object": objects[1]}, actor=admin_user
    )
    editor = make_user("outbound_mail_setup.view", "outbound_mail_setup.edit")
    r = client_for(editor).post(rollback_url(config), {"version": 1}, format="json")
    assert r.status_code == 400 and "authentication_object" in r.json()
    config.refresh_from_db()
    assert config.authentication_object_id == objects[1].pk and config.version == 2
    r = client_for(admin_user).post(rollback_url(config), {"version": 1}, format="json")
    assert r.status_code == 200, r.content
    config.refresh_from_db()
    assert config.authentication_object_id == objects[0].pk and config.version == 3


# --- answers ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_unknown_versions_configurations_and_bodies(admin_client: APIClient) -> None:
    admin_client.patch(ALX, BODY, format="json")
    config = SmtpConfig.objects.get()
    r = admin_client.post(rollback_url(config), {"version": 7}, format="json")
    assert r.status_code == 400
    assert r.json() == {"version": [f"Configuration {config.pk} has no version 7."]}
    for body in ({}, {"version": 0}, {"version": "one"}, {"version": None}):
        r = admin_client.post(rollback_url(config), body, format="json")
        assert r.status_code == 400 and "version" in r.json(), body
    assert admin_client.post(rollback_url(999), {"version": 1}, format="json").status_code == 404
    assert admin_client.get(versions_url(999)).status_code == 404
    assert admin_client.get("/api/smtp-configurations/x/versions/").status_code == 404
    config.refresh_from_db()
    assert config.version == 1


@pytest.mark.django_db
def test_permissions(admin_client: APIClient, make_user: Callable[..., User]) -> None:
    admin_client.patch(ALX, BODY, format="json")
    config = SmtpConfig.objects.get()
    viewer = client_for(make_user("outbound_mail_setup.view"))
    nobody = client_for(make_user("messages.send"))
    assert viewer.get(versions_url(config)).status_code == 200
    assert viewer.post(rollback_url(config), {"version": 1}, format="json").status_code == 403
    assert nobody.get(versions_url(config)).status_code == 403
    assert APIClient().get(versions_url(config)).status_code == 401
    assert APIClient().post(rollback_url(config), {"version": 1}, format="json").status_code == 401


@pytest.mark.django_db
def test_the_list_pages(admin_user: User, admin_client: APIClient) -> None:
    config = services.smtp_config_create(data={"host": "a.example.com", "port": 25}, actor=None)
    for n in range(1, 5):
        services.smtp_config_update(config=config, data={"port": 25 + n}, actor=admin_user)
    page = admin_client.get(versions_url(config) + "?limit=2&offset=1").json()
    assert (page["total_count"], page["limit"], page["offset"]) == (5, 2, 1)
    assert [v["number"] for v in page["results"]] == [4, 3]
    oldest = admin_client.get(versions_url(config) + "?offset=4").json()["results"][0]
    assert oldest["created_by"] is None and oldest["source"] == "cli"


# --- concurrency -----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_rollbacks_end_consistent(admin_user: User) -> None:
    config = services.smtp_config_create(
        data={"host": "a.example.com", "port": 25, "username": "u", "password": PW_ONE},
        actor=admin_user,
        activate=True,
    )
    services.smtp_config_update(
        config=config, data={"port": 2525, "password": PW_TWO}, actor=admin_user
    )

    def roll(number: int) -> int:
        client = client_for(admin_user)
        return client.post(rollback_url(config), {"version": number}, format="json").status_code

    # The same rollback six times at once: one new version, the others find nothing to do.
    assert run_concurrently([lambda: roll(1) for _ in range(6)]) == [200] * 6
    config.refresh_from_db()
    assert config.version == 3 and config.get_secret("password") == PW_ONE
    # Rollbacks to different versions at once: each a version of its own, in turn.
    targets = [1, 2, 1, 2, 3, 2]
    assert run_concurrently([lambda n=n: roll(n) for n in targets]) == [200] * 6
    config.refresh_from_db()
    numbers = sorted(SmtpConfigVersion.objects.filter(config=config).values_list("number"))
    assert [n for (n,) in numbers] == list(range(1, config.version + 1))
    latest = services.smtp_config_versions(config).first()
    assert latest is not None and latest.values == versions.values_of(config)
    expected = PW_ONE if latest.values["port"] == 25 else PW_TWO
    assert config.get_secret("password") == expected
    assert SmtpConfig.objects.filter(is_active=True).count() == 1


# --- the migration ---------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_migration_writes_version_1_of_existing_configurations(admin_user: User) -> None:
    before = [("mail", "0012_smtpconfig_standby_version")]
    after = [("mail", "0013_smtpconfigversion")]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        old_apps = executor.loader.project_state(before).apps
        old_config = old_apps.get_model("mail", "SmtpConfig")
        row = old_config.objects.create(
            host="legacy.example.com",
            port=587,
            security="starttls",
            username="legacy",
            sender_address="app@example.com",
            failure_emails=["ops@example.com"],
            modified_by_id=admin_user.pk,
        )
        # Sealed as the configuration seals it: for its row and its destination.
        live = SmtpConfig(uid=row.uid, host=row.host, port=row.port, username="legacy")
        live.set_secret("password", PW_ONE)
        old_config.objects.filter(pk=row.pk).update(sealed_secrets=live.sealed_secrets)
        Event.objects.create(  # core's table is as it is now
            resource_type="smtp_config", resource_id=str(row.pk), action="created", source="cli"
        )
        MigrationExecutor(connection).migrate(after)
    finally:
        MigrationExecutor(connection).migrate(
            MigrationExecutor(connection).loader.graph.leaf_nodes()
        )
    config = SmtpConfig.objects.get(pk=row.pk)
    (version,) = services.smtp_config_versions(config)
    assert (version.number, version.source, version.created_by_username) == (1, "cli", "admin")
    assert version.changed_fields == [] and version.values["host"] == "legacy.example.com"
    assert version.get_secret("password") == PW_ONE
    # It restores like any version.
    services.smtp_config_update(
        config=config, data={"host": "new.example.com", "password": PW_TWO}, actor=admin_user
    )
    restored, _ = services.smtp_config_rollback(config=config, version=1, actor=admin_user)
    assert restored.host == "legacy.example.com" and restored.get_secret("password") == PW_ONE
