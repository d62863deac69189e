"""Reads of authentication objects."""

from __future__ import annotations

from django.db.models import QuerySet

from outbound.integrations.models import AuthenticationObject


def authentication_object_list() -> QuerySet[AuthenticationObject]:
    return AuthenticationObject.objects.order_by("name")
