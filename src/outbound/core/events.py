"""Recording and reading the event stream: who changed which fields of what, and when."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Max, Min, Model

from outbound.core.models import Event


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
