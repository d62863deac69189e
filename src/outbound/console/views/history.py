"""History: the event stream — who changed which fields of what, when, and which way in
(API shape, console, command line) — filterable.

Events hold field names only, never values, so nothing secret can show here.

Who sees which events is decided in one place, :func:`outbound.core.events.visible_events`,
which ``GET /api/events/`` uses too: the events of the resources a user may list (API keys:
``users.list``, or one's own keys); a superuser sees every event. API-key events are not
linked: the keys page shows one's own keys only. :data:`KINDS` says only how each resource
type is shown.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from typing import Any

from django import forms
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, path, reverse

from outbound.accounts.models import ApiKey, Role, User
from outbound.console.views.base import AUTHENTICATED, ConsoleView, paginate
from outbound.core import events as event_stream
from outbound.core.models import Event, EventSource
from outbound.core.permissions import user_permissions
from outbound.integrations.models import (
    AuthenticationObject,
    Integration,
    ObjectClass,
    ObjectClassField,
)
from outbound.mail.models import Message, SmtpConfig
from outbound.webhooks.models import Webhook

PER_PAGE = 50
SYSTEM = event_stream.SYSTEM_ACTOR  # shown (and filtered on) for events without a signed-in actor
# The sources as the page names them (the filter's options and the column).
SOURCES: dict[str, str] = {
    **dict(EventSource.choices),
    event_stream.UNKNOWN_SOURCE: "Unknown",
}


@dataclass(frozen=True)
class Kind:
    """One resource type of the event stream, as the history page shows it."""

    label: str
    model: type[Model] | None = None  # to show the object's current name, if it still exists
    page: str = ""  # console URL name of the object's page, reversed with ``page_args``
    page_permission: str = ""  # needed to open that page; no link without it
    page_args: tuple[str, ...] = ("pk",)  # the object's attributes the URL takes


KINDS: dict[str, Kind] = {
    "smtp_config": Kind(
        "SMTP configuration", SmtpConfig, "console:smtp-edit", "outbound_mail_setup.view"
    ),
    "integration": Kind(
        "Integration", Integration, "console:integration-edit", "integrations.view"
    ),
    "authentication_object": Kind(
        "Credential",
        AuthenticationObject,
        "console:credential-edit",
        "authentication_objects.view",
    ),
    "object_class": Kind(
        "Object class", ObjectClass, "console:object-class-edit", "object_classes.view"
    ),
    "object_class_field": Kind(
        "Object class field",
        ObjectClassField,
        "console:object-class-field-edit",
        "object_classes.view",
        page_args=("object_class_id", "pk"),
    ),
    "user": Kind("User", User, "console:user-edit", "users.view"),
    "role": Kind("Role", Role, "console:role-edit", "roles.view"),
    "api_key": Kind("API key", ApiKey),
    "message": Kind("Message", Message, "console:message-detail", "messages.view"),
    "webhook": Kind("Webhook", Webhook, "console:webhook-detail", "webhooks.view"),
}


def visible_kinds(user: Any) -> list[tuple[str, str]]:
    """(type, label) of the kinds whose events ``user`` may see, for the filter's choices."""
    return [
        (name, KINDS[name].label if name in KINDS else name)
        for name in event_stream.visible_resource_types(user)
    ]


