"""Races over the API end cleanly: writers racing for one integration (or object class, or
field) name get one success and clean 400s — never a 500, never a duplicate — and concurrent
creates never take the integrations past their limit of 100. Run on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from outbound.accounts.models import User
from outbound.integrations import services
from outbound.integrations.models import (
    AuthenticationObject,
    Integration,
    ObjectClass,
    ObjectClassField,
)
from outbound.integrations.types import IManage
from tests.conftest import client_for
from tests.integrations.factories import (
    make_field,
    make_imanage_auth,
    make_integration,
    make_object_class,
)
from tests.support.concurrency import run_concurrently

URL = "/api/integrations/"
UNIQUE = {"name": ["This field must be unique."]}
LIMIT = {
    "detail": "Limit of 100 Integrations has been exceeded.",
    "error_code": "ERR_LIMIT_EXCEEDED",
}


@dataclass
class Setup:
    user: User
    auth: AuthenticationObject
    object_class: ObjectClass
    field: ObjectClassField

    def body(self, name: str) -> dict[str, Any]:
        return {
            "type": IManage.id,
            "name": name,
            "authentication_object": self.auth.pk,
            "object_class": self.object_class.pk,
            "object_class_field": self.field.pk,
            "folder": "/Matters",
        }


@pytest.fixture
def setup(admin_user: User) -> Setup:
    object_class = make_object_class(admin_user)
    return Setup(
        user=admin_user,
        auth=make_imanage_auth(admin_user),
        object_class=object_class,
        field=make_field(admin_user, object_class),
    )


def post(user: User, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    response = client_for(user).post(url, body, format="json")
    return response.status_code, response.json()


def outcomes(results: list[Any]) -> list[tuple[int, Any]]:
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors  # e.g. an IntegrityError that escaped as a 500
    return sorted(results, key=lambda r: r[0])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("writers", [2, 5])
def test_writers_racing_for_one_name_get_one_201_and_400s(setup: Setup, writers: int) -> None:
    for round_ in range(3):
        name = f"Filing {round_}"
        results = outcomes(
            run_concurrently([lambda n=name: post(setup.user, URL, setup.body(n))] * writers)
        )
        assert [status for status, _ in results] == [201] + [400] * (writers - 1), results
        assert results[0][1]["name"] == name
        assert all(body == UNIQUE for _, body in results[1:]), results
        assert Integration.objects.filter(name=name).count() == 1
    assert Integration.objects.count() == 3


@pytest.mark.django_db(transaction=True)
def test_renames_racing_for_one_name_leave_one_holder(setup: Setup) -> None:
    uuids = [
        make_integration(
            setup.user,
            name=f"Original {i}",
            authentication_object=setup.auth,
            object_class=setup.object_class,
            field=setup.field,
        ).uuid
        for i in range(4)
    ]

    def rename(uuid: Any) -> tuple[int, Any]:
        response = client_for(setup.user).patch(f"{URL}{uuid}/", {"name": "Taken"}, format="json")
        return response.status_code, response.json()

    results = outcomes(run_concurrently([lambda u=u: rename(u) for u in uuids]))
    assert [status for status, _ in results] == [200, 400, 400, 400], results
    assert all(body == UNIQUE for _, body in results[1:])
    assert Integration.objects.filter(name="Taken").count() == 1
    assert Integration.objects.count() == 4


@pytest.mark.django_db(transaction=True)
def test_concurrent_creates_stop_at_the_limit_of_100(setup: Setup) -> None:
    for i in range(services.INTEGRATION_LIMIT - 1):
        make_integration(
            setup.user,
            name=f"Existing {i:03}",
            authentication_object=setup.auth,
            object_class=setup.object_class,
            field=setup.field,
        )
    assert Integration.objects.count() == 99

    results = outcomes(
        run_concurrently(
            [lambda i=i: post(setup.user, URL, setup.body(f"New {i}")) for i in range(6)]
        )
    )
    assert [status for status, _ in results] == [201] + [400] * 5, results
    assert all(body == LIMIT for _, body in results[1:]), results
    assert Integration.objects.count() == 100
    assert Integration.objects.filter(name__startswith="New ").count() == 1

    # Full stays full: a later create is refused the same way.
    assert post(setup.user, URL, setup.body("Later")) == (400, LIMIT)
    assert Integration.objects.count() == 100


@pytest.mark.django_db(transaction=True)
def test_object_classes_racing_for_one_name_get_one_201(admin_user: User) -> None:
    results = outcomes(
        run_concurrently([lambda: post(admin_user, "/api/object-classes/", {"name": "Matter"})] * 4)
    )
    assert [status for status, _ in results] == [201, 400, 400, 400], results
    assert all(body == UNIQUE for _, body in results[1:])
    assert ObjectClass.objects.filter(name="Matter").count() == 1


@pytest.mark.django_db(transaction=True)
def test_fields_racing_for_one_name_in_one_class_get_one_201(admin_user: User) -> None:
    matter = make_object_class(admin_user, name="Matter")
    url = f"/api/object-classes/{matter.pk}/fields/"
    results = outcomes(run_concurrently([lambda: post(admin_user, url, {"name": "Number"})] * 4))
    assert [status for status, _ in results] == [201, 400, 400, 400], results
    assert all(body == UNIQUE for _, body in results[1:])
    assert ObjectClassField.objects.filter(object_class=matter, name="Number").count() == 1
