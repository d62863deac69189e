"""Reads of authentication objects, object classes and integrations."""

from __future__ import annotations

from functools import cache
from typing import Any

from django.db.models import QuerySet

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


def integration_rows(queryset: QuerySet[Integration]) -> QuerySet[Integration, dict[str, Any]]:
    return queryset.values(*_row_fields())


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
