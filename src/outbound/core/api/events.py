"""``GET /api/events/``: the event stream the console's History shows, with its visibility."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from outbound.core import events
from outbound.core.filtersets import EventFilterSet
from outbound.core.models import Event
from outbound.core.permissions import AUTHENTICATED


class EventActorSerializer(serializers.Serializer[Any]):
    id = serializers.IntegerField(
        allow_null=True, help_text="The user's id; null once the user is deleted."
    )
    username = serializers.CharField(help_text="The username at the time of the change.")


class EventSerializer(serializers.ModelSerializer[Event]):
    changed_fields = serializers.ListField(
        child=serializers.CharField(),
        help_text="The names of the fields the change set (never their values).",
    )
    actor = serializers.SerializerMethodField(
        help_text="Who made the change; null: no signed-in user (the command line, the worker)."
    )
    # The metaclass takes declared fields off the class, so this does not shadow Field.source.
    source = serializers.SerializerMethodField(  # type: ignore[assignment]
        help_text="Which way in the change came: an API shape (`alx`, `native`, `zitadel`, "
        "`hitachi`, `commvault`, `privx`), the `console`, or the command line (`cli`: "
        f"management commands, the worker); `{events.UNKNOWN_SOURCE}`: recorded before "
        "events had a source."
    )

    class Meta:
        model = Event
        fields = [
            "sequence",
            "created_at",
            "resource_type",
            "resource_id",
            "action",
            "changed_fields",
            "actor",
            "source",
        ]
        read_only_fields = fields

    @extend_schema_field(EventActorSerializer(allow_null=True))
    def get_actor(self, event: Event) -> dict[str, Any] | None:
        if not event.actor_username:
            return None
        return {"id": event.actor_id, "username": event.actor_username}

    @extend_schema_field(serializers.ChoiceField(choices=events.SOURCE_VALUES))
    def get_source(self, event: Event) -> str:
        return events.source_name(event)


class EventViewSet(mixins.ListModelMixin, viewsets.GenericViewSet[Event]):
    """The event stream, newest first: who changed which fields of what, when, and which way
    in. Each signed-in user sees the events of the resources they may list (as in the
    console's History)."""

    serializer_class = EventSerializer
    filterset_class = EventFilterSet
    permission_actions = {"list": AUTHENTICATED}

    def get_queryset(self) -> QuerySet[Event]:
        return events.visible_events(self.request.user)

    @extend_schema(
        description="The events the caller may see, newest first (ALX envelope): an event "
        "shows the change's resource, action, changed field names (never values), actor, "
        "time and source. A user sees the events of the resources they may list (SMTP "
        "configurations: `outbound_mail_setup.view`; API keys: `users.list`, or one's own "
        "keys); a superuser sees every event.",
        responses={
            200: OpenApiResponse(
                EventSerializer(many=True), description="The page of events, newest first."
            )
        },
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)
