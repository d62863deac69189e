"""Behaviour every Outbound viewset shares."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet


class ListFiltersOnlyMixin:
    """Filters and ordering belong to the list: on a detail URL they would turn an existing
    object into a 404 (``?name=other``) or a 400 (``?ordering=bogus``)."""

    def filter_queryset(self, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if getattr(self, "action", None) != "list":
            return queryset
        return super().filter_queryset(queryset)  # type: ignore[misc]
