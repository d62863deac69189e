"""Outbound mail's versions, comparison, rollback, standbys and the serving configuration,
over the Django test client: what each user sees and what is saved."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from outbound.accounts.models import User
from outbound.core.models import Event
from outbound.mail import services
from outbound.mail.models import FailoverState, SmtpConfig, SmtpConfigVersion
from tests.console.conftest import error_for

pytestmark = pytest.mark.django_db

FORM = {
    "host": "smtp.example.com",
    "port": "587",
    "security": "starttls",
    "authorization_method": "username_and_password",
    "username": "mailer",
    "password": "",
    "sender_address": "noreply@example.com",
    "sender_name": "Platform",
}


def make_config(**overrides: Any) -> SmtpConfig:
    data: dict[str, Any] = {
        "host": "smtp.example.com",
        "port": 587,
        "security": "starttls",
        "username": "mailer",
        "password": "first-secret",
        "sender_address": "noreply@example.com",
        "sender_name": "Platform",
        **overrides,
    }
    return services.smtp_config_create(data=data, actor=None)


def edited_twice(client: Client) -> SmtpConfig:
    """Version 1 as created; 2 renames the sender (console); 3 changes the password (console)."""
    config = make_config()
    url = f"/console/mail/{config.pk}/"
    assert client.post(url, {**FORM, "sender_name": "Platform v2"}).status_code == 302
    second = {**FORM, "sender_name": "Platform v2", "password": "second"}
    assert client.post(url, second).status_code == 302
    config.refresh_from_db()
    assert config.version == 3
    return config


def text(html: str) -> str:
    """What a reader sees: the page without its tags (and the wrap points in host names)."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", html))


def row(html: str, field: str) -> str:
    """The comparison row of ``field``."""
    match = re.search(rf'<tr class="(\w+)" data-field="{field}">(.*?)</tr>', html, re.S)
    assert match, f"no row for {field}"
    return f"{match.group(1)}: {re.sub(r'<[^>]+>', ' ', match.group(2))}"


# --- the list: active, serving now, standbys ------------------------------------------------


def test_list_marks_active_and_serving_and_shows_standby_ranks(console_client: Client) -> None:
    active = make_config(host="primary.example.com")
    services.smtp_config_activate(config=active, actor=None)
    make_config(host="spare.example.com", standby=1)
    html = console_client.get("/console/mail/").content.decode()
    assert html.count(">Active<") == 1
    assert html.count(">Serving now<") == 1
    assert "Rank 1" in html
    assert "Failover:" not in html


def test_list_says_plainly_when_a_standby_serves(console_client: Client) -> None:
    active = make_config(host="primary.example.com")
    services.smtp_config_activate(config=active, actor=None)
    spare = make_config(host="spare.example.com", standby=1)
    # What the sender writes when it fails over (outbound.mail.failover).
    since = datetime(2026, 3, 4, 5, 6, tzinfo=UTC)
    FailoverState.objects.create(
        pk=1, primary=active, serving=spare, failures=3, failing_since=since, since=since, version=1
    )
    html = console_client.get("/console/mail/").content.decode()
    assert (
        "Failover: the active configuration primary.example.com:587 is failing, so mail is "
        "going out through the standby spare.example.com:587 (since 2026-03-04 05:06 UTC). It "
        "goes back to primary.example.com:587 as soon as a probe of it passes."
    ) in text(html)
    spare_row = re.search(r"<tr>(?:(?!</tr>).)*spare\.example\.com(?:(?!</tr>).)*</tr>", html, re.S)
    assert spare_row and ">Serving now<" in spare_row.group(0)
    assert ">Not serving<" in html
    form = console_client.get(f"/console/mail/{spare.pk}/").content.decode()
    assert ">Serving now<" in form and ">Standby 1<" in form
    form = console_client.get(f"/console/mail/{active.pk}/").content.decode()
    assert ">Not serving: a standby serves while this one fails<" in form


def test_the_form_sets_the_standby_rank_through_the_service(console_client: Client) -> None:
    config = make_config()
    response = console_client.post(f"/console/mail/{config.pk}/", {**FORM, "standby": "2"})
    assert response.status_code == 302
    config.refresh_from_db()
    assert config.standby == 2
    page = console_client.get(f"/console/mail/{config.pk}/").content.decode()
    assert 'name="standby" value="2"' in page
    event = Event.objects.filter(resource_id=str(config.pk)).latest("sequence")
    assert event.changed_fields == ["standby"]
    # Empty takes it off the list.
    console_client.post(f"/console/mail/{config.pk}/", {**FORM, "standby": ""})
    config.refresh_from_db()
    assert config.standby is None


