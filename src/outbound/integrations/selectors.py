"""Reads of authentication objects, object classes and integrations."""

from __future__ import annotations

from django.db.models import QuerySet

from outbound.integrations.models import (
    AuthenticationObject,
    Integration,
    ObjectClass,
    ObjectClassField,
)


def authentication_object_list() -> QuerySet[AuthenticationObject]:
    return AuthenticationObject.objects.order_by("name")


def object_class_list() -> QuerySet[ObjectClass]:
    return ObjectClass.objects.order_by("name")


def object_class_field_list(object_class: ObjectClass) -> QuerySet[ObjectClassField]:
    return ObjectClassField.objects.filter(object_class=object_class).order_by("name")


def integration_list() -> QuerySet[Integration]:
    """Every integration, with what a response shows joined in (no per-row queries)."""
    return Integration.objects.select_related(
        "authentication_object", "object_class", "created_by", "modified_by"
    ).order_by("-created_at", "name")
