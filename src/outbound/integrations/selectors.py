"""Reads of authentication objects, object classes and integrations."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db import connection
from django.db.models import QuerySet, TextField
from django.db.models.functions import Cast

from outbound.integrations.models import (
    AuthenticationObject,
    Integration,
    ObjectClass,
    ObjectClassField,
)
from outbound.integrations.types import REGISTRY


def authentication_object_list() -> QuerySet[AuthenticationObject]:
    return AuthenticationObject.objects.order_by("name")


def object_class_list() -> QuerySet[ObjectClass]:
    return ObjectClass.objects.order_by("name")


def object_class_field_list(object_class: ObjectClass) -> QuerySet[ObjectClassField]:
    return ObjectClassField.objects.filter(object_class=object_class).order_by("name")


# What a response shows of an integration, as plain values (see api.IntegrationOutput).
INTEGRATION_ROW = (
    "uuid", "type", "name", "description", "is_enabled", "parameters", "sealed_secrets",
    "authentication_object", "authentication_object__name",
    "object_class", "object_class__name",
    "created_at", "created_by", "created_by__username",
    "modified_at", "modified_by", "modified_by__username",
)  # fmt: skip


# The timestamps a row carries as text (``<name>_text``) on SQLite; elsewhere as datetimes.
ROW_TIMESTAMPS = ("created_at", "modified_at")


def integration_rows(queryset: QuerySet[Integration]) -> QuerySet[Integration, dict[str, Any]]:
    if connection.vendor != "sqlite":
        return queryset.values(*_row_fields())
    # SQLite stores a timestamp as UTC text (``YYYY-MM-DD HH:MM:SS[.ffffff]``, Django's
    # ``str()`` of the naive UTC value); read as text, a page skips parsing it into a datetime
    # only to print it again (a fifth of a 100-row list's time).
    fields = [f for f in _row_fields() if f not in ROW_TIMESTAMPS]
    texts = {f"{f}_text": Cast(f, TextField()) for f in ROW_TIMESTAMPS}
    return queryset.values(*fields, **texts)


@cache
def _row_fields() -> tuple[str, ...]:
    # ``sealed_secrets`` only says which secrets are set; skip decoding it when no type has any.
    if any(f.secret for t in REGISTRY.values() for f in t.fields):
        return INTEGRATION_ROW
    return tuple(f for f in INTEGRATION_ROW if f != "sealed_secrets")


def integration_row(pk: Any) -> dict[str, Any]:
    return integration_rows(integration_list().filter(pk=pk)).get()


def integration_list() -> QuerySet[Integration]:
    """Every integration, with what a response shows joined in (no per-row queries)."""
    return Integration.objects.select_related(
        "authentication_object", "object_class", "created_by", "modified_by"
    ).order_by("-created_at", "name")