def test_the_active_configuration_cannot_be_a_standby(console_client: Client) -> None:
    config = make_config()
    services.smtp_config_activate(config=config, actor=None)
    response = console_client.post(f"/console/mail/{config.pk}/", {**FORM, "standby": "1"})
    assert response.status_code == 400
    assert "The active configuration cannot be a standby." in error_for(
        response.content.decode(), "standby"
    )
    config.refresh_from_db()
    assert config.standby is None


def test_the_standby_rank_has_the_models_limits(console_client: Client) -> None:
    config = make_config()
    response = console_client.post(f"/console/mail/{config.pk}/", {**FORM, "standby": "-1"})
    assert response.status_code == 400
    assert "greater than or equal to 0" in error_for(response.content.decode(), "standby")


# --- versions ------------------------------------------------------------------------------


def test_versions_list_number_when_who_source_and_changed_fields(console_client: Client) -> None:
    config = edited_twice(console_client)
    html = console_client.get(f"/console/mail/{config.pk}/versions/").content.decode()
    numbers = re.findall(r'data-label="Version"><strong>(\d+)</strong>', html)
    assert numbers == ["3", "2", "1"]  # newest first
    assert html.count(">Current<") == 1
    v3 = html[html.index("<strong>3</strong>") : html.index("<strong>2</strong>")]
    assert "admin" in v3 and "Console" in v3 and "<li>Password</li>" in v3
    v2 = html[html.index("<strong>2</strong>") : html.index("<strong>1</strong>")]
    assert "<li>Sender name</li>" in v2
    assert "first-secret" not in html and "second" not in html.replace("seconds", "")


def test_compare_marks_the_changed_fields_and_never_shows_a_password(
    console_client: Client,
) -> None:
    config = edited_twice(console_client)
    html = console_client.get(
        f"/console/mail/{config.pk}/versions/compare/?old=1&new=3"
    ).content.decode()
    assert row(html, "sender_name").split()[:4] == ["changed:", "Sender", "name", "Platform"]
    assert "Platform v2" in row(html, "sender_name")
    assert row(html, "host").startswith("same:")
    assert row(html, "password").startswith("changed:")
    assert "Password changed" in row(html, "password")
    assert "first-secret" not in html and ">second<" not in html
    # Versions 2 and 3 differ only in the password.
    html = console_client.get(
        f"/console/mail/{config.pk}/versions/compare/?old=2&new=3"
    ).content.decode()
    assert row(html, "sender_name").startswith("same:")
    assert "1 field differs" in html


def test_a_password_set_back_to_the_same_value_reads_unchanged(console_client: Client) -> None:
    config = make_config()
    url = f"/console/mail/{config.pk}/"
    console_client.post(url, {**FORM, "password": "other"})
    console_client.post(url, {**FORM, "password": "first-secret"})
    html = console_client.get(
        f"/console/mail/{config.pk}/versions/compare/?old=1&new=3"
    ).content.decode()
    assert "Unchanged" in row(html, "password")
    assert "The two versions have the same settings." in html


def test_compare_of_an_unknown_version_is_404(console_client: Client) -> None:
    config = make_config()
    url = f"/console/mail/{config.pk}/versions/compare/?old=1&new=9"
    assert console_client.get(url).status_code == 404
    assert console_client.get(f"/console/mail/{config.pk}/versions/9/rollback/").status_code == 404


# --- rollback ------------------------------------------------------------------------------


def test_rollback_asks_first_and_changes_nothing_on_get(console_client: Client) -> None:
    config = edited_twice(console_client)
    page = console_client.get(f"/console/mail/{config.pk}/versions/1/rollback/").content.decode()
    assert "Roll back smtp.example.com:587 to version 1?" in text(page)
    assert row(page, "sender_name").startswith("changed:")
    assert "Password changed" in row(page, "password")
    assert 'method="post"' in page
    config.refresh_from_db()
    assert config.version == 3 and config.sender_name == "Platform v2"


