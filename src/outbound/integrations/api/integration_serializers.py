"""The ALX ``/api/integrations/`` shapes, generated from the type registry.

Input serializers: one common base plus, per type, a class built from its declaration
(:func:`input_serializer_class`). Output: one serializer whose list form fetches every label
of a page in one query per related model.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from functools import cache, partial
from json.encoder import encode_basestring
from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema_field
from rest_framework import serializers
from rest_framework.utils import encoders
from rest_framework.validators import UniqueValidator

from outbound.core.api.metadata import field_schema
from outbound.integrations import selectors
from outbound.integrations.models import (
    AuthenticationObject,
    Integration,
    ObjectClass,
)
from outbound.integrations.services import does_not_exist
from outbound.integrations.types import REGISTRY, IntegrationType, TypeField, type_choices

NAME_MAX = 100
DESCRIPTION_MAX = 500
RELATION_MODEL_NAMES = {
    "authentication_object": "AuthenticationObjectData",
    "object_class": "ObjectClass",
}
RELATION_AUTOCOMPLETE = {
    "authentication_object": "/api/authentication-objects/autocomplete/?text__icontains=",
    "object_class": "/api/object-classes/autocomplete/?text__icontains=",
}


class IntegerPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """An integer pk. A float is "not int" (the database would silently truncate 1.5 to 1)."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, float):
            self.fail("incorrect_type", data_type=type(data).__name__)
        return super().to_internal_value(data)


def pk_field(queryset: Any, model_name: str, **kwargs: Any) -> serializers.PrimaryKeyRelatedField:
    return IntegerPrimaryKeyField(
        queryset=queryset,
        error_messages={"does_not_exist": does_not_exist(model_name, "{pk_value}")},
        **kwargs,
    )


class IntegrationInput(serializers.Serializer[Integration]):
    """The fields every type shares (used alone when ``type`` is missing or invalid)."""

    type = serializers.ChoiceField(choices=type_choices())
    name = serializers.CharField(
        max_length=NAME_MAX,
        validators=[UniqueValidator(queryset=Integration.objects.all())],
    )
    description = serializers.CharField(
        max_length=DESCRIPTION_MAX, allow_blank=True, required=False
    )
    is_enabled = serializers.BooleanField(required=False)
    authentication_object = pk_field(
        AuthenticationObject.objects.all(), "AuthenticationObjectData", required=False
    )
    object_class = pk_field(ObjectClass.objects.all(), "ObjectClass", required=False)

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        if self.instance is not None:
            # Updating: any ``type`` goes to the service, which refuses a change of type.
            fields["type"] = serializers.JSONField(required=False)
        return fields


def _type_field(f: TypeField) -> serializers.Field:
    if f.kind == "string":
        return serializers.CharField(
            max_length=f.max_length,
            required=f.required,
            write_only=f.secret,
            # Like ``name``: surrounding blanks are dropped, so "   " is blank. Secrets are
            # kept exactly as typed.
            trim_whitespace=not f.secret,
        )
    if f.kind == "bool":
        return serializers.BooleanField(required=f.required)
    assert f.model is not None
    return pk_field(f.model.objects.all(), f.model_name, required=f.required)


@cache
def input_serializer_class(type_id: int) -> type[IntegrationInput]:
    """The input serializer of one type: common fields, required relations, its own fields."""
    itype = REGISTRY[type_id]
    attrs: dict[str, Any] = {}
    for relation in itype.requires:
        queryset: Any = (
            _authentication_objects(itype)
            if relation == "authentication_object"
            else ObjectClass.objects.all()
        )
        attrs[relation] = pk_field(queryset, RELATION_MODEL_NAMES[relation], required=True)
    for f in itype.fields:
        attrs[f.alias] = _type_field(f)
    return type(f"{itype.__name__}IntegrationInput", (IntegrationInput,), attrs)


