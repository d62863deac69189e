"""Recording and reading the event stream: who changed which fields of what, when, and which
way in (``source``: an API shape, the console, the command line) — and who may see which
events.

The source is not passed by callers: :class:`outbound.middleware.EventSourceMiddleware` sets it
for each request from the view that answers it (:func:`event_source`), and everything outside a
request (management commands, the worker) records ``cli``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.apps import apps
from django.db.models import Max, Min, Model, Q, QuerySet

from outbound.core.models import Event, EventSource
from outbound.core.permissions import user_permissions

# Outside a request nothing sets it: a management command, the worker, a shell.
_SOURCE: ContextVar[str] = ContextVar("outbound_event_source", default=EventSource.CLI.value)

# How the API and the console name the source of events recorded before sources were.
UNKNOWN_SOURCE = "unknown"
# How the console and the API name (and filter on) events without a signed-in actor.
SYSTEM_ACTOR = "system"


def current_source() -> str:
    """The source :func:`record_event` records now."""
    return _SOURCE.get()


def set_source(source: str) -> Token[str]:
    """Record ``source`` (an :class:`EventSource`, or ``""``: unknown) from now on in this
    context; give the token to :func:`reset_source`."""
    return _SOURCE.set(EventSource(source).value if source else "")


def reset_source(token: Token[str]) -> None:
    _SOURCE.reset(token)


@contextmanager
def event_source(source: str) -> Iterator[None]:
    """Events recorded inside the block have ``source``."""
    token = set_source(source)
    try:
        yield
    finally:
        reset_source(token)


def record_event(
    *,
    resource_type: str,
    resource_id: Any,
    action: str,
    actor: Any = None,
    changed_fields: Iterable[str] = (),
) -> Event:
    """Append one event; call inside the transaction that makes the change."""
    user = actor if getattr(actor, "pk", None) else None
    return Event.objects.create(
        resource_type=resource_type,
        resource_id=str(resource_id),
        action=action,
        changed_fields=sorted(set(changed_fields)),
        actor=user,
        actor_username=getattr(user, "username", "") or "",
        source=_SOURCE.get(),
    )


def changed_field_names(
    instance: Model, before: dict[str, Any], fields: Iterable[str]
) -> list[str]:
    """Names of ``fields`` whose value on ``instance`` differs from ``before``."""
    return [f for f in fields if before.get(f) != getattr(instance, f)]


@dataclass(frozen=True)
class ResourceDetails:
    sequence: int
    creation_date: datetime | None
    change_date: datetime | None
    resource_owner: str


def resource_details(resource_type: str, resource_id: Any) -> ResourceDetails:
    """The latest sequence and first/last change times of one resource (ZITADEL ``details``)."""
    agg = Event.objects.filter(resource_type=resource_type, resource_id=str(resource_id)).aggregate(
        sequence=Max("sequence"), created=Min("created_at"), changed=Max("created_at")
    )
    return ResourceDetails(
        sequence=agg["sequence"] or 0,
        creation_date=agg["created"],
        change_date=agg["changed"],
        resource_owner="outbound",
    )


def stream_position(resource_type: str) -> int:
    """The latest sequence recorded for ``resource_type`` (ZITADEL's ``processedSequence``)."""
    latest = Event.objects.filter(resource_type=resource_type).aggregate(s=Max("sequence"))["s"]
    return int(latest or 0)


# --- who sees which events --------------------------------------------------------------------
#
# An event is shown to a user who may see the list of its resource — the permission that shows
# the resource's names elsewhere — so the event stream (the console's History, GET
# /api/events/) never reveals more than the other pages and lists do. API keys are listed only
# to their owners (and superusers); their events are shown to holders of ``users.list`` (who
# manage the keys' owners) and, to everyone, the events of their own keys. A superuser sees
# every event, including resource types not declared here yet. A new resource type that
# records events declares here who may see them.

EVENT_VISIBILITY: dict[str, str] = {
    "smtp_config": "outbound_mail_setup.view",
    "integration": "integrations.list",
    "authentication_object": "authentication_objects.list",
    "object_class": "object_classes.list",
    "object_class_field": "object_classes.list",
    "user": "users.list",
    "role": "roles.list",
    "api_key": "users.list",
    "message": "messages.view",
    "webhook": "webhooks.list",
}
API_KEY = "api_key"


def _own_api_keys(user: Any) -> list[str]:
    # By name: core sits under accounts (its models import nothing from there).
    api_key = apps.get_model("accounts", "ApiKey")
    return [str(pk) for pk in api_key.objects.filter(owner=user).values_list("pk", flat=True)]


def visible_resource_types(user: Any) -> list[str]:
    """The resource types whose events ``user`` may see (all of them or some of them), in
    :data:`EVENT_VISIBILITY`'s order."""
    if not getattr(user, "is_authenticated", False):
        return []
    perms = user_permissions(user)
    types = [name for name, permission in EVENT_VISIBILITY.items() if permission in perms]
    if API_KEY not in types and _own_api_keys(user):
        types.insert(list(EVENT_VISIBILITY).index(API_KEY), API_KEY)
    return types


def visible_events(user: Any) -> QuerySet[Event]:
    """The events ``user`` may see, newest first (see above)."""
    if not getattr(user, "is_authenticated", False) or not user.is_active:
        return Event.objects.none()
    if user.is_superuser and getattr(user, "_outbound_permission_limit", None) is None:
        events = Event.objects.all()
    else:
        perms = user_permissions(user)
        types = [name for name, permission in EVENT_VISIBILITY.items() if permission in perms]
        allowed = Q(resource_type__in=types)
        if API_KEY not in types:
            own = _own_api_keys(user)
            if own:
                allowed |= Q(resource_type=API_KEY, resource_id__in=own)
        events = Event.objects.filter(allowed)
    return events.order_by("-sequence")


def filter_by_actor(events: QuerySet[Event], actor: str) -> QuerySet[Event]:
    """Events by the user named ``actor`` (any case); :data:`SYSTEM_ACTOR`: by no user."""
    actor = actor.strip()
    if not actor:
        return events
    if actor.lower() == SYSTEM_ACTOR:
        return events.filter(actor_username="")
    return events.filter(actor_username__iexact=actor)


def filter_by_source(events: QuerySet[Event], source: str) -> QuerySet[Event]:
    """Events made through ``source``; :data:`UNKNOWN_SOURCE`: recorded before sources were."""
    if not source:
        return events
    return events.filter(source="" if source == UNKNOWN_SOURCE else source)


def source_name(event: Event) -> str:
    """``event``'s source as the API and the console name it."""
    return event.source or UNKNOWN_SOURCE


SOURCE_CHOICES: list[tuple[str, str]] = [
    *EventSource.choices,
    (UNKNOWN_SOURCE, "Unknown (recorded before sources were)"),
]
SOURCE_VALUES: list[str] = [value for value, _ in SOURCE_CHOICES]
