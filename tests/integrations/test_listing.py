"""``GET /api/integrations/`` as the seed describes it: the envelope and paging, ordering,
every predicate the OPTIONS ``list.columns`` document declares (driven from that document, so
the two can never disagree), malformed filter values, the document itself, the number of SQL
queries of a page, and who may reach each integrations endpoint."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import django_filters
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core.api.metadata import list_columns
from outbound.core.permissions import all_permissions
from outbound.integrations.filtersets import IntegrationFilterSet
from outbound.integrations.models import AuthenticationObject, Integration, ObjectClass
from outbound.integrations.types import REGISTRY, IManage
from tests.conftest import client_for
from tests.integrations.factories import (
    make_field,
    make_imanage_auth,
    make_integration,
    make_object_class,
)

pytestmark = pytest.mark.django_db

URL = "/api/integrations/"
ENVELOPE = {"limit", "offset", "total_count", "filtered_count", "next", "previous", "results"}
FORBIDDEN = {"detail": "You do not have permission to perform this action."}
UNAUTHENTICATED = {"detail": "Authentication credentials were not provided."}
BAD_ORDERING = "Select a valid choice. {value} is not one of the available choices."
USER_AUTOCOMPLETE = "/api/users/autocomplete/?text__icontains="
STRINGS = [
    "exact",
    "iexact",
    "contains",
    "icontains",
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
]
DATETIMES = ["exact", "gt", "gte", "lt", "lte", "range"]

# The seed's OPTIONS /api/integrations/ ``list.columns``, transcribed.
SEED_COLUMNS: list[dict[str, Any]] = [
    {"alias": "uuid", "type": "uuid", "predicates": ["exact"], "sort_ok": False},
    {"alias": "type", "type": "enum", "predicates": ["exact", "in"], "sort_ok": False},
    {"alias": "name", "type": "string", "predicates": STRINGS, "sort_ok": True},
    {"alias": "is_enabled", "type": "bool", "predicates": ["exact"], "sort_ok": False},
    {
        "alias": "authentication_object",
        "type": "enum",
        "predicates": ["exact", "in"],
        "sort_ok": True,
    },
    {"alias": "object_class", "type": "enum", "predicates": ["exact", "in"], "sort_ok": True},
    {"alias": "created_at", "type": "datetime", "predicates": DATETIMES, "sort_ok": True},
    {
        "alias": "created_by",
        "type": "user",
        "predicates": ["exact", "in"],
        "sort_ok": False,
        "autocomplete": USER_AUTOCOMPLETE,
    },
    {"alias": "modified_at", "type": "datetime", "predicates": DATETIMES, "sort_ok": True},
    {
        "alias": "modified_by",
        "type": "user",
        "predicates": ["exact", "in"],
        "sort_ok": False,
        "autocomplete": USER_AUTOCOMPLETE,
    },
]

BASE = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
# name, authentication object, object class, is_enabled, creator, modifier. Names differ
# only by case in places, so case-sensitive and -insensitive predicates give different rows;
# the related objects are created in an order opposite to their names, so sorting by label
# differs from sorting by id.
ROWS: list[tuple[str, str, str, bool, str, str]] = [
    ("Alpha Matters", "Zeta", "Matter", True, "alice", "alice"),
    ("alpha matters", "Acme", "Matter", False, "bob", "alice"),
    ("alpha clients", "Acme", "Client", True, "alice", "bob"),
    ("Beta matters", "Zeta", "Client", False, "bob", "bob"),
    ("Gamma Matters", "Acme", "Matter", True, "bob", "alice"),
    ("Delta", "Zeta", "Matter", False, "alice", "alice"),
    ("epsilon Archive", "Acme", "Client", False, "alice", "bob"),
]
STRING_PROBES: dict[str, list[str]] = {
    "exact": ["Alpha Matters", "alpha matters", "ALPHA MATTERS"],
    "iexact": ["ALPHA MATTERS", "delta"],
    "contains": ["Matters", "matters", "pha"],
    "icontains": ["MATTERS", "ALPHA"],
    "startswith": ["Alpha", "alpha"],
    "istartswith": ["ALPHA", "b"],
    "endswith": ["Matters", "matters"],
    "iendswith": ["MATTERS", "ARCHIVE"],
}
MATCH: dict[str, Callable[[Any, Any], bool]] = {
    "exact": lambda v, q: v == q,
    "iexact": lambda v, q: v.lower() == q.lower(),
    "contains": lambda v, q: q in v,
    "icontains": lambda v, q: q.lower() in v.lower(),
    "startswith": lambda v, q: v.startswith(q),
    "istartswith": lambda v, q: v.lower().startswith(q.lower()),
    "endswith": lambda v, q: v.endswith(q),
    "iendswith": lambda v, q: v.lower().endswith(q.lower()),
    "gt": lambda v, q: v > q,
    "gte": lambda v, q: v >= q,
    "lt": lambda v, q: v < q,
    "lte": lambda v, q: v <= q,
    "range": lambda v, q: q[0] <= v <= q[1],
    "in": lambda v, q: v in q,
}


@dataclass
class World:
    alice: User
    bob: User
    rows: list[dict[str, Any]]  # every integration as the unfiltered list shows it


def build_world(make_user: Callable[..., User]) -> tuple[User, User]:
    alice = make_user(username="alice")
    bob = make_user(username="bob")
    users = {"alice": alice, "bob": bob}
    auths: dict[str, AuthenticationObject] = {}
    classes: dict[str, ObjectClass] = {}
    for name in ("Zeta", "Acme"):
        auths[name] = make_imanage_auth(alice, name=name)
    fields = {}
    for name in ("Matter", "Client"):
        classes[name] = make_object_class(alice, name=name)
        fields[name] = make_field(alice, classes[name], name=f"{name} number")
    count = len(ROWS)
    for i, (name, auth, oc, enabled, creator, modifier) in enumerate(ROWS):
        integration = make_integration(
            users[creator],
            name=name,
            authentication_object=auths[auth],
            object_class=classes[oc],
            field=fields[oc],
            is_enabled=enabled,
        )
        # Distinct, known times: created in list order, modified in the opposite order.
        Integration.objects.filter(pk=integration.pk).update(
            created_at=BASE + timedelta(hours=i),
            modified_at=BASE + timedelta(days=1, hours=count - i),
            modified_by=users[modifier],
        )
    return alice, bob


@pytest.fixture
def world(make_user: Callable[..., User], admin_client: APIClient) -> World:
    alice, bob = build_world(make_user)
    response = admin_client.get(URL, {"limit": 100})
    assert response.status_code == 200
    rows = response.json()["results"]
    assert len(rows) == len(ROWS)
    return World(alice=alice, bob=bob, rows=rows)


def names(response: Any) -> list[str]:
    assert response.status_code == 200, response.content
    return [r["name"] for r in response.json()["results"]]


def columns(client: APIClient) -> list[dict[str, Any]]:
    response = client.options(URL)
    assert response.status_code == 200
    result: list[dict[str, Any]] = response.json()["list"]["columns"]
    return result


def param(alias: str, predicate: str) -> str:
    return alias if predicate == "exact" else f"{alias}__{predicate}"


# --- the envelope and paging -------------------------------------------------------------


def test_the_envelope_counts_everything_and_the_filtered_rows(
    world: World, admin_client: APIClient
) -> None:
    body = admin_client.get(URL).json()
    assert set(body) == ENVELOPE
    assert (body["limit"], body["offset"]) == (20, 0)
    assert body["total_count"] == body["filtered_count"] == len(ROWS)
    assert body["next"] is None
    assert body["previous"] is None

    body = admin_client.get(URL, {"name__icontains": "matters"}).json()
    assert set(body) == ENVELOPE
    assert body["total_count"] == len(ROWS)
    assert body["filtered_count"] == 4
    assert sorted(r["name"] for r in body["results"]) == [
        "Alpha Matters",
        "Beta matters",
        "Gamma Matters",
        "alpha matters",
    ]


def test_pages_follow_next_and_previous_links(world: World, admin_client: APIClient) -> None:
    everything = names(admin_client.get(URL, {"limit": 100}))
    pages = []
    url: str | None = f"{URL}?limit=3"
    while url is not None:
        body = admin_client.get(url).json()
        assert body["limit"] == 3
        assert body["offset"] == 3 * len(pages)
        assert body["total_count"] == body["filtered_count"] == len(ROWS)
        pages.append([r["name"] for r in body["results"]])
        url = body["next"]
    assert pages == [everything[0:3], everything[3:6], everything[6:7]]

    last = admin_client.get(URL, {"limit": 3, "offset": 6}).json()
    assert last["next"] is None
    assert last["previous"] == "http://testserver/api/integrations/?limit=3&offset=3"
    middle = admin_client.get(last["previous"]).json()
    assert middle["previous"] == "http://testserver/api/integrations/?limit=3"
    assert middle["next"] == "http://testserver/api/integrations/?limit=3&offset=6"
    assert [r["name"] for r in admin_client.get(middle["previous"]).json()["results"]] == pages[0]


def test_links_keep_the_filters_and_ordering(world: World, admin_client: APIClient) -> None:
    query = {"name__icontains": "MATTERS", "ordering": "-name", "limit": 3}
    expected = sorted((n for n, *_ in ROWS if "matters" in n.lower()), reverse=True)
    seen: list[str] = []
    body = admin_client.get(URL, query).json()
    while True:
        assert body["filtered_count"] == len(expected)
        seen += [r["name"] for r in body["results"]]
        if body["next"] is None:
            break
        assert "name__icontains=MATTERS" in body["next"]
        assert "ordering=-name" in body["next"]
        body = admin_client.get(body["next"]).json()
    assert seen == expected
    assert len(expected) == 4


def test_an_offset_past_the_end_is_an_empty_page(world: World, admin_client: APIClient) -> None:
    body = admin_client.get(URL, {"limit": 5, "offset": 50}).json()
    assert body["results"] == []
    assert body["next"] is None
    assert body["total_count"] == body["filtered_count"] == len(ROWS)


# --- ordering ------------------------------------------------------------------------------


def sort_key(row: dict[str, Any], column: dict[str, Any]) -> Any:
    alias = column["alias"]
    if column["type"] == "enum":  # enums sort by the label a user sees, not the id
        return row["_meta"]["labels"][alias]
    if column["type"] == "datetime":
        return datetime.fromisoformat(row[alias])
    return row[alias]


def test_every_sortable_column_sorts_both_ways(world: World, admin_client: APIClient) -> None:
    sortable = [c for c in columns(admin_client) if c["sort_ok"]]
    assert {c["alias"] for c in sortable} == {
        "name",
        "created_at",
        "modified_at",
        "authentication_object",
        "object_class",
    }
    by_name = sorted(world.rows, key=lambda r: r["name"])
    for column in sortable:
        for descending in (False, True):
            expected = [
                r["name"]
                for r in sorted(by_name, key=lambda r: sort_key(r, column), reverse=descending)
            ]
            value = f"-{column['alias']}" if descending else column["alias"]
            assert names(admin_client.get(URL, {"ordering": value, "limit": 100})) == expected, (
                value
            )


def test_without_ordering_the_newest_come_first(world: World, admin_client: APIClient) -> None:
    assert names(admin_client.get(URL)) == [n for n, *_ in reversed(ROWS)]


@pytest.mark.parametrize("ordering", ["authentication_object", "-object_class"])
def test_pages_of_a_column_with_ties_neither_repeat_nor_skip_rows(
    world: World, admin_client: APIClient, ordering: str
) -> None:
    everything = names(admin_client.get(URL, {"ordering": ordering, "limit": 100}))
    paged: list[str] = []
    for offset in range(0, len(ROWS), 2):
        paged += names(admin_client.get(URL, {"ordering": ordering, "limit": 2, "offset": offset}))
    assert paged == everything
    assert sorted(paged) == sorted(n for n, *_ in ROWS)


@pytest.mark.parametrize(
    ("value", "named"),
    [
        ("bogus", "bogus"),
        ("type", "type"),
        ("-uuid", "-uuid"),
        ("description", "description"),
        ("--name", "--name"),
        ("name,bogus", "bogus"),
    ],
)
def test_a_wrong_ordering_value_is_refused(
    world: World, admin_client: APIClient, value: str, named: str
) -> None:
    response = admin_client.get(URL, {"ordering": value})
    assert response.status_code == 400
    assert response.json() == {"ordering": [BAD_ORDERING.format(value=named)]}


# --- filtering, driven from the OPTIONS document -------------------------------------------


def cell(row: dict[str, Any], column: dict[str, Any]) -> Any:
    value = row[column["alias"]]
    if column["type"] == "user":
        return value["id"] if value else None
    if column["type"] == "datetime":
        return datetime.fromisoformat(value)
    return value


def probes(column: dict[str, Any], predicate: str, rows: list[dict[str, Any]]) -> list[Any]:
    """``(query value, the value the oracle compares with)`` pairs for one predicate."""
    kind, alias = column["type"], column["alias"]
    values = [cell(r, column) for r in rows]
    if kind == "string":
        return [(text, text) for text in STRING_PROBES[predicate]]
    if kind == "bool":
        return [("true", True), ("false", False), ("False", False), ("TRUE", True)]
    if kind == "uuid":
        absent = str(uuid.uuid4())
        return [(values[2], values[2]), (values[5].upper(), values[5]), (absent, absent)]
    if kind in ("enum", "user"):
        present = sorted(set(values))
        # A value no row has, where the API accepts one: an unregistered integration type.
        absent = [max(REGISTRY) + 1] if alias == "type" else []
        if predicate == "exact":
            return [(str(v), v) for v in present + absent]
        pairs = [present[:1], present[-1:], present, [*present[:1], *absent], absent]
        return [(",".join(map(str, p)), set(p)) for p in pairs if p]
    if kind == "datetime":
        by_time = sorted(rows, key=lambda r: cell(r, column))
        raw = [r[alias] for r in by_time]
        parsed = [cell(r, column) for r in by_time]
        if predicate == "exact":
            return [(raw[1], parsed[1]), (raw[4], parsed[4])]
        if predicate == "range":
            return [(f"{raw[1]},{raw[4]}", (parsed[1], parsed[4]))]
        middle = len(raw) // 2
        return [(raw[middle], parsed[middle]), (raw[0], parsed[0])]
    raise AssertionError(f"no probes for column type {kind!r} ({alias})")


def test_every_declared_predicate_filters_correctly(world: World, admin_client: APIClient) -> None:
    failures = []
    checked = 0
    for column in columns(admin_client):
        for predicate in column["predicates"]:
            results = []
            for text, wanted in probes(column, predicate, world.rows):
                expected = sorted(
                    r["name"] for r in world.rows if MATCH[predicate](cell(r, column), wanted)
                )
                query = {param(column["alias"], predicate): text, "limit": 100}
                response = admin_client.get(URL, query)
                if response.status_code != 200:
                    failures.append((query, response.status_code, response.json()))
                    continue
                body = response.json()
                got = sorted(r["name"] for r in body["results"])
                if got != expected or body["filtered_count"] != len(expected):
                    failures.append((query, got, expected))
                assert body["total_count"] == len(ROWS)
                results.append(expected)
                checked += 1
            # The probes must tell a working filter from an ignored one.
            assert any(results), (column["alias"], predicate, "no probe matched any row")
            assert any(len(r) < len(ROWS) for r in results), (column["alias"], predicate)
    assert not failures, failures
    assert checked >= 60


def test_filters_combine(world: World, admin_client: APIClient) -> None:
    query = {"name__icontains": "alpha", "is_enabled": "true", "created_by": world.alice.pk}
    assert sorted(names(admin_client.get(URL, query))) == ["Alpha Matters", "alpha clients"]


def test_a_datetime_with_an_offset_filters_by_the_instant(
    world: World, admin_client: APIClient
) -> None:
    # 12:00+02:00 is 10:00 UTC: the rows created at 09:00 and 10:00 UTC are not after it.
    query = {"created_at__gt": "2024-03-01T12:00:00+02:00", "limit": 100}
    assert sorted(names(admin_client.get(URL, query))) == sorted(n for n, *_ in ROWS[2:])


def malformed(world: World) -> list[tuple[str, str]]:
    unknown = User.objects.order_by("-pk").first()
    assert unknown is not None
    missing = unknown.pk + 1000
    return [
        ("created_at", "not-a-date"),
        ("created_at__gte", "2024-13-01T00:00:00Z"),
        ("modified_at__lt", "yesterday"),
        ("created_at__range", "2024-03-01T00:00:00Z"),
        ("modified_at__range", "2024-03-01T00:00:00Z,later"),
        ("type", "imanage"),
        ("type__in", "1,x"),
        ("uuid", "not-a-uuid"),
        ("uuid", "12345"),
        ("is_enabled", "maybe"),
        ("created_by", str(missing)),
        ("created_by__in", f"{world.alice.pk},{missing}"),
        ("modified_by", "alice"),
        ("modified_by__in", "x"),
        ("authentication_object", str(missing)),
        ("object_class__in", "1,x"),
    ]


def test_malformed_values_are_a_400_naming_the_parameter(
    world: World, admin_client: APIClient
) -> None:
    for name, value in malformed(world):
        response = admin_client.get(URL, {name: value})
        assert response.status_code == 400, (name, value, response.content)
        body = response.json()
        assert list(body) == [name], (name, value, body)
        assert body[name] and all(isinstance(m, str) and m for m in body[name])


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("type__in", "1,x", "Enter a number."),
        ("uuid", "not-a-uuid", "Enter a valid UUID."),
        ("is_enabled", "maybe", "Must be a valid boolean."),
        ("created_at", "not-a-date", "Enter a valid date/time."),
        ("created_at__range", "2024-03-01T00:00:00Z", "Range query expects two values."),
    ],
)
def test_malformed_value_messages(
    world: World, admin_client: APIClient, name: str, value: str, message: str
) -> None:
    response = admin_client.get(URL, {name: value})
    assert response.status_code == 400
    assert response.json() == {name: [message]}


# --- the OPTIONS document ------------------------------------------------------------------


def test_list_columns_are_the_seeds(make_user: Callable[..., User]) -> None:
    assert columns(client_for(make_user())) == SEED_COLUMNS


def test_every_accepted_filter_is_declared_and_every_declared_one_accepted(
    admin_client: APIClient,
) -> None:
    declared = {param(c["alias"], p) for c in columns(admin_client) for p in c["predicates"]}
    accepted = set(IntegrationFilterSet.base_filters) - {"ordering"}
    assert declared == accepted


def test_columns_come_from_the_filters_a_filterset_really_has() -> None:
    class Declared(django_filters.FilterSet):
        # Declared rather than generated from Meta.fields: still a predicate the API accepts.
        name__icontains = django_filters.CharFilter(field_name="name", lookup_expr="icontains")
        ordering = django_filters.OrderingFilter(fields=(("name", "name"),))

        class Meta:
            model = Integration
            fields = ["name", "is_enabled"]  # the list form: "exact" only

    assert list_columns(Declared) == [
        {"alias": "name", "type": "string", "predicates": ["exact", "icontains"], "sort_ok": True},
        {"alias": "is_enabled", "type": "bool", "predicates": ["exact"], "sort_ok": False},
    ]


# --- query count -----------------------------------------------------------------------------


def test_the_query_count_does_not_grow_with_the_page_size(
    admin_user: User, admin_client: APIClient, make_user: Callable[..., User]
) -> None:
    other = make_user("integrations.create")
    auths = [make_imanage_auth(admin_user, name=f"Auth {i}") for i in range(3)]
    classes = [make_object_class(admin_user, name=f"Class {i}") for i in range(3)]
    field_names = {}
    for i in range(60):
        oc = classes[i % 3]
        field = make_field(admin_user, oc, name=f"Field {i}")
        integration = make_integration(
            admin_user if i % 2 else other,
            name=f"Integration {i:02}",
            authentication_object=auths[i % 3],
            object_class=oc,
            field=field,
        )
        field_names[str(integration.uuid)] = f"Field {i}"
    admin_client.get(URL, {"limit": 1})  # warm-up: nothing cached differs between the two

    def measure(limit: int) -> tuple[int, list[dict[str, Any]]]:
        with CaptureQueriesContext(connection) as ctx:
            response = admin_client.get(URL, {"limit": limit})
        assert response.status_code == 200
        return len(ctx.captured_queries), response.json()["results"]

    small, five = measure(5)
    big, fifty = measure(50)
    assert (len(five), len(fifty)) == (5, 50)
    assert small == big, (small, big)
    for row in fifty:  # the type-specific labels are there, and right, without more queries
        assert row["_meta"]["labels"]["object_class_field"] == field_names[row["uuid"]]
        assert row["_meta"]["labels"]["object_class"].startswith("Class ")
        assert row["_meta"]["labels"]["authentication_object"].startswith("Auth ")
        assert row["created_by"]["username"] in {"admin", other.username}


# --- who may reach which integrations endpoint ----------------------------------------------


@dataclass
class Target:
    auth: AuthenticationObject
    integration: Integration
    body: dict[str, Any]


@pytest.fixture
def target(admin_user: User) -> Target:
    # Port 1 is outside the egress policy: the connection test answers without any network.
    auth = make_imanage_auth(admin_user, server_url="https://127.0.0.1:1")
    oc = make_object_class(admin_user)
    field = make_field(admin_user, oc)
    integration = make_integration(
        admin_user,
        name="Existing",
        authentication_object=auth,
        object_class=oc,
        field=field,
        description="before",
    )
    body = {
        "type": IManage.id,
        "name": "Created",
        "authentication_object": auth.pk,
        "object_class": oc.pk,
        "object_class_field": field.pk,
        "folder": "/Clients",
    }
    return Target(auth=auth, integration=integration, body=body)


@dataclass(frozen=True)
class Endpoint:
    action: str
    permission: str
    method: str
    path: str  # formatted with the target integration's uuid
    success: int

    def call(self, client: APIClient, target: Target) -> Any:
        url = self.path.format(uuid=target.integration.uuid)
        data: dict[str, Any] | None = {
            "create": target.body,
            "partial_update": {"description": "after"},
            "test": {"type": IManage.id, "authentication_object": target.auth.pk},
        }.get(self.action)
        return getattr(client, self.method)(url, data, format="json")


DETAIL = URL + "{uuid}/"
ENDPOINTS = [
    Endpoint("list", "integrations.list", "get", URL, 200),
    Endpoint("retrieve", "integrations.view", "get", DETAIL, 200),
    Endpoint("create", "integrations.create", "post", URL, 201),
    Endpoint("partial_update", "integrations.edit", "patch", DETAIL, 200),
    Endpoint("destroy", "integrations.delete", "delete", DETAIL, 204),
    Endpoint("test", "integrations.create", "post", URL + "test/", 200),
]
IDS = [e.action for e in ENDPOINTS]


def unchanged(target: Target) -> None:
    assert list(Integration.objects.values_list("name", "description")) == [("Existing", "before")]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_every_permission_but_the_needed_one_is_a_403(
    target: Target, make_user: Callable[..., User], endpoint: Endpoint
) -> None:
    user = make_user(*(p for p in all_permissions() if p != endpoint.permission))
    response = endpoint.call(client_for(user), target)
    assert response.status_code == 403
    assert response.json() == FORBIDDEN
    unchanged(target)


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_the_one_permission_suffices(
    target: Target, make_user: Callable[..., User], endpoint: Endpoint
) -> None:
    response = endpoint.call(client_for(make_user(endpoint.permission)), target)
    assert response.status_code == endpoint.success, response.content
    rows = dict(Integration.objects.values_list("name", "description"))
    if endpoint.action == "create":
        assert response.json()["name"] == "Created"
        assert set(rows) == {"Existing", "Created"}
    elif endpoint.action == "partial_update":
        assert rows == {"Existing": "after"}
    elif endpoint.action == "destroy":
        assert rows == {}
    else:
        assert rows == {"Existing": "before"}
    if endpoint.action == "test":
        assert response.json()["status"] == "error"  # the egress policy refused port 1
    if endpoint.action == "list":
        assert [r["name"] for r in response.json()["results"]] == ["Existing"]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=IDS)
def test_anonymous_callers_get_a_401(target: Target, endpoint: Endpoint) -> None:
    response = endpoint.call(client_for(None), target)
    assert response.status_code == 401
    assert response.json() == UNAUTHENTICATED
    unchanged(target)


def test_options_needs_authentication_only(make_user: Callable[..., User]) -> None:
    response = client_for(make_user()).options(URL)
    assert response.status_code == 200
    assert response.json()["list"]["columns"] == SEED_COLUMNS
    anonymous = client_for(None).options(URL)
    assert anonymous.status_code == 401
    assert anonymous.json() == UNAUTHENTICATED


def test_a_list_shows_the_callers_own_permissions(
    target: Target, make_user: Callable[..., User]
) -> None:
    user = make_user("integrations.list", "integrations.edit")
    row = client_for(user).get(URL).json()["results"][0]
    assert row["_meta"]["permissions"] == {
        "list": True,
        "view": False,
        "create": False,
        "edit": True,
        "delete": False,
    }


@pytest.mark.parametrize(
    "path", ["/api/users/permissions/integrations", "/api/users/permissions/integrations/"]
)
def test_the_permissions_endpoint_returns_the_callers_flags(
    make_user: Callable[..., User], admin_client: APIClient, path: str
) -> None:
    user = make_user("integrations.view", "integrations.create", "object_classes.list")
    response = client_for(user).get(path)
    assert response.status_code == 200
    assert response.json() == {
        "list": False,
        "view": True,
        "create": True,
        "edit": False,
        "delete": False,
    }
    others = make_user(*(p for p in all_permissions() if not p.startswith("integrations.")))
    assert client_for(others).get(path).json() == dict.fromkeys(
        ("list", "view", "create", "edit", "delete"), False
    )
    assert admin_client.get(path).json() == dict.fromkeys(
        ("list", "view", "create", "edit", "delete"), True
    )
    assert client_for(None).get(path).status_code == 401