def _authentication_objects(itype: type[IntegrationType]) -> Any:
    """The authentication objects a type can use (others are "does not exist" to it)."""
    return AuthenticationObject.objects.filter(provider__in=itype.authentication_providers)


def _requested_type(data: Any) -> int | None:
    """The body's ``type`` when it names a registered type, else ``None``."""
    if isinstance(data, dict):
        raw = data.get("type")
        if not isinstance(raw, bool) and str(raw).isdigit() and int(str(raw)) in REGISTRY:
            return int(str(raw))
    return None


def serializer_for(data: Any, *, instance: Integration | None = None) -> type[IntegrationInput]:
    """The type's serializer when ``type`` (or the instance's) is a known type."""
    type_id = instance.type if instance is not None else _requested_type(data)
    return input_serializer_class(type_id) if type_id is not None else IntegrationInput


class IntegrationTestInput(serializers.Serializer[dict[str, Any]]):
    """``POST /api/integrations/test/`` (used alone when ``type`` is missing or invalid)."""

    type = serializers.ChoiceField(choices=type_choices())
    authentication_object = pk_field(AuthenticationObject.objects.all(), "AuthenticationObjectData")


@cache
def connection_test_input_class(type_id: int) -> type[IntegrationTestInput]:
    """The test input of one type: only authentication objects of its providers exist."""
    itype = REGISTRY[type_id]
    field = pk_field(_authentication_objects(itype), "AuthenticationObjectData")
    return type(
        f"{itype.__name__}IntegrationTestInput",
        (IntegrationTestInput,),
        {"authentication_object": field},
    )


def connection_test_serializer_for(data: Any) -> type[IntegrationTestInput]:
    type_id = _requested_type(data)
    return connection_test_input_class(type_id) if type_id is not None else IntegrationTestInput


# --- output ----------------------------------------------------------------------------------


class UserRefSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField()
    username = serializers.CharField()


class IntegrationListSerializer(serializers.ListSerializer[dict[str, Any]]):
    def to_representation(self, data: Any) -> list[dict[str, Any]]:
        rows = list(data)
        self.child.context["pk_labels"] = _pk_labels(rows)  # type: ignore[union-attr,index]
        return [self.child.to_representation(row) for row in rows]  # type: ignore[union-attr]


def _pk_labels(rows: list[dict[str, Any]]) -> dict[tuple[Any, Any], str]:
    """Labels of the type-specific ``pk`` values of ``rows``: one query per model."""
    wanted: dict[Any, set[Any]] = {}
    for row in rows:
        itype = REGISTRY.get(row["type"])
        for f in itype.fields if itype else ():
            value = (row["parameters"] or {}).get(f.alias)
            if f.kind == "pk" and value is not None and f.model is not None:
                wanted.setdefault(f.model, set()).add(value)
    labels = {}
    for model, ids in wanted.items():
        for obj in model.objects.filter(pk__in=ids):
            labels[(model, obj.pk)] = str(obj)
    return labels


def _iso(value: datetime) -> str:
    """DRF's ISO 8601 form (UTC, ``Z``) without its per-call time-zone lookups."""
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _timestamp(row: dict[str, Any], name: str) -> str:
    """A row's timestamp as DRF prints it, from SQLite's UTC text when the row has it (see
    ``selectors.integration_rows``): ``2026-01-02 03:04:05.123456`` -> ``…T03:04:05.123456Z``."""
    text = row.get(f"{name}_text")
    if text is None:
        return _iso(row[name])
    return f"{text[:10]}T{text[11:]}Z"


def _user(row: dict[str, Any], prefix: str) -> dict[str, Any] | None:
    pk = row[prefix]
    return {"id": pk, "username": row[f"{prefix}__username"]} if pk is not None else None


