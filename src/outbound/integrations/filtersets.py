"""Filtering and ordering of integration lists; the OPTIONS ``list.columns`` come from here."""

from __future__ import annotations

from outbound.core.filters import OutboundFilterSet, StableOrderingFilter
from outbound.integrations.models import Integration

STRING_LOOKUPS = [
    "exact",
    "iexact",
    "contains",
    "icontains",
    "startswith",
    "istartswith",
    "endswith",
    "iendswith",
]
DATETIME_LOOKUPS = ["exact", "gt", "gte", "lt", "lte", "range"]
ENUM_LOOKUPS = ["exact", "in"]


class IntegrationFilterSet(OutboundFilterSet):
    ordering = StableOrderingFilter(
        fields=(
            ("name", "name"),
            ("created_at", "created_at"),
            ("modified_at", "modified_at"),
            ("authentication_object__name", "authentication_object"),
            ("object_class__name", "object_class"),
        ),
        tie_breakers=("name",),  # unique
    )

    class Meta:
        model = Integration
        # Column -> predicates, in the order OPTIONS lists them.
        fields = {
            "uuid": ["exact"],
            "type": ENUM_LOOKUPS,
            "name": STRING_LOOKUPS,
            "is_enabled": ["exact"],
            "authentication_object": ENUM_LOOKUPS,
            "object_class": ENUM_LOOKUPS,
            "created_at": DATETIME_LOOKUPS,
            "created_by": ENUM_LOOKUPS,
            "modified_at": DATETIME_LOOKUPS,
            "modified_by": ENUM_LOOKUPS,
        }