class HistoryFilter(forms.Form):
    """The filters, read from the query string (so other pages can link to a resource's)."""

    resource_type = forms.ChoiceField(required=False, label="Resource")
    # No help texts: the filters' inputs stay on one line; the placeholders say the format.
    resource_id = forms.CharField(
        required=False,
        max_length=64,
        label="Resource id",
        widget=forms.TextInput(attrs={"placeholder": "number or UUID"}),
    )
    actor = forms.CharField(
        required=False,
        max_length=150,
        label="Changed by",
        widget=forms.TextInput(attrs={"placeholder": f"username or {SYSTEM}"}),
    )
    source = forms.ChoiceField(
        required=False,
        label="Source",
        choices=[("", "Any source"), *SOURCES.items()],
    )
    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, kinds: list[tuple[str, str]], **kwargs: Any):
        super().__init__(*args, **kwargs)
        field = self.fields["resource_type"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [("", "All resources"), *kinds]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        since: date | None = data.get("since")
        until: date | None = data.get("until")
        if since and until and since > until:
            self.add_error("until", "The end of the range must not be before its start.")
        return data

    def apply(self, events: QuerySet[Event]) -> QuerySet[Event]:
        data = self.cleaned_data
        if data.get("resource_type"):
            events = events.filter(resource_type=data["resource_type"])
        if data.get("resource_id", "").strip():
            events = events.filter(resource_id=data["resource_id"].strip())
        events = event_stream.filter_by_actor(events, data.get("actor", ""))
        events = event_stream.filter_by_source(events, data.get("source", ""))
        if data.get("since"):
            events = events.filter(created_at__date__gte=data["since"])
        if data.get("until"):
            events = events.filter(created_at__date__lte=data["until"])
        return events


def _key(model: type[Model], resource_id: str) -> Any:
    """``resource_id`` as ``model``'s primary key, or None when it cannot be one."""
    if model._meta.pk is not None and model._meta.pk.get_internal_type() == "UUIDField":
        try:
            return uuid.UUID(resource_id)
        except ValueError:
            return None
    return int(resource_id) if resource_id.isdigit() else None


def _page_url(name: str, args: list[Any]) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:  # that area of the console has no such page (yet)
        return ""


def resource_rows(events: list[Event], perms: frozenset[str]) -> list[dict[str, Any]]:
    """The page's events with their resources' current names and links.

    One query per resource type on the page (not per event): the objects still there.
    """
    wanted: dict[str, set[Any]] = defaultdict(set)
    for event in events:
        kind = KINDS.get(event.resource_type)
        if kind and kind.model:
            key = _key(kind.model, event.resource_id)
            if key is not None:
                wanted[event.resource_type].add(key)
    found: dict[str, dict[str, Model]] = {}
    for resource_type, keys in wanted.items():
        model = KINDS[resource_type].model
        assert model is not None
        found[resource_type] = {
            str(pk): obj for pk, obj in model._default_manager.in_bulk(list(keys)).items()
        }
    rows = []
    for event in events:
        kind = KINDS.get(event.resource_type)
        obj = found.get(event.resource_type, {}).get(event.resource_id)
        url = ""
        if kind and obj is not None and kind.page and kind.page_permission in perms:
            url = _page_url(kind.page, [getattr(obj, a) for a in kind.page_args])
        rows.append(
            {
                "event": event,
                "label": kind.label if kind else event.resource_type,
                "name": str(obj) if obj is not None else "",
                "known": kind is not None,
                "gone": bool(kind and kind.model) and obj is None,
                "url": url,
                "actor": event.actor_username or SYSTEM,
                "source": event_stream.source_name(event),
                "source_label": SOURCES.get(event_stream.source_name(event), event.source),
            }
        )
    return rows


class HistoryView(ConsoleView):
    required = {"GET": AUTHENTICATED}

    def get(self, request: HttpRequest) -> HttpResponse:
        form = HistoryFilter(request.GET or None, kinds=visible_kinds(request.user))
        events = event_stream.visible_events(request.user)
        status = 200
        if form.is_bound:
            if form.is_valid():
                events = form.apply(events)
            else:
                # Say what is wrong rather than quietly showing unfiltered events.
                events = events.none()
                status = 400
        page = paginate(request, events, PER_PAGE)
        rows = resource_rows(list(page.object_list), user_permissions(request.user))
        filtered = form.is_bound and any(
            v for k, v in request.GET.items() if k in form.fields and v
        )
        return render(
            request,
            "console/history/list.html",
            {"form": form, "page": page, "rows": rows, "filtered": filtered},
            status=status,
        )


urlpatterns = [
    path("", HistoryView.as_view(), name="history"),
]