# Presents rows of ``selectors.integration_rows`` (plain values: a page of 100 costs no model
# instances). The fields below are declared for the OpenAPI schema.
class IntegrationOutput(serializers.Serializer[dict[str, Any]]):
    """An integration: the common fields, then its type's own fields, then ``_meta``."""

    uuid = serializers.UUIDField()
    type = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    is_enabled = serializers.BooleanField()
    authentication_object = serializers.IntegerField(allow_null=True)
    object_class = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    created_by = UserRefSerializer(allow_null=True)
    modified_at = serializers.DateTimeField()
    modified_by = UserRefSerializer(allow_null=True)
    _meta = serializers.DictField()

    class Meta:
        list_serializer_class = IntegrationListSerializer

    def to_representation(self, row: dict[str, Any]) -> dict[str, Any]:
        itype = REGISTRY[row["type"]]
        params = row["parameters"] or {}
        labels: dict[str, Any] = {
            "type": itype.label,
            "authentication_object": row["authentication_object__name"],
            "object_class": row["object_class__name"],
        }
        body: dict[str, Any] = {
            "uuid": str(row["uuid"]),
            "type": row["type"],
            "name": row["name"],
            "description": row["description"],
            "is_enabled": row["is_enabled"],
            "authentication_object": row["authentication_object"],
            "object_class": row["object_class"],
        }
        pk_labels = self.context.get("pk_labels")
        if pk_labels is None:
            pk_labels = _pk_labels([row])
        sealed = row.get("sealed_secrets") or {}
        for f in itype.fields:
            if f.secret:
                body[f"has_{f.alias}"] = f.alias in sealed
                continue
            value = params.get(f.alias, f.default)
            body[f.alias] = value
            if f.kind == "pk":
                labels[f.alias] = pk_labels.get((f.model, value)) if value is not None else None
        body.update(
            created_at=_timestamp(row, "created_at"),
            created_by=_user(row, "created_by"),
            modified_at=_timestamp(row, "modified_at"),
            modified_by=_user(row, "modified_by"),
            _meta={"labels": labels, "permissions": self.context.get("permissions", {})},
        )
        return body


# --- the list ----------------------------------------------------------------------------

# The compact JSON DRF's renderer writes with the default settings (UNICODE_JSON, COMPACT_JSON,
# STRICT_JSON): ``rendering.ListJSONRenderer`` splices ``page_json`` only under those.
_dumps = partial(
    json.dumps,
    cls=encoders.JSONEncoder,
    ensure_ascii=False,
    allow_nan=False,
    separators=(",", ":"),
)


