"""The integrations list is written without the serializer (``page_json``: JSON text from the
rows of one query, ``selectors.integration_page``); these tests hold it to the serializer.

For a variety of rows (labels present and absent, nulls, non-ASCII and JSON-hostile text,
odd stored values, two types, one with a secret) and of requests (filters, orderings,
pages, past the end), the response's bytes are exactly what ``IntegrationOutput`` and DRF's
renderer make of the same rows with Django's own reading of them."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, ClassVar

import django_filters
import pytest
from django.db import connection
from django.db.models import JSONField, Value
from django.test.utils import CaptureQueriesContext
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIClient

from outbound.accounts.models import User
from outbound.core.filters import OutboundFilterSet
from outbound.core.permissions import resource_permissions
from outbound.integrations import selectors
from outbound.integrations.api.integration_serializers import IntegrationOutput
from outbound.integrations.api.rendering import RenderedRows
from outbound.integrations.filtersets import IntegrationFilterSet
from outbound.integrations.models import (
    AuthenticationObject,
    Integration,
    ObjectClass,
    ObjectClassField,
)
from outbound.integrations.types import REGISTRY, IntegrationType, TypeField, register
from tests.conftest import client_for
from tests.integrations.factories import (
    make_field,
    make_imanage_auth,
    make_integration,
    make_object_class,
)

pytestmark = pytest.mark.django_db

URL = "/api/integrations/"
JSON_NULL = Value(None, output_field=JSONField())  # JSON's null, not SQL's NULL
HOSTILE = 'quote " backslash \\ slash / tab \t newline \n nul-ish \x01 del \x7f ls \u2028 ps \u2029'


class Sample(IntegrationType):
    """A second type for these tests only: a secret, a default, a bool and a ``pk`` field of
    another model than iManage's."""

    id = 77
    label = "Sample «Ω» \u2028"
    requires = ()
    fields: ClassVar[tuple[TypeField, ...]] = (
        TypeField("token", "string", secret=True),
        TypeField("mode", "string", default="auto"),
        TypeField("owner_class", "pk", model=ObjectClass, model_name="ObjectClass"),
        TypeField("loud", "bool", default=True),
    )


def _forget_row_shapes() -> None:
    selectors._row_fields.cache_clear()
    selectors._LIST_ROWS.clear()
    selectors._CONVERTERS.clear()
    selectors._SPLITS.clear()


@pytest.fixture
def sample_type() -> Iterator[type[IntegrationType]]:
    register(Sample)
    _forget_row_shapes()  # rows now carry sealed_secrets and the new label column
    try:
        yield Sample
    finally:
        REGISTRY.pop(Sample.id)
        _forget_row_shapes()


def _at(days: int, microsecond: int = 0, tz: Any = UTC) -> datetime:
    return datetime(2025, 5, 4, 3, 2, 1, microsecond, tzinfo=UTC).astimezone(tz) + timedelta(
        days=days
    )


