"""Filtering and ordering of SMTP configuration lists; the OPTIONS `list.columns` come from here."""

from __future__ import annotations

from typing import Any

import django_filters
from django.db.models import QuerySet

from outbound.core.filters import OutboundFilterSet, StableOrderingFilter
from outbound.integrations.filtersets import DATETIME_LOOKUPS, ENUM_LOOKUPS, STRING_LOOKUPS
from outbound.mail.choices import NATIVE_SECURITY
from outbound.mail.models import SmtpConfig

NUMBER_LOOKUPS = ["exact", "in", "gt", "gte", "lt", "lte"]


SECURITY_CHOICES = [(name, name) for name in NATIVE_SECURITY]


class SecurityFilter(django_filters.ChoiceFilter):
    """``security`` in the native names (``tls`` is the core's ``ssl``)."""

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        if isinstance(value, list):
            value = [NATIVE_SECURITY[v] for v in value]
        elif value:
            value = NATIVE_SECURITY[value]
        return super().filter(qs, value)


class SecurityInFilter(django_filters.BaseInFilter, SecurityFilter):
    pass


class SmtpConfigFilterSet(OutboundFilterSet):
    security = SecurityFilter(choices=SECURITY_CHOICES)
    security__in = SecurityInFilter(
        field_name="security", lookup_expr="in", choices=SECURITY_CHOICES
    )
    ordering = StableOrderingFilter(
        fields=(
            ("id", "id"),
            ("host", "host"),
            ("port", "port"),
            ("description", "description"),
            ("standby", "standby"),
            ("version", "version"),
            ("created_at", "created_at"),
            ("modified_at", "modified_at"),
        ),
        tie_breakers=("id",),  # unique
    )

    class Meta:
        model = SmtpConfig
        # Column -> predicates, in the order OPTIONS lists them.
        fields = {
            "id": ["exact", "in"],
            "host": STRING_LOOKUPS,
            "port": NUMBER_LOOKUPS,
            "username": STRING_LOOKUPS,
            "authorization_method": ENUM_LOOKUPS,
            "authentication_object": ENUM_LOOKUPS,
            "sender_address": STRING_LOOKUPS,
            "description": STRING_LOOKUPS,
            "is_active": ["exact"],
            "standby": [*NUMBER_LOOKUPS, "isnull"],
            "version": NUMBER_LOOKUPS,
            "created_at": DATETIME_LOOKUPS,
            "created_by": ENUM_LOOKUPS,
            "modified_at": DATETIME_LOOKUPS,
            "modified_by": ENUM_LOOKUPS,
        }
