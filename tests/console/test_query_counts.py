"""Every console list costs the same number of queries for 3 rows as for 12: no per-row
queries, however long the page."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from outbound.accounts import services as account_services
from outbound.accounts.models import Role, User
from outbound.mail import outbox
from outbound.mail import services as mail_services
from tests.integrations.factories import (
    make_field,
    make_imanage_auth,
    make_integration,
    make_object_class,
)

pytestmark = pytest.mark.django_db


def _rows(kind: str, start: int, count: int, admin: User) -> None:
    for n in range(start, start + count):
        if kind == "integrations":
            auth = make_imanage_auth(admin, name=f"auth {n}")
            oc = make_object_class(admin, name=f"class {n}")
            make_integration(
                admin,
                name=f"integration {n}",
                authentication_object=auth,
                object_class=oc,
                field=make_field(admin, oc),
            )
        elif kind == "credentials":
            make_imanage_auth(admin, name=f"auth {n}")
        elif kind == "object-classes":
            make_field(admin, make_object_class(admin, name=f"class {n}"))
        elif kind == "users":
            role = Role.objects.create(name=f"role {n}", permissions=["users.list"])
            user = account_services.user_create(username=f"user{n}", password="a-long-pass-99x")
            user.roles.add(role)
        elif kind == "roles":
            Role.objects.create(name=f"role {n}", permissions=["users.list"])
        elif kind == "mail":
            mail_services.smtp_config_create(
                data={
                    "host": f"smtp{n}.example.com",
                    "port": 587,
                    "username": "u",
                    "password": "p",
                },
                actor=admin,
            )
        elif kind == "messages":
            if n == 0:  # messages are only accepted while a configuration is active
                mail_services.smtp_config_create(
                    data={"host": "smtp.example.com", "port": 25}, actor=admin, activate=True
                )
            outbox.message_submit(
                data={"to": [f"a{n}@example.com", "b@example.com"], "subject": "s", "text": "t"},
                actor=admin,
            )
        elif kind == "history":
            mail_services.smtp_config_create(
                data={"host": f"h{n}.example.com", "port": 25}, actor=admin
            )


def _queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as ctx:
        assert client.get(path).status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize(
    "kind",
    [
        "integrations",
        "credentials",
        "object-classes",
        "users",
        "roles",
        "mail",
        "messages",
        "history",
    ],
)
def test_a_longer_list_costs_no_more_queries(
    kind: str, console_client: Client, admin_user: User
) -> None:
    path = f"/console/{kind}/"
    _rows(kind, 0, 3, admin_user)
    few = _queries(console_client, path)
    _rows(kind, 3, 9, admin_user)
    many = _queries(console_client, path)
    assert many == few, f"{path}: {few} queries for the short list, {many} for the long one"