@pytest.fixture
def rows(admin_user: User, make_user: Callable[..., User], sample_type: Any) -> list[str]:
    """Integrations of every shape a list row can take; their names, oldest first."""
    zoe = make_user(username="zoë")
    User.objects.filter(pk=zoe.pk).update(username='zoë \u2028 "quoted"')  # as stored elsewhere
    auth = make_imanage_auth(admin_user, name="iManage «prod» 日本")
    other_auth = make_imanage_auth(admin_user, name="Other")
    matter = make_object_class(admin_user, name="Matter ✓")
    client_class = make_object_class(admin_user, name="Client \\ class")
    number = make_field(admin_user, matter, name='Matter № "number"')
    ref = make_field(admin_user, client_class, name="Ref")
    # Text no request may write (control characters) but a row may hold all the same.
    AuthenticationObject.objects.filter(pk=other_auth.pk).update(name=HOSTILE[:100])
    ObjectClassField.objects.filter(pk=ref.pk).update(name="Ref\tfield\x02")
    created = []

    def imanage(name: str, **data: Any) -> Integration:
        integration = make_integration(
            data.pop("actor", admin_user),
            name=name,
            authentication_object=data.pop("auth", auth),
            object_class=data.pop("oc", matter),
            field=data.pop("field", number),
            **data,
        )
        created.append(name)
        return integration

    def stored(integration: Integration, days: int, **changes: Any) -> None:
        microsecond = changes.pop("microsecond", 0)
        Integration.objects.filter(pk=integration.pk).update(
            created_at=_at(days, microsecond),
            modified_at=_at(days + 1, microsecond, timezone(timedelta(hours=-7))),
            **changes,
        )

    stored(imanage("Plain", description="A plain one", is_enabled=True), 0, microsecond=120)
    stored(imanage("Ünïcødé ✓ 日本語 🚀", folder="/Mätters/日本"), 1, description=HOSTILE)
    hostile = imanage("Hostile", auth=other_auth, oc=client_class, field=ref, dedupe=True)
    stored(hostile, 2, name=HOSTILE[:100])
    created[-1] = HOSTILE[:100]
    stored(imanage("Made by Zoë", actor=zoe, description=""), 3, microsecond=999999)
    # Relations and users gone (the model allows it): labels and users are null.
    stored(
        imanage("Orphan"),
        4,
        authentication_object=None,
        object_class=None,
        created_by=None,
        modified_by=None,
    )
    # Stored values no request can write, but a row may still hold: the list shows them as
    # the serializer does, labels included.
    odd_values: list[Any] = [
        None,  # a null field: no label
        987654,  # no such field: no label
        True,  # looked up as pk 1 by the serializer
        float(number.pk),  # likewise, as a number with a fraction
        str(number.pk),  # a string: the serializer finds the object but not the label
    ]
    for i, value in enumerate(odd_values):
        integration = imanage(f"Odd {i}")
        params = dict(integration.parameters)
        params["object_class_field"] = value
        if i == 1:
            params.pop("dedupe", None)  # its default shows
            params.pop("folder", None)  # no default: null
            params["unknown"] = "ignored"
        if i == 2:
            params["folder"] = {"nested": ["a", 1, None, 2.5, -0.0, 1e300, "日本"]}
            params["dedupe"] = 2**70
        stored(integration, 5 + i, parameters=params)
    stored(imanage("Null parameters"), 20, parameters=JSON_NULL)
    # The sample type: a secret set or not, a label of another model, defaults.
    for i, (sealed, params) in enumerate(
        [
            ({"token": "ciphertext"}, {"owner_class": client_class.pk, "mode": "manual"}),
            ({}, {"owner_class": matter.pk, "loud": False}),
            (None, {}),
        ]
    ):
        sample = Integration.objects.create(
            type=Sample.id,
            name=f"Sample {i} «{HOSTILE[:20]}»",
            parameters=params,
            created_by=zoe,
            modified_by=admin_user,
        )
        created.append(sample.name)
        stored(sample, 30 + i, sealed_secrets=JSON_NULL if sealed is None else sealed)
    return created


def reference(client: APIClient, user: User, query: dict[str, Any], **headers: Any) -> bytes:
    """What the list answered before it was written by hand: the filtered model queryset read
    with ``values()``, counted by Django, presented by ``IntegrationOutput`` and rendered
    by DRF (the envelope's links taken from the answer; other tests check them)."""
    response = client.get(URL, query, **headers)
    assert response.status_code == 200, response.content
    body = response.json()
    filterset = IntegrationFilterSet(
        response.wsgi_request.GET, queryset=selectors.integration_list()
    )
    assert filterset.is_valid(), filterset.errors
    queryset = filterset.qs
    limit, offset = body["limit"], body["offset"]
    page = list(selectors.integration_rows(queryset)[offset : offset + limit])
    context = {"permissions": resource_permissions(user, "integrations")}
    envelope = {
        "limit": limit,
        "offset": offset,
        "total_count": Integration.objects.count(),
        "filtered_count": queryset.count(),
        "next": body["next"],
        "previous": body["previous"],
        "results": IntegrationOutput(page, many=True, context=context).data,
    }
    indent = 4 if "indent=4" in headers.get("HTTP_ACCEPT", "") else None
    media_type = "application/json; indent=4" if indent else "application/json"
    return JSONRenderer().render(envelope, media_type, {})


QUERIES: list[dict[str, Any]] = [
    {"limit": 100},
    {},
    {"limit": 3},
    {"limit": 4, "offset": 5},
    {"limit": 2, "offset": 100},  # past the end: an empty page, both counts
    {"ordering": "-created_at", "limit": 100},
    {"ordering": "authentication_object", "limit": 100},  # nulls among the labels
    {"ordering": "-object_class", "limit": 7, "offset": 2},
    {"ordering": "modified_at"},
    {"name__icontains": "ünï"},
    {"name__contains": "Odd"},
    {"name__icontains": "zzz-nothing"},  # no row: the counts still come
    {"type": str(Sample.id)},
    {"type__in": f"1,{Sample.id}", "is_enabled": "true"},
    {"is_enabled": "false", "ordering": "name", "limit": 5},
    {"created_at__gte": "2025-05-06T00:00:00Z", "created_at__lt": "2025-05-20T00:00:00Z"},
]


