"""The History page: the event stream, filtered by resource, shown per permission, no secrets."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from outbound.accounts import services as account_services
from outbound.accounts.models import User
from outbound.core.events import event_source, record_event
from outbound.core.models import Event
from outbound.mail import services as mail_services
from outbound.mail.models import SmtpConfig
from tests.integrations.factories import (
    IMANAGE_CLIENT_SECRET,
    IMANAGE_PASSWORD,
    make_field,
    make_imanage_auth,
    make_integration,
    make_object_class,
)

pytestmark = pytest.mark.django_db

URL = "/console/history/"
SMTP_PASSWORD = "smtp-Secret-4711"


def make_smtp(actor: Any, host: str = "smtp.example.com") -> SmtpConfig:
    return mail_services.smtp_config_create(
        data={"host": host, "port": 587, "username": "mailer", "password": SMTP_PASSWORD},
        actor=actor,
    )


def rows(html: str) -> int:
    """The number of events listed (0 when there is no table)."""
    if "<tbody>" not in html:
        return 0
    return html.split("<tbody>")[1].split("</tbody>")[0].count("<tr>")


def test_newest_first_with_actor_action_fields_and_a_link(
    console_client: Client, admin_user: User
) -> None:
    config = make_smtp(admin_user)
    mail_services.smtp_config_update(
        config=config, data={"sender_address": "noreply@example.com"}, actor=admin_user
    )
    html = console_client.get(URL).content.decode()
    assert html.index("sender_address") < html.index("created")  # the update comes first
    assert 'class="changes"' in html
    assert "<li>host</li>" in html and "<li>password</li>" in html
    assert f'href="/console/mail/{config.pk}/"' in html
    assert "smtp.example.com:587" in html  # the resource's current name
    assert ">admin</a>" in html


def test_no_secret_value_appears_only_field_names(console_client: Client, admin_user: User) -> None:
    make_smtp(admin_user)
    make_imanage_auth(admin_user)
    html = console_client.get(URL).content.decode()
    assert "password" in html  # as a changed field's name
    for secret in (SMTP_PASSWORD, IMANAGE_PASSWORD, IMANAGE_CLIENT_SECRET):
        assert secret not in html


def test_filter_by_resource_type_and_id_as_other_pages_link_to_it(
    console_client: Client, admin_user: User
) -> None:
    first = make_smtp(admin_user, "one.example.com")
    second = make_smtp(admin_user, "two.example.com")
    make_object_class(admin_user, "Matter")

    r = console_client.get(URL, {"resource_type": "smtp_config", "resource_id": first.pk})
    html = r.content.decode()
    assert r.status_code == 200
    assert "one.example.com" in html and "two.example.com" not in html
    assert rows(html) == 1

    html = console_client.get(URL, {"resource_type": "object_class"}).content.decode()
    assert "Matter" in html and "example.com" not in html

    html = console_client.get(f"{URL}?resource_type=smtp_config").content.decode()
    assert rows(html) == 2 and str(second) in html


def test_filter_by_actor_and_system(console_client: Client, admin_user: User) -> None:
    make_smtp(admin_user)
    record_event(resource_type="role", resource_id=99, action="deleted")  # no actor
    html = console_client.get(URL, {"actor": "system", "resource_type": "role"}).content.decode()
    assert rows(html) == 1 and "Role" in html and "no longer exists" in html
    # The bootstrap admin was created by no one, too.
    assert rows(console_client.get(URL, {"actor": "system"}).content.decode()) == 2
    html = console_client.get(URL, {"actor": "ADMIN"}).content.decode()
    assert "SMTP configuration" in html and "Role" not in html.split("<tbody>")[1]


def test_date_range_and_a_reversed_range_is_an_error(
    console_client: Client, admin_user: User
) -> None:
    make_smtp(admin_user)
    today = Event.objects.last().created_at.date().isoformat()  # type: ignore[union-attr]
    html = console_client.get(URL, {"since": today, "until": today}).content.decode()
    assert rows(html) == 2  # the admin's creation and the configuration's
    assert rows(console_client.get(URL, {"until": "2000-01-01"}).content.decode()) == 0
    r = console_client.get(URL, {"since": today, "until": "2000-01-01"})
    assert r.status_code == 400
    assert "must not be before its start" in r.content.decode()
    assert "<tbody>" not in r.content.decode()


def test_a_user_sees_only_the_events_of_what_they_may_list(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client], admin_user: User
) -> None:
    make_smtp(admin_user)
    klass = make_object_class(admin_user, "Matter")
    make_field(admin_user, klass, "Matter number")
    viewer = make_user("object_classes.list")
    client = console_client_for(viewer)
    r = client.get(URL)
    html = r.content.decode()
    assert r.status_code == 200
    assert "Matter number" in html and "Object class" in html
    assert "SMTP configuration" not in html
    assert 'href="/console/users/' not in html  # their own creation is a user event
    # A forged filter for a kind they may not see is refused, not answered.
    r = client.get(URL, {"resource_type": "smtp_config"})
    assert r.status_code == 400 and "smtp.example.com" not in r.content.decode()
    # Without view permission the object is named but not linked.
    assert f"/console/object-classes/{klass.pk}/" not in html


def test_own_api_key_events_are_visible_without_users_list(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client], admin_user: User
) -> None:
    owner = make_user("integrations.list")
    other = make_user("integrations.list")
    account_services.api_key_create(owner=owner, name="mine", permissions=[], actor=owner)
    account_services.api_key_create(owner=other, name="theirs", permissions=[], actor=other)
    html = console_client_for(owner).get(URL).content.decode()
    assert "mine (ob_" in html and "theirs" not in html


def test_every_signed_in_user_gets_the_page_and_it_is_in_the_menu(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    client = console_client_for(make_user("integrations.list"))
    r = client.get(URL)
    assert r.status_code == 200
    assert 'href="/console/history/"' in r.content.decode()
    assert Client().get(URL).status_code == 302  # signed out: to the sign-in page
    assert client.post(URL).status_code == 405


def test_one_query_per_resource_type_not_per_event(
    console_client: Client, admin_user: User
) -> None:
    for i in range(5):
        make_smtp(admin_user, f"smtp{i}.example.com")
    with CaptureQueriesContext(connection) as few:
        console_client.get(URL)
    for i in range(5, 25):
        make_smtp(admin_user, f"smtp{i}.example.com")
    with CaptureQueriesContext(connection) as many:
        html = console_client.get(URL).content.decode()
    assert len(many.captured_queries) == len(few.captured_queries)
    assert "smtp24.example.com" in html


def test_pages_of_fifty(console_client: Client, admin_user: User) -> None:
    for i in range(50):  # and the admin's creation: 51 in all
        record_event(resource_type="role", resource_id=i, action="deleted", actor=admin_user)
    html = console_client.get(URL).content.decode()
    assert rows(html) == 50 and "Page 1 of 2" in html
    assert rows(console_client.get(URL, {"page": 2}).content.decode()) == 1


def test_links_to_each_kind_of_page_and_none_once_deleted(
    console_client: Client, admin_user: User
) -> None:
    auth = make_imanage_auth(admin_user)
    klass = make_object_class(admin_user, "Matter")
    field = make_field(admin_user, klass, "Matter number")
    integration = make_integration(
        admin_user, name="Filing", authentication_object=auth, object_class=klass, field=field
    )
    role = account_services.role_create(name="Gone", permissions=[], actor=admin_user)
    role_pk = role.pk
    account_services.role_delete(role=role, actor=admin_user)
    html = console_client.get(URL).content.decode()
    assert f'href="/console/integrations/{integration.pk}/"' in html
    assert f'href="/console/credentials/{auth.pk}/"' in html
    assert f'href="/console/object-classes/{klass.pk}/fields/{field.pk}/"' in html
    assert f'href="/console/users/{admin_user.pk}/"' in html
    assert f'href="/console/roles/{role_pk}/"' not in html
    assert "no longer exists" in html


def test_a_cancelled_message_is_in_the_history_of_whoever_may_view_messages(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client], admin_user: User
) -> None:
    from django.utils import timezone

    from outbound.mail.message_actions import message_cancel
    from outbound.mail.models import Message

    message = Message.objects.create(
        subject="s", text="t", message_id="<m@example.com>", next_attempt_at=timezone.now()
    )
    message_cancel(message=message, actor=admin_user)
    seen = console_client_for(make_user("messages.view")).get(URL, {"resource_type": "message"})
    assert seen.status_code == 200
    page = seen.content.decode()
    assert "Message" in page and "cancelled" in page
    assert f"/console/messages/{message.pk}/" in page  # linked to the message's page
    unseen = console_client_for(make_user("integrations.list")).get(URL)
    assert "cancelled" not in unseen.content.decode()


def test_each_event_shows_its_source_and_the_page_filters_on_it(
    console_client: Client, admin_client: Any, admin_user: User
) -> None:
    config = mail_services.smtp_config_create(  # cli: a service call outside any request
        data={"host": "smtp.example.com", "port": 587, "username": "mailer", "password": "p"},
        actor=admin_user,
        activate=True,
    )
    r = admin_client.patch(
        "/api/administration/smtp-settings/", {"port": 2525, "password": "p"}, format="json"
    )
    assert r.status_code == 200, r.content
    with event_source("hitachi"):
        mail_services.smtp_config_update(
            config=config, data={"sender_name": "Outbound"}, actor=admin_user
        )
    old = record_event(resource_type="smtp_config", resource_id=config.pk, action="updated")
    Event.objects.filter(pk=old.pk).update(source="")  # recorded before events had a source

    html = console_client.get(URL, {"resource_type": "smtp_config"}).content.decode()
    cells = re.findall(r'<td data-label="Source">(.*?)</td>', html)
    texts = [re.sub(r"<[^>]+>", "", c) for c in cells]
    assert texts == ["Unknown", "Hitachi API", "ALX API", "Command line", "Command line"]
    assert 'href="?source=hitachi"' in html
    assert '<th scope="col">Source</th>' in html

    alx = console_client.get(URL, {"source": "alx"}).content.decode()
    assert rows(alx) == 1 and "<li>port</li>" in alx
    assert rows(console_client.get(URL, {"source": "unknown"}).content.decode()) == 1
    assert rows(console_client.get(URL, {"source": "console"}).content.decode()) == 0
    bad = console_client.get(URL, {"source": "fax"})
    assert bad.status_code == 400
    assert "Select a valid choice" in bad.content.decode()