def _json(value: Any) -> str:
    """``value`` as the renderer writes it (the encoder's own string escaping)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is str:
        return encode_basestring(value)
    if kind is int:
        return int.__repr__(value)
    return _dumps(value)


def page_json(page: selectors.IntegrationPage, permissions: Any) -> str:
    """A page of the list as the JSON array DRF would write for it: for each row exactly what
    ``IntegrationOutput`` gives (same keys in the same order, same values, same text; a test
    compares the two byte for byte), written from the page's value lists: no serializer, no
    dict per row, no encoder walk. The labels of type-specific ``pk`` values are read with
    the rows; a value that is not a plain integer is looked up as the serializer does."""
    c = page.columns
    i_uuid, i_type, i_name, i_description = c["uuid"], c["type"], c["name"], c["description"]
    i_enabled, i_parameters, i_sealed = c["is_enabled"], c["parameters"], c.get("sealed_secrets")
    i_auth, i_auth_name = c["authentication_object"], c["authentication_object__name"]
    i_class, i_class_name = c["object_class"], c["object_class__name"]
    i_cby, i_cby_name = c["created_by"], c["created_by__username"]
    i_mby, i_mby_name = c["modified_by"], c["modified_by__username"]
    as_text = "created_at_text" in c  # SQLite: UTC text (see selectors.integration_rows)
    i_cat = c["created_at_text"] if as_text else c["created_at"]
    i_mat = c["modified_at_text"] if as_text else c["modified_at"]
    meta_tail = f'}},"permissions":{_dumps(permissions)}}}}}'
    plans: dict[Any, tuple[str, list[tuple[Any, ...]]]] = {}
    looked_up: dict[tuple[Any, Any], str | None] = {}  # (model, value) -> label, by a query

    def timestamp(value: Any) -> str:
        return encode_basestring(f"{value[:10]}T{value[11:]}Z" if as_text else _iso(value))

    def user(pk: Any, username: Any) -> str:
        return "null" if pk is None else f'{{"id":{_json(pk)},"username":{_json(username)}}}'

    def row_json(r: list[Any], pending: list[tuple[Any, Any]] | None) -> str:
        plan = plans.get(r[i_type])
        if plan is None:
            plan = plans[r[i_type]] = _list_plan(REGISTRY[r[i_type]], c)
        type_label, fields = plan
        params = r[i_parameters] or {}
        body = [
            f'{{"uuid":{_json(r[i_uuid])},"type":{_json(r[i_type])},"name":{_json(r[i_name])},'
            f'"description":{_json(r[i_description])},"is_enabled":{_json(r[i_enabled])},'
            f'"authentication_object":{_json(r[i_auth])},"object_class":{_json(r[i_class])}'
        ]
        labels = [
            f'"labels":{{"type":{type_label},"authentication_object":{_json(r[i_auth_name])},'
            f'"object_class":{_json(r[i_class_name])}'
        ]
        for key, alias, secret, default, is_pk, model, i_label in fields:
            if secret:
                sealed = (r[i_sealed] if i_sealed is not None else None) or {}
                body.append(f",{key}:{'true' if alias in sealed else 'false'}")
                continue
            value = params.get(alias, default)
            body.append(f",{key}:{_json(value)}")
            if not is_pk:
                continue
            if value is None:
                label = None
            elif type(value) is int and -_PK_MAX <= value <= _PK_MAX and i_label is not None:
                label = r[i_label]
            elif pending is not None:
                pending.append((model, value))
                label = None
            else:
                label = looked_up.get((model, value))
            labels.append(f",{key}:{_json(label)}")
        return (
            f'{"".join(body)},"created_at":{timestamp(r[i_cat])},'
            f'"created_by":{user(r[i_cby], r[i_cby_name])},'
            f'"modified_at":{timestamp(r[i_mat])},'
            f'"modified_by":{user(r[i_mby], r[i_mby_name])},'
            f'"_meta":{{{"".join(labels)}{meta_tail}'
        )

    texts = []
    pending: list[tuple[Any, Any]] = []
    again = []  # rows written again once the values no column labelled are looked up
    for index, r in enumerate(page.rows):
        before = len(pending)
        texts.append(row_json(r, pending))
        if len(pending) > before:
            again.append(index)
    if again:
        wanted: dict[Any, set[Any]] = {}
        for model, value in pending:
            wanted.setdefault(model, set()).add(value)
        for model, ids in wanted.items():
            for obj in model.objects.filter(pk__in=ids):
                looked_up[(model, obj.pk)] = str(obj)
        for index in again:
            texts[index] = row_json(page.rows[index], None)
    return f"[{','.join(texts)}]"


_PK_MAX = selectors.LABELLED_PK_MAX


def _list_plan(itype: type[IntegrationType], columns: dict[str, int]) -> tuple[str, list[Any]]:
    """A type's label (as JSON) and, per field: its key (as JSON), alias, secret, default,
    pk, model, label column."""
    label_columns = selectors.pk_label_columns()
    fields = []
    for f in itype.fields:
        label = label_columns.get((f.model, f.alias)) if f.kind == "pk" else None
        column = columns.get(label) if label is not None else None
        key = encode_basestring(f"has_{f.alias}" if f.secret else f.alias)
        fields.append((key, f.alias, f.secret, f.default, f.kind == "pk", f.model, column))
    return encode_basestring(itype.label), fields


# --- OPTIONS -----------------------------------------------------------------------------------


def details_document() -> dict[str, Any]:
    """``details.schema`` and ``details.schema_by_type``, from the serializers and registry."""
    common = IntegrationInput()
    schema = [
        field_schema(alias, common.fields[alias])
        for alias in ("type", "name", "description", "is_enabled")
    ]
    return {"schema": schema, "schema_by_type": [_type_schema(t) for t in REGISTRY.values()]}


def _type_schema(itype: type[IntegrationType]) -> dict[str, Any]:
    fields = input_serializer_class(itype.id)().fields
    entries = [
        field_schema(r, fields[r], autocomplete=RELATION_AUTOCOMPLETE[r]) for r in itype.requires
    ]
    for f in itype.fields:
        extra = {"autocomplete": f.autocomplete} if f.autocomplete else {}
        entries.append(field_schema(f.alias, fields[f.alias], **extra))
    return {"type": itype.id, "schema": entries}


# --- the OpenAPI document ------------------------------------------------------------------


def _type_choice(itype: type[IntegrationType]) -> serializers.ChoiceField:
    """``type`` narrowed to one type: the discriminator. Its enum stays inline (wrapped, so
    drf-spectacular does not lift it into an enum component that every type would share)."""
    schema = {
        "allOf": [{"type": "integer", "enum": [itype.id]}],
        "description": f"{itype.id}: {itype.label}",
    }
    # A class, not an instance: serializers deep-copy their fields, which drops attributes.
    field_class = extend_schema_field(schema)(
        type(f"{itype.__name__}TypeField", (serializers.ChoiceField,), {})
    )
    return field_class(choices=[(itype.id, itype.label)])


@cache
def documented_input_class(type_id: int) -> type[IntegrationInput]:
    """One type's request body as the document shows it: the validating serializer with
    ``type`` narrowed to that type (the discriminator)."""
    itype = REGISTRY[type_id]
    return type(
        f"{itype.__name__}Integration",
        (input_serializer_class(type_id),),
        {
            "__doc__": f"An {itype.label} integration (type {itype.id}).",
            "type": _type_choice(itype),
        },
    )


def _output_field(f: TypeField) -> serializers.Field:
    if f.kind == "bool":
        return serializers.BooleanField()
    if f.kind == "pk":
        return serializers.IntegerField(allow_null=True)
    return serializers.CharField(allow_null=f.default is None and not f.required)


class IntegrationMetaOutput(serializers.Serializer[Any]):
    labels = serializers.DictField(
        child=serializers.CharField(allow_null=True),
        help_text="Display names of the type and of every related object.",
    )
    permissions = serializers.DictField(
        child=serializers.BooleanField(),
        help_text="The caller's `list`, `view`, `create`, `edit`, `delete` flags.",
    )


@cache
def documented_output_class(type_id: int) -> type[IntegrationOutput]:
    """One type's response body: the common fields, the type's own (a secret as
    ``has_<name>``) and ``_meta``."""
    itype = REGISTRY[type_id]
    attrs: dict[str, Any] = {
        "__doc__": f"An {itype.label} integration (type {itype.id}).",
        "type": _type_choice(itype),
        "_meta": IntegrationMetaOutput(label="_meta"),
    }
    for f in itype.fields:
        if f.secret:
            attrs[f"has_{f.alias}"] = serializers.BooleanField()
        else:
            attrs[f.alias] = _output_field(f)
    return type(f"{itype.__name__}IntegrationOutput", (IntegrationOutput,), attrs)


def documented_input() -> PolymorphicProxySerializer:
    """An integration's request body in the document: one of the types', by ``type``."""
    return PolymorphicProxySerializer(
        component_name="IntegrationInput",
        serializers={str(t): documented_input_class(t) for t in REGISTRY},
        resource_type_field_name="type",
    )


def documented_output(*, many: bool = False) -> PolymorphicProxySerializer:
    """An integration in the document: one of the types' bodies, by ``type``."""
    return PolymorphicProxySerializer(
        component_name="Integration",
        serializers={str(t): documented_output_class(t) for t in REGISTRY},
        resource_type_field_name="type",
        many=many,
    )
