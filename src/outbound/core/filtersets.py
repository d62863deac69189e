"""Filtering of the event stream (``GET /api/events/``)."""

from __future__ import annotations

import django_filters
from django.db.models import QuerySet

from outbound.core import events
from outbound.core.filters import OutboundFilterSet
from outbound.core.models import Event


class EventFilterSet(OutboundFilterSet):
    resource_type = django_filters.CharFilter(
        help_text="Events of this resource type (`smtp_config`, `integration`, "
        "`authentication_object`, `object_class`, `object_class_field`, `user`, `role`, "
        "`api_key`, `message`, …)."
    )
    resource_id = django_filters.CharFilter(
        help_text="Events of the resource with this id (a number or a UUID, as in its URL)."
    )
    actor = django_filters.CharFilter(
        method="filter_actor",
        help_text=f"Events by the user with this username (any case); `{events.SYSTEM_ACTOR}`: "
        "changes made without a signed-in user (the command line, the worker).",
    )
    action = django_filters.CharFilter(
        help_text="Events of this action (`created`, `updated`, `activated`, `deactivated`, "
        "`revoked`, `deleted`, `cancelled`, `retried`, …)."
    )
    source = django_filters.ChoiceFilter(
        choices=events.SOURCE_CHOICES,
        method="filter_source",
        help_text="Events made this way in: an API shape (`alx`, `native`, `zitadel`, "
        "`hitachi`, `commvault`, `privx`), the `console`, or the command line (`cli`); "
        f"`{events.UNKNOWN_SOURCE}`: recorded before events had a source.",
    )
    created_after = django_filters.IsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="gte",
        help_text="Events recorded at or after this time (ISO 8601; without an offset: UTC).",
    )
    created_before = django_filters.IsoDateTimeFilter(
        field_name="created_at",
        lookup_expr="lt",
        help_text="Events recorded before this time (ISO 8601; without an offset: UTC).",
    )

    class Meta:
        model = Event
        fields: list[str] = []

    def filter_actor(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        return events.filter_by_actor(queryset, value)

    def filter_source(self, queryset: QuerySet[Event], name: str, value: str) -> QuerySet[Event]:
        return events.filter_by_source(queryset, value)
