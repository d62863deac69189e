"""The ``autocomplete/?text__icontains=`` action shared by every resource that offers one."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

AUTOCOMPLETE_LIMIT = 20

AutocompleteItem = inline_serializer(
    "AutocompleteItem", {"value": serializers.IntegerField(), "text": serializers.CharField()}
)


class AutocompleteMixin:
    """Adds ``GET …/autocomplete/`` returning ``{"results": [{"value", "text"}]}``."""

    autocomplete_field = "name"

    @extend_schema(
        parameters=[OpenApiParameter("text__icontains", str, required=False)],
        responses=inline_serializer(
            "AutocompleteResponse", {"results": AutocompleteItem.__class__(many=True)}
        ),
        filters=False,
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def autocomplete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        queryset = self.get_queryset()  # type: ignore[attr-defined]
        text = request.query_params.get("text__icontains", "")
        if text:
            queryset = queryset.filter(**{f"{self.autocomplete_field}__icontains": text})
        rows = queryset.order_by(self.autocomplete_field)[:AUTOCOMPLETE_LIMIT]
        return Response(
            {
                "results": [
                    {"value": r.pk, "text": getattr(r, self.autocomplete_field)} for r in rows
                ]
            }
        )
