"""The ``autocomplete/?text__icontains=`` action shared by every resource that offers one."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from outbound.core.pagination import limit_offset, schema_parameters

AUTOCOMPLETE_LIMIT = 20  # the default page of suggestions
AUTOCOMPLETE_MAX = 100

AutocompleteItem = inline_serializer(
    "AutocompleteItem", {"value": serializers.IntegerField(), "text": serializers.CharField()}
)


class AutocompleteMixin:
    """Adds ``GET …/autocomplete/`` returning ``{"results": [{"value", "text"}]}``, paged by
    ``limit`` and ``offset`` as every list is (malformed → 400 naming the parameter)."""

    autocomplete_field = "name"

    @extend_schema(
        parameters=[
            OpenApiParameter("text__icontains", str, required=False),
            *(
                OpenApiParameter(
                    p["name"], p["schema"], required=False, description=p["description"]
                )
                for p in schema_parameters(
                    default_limit=AUTOCOMPLETE_LIMIT, max_limit=AUTOCOMPLETE_MAX
                )
            ),
        ],
        responses=inline_serializer(
            "AutocompleteResponse", {"results": AutocompleteItem.__class__(many=True)}
        ),
        filters=False,
    )
    @action(detail=False, methods=["get"], pagination_class=None, filter_backends=[])
    def autocomplete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        limit, offset = limit_offset(
            request, default_limit=AUTOCOMPLETE_LIMIT, max_limit=AUTOCOMPLETE_MAX
        )
        queryset = self.get_queryset()  # type: ignore[attr-defined]
        text = request.query_params.get("text__icontains", "")
        if text:
            queryset = queryset.filter(**{f"{self.autocomplete_field}__icontains": text})
        rows = queryset.order_by(self.autocomplete_field, "pk")[offset : offset + limit]
        return Response(
            {
                "results": [
                    {"value": r.pk, "text": getattr(r, self.autocomplete_field)} for r in rows
                ]
            }
        )