@pytest.mark.parametrize("query", QUERIES, ids=[str(q) for q in QUERIES])
def test_the_list_is_byte_for_byte_what_the_serializer_gives(
    rows: list[str], admin_user: User, admin_client: APIClient, query: dict[str, Any]
) -> None:
    expected = reference(admin_client, admin_user, query)
    # The first request of an ordering has Django compile the page (and checks the SQL it
    # puts together against it); the second puts the page's SQL together itself.
    for _ in range(2):
        response = admin_client.get(URL, query)
        assert response.status_code == 200
        assert isinstance(response.data["results"], RenderedRows)  # written by hand
        assert response.content == expected


def test_every_query_in_turn_with_the_compiled_orderings_shared(
    rows: list[str], admin_user: User, admin_client: APIClient
) -> None:
    for query in QUERIES:
        response = admin_client.get(URL, query)
        assert response.content == reference(admin_client, admin_user, query), query
    # The orderings' SQL was put together from the template's, not compiled per request.
    assert any(split is not None for split in selectors._SPLITS.values())


def test_every_row_shape_is_listed(rows: list[str], admin_client: APIClient) -> None:
    listed = admin_client.get(URL, {"limit": 100}).json()
    assert sorted(r["name"] for r in listed["results"]) == sorted(rows)
    assert listed["total_count"] == listed["filtered_count"] == len(rows)
    by_name = {r["name"]: r for r in listed["results"]}
    # Spot checks of what the byte comparison covers, readable when it fails.
    assert by_name["Orphan"]["created_by"] is None
    assert by_name["Orphan"]["_meta"]["labels"]["authentication_object"] is None
    assert by_name["Odd 1"]["_meta"]["labels"]["object_class_field"] is None
    assert by_name["Odd 1"]["dedupe"] is False and by_name["Odd 1"]["folder"] is None
    pk_1 = ObjectClassField.objects.filter(pk=1).first()  # True is looked up as pk 1
    assert by_name["Odd 2"]["_meta"]["labels"]["object_class_field"] == (pk_1 and pk_1.name)
    assert by_name["Odd 3"]["_meta"]["labels"]["object_class_field"] == 'Matter № "number"'
    assert by_name["Odd 4"]["_meta"]["labels"]["object_class_field"] is None
    assert by_name["Null parameters"]["folder"] is None
    samples = sorted((r for r in listed["results"] if r["type"] == Sample.id), key=str)
    assert {r["has_token"] for r in samples} == {True, False}
    assert {r["_meta"]["labels"]["owner_class"] for r in samples} == {
        "Matter ✓",
        "Client \\ class",
        None,
    }


def test_a_viewer_gets_its_own_permissions_in_every_row(
    rows: list[str], make_user: Callable[..., User]
) -> None:
    viewer = make_user("integrations.list")
    client = client_for(viewer)
    response = client.get(URL, {"limit": 100})
    assert response.status_code == 200
    assert response.content == reference(client, viewer, {"limit": 100})
    assert {str(r["_meta"]["permissions"]) for r in response.json()["results"]} == {
        str({"list": True, "view": False, "create": False, "edit": False, "delete": False})
    }


def test_indented_json_and_the_browsable_api_show_the_same_rows(
    rows: list[str], admin_user: User, admin_client: APIClient
) -> None:
    accept = "application/json; indent=4"
    response = admin_client.get(URL, {"limit": 6}, HTTP_ACCEPT=accept)
    assert response.status_code == 200
    assert response.content == reference(admin_client, admin_user, {"limit": 6}, HTTP_ACCEPT=accept)
    assert b'\n    "results": [' in response.content

    page = admin_client.get(URL, {"limit": 3}, HTTP_ACCEPT="text/html")
    assert page.status_code == 200
    assert page["Content-Type"].startswith("text/html")
    assert b"Sample 2" in page.content  # the newest row, written into the page


def test_a_page_costs_two_statements_whatever_its_size(
    rows: list[str], admin_client: APIClient
) -> None:
    # Stored pk values that are not plain integers are looked up as the serializer does: one
    # more statement for the page that holds them. Without them:
    Integration.objects.filter(name__startswith="Odd").delete()
    counts = []
    for limit in (1, 5, 100):
        with CaptureQueriesContext(connection) as ctx:
            response = admin_client.get(URL, {"limit": limit, "ordering": "-created_at"})
            assert response.status_code == 200
        counts.append(len(ctx.captured_queries))
    # The caller (authentication), the page with its labels, both counts.
    assert counts == [3, 3, 3]