def test_rollback_saves_a_new_version_and_the_form_shows_the_restored_values(
    console_client: Client,
) -> None:
    config = edited_twice(console_client)
    response = console_client.post(f"/console/mail/{config.pk}/versions/1/rollback/", follow=True)
    page = response.content.decode()
    assert response.redirect_chain[-1][0] == f"/console/mail/{config.pk}/"
    assert "smtp.example.com:587 rolled back to version 1: saved as version 4." in page
    assert 'name="sender_name" value="Platform"' in page
    config.refresh_from_db()
    assert config.version == 4 and config.sender_name == "Platform"
    assert config.get_secret("password") == "first-secret"  # the password comes back too
    latest = SmtpConfigVersion.objects.get(config=config, number=4)
    assert latest.restored_from == 1 and latest.source == "console"
    event = Event.objects.filter(resource_id=str(config.pk)).latest("sequence")
    assert event.action == "rolled_back" and event.actor_username == "admin"
    listing = console_client.get(f"/console/mail/{config.pk}/versions/").content.decode()
    assert "Rollback to version 1" in listing


def test_rollback_to_the_same_settings_changes_nothing(console_client: Client) -> None:
    config = make_config()
    console_client.post(f"/console/mail/{config.pk}/", {**FORM, "sender_name": "X"})
    console_client.post(f"/console/mail/{config.pk}/", FORM)  # version 3 == version 1
    response = console_client.post(f"/console/mail/{config.pk}/versions/1/rollback/", follow=True)
    assert "has the same settings as the current one: nothing changed." in response.content.decode()
    config.refresh_from_db()
    assert config.version == 3


def test_a_refused_rollback_is_shown_on_the_confirmation(console_client: Client) -> None:
    from outbound.integrations import services as integration_services

    credentials = integration_services.authentication_object_create(
        name="Graph mailer",
        provider="microsoft_client_credentials",
        params={"tenant_id": "t", "client_id": "c", "client_secret": "client-secret-value"},
        actor=None,
    )
    config = services.smtp_config_create(
        data={
            "host": "smtp.office365.com",
            "port": 587,
            "username": "mailbox@example.com",
            "authorization_method": "microsoft_client_credentials",
            "authentication_object": credentials,
        },
        actor=None,
    )
    services.smtp_config_update(
        config=config,
        data={"authorization_method": "username_and_password", "password": "p"},
        actor=None,
    )
    integration_services.authentication_object_delete(obj=credentials, actor=None)
    response = console_client.post(f"/console/mail/{config.pk}/versions/1/rollback/")
    assert response.status_code == 400
    page = response.content.decode()
    assert "The authentication object version 1 used no longer exists" in page
    assert "Roll back to version 1" in page  # still the confirmation, to cancel or retry
    config.refresh_from_db()
    assert config.version == 2


# --- permissions ---------------------------------------------------------------------------


def test_a_viewer_sees_versions_and_comparisons_but_no_roll_back(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    config = make_config()
    services.smtp_config_update(config=config, data={"sender_name": "B"}, actor=None)
    viewer = console_client_for(make_user("outbound_mail_setup.view"))
    assert "Versions" in viewer.get("/console/mail/").content.decode()
    listing = viewer.get(f"/console/mail/{config.pk}/versions/")
    assert listing.status_code == 200 and "Roll back" not in listing.content.decode()
    compare = viewer.get(f"/console/mail/{config.pk}/versions/compare/?old=1&new=2")
    assert compare.status_code == 200
    assert viewer.get(f"/console/mail/{config.pk}/versions/1/rollback/").status_code == 403
    assert viewer.post(f"/console/mail/{config.pk}/versions/1/rollback/").status_code == 403
    config.refresh_from_db()
    assert config.version == 2 and config.sender_name == "B"


def test_without_mail_permission_versions_are_refused(
    make_user: Callable[..., User], console_client_for: Callable[[User], Client]
) -> None:
    config = make_config()
    client = console_client_for(make_user("integrations.list"))
    assert client.get(f"/console/mail/{config.pk}/versions/").status_code == 403
    assert client.get(f"/console/mail/{config.pk}/versions/compare/").status_code == 403


def test_versions_need_a_session(client: Client) -> None:
    config = make_config()
    response = client.get(f"/console/mail/{config.pk}/versions/")
    assert response.status_code == 302 and "/console/sign-in/" in response["Location"]


def test_a_longer_version_list_costs_no_more_queries(console_client: Client) -> None:
    config = make_config()
    url = f"/console/mail/{config.pk}/versions/"

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert console_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    for n in range(2):
        services.smtp_config_update(config=config, data={"sender_name": f"n{n}"}, actor=None)
    few = queries()
    for n in range(10):
        services.smtp_config_update(config=config, data={"sender_name": f"m{n}"}, actor=None)
    assert queries() == few
