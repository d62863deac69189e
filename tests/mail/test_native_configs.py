"""``/api/smtp-configurations/``: Outbound's own API over every stored SMTP configuration —
CRUD, permissions, each field's refusals, the secrets, activation (with a real test first),
deletion, races, standbys — through real SMTP servers on loopback."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.mail import outbox, sender, services
from outbound.mail.models import ACTIVE_NOT_STANDBY, MessageStatus, SmtpConfig, SmtpTestResult
from tests.conftest import client_for
from tests.support.concurrency import run_concurrently
from tests.support.smtp import Recorder, free_port, smtp_server

URL = "/api/smtp-configurations/"
SECRET = "s3cret-Pa55word"
BODY: dict[str, Any] = {
    "host": "smtp.example.com",
    "port": 587,
    "security": "starttls",
    "username": "mailer@example.com",
    "password": SECRET,
    "sender_address": "app@example.com",
    "sender_name": "The App",
    "failure_emails": ["ops@example.com"],
    "description": "Primary relay",
}
ANSWER_FIELDS = {
    "id", "description", "host", "port", "security", "username", "has_password",
    "authorization_method", "authentication_object", "sender_address", "sender_name",
    "reply_to_address", "failure_emails", "timeout", "is_active", "standby", "version",
    "serving", "created_at", "created_by", "modified_at", "modified_by",
}  # fmt: skip


def create(client: APIClient, **fields: Any) -> dict[str, Any]:
    r = client.post(URL, {**BODY, **fields}, format="json")
    assert r.status_code == 201, r.content
    return r.json()


def detail(config_id: int) -> str:
    return f"{URL}{config_id}/"


def config_events() -> list[Event]:
    return list(Event.objects.filter(resource_type="smtp_config").order_by("sequence"))


# --- CRUD ----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_create_read_list_update_delete(admin_client: APIClient, admin_user: User) -> None:
    r = admin_client.post(URL, BODY, format="json")
    assert r.status_code == 201, r.content
    created = r.json()
    assert set(created) == ANSWER_FIELDS
    assert created | {"id": 0, "created_at": "", "modified_at": ""} == {
        "id": 0,
        "description": "Primary relay",
        "host": "smtp.example.com",
        "port": 587,
        "security": "starttls",
        "username": "mailer@example.com",
        "has_password": True,
        "authorization_method": "username_and_password",
        "authentication_object": None,
        "sender_address": "app@example.com",
        "sender_name": "The App",
        "reply_to_address": "",
        "failure_emails": ["ops@example.com"],
        "timeout": None,
        "is_active": False,  # created inactive: activation is its own act
        "standby": None,
        "version": 1,
        "serving": False,
        "created_at": "",
        "created_by": {"id": admin_user.pk, "username": "admin"},
        "modified_at": "",
        "modified_by": {"id": admin_user.pk, "username": "admin"},
    }
    config_id = created["id"]
    assert SmtpConfig.objects.get(pk=config_id).get_secret("password") == SECRET

    assert admin_client.get(detail(config_id)).json() == created
    listed = admin_client.get(URL).json()
    assert {k: listed[k] for k in ("limit", "offset", "total_count", "filtered_count")} == {
        "limit": 20,
        "offset": 0,
        "total_count": 1,
        "filtered_count": 1,
    }
    assert listed["results"] == [created]

    r = admin_client.patch(
        detail(config_id), {"description": "Backup relay", "timeout": 12.5}, format="json"
    )
    assert r.status_code == 200, r.content
    assert r.json()["description"] == "Backup relay" and r.json()["timeout"] == 12.5
    assert r.json()["has_password"] is True  # the password stays: same server, same user
    assert r.json()["version"] == 2  # each saved state is a version
    assert admin_client.get(detail(config_id)).json()["description"] == "Backup relay"

    r = admin_client.delete(detail(config_id))
    assert r.status_code == 204
    assert admin_client.get(detail(config_id)).status_code == 404
    assert admin_client.delete(detail(config_id)).status_code == 404
    assert not SmtpConfig.objects.exists()
    # Every change recorded, each saying it came through Outbound's own API.
    events = config_events()
    assert [e.action for e in events] == ["created", "updated", "deleted"]
    assert {e.source for e in events} == {"native"}
    assert events[1].changed_fields == ["description", "timeout"]


@pytest.mark.django_db
def test_put_is_not_an_operation(admin_client: APIClient) -> None:
    config_id = create(admin_client)["id"]
    assert admin_client.put(detail(config_id), BODY, format="json").status_code == 405


@pytest.mark.django_db
def test_security_names_implicit_tls_tls(admin_client: APIClient) -> None:
    created = create(admin_client, port=465, security="tls")
    assert created["security"] == "tls"
    assert SmtpConfig.objects.get().security == "ssl"  # the core's name for it
    r = admin_client.post(URL, {**BODY, "security": "ssl"}, format="json")
    assert r.status_code == 400 and set(r.json()) == {"security"}


@pytest.mark.django_db
def test_list_filters_and_ordering(admin_client: APIClient) -> None:
    a = create(admin_client, host="a.example.com", security="none", standby=2)
    b = create(admin_client, host="b.example.com", port=465, security="tls", standby=1)
    c = create(admin_client, host="c.example.org", username="", password="")
    admin_client.post(f"{detail(c['id'])}activate/", {}, format="json")

    def ids(query: str) -> list[int]:
        r = admin_client.get(URL + query)
        assert r.status_code == 200, r.content
        return [row["id"] for row in r.json()["results"]]

    assert ids("") == [a["id"], b["id"], c["id"]]
    assert ids("?security=tls") == [b["id"]]
    assert ids("?security__in=none,tls") == [a["id"], b["id"]]
    assert ids("?host__endswith=.org") == [c["id"]]
    assert ids("?is_active=true") == [c["id"]]
    assert ids("?standby__isnull=false&ordering=standby") == [b["id"], a["id"]]
    assert ids("?ordering=-host") == [c["id"], b["id"], a["id"]]
    assert ids("?port__gt=500&ordering=-port") == [a["id"], c["id"]]
    r = admin_client.get(URL + "?security=tls&limit=1")
    assert (r.json()["total_count"], r.json()["filtered_count"]) == (3, 1)
    for bad in ("?security=ssl", "?is_active=maybe", "?ordering=password", "?limit=0"):
        assert admin_client.get(URL + bad).status_code == 400, bad


@pytest.mark.django_db
def test_options_document_the_columns_and_the_fields(admin_client: APIClient) -> None:
    body = admin_client.options(URL).json()
    columns = {c["alias"]: c for c in body["list"]["columns"]}
    assert columns["security"]["predicates"] == ["exact", "in"]
    assert columns["standby"]["sort_ok"] is True
    fields = {f["alias"] for f in body["details"]["schema"]}
    assert "password" in fields and "standby" in fields
    assert not fields & {"is_active", "version", "serving", "has_password", "id"}


# --- permissions ---------------------------------------------------------------------------


@pytest.mark.django_db
def test_permissions(admin_client: APIClient, make_user: Callable[..., User]) -> None:
    config_id = create(admin_client)["id"]
    viewer = client_for(make_user("outbound_mail_setup.view"))
    editor_only = client_for(make_user("outbound_mail_setup.edit"))
    nobody = client_for(make_user("messages.send"))
    anonymous = APIClient()

    writes: list[tuple[str, str, dict[str, Any]]] = [
        ("post", URL, BODY),
        ("patch", detail(config_id), {"description": "x"}),
        ("delete", detail(config_id), {}),
        ("post", f"{detail(config_id)}activate/", {}),
        ("post", f"{detail(config_id)}deactivate/", {}),
        ("post", f"{detail(config_id)}test/", {}),
    ]
    reads = [URL, detail(config_id)]
    for path in reads:
        assert viewer.get(path).status_code == 200
        assert editor_only.get(path).status_code == 403
        assert nobody.get(path).status_code == 403
        assert anonymous.get(path).status_code == 401
    for method, path, body in writes:
        assert getattr(viewer, method)(path, body, format="json").status_code == 403, path
        assert getattr(nobody, method)(path, body, format="json").status_code == 403, path
        assert getattr(anonymous, method)(path, body, format="json").status_code == 401, path
    # The editor may write without reading (the answer is the written configuration).
    r = editor_only.patch(detail(config_id), {"description": "edited"}, format="json")
    assert r.status_code == 200
    assert SmtpConfig.objects.get().description == "edited"
    assert SmtpConfig.objects.count() == 1 and not SmtpConfig.objects.filter(is_active=True)


# --- validation, field by field ------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"host": None}, "host"),
        ({"host": ""}, "host"),
        ({"host": "bad host name"}, "host"),
        ({"port": None}, "port"),
        ({"port": 70000}, "port"),
        ({"port": -1}, "port"),
        ({"port": "five"}, "port"),
        ({"security": "ssl3"}, "security"),
        ({"username": "mailer\r\nRCPT TO:<x@example.com>"}, "username"),
        ({"password": 12 * "x" * 100}, "password"),
        ({"authorization_method": "kerberos"}, "authorization_method"),
        ({"authentication_object": 999}, "authentication_object"),
        ({"sender_address": "not an address"}, "sender_address"),
        ({"reply_to_address": "nobody@"}, "reply_to_address"),
        ({"failure_emails": ["ops@example.com", "nope"]}, "failure_emails"),
        ({"failure_emails": [f"ops{i}@example.com" for i in range(11)]}, "failure_emails"),
        ({"failure_emails": "ops@example.com"}, "failure_emails"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": 301}, "timeout"),
        ({"standby": -1}, "standby"),
        ({"standby": 40000}, "standby"),
        ({"standby": "first"}, "standby"),
        ({"description": "line\x00"}, "description"),
    ],
)
def test_each_field_is_validated(
    admin_client: APIClient, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in {**BODY, **change}.items() if v is not None}
    r = admin_client.post(URL, body, format="json")
    assert r.status_code == 400, r.content
    assert field in r.json(), r.json()
    assert not SmtpConfig.objects.exists()
    assert not config_events()


@pytest.mark.django_db
def test_microsoft_needs_tls_and_an_object(admin_client: APIClient) -> None:
    body = {**BODY, "authorization_method": "microsoft_client_credentials", "security": "none"}
    body.pop("password")
    r = admin_client.post(URL, body, format="json")
    assert r.status_code == 400
    assert set(r.json()) == {"security", "authentication_object"}


@pytest.mark.django_db
def test_a_write_names_every_problem_at_once(admin_client: APIClient) -> None:
    r = admin_client.post(URL, {"sender_address": "x", "timeout": 0, "standby": -1}, format="json")
    assert r.status_code == 400
    assert {"host", "port", "sender_address", "timeout", "standby"} <= set(r.json())


# --- secrets -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_password_is_never_answered(admin_client: APIClient) -> None:
    created = admin_client.post(URL, BODY, format="json")
    config_id = created.json()["id"]
    answers = [
        created,
        admin_client.get(URL),
        admin_client.get(detail(config_id)),
        admin_client.patch(detail(config_id), {"password": SECRET + "2"}, format="json"),
        admin_client.options(URL),
    ]
    for answer in answers:
        assert SECRET not in answer.content.decode()
    assert answers[3].json()["has_password"] is True
    events = config_events()
    assert events[-1].changed_fields == ["password"]
    assert SECRET not in json.dumps([(e.action, e.changed_fields) for e in events])
    # "" removes the saved password.
    r = admin_client.patch(detail(config_id), {"password": ""}, format="json")
    assert r.json()["has_password"] is False
    assert not SmtpConfig.objects.get().has_password


@pytest.mark.django_db
@pytest.mark.parametrize(
    "change",
    [
        {"host": "elsewhere.example.net"},
        {"port": 2525},
        {"security": "none"},
        {"username": "someone-else@example.com"},
    ],
)
def test_a_saved_password_never_follows_a_changed_destination(
    admin_client: APIClient, change: dict[str, Any]
) -> None:
    config_id = create(admin_client)["id"]
    r = admin_client.patch(detail(config_id), change, format="json")
    assert r.status_code == 400
    assert r.json() == {"password": [services.PASSWORD_AGAIN]}
    config = SmtpConfig.objects.get()
    assert (config.host, config.port, config.security, config.username) == (
        "smtp.example.com",
        587,
        "starttls",
        "mailer@example.com",
    )
    r = admin_client.patch(detail(config_id), {**change, "password": "new-one"}, format="json")
    assert r.status_code == 200, r.content
    assert SmtpConfig.objects.get().get_secret("password") == "new-one"


# --- a relay without AUTH ------------------------------------------------------------------


@pytest.mark.django_db
def test_an_empty_username_is_a_relay_without_auth(
    admin_client: APIClient, admin_user: User
) -> None:
    # The ALX seed cannot say this (it refuses a blank username); the native shape can.
    r = admin_client.patch(
        "/api/administration/smtp-settings/",
        {"host": "relay.example.com", "port": 25, "tls": False, "username": ""},
        format="json",
    )
    assert r.status_code == 400 and "username" in r.json()
    with smtp_server() as server:
        created = create(
            admin_client,
            host=server.host,
            port=server.port,
            security="none",
            username="",
            password="",
        )
        assert created["username"] == "" and created["has_password"] is False
        config_id = created["id"]
        r = admin_client.post(f"{detail(config_id)}test/", {}, format="json")
        assert r.status_code == 200, r.content
        assert r.json()["status"] == "OK"
        assert "auth" not in [step["name"] for step in r.json()["steps"]]
        r = admin_client.post(f"{detail(config_id)}activate/", {}, format="json")
        assert r.status_code == 200 and r.json()["serving"] is True
        message, _ = outbox.message_submit(
            data={"to": ["ann@example.com"], "subject": "Relayed", "text": "Hello.\n"},
            actor=admin_user,
        )
        assert sender.deliver(message.pk) == MessageStatus.SENT
    assert len(server.recorder.messages) == 1
    assert server.recorder.messages[0].rcpt_tos == ["ann@example.com"]
    assert server.recorder.logins == []  # no AUTH was tried


# --- activation ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_activate_and_deactivate_keep_at_most_one_active(admin_client: APIClient) -> None:
    a, b = create(admin_client)["id"], create(admin_client, host="b.example.com")["id"]
    r = admin_client.post(f"{detail(a)}activate/", {}, format="json")
    assert r.status_code == 200
    assert r.json()["is_active"] is True and r.json()["serving"] is True
    r = admin_client.post(f"{detail(b)}activate/", format="json")  # no body at all
    assert r.status_code == 200 and r.json()["is_active"] is True
    assert list(SmtpConfig.objects.filter(is_active=True).values_list("pk", flat=True)) == [b]
    rows = {row["id"]: row for row in admin_client.get(URL).json()["results"]}
    assert (rows[a]["is_active"], rows[a]["serving"]) == (False, False)
    assert (rows[b]["is_active"], rows[b]["serving"]) == (True, True)

    r = admin_client.post(f"{detail(b)}activate/", {}, format="json")
    assert r.status_code == 400 and r.json()["error_code"] == "already_active"
    r = admin_client.post(f"{detail(a)}deactivate/", format="json")
    assert r.status_code == 400 and r.json()["error_code"] == "not_active"
    r = admin_client.post(f"{detail(b)}deactivate/", format="json")
    assert r.status_code == 200 and r.json()["is_active"] is False
    assert not SmtpConfig.objects.filter(is_active=True).exists()
    assert admin_client.post(f"{URL}999/activate/", {}, format="json").status_code == 404

    actions = [(e.resource_id, e.action) for e in config_events() if e.action != "created"]
    assert actions == [
        (str(a), "activated"),
        (str(a), "deactivated"),
        (str(b), "activated"),
        (str(b), "deactivated"),
    ]
    assert {e.source for e in config_events()} == {"native"}


@pytest.mark.django_db
def test_is_active_version_and_serving_are_read_only(admin_client: APIClient) -> None:
    config_id = create(admin_client)["id"]
    r = admin_client.patch(
        detail(config_id), {"is_active": True, "version": 9, "serving": True}, format="json"
    )
    assert r.status_code == 200
    assert (r.json()["is_active"], r.json()["version"], r.json()["serving"]) == (False, 1, False)


@pytest.mark.django_db
def test_require_test_activates_only_what_passed(admin_client: APIClient) -> None:
    with smtp_server(users={"mailer": "right"}, auth_require_tls=False) as server:
        target = {"host": server.host, "port": server.port, "security": "none"}
        good = create(admin_client, **target, username="mailer", password="right")["id"]
        bad = create(admin_client, **target, username="mailer", password="wrong")["id"]

        r = admin_client.post(f"{detail(good)}activate/", {"require_test": True}, format="json")
        assert r.status_code == 200, r.content
        assert r.json()["is_active"] is True
        assert SmtpTestResult.objects.get(config_id=good).ok is True  # kept as its last test

        r = admin_client.post(f"{detail(bad)}activate/", {"require_test": True}, format="json")
        assert r.status_code == 400
        report = r.json()
        assert report["status"] == "ERROR" and report["steps"][-1]["name"] == "auth"
        assert report["steps"][-1]["ok"] is False
        assert "wrong" not in r.content.decode()
        assert server.recorder.logins == [("mailer", "right"), ("mailer", "wrong")]
    # Nothing activated: the one that passed is still the active one.
    assert list(SmtpConfig.objects.filter(is_active=True).values_list("pk", flat=True)) == [good]
    assert SmtpTestResult.objects.get(config_id=bad).ok is False
    assert [e.action for e in config_events() if e.resource_id == str(bad)] == ["created"]


@dataclass
class ChangesTheConfigMidTest(Recorder):
    """A server that, while it is being tested, sees the configuration's password changed
    by another admin (through the services, from another thread and connection)."""

    config_id: int = 0

    def change(self) -> None:
        from django.db import connection

        try:
            config = SmtpConfig.objects.get(pk=self.config_id)
            services.smtp_config_update(config=config, data={"password": "other"}, actor=None)
        finally:
            connection.close()

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        if self.config_id:
            await asyncio.to_thread(self.change)
            self.config_id = 0
        return await super().handle_EHLO(server, session, envelope, hostname, responses)


@pytest.mark.django_db(transaction=True)
def test_require_test_activates_nothing_that_changed_while_tested(admin_user: User) -> None:
    client = client_for(admin_user)
    recorder = ChangesTheConfigMidTest()
    with smtp_server(users={"mailer": "right"}, auth_require_tls=False, recorder=recorder) as s:
        config_id = create(
            client, host=s.host, port=s.port, security="none", username="mailer", password="right"
        )["id"]
        recorder.config_id = config_id
        r = client.post(f"{detail(config_id)}activate/", {"require_test": True}, format="json")
    assert recorder.logins == [("mailer", "right")]  # the test itself passed
    assert r.status_code == 409
    assert r.json() == {"detail": services.CHANGED_WHILE_TESTED, "error_code": "changed"}
    config = SmtpConfig.objects.get()
    assert not config.is_active and config.get_secret("password") == "other"


@pytest.mark.django_db
def test_require_test_with_nothing_listening_activates_nothing(admin_client: APIClient) -> None:
    config_id = create(
        admin_client, host="127.0.0.1", port=free_port(), security="none", username="", password=""
    )["id"]
    r = admin_client.post(f"{detail(config_id)}activate/", {"require_test": True}, format="json")
    assert r.status_code == 400
    assert r.json()["status"] == "ERROR"
    assert r.json()["steps"][-1]["name"] == "connect"
    assert not SmtpConfig.objects.filter(is_active=True).exists()


@pytest.mark.django_db
def test_require_test_must_be_a_boolean(admin_client: APIClient) -> None:
    config_id = create(admin_client)["id"]
    r = admin_client.post(f"{detail(config_id)}activate/", {"require_test": "sure"}, format="json")
    assert r.status_code == 400 and set(r.json()) == {"require_test"}
    assert not SmtpConfig.objects.filter(is_active=True).exists()


# --- the test action -----------------------------------------------------------------------


@pytest.mark.django_db
def test_the_test_action_answers_like_the_alx_test(admin_client: APIClient) -> None:
    with smtp_server(users={"mailer": "right"}, auth_require_tls=False) as server:
        config_id = create(
            admin_client,
            host=server.host,
            port=server.port,
            security="none",
            username="mailer",
            password="right",
        )["id"]
        r = admin_client.post(
            f"{detail(config_id)}test/", {"receiver_address": "ann@example.com"}, format="json"
        )
        assert r.status_code == 200, r.content
        assert set(r.json()) == {"status", "msg", "steps"} and r.json()["status"] == "OK"
        assert len(server.recorder.messages) == 1  # the test message
        assert server.recorder.messages[0].rcpt_tos == ["ann@example.com"]
        r = admin_client.post(
            f"{detail(config_id)}test/", {"receiver_address": "nobody"}, format="json"
        )
        assert r.status_code == 400 and set(r.json()) == {"receiver_address"}
    r = admin_client.post(f"{detail(config_id)}test/", {}, format="json")  # server gone
    assert r.status_code == 400 and r.json()["status"] == "ERROR"
    assert not SmtpConfig.objects.filter(is_active=True).exists()  # a test activates nothing


@pytest.mark.django_db
def test_tests_spend_the_shared_budget(
    admin_client: APIClient, settings: Any, make_user: Callable[..., User]
) -> None:
    settings.OUTBOUND_TEST_RATE = "3/min"
    config_id = create(
        admin_client, host="127.0.0.1", port=free_port(), security="none", username="", password=""
    )["id"]
    codes = [admin_client.post(f"{detail(config_id)}test/", {}, format="json").status_code]
    codes.append(
        admin_client.post(
            f"{detail(config_id)}activate/", {"require_test": True}, format="json"
        ).status_code
    )
    codes.append(admin_client.post(f"{detail(config_id)}test/", {}, format="json").status_code)
    limited = admin_client.post(
        f"{detail(config_id)}activate/", {"require_test": True}, format="json"
    )
    assert codes == [400, 400, 400] and limited.status_code == 429
    assert "Retry-After" in limited
    # Without require_test, activation calls out to nobody and spends nothing.
    r = admin_client.post(f"{detail(config_id)}activate/", {}, format="json")
    assert r.status_code == 200


# --- deletion ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_active_configuration_cannot_be_deleted(admin_client: APIClient) -> None:
    config_id = create(admin_client)["id"]
    admin_client.post(f"{detail(config_id)}activate/", {}, format="json")
    r = admin_client.delete(detail(config_id))
    assert r.status_code == 400
    assert r.json() == {"detail": services.ACTIVE_NOT_DELETED, "error_code": "active"}
    assert SmtpConfig.objects.filter(pk=config_id, is_active=True).exists()
    admin_client.post(f"{detail(config_id)}deactivate/", {}, format="json")
    assert admin_client.delete(detail(config_id)).status_code == 204


# --- standbys ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_standby_ranks_and_the_active_one_is_never_a_standby(admin_client: APIClient) -> None:
    active = create(admin_client)["id"]
    admin_client.post(f"{detail(active)}activate/", {}, format="json")
    standby = create(admin_client, host="backup.example.com", standby=1)
    assert standby["standby"] == 1

    r = admin_client.patch(detail(active), {"standby": 2}, format="json")
    assert r.status_code == 400
    assert r.json() == {"standby": [ACTIVE_NOT_STANDBY]}
    assert SmtpConfig.objects.get(pk=active).standby is None

    r = admin_client.patch(detail(standby["id"]), {"standby": 0}, format="json")
    assert r.status_code == 200 and r.json()["standby"] == 0
    r = admin_client.patch(detail(standby["id"]), {"standby": None}, format="json")
    assert r.status_code == 200 and r.json()["standby"] is None
    admin_client.patch(detail(standby["id"]), {"standby": 3}, format="json")

    # Activating a standby makes it the primary: it leaves the standby list.
    r = admin_client.post(f"{detail(standby['id'])}activate/", {}, format="json")
    assert r.status_code == 200
    assert (r.json()["is_active"], r.json()["standby"]) == (True, None)
    activated = [e for e in config_events() if e.action == "activated"][-1]
    assert activated.changed_fields == ["is_active", "standby"]
    # The one active before may now be a standby.
    r = admin_client.patch(detail(active), {"standby": 1}, format="json")
    assert r.status_code == 200 and r.json()["standby"] == 1


# --- races ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_concurrent_activations_leave_exactly_one_active(admin_user: User) -> None:
    client = client_for(admin_user)
    ids = [create(client, host=f"smtp{i}.example.com", standby=i)["id"] for i in range(6)]

    def activate(config_id: int) -> int:
        return (
            client_for(admin_user)
            .post(f"{detail(config_id)}activate/", {}, format="json")
            .status_code
        )

    results = run_concurrently([lambda c=c: activate(c) for c in ids])
    assert not [r for r in results if not isinstance(r, int) or r >= 500], results
    assert all(r == 200 for r in results), results
    assert SmtpConfig.objects.filter(is_active=True).count() == 1
    active = SmtpConfig.objects.get(is_active=True)
    assert active.standby is None


@pytest.mark.django_db(transaction=True)
def test_concurrent_activation_and_deletion_never_delete_the_active_one(
    admin_user: User,
) -> None:
    client = client_for(admin_user)
    ids = [create(client, host=f"smtp{i}.example.com")["id"] for i in range(4)]

    def act(i: int, config_id: int) -> int:
        c = client_for(admin_user)
        if i % 2:
            return c.delete(detail(config_id)).status_code
        return c.post(f"{detail(config_id)}activate/", {}, format="json").status_code

    work = [lambda i=i, c=c: act(i, c) for i, c in enumerate(ids * 2)]
    results = run_concurrently(work)
    assert all(isinstance(r, int) and r < 500 for r in results), results
    assert SmtpConfig.objects.filter(is_active=True).count() <= 1
    assert set(results) <= {200, 204, 400, 404, 409}