def test_counts_of_a_filter_beyond_the_rows_own_columns_come_from_django(
    rows: list[str],
) -> None:
    """A condition through a join (none of the list's filters is one) is counted by Django
    rather than copied into the counting statement."""
    through_join = selectors.integration_list_rows().filter(
        authentication_object__name__startswith="iManage"
    )
    with CaptureQueriesContext(connection) as ctx:
        page = selectors.integration_page(through_join, offset=0, limit=2)
    expected = Integration.objects.filter(authentication_object__name__startswith="iManage")
    assert (page.total_count, page.filtered_count) == (len(rows), expected.count())
    assert len(page.rows) == 2
    assert len(ctx.captured_queries) == 3

    nothing = selectors.integration_page(
        selectors.integration_list_rows().filter(pk__in=[]), offset=0, limit=5
    )
    assert (nothing.rows, nothing.total_count, nothing.filtered_count) == ([], len(rows), 0)


def test_the_label_column_is_what_str_shows(admin_user: User, sample_type: Any) -> None:
    """The list reads a ``pk`` field's label from a column (``TypeField.label_field``); the
    serializer from ``str()``. They must be the same for every declared model."""
    matter = make_object_class(admin_user, name="Matter")
    instances = {
        ObjectClassField: make_field(admin_user, matter, name="Number"),
        ObjectClass: matter,
        AuthenticationObject: make_imanage_auth(admin_user),
    }
    for itype in REGISTRY.values():
        for f in itype.fields:
            if f.kind == "pk":
                obj = instances[f.model]
                assert str(obj) == getattr(obj, f.label_field), (itype, f.alias)


def test_a_type_whose_keys_collide_is_refused() -> None:
    for fields in (
        (TypeField("name", "string"),),
        (TypeField("x", "string"), TypeField("x", "bool")),
        (TypeField("secret", "string", secret=True), TypeField("has_secret", "bool")),
    ):
        clashing = type("Clashing", (IntegrationType,), {"id": 78, "label": "C", "fields": fields})
        with pytest.raises(ValueError, match="repeats"):
            register(clashing)
        assert 78 not in REGISTRY


def test_filter_form_classes_are_shared_per_set_of_filters() -> None:
    one = IntegrationFilterSet({"name__icontains": "a", "ordering": "name"})
    two = IntegrationFilterSet({"ordering": "-name", "name__icontains": "b"})
    other = IntegrationFilterSet({"name": "a"})

    assert type(one.form) is type(two.form)
    assert type(other.form) is not type(one.form)
    assert one.form.fields["ordering"] is not two.form.fields["ordering"]  # bound apart
    assert one.is_valid() and two.is_valid() and other.is_valid()
    assert one.form.cleaned_data["name__icontains"] == "a"
    assert two.form.cleaned_data["name__icontains"] == "b"
    assert list(two.form.cleaned_data["ordering"]) == ["-name"]
    assert len(OutboundFilterSet._form_classes) <= OutboundFilterSet.FORM_CLASSES_KEPT


def test_a_filter_form_built_from_the_request_is_never_shared() -> None:
    requests: list[Any] = []

    def per_request(request: Any) -> Any:
        requests.append(request)
        return ObjectClass.objects.all()

    class PerRequest(OutboundFilterSet):
        object_class = django_filters.ModelChoiceFilter(queryset=per_request)

        class Meta:
            model = Integration
            fields: ClassVar[list[str]] = []

    forms = {type(PerRequest({"object_class": "1"}, request=object()).form) for _ in range(3)}
    assert len(forms) == 3
    assert len(requests) == 3


def test_a_put_together_sql_that_is_not_djangos_is_never_used(
    rows: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first page of an ordering compares the SQL put together from the template's with
    Django's own for that page; a difference keeps Django compiling that ordering."""
    selectors._SPLITS.clear()
    monkeypatch.setattr(selectors, "_split", lambda ordered, db: ('SELECT 1 AS "uuid"', (), "", ()))
    filtered = selectors.integration_list_rows().filter(name__startswith="Odd")
    for _ in range(2):
        page = selectors.integration_page(filtered.order_by("name"), offset=0, limit=3)
        assert [row[page.columns["name"]] for row in page.rows] == ["Odd 0", "Odd 1", "Odd 2"]
        assert (page.total_count, page.filtered_count) == (len(rows), 5)
    assert list(selectors._SPLITS.values()) == [None]
