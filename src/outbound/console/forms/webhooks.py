"""The webhook form: the URL deliveries go to, the events they carry, on/off, a description.

It parses and describes input only; ``webhooks.services`` decides (a URL the egress policy
allows, known events), and its refusals are put next to these fields, which carry the
service's own names.
"""

from __future__ import annotations

import secrets
from typing import Any

from django import forms

from outbound.console.forms.common import CleanCharField, ConsoleForm, model_max
from outbound.webhooks.models import Webhook
from outbound.webhooks.services import EVENTS

# What each event means, for the checkboxes' help; an event missing here shows its name only.
EVENT_HELP = {
    "message.sent": "an attempt sent a message",
    "message.deferred": "an attempt failed for now; the message will be tried again",
    "message.failed": "a message failed for good",
    "message.recipient_failed": "recipients were refused in an attempt (those recipients only)",
    "smtp_config.activated": "an SMTP configuration became the active one",
    "smtp_config.changed": "an SMTP configuration was created, changed, deactivated or deleted",
    "webhook.test": "what the Test button sends (it is sent on Test whether ticked or not)",
}


class AnyEvents(forms.MultipleChoiceField):
    """Checkboxes for the known events that still hands any name on to the service.

    The service owns the list of events and says what is wrong with a name; the form only
    draws the boxes (a forged name is refused with the service's own words).
    """

    def valid_value(self, value: Any) -> bool:
        return True


class WebhookForm(ConsoleForm):
    url = CleanCharField(
        label="URL",
        max_length=model_max(Webhook, "url"),
        help_text="Where Outbound POSTs each event, e.g. https://crm.example.com/hooks/outbound. "
        "HTTPS on port 443 is allowed; other addresses and ports only if the operator's egress "
        "policy allows them. Redirects are not followed.",
    )
    events = AnyEvents(
        required=False,
        label="Events",
        choices=[(e, e) for e in EVENTS],
        widget=forms.CheckboxSelectMultiple,
    )
    is_enabled = forms.BooleanField(
        required=False,
        label="Enabled",
        help_text="A disabled webhook is sent nothing (Test still sends to it).",
    )
    description = CleanCharField(
        required=False,
        multiline=True,
        label="Description",
        max_length=model_max(Webhook, "description"),
        widget=forms.Textarea(attrs={"rows": 2}),
    )
    # One per form shown: a reloaded result page (the browser re-sending the POST) must not
    # make a second webhook whose secret nobody sees. See ``views.webhooks``.
    nonce = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, instance: Webhook | None = None, **kwargs: Any) -> None:
        if instance is not None:
            kwargs.setdefault(
                "initial",
                {
                    "url": instance.url,
                    "events": list(instance.events),
                    "is_enabled": instance.is_enabled,
                    "description": instance.description,
                },
            )
        else:
            kwargs.setdefault("initial", {"is_enabled": True, "nonce": secrets.token_urlsafe(16)})
        super().__init__(*args, **kwargs)
        self.instance = instance

    def event_boxes(self) -> list[dict[str, Any]]:
        """One checkbox per known event, ticked as the form's value says."""
        chosen = {str(v) for v in self["events"].value() or []}
        return [
            {"name": e, "help": EVENT_HELP.get(e, ""), "checked": e in chosen, "id": f"event-{i}"}
            for i, e in enumerate(EVENTS)
        ]

    def core_data(self) -> dict[str, Any]:
        """The cleaned input in the services' names; a refused field is left out, so the
        service can still judge the others (see ``views.base.collect_errors``)."""
        data = self.cleaned_data
        fields = {
            "url": data.get("url"),
            "events": list(data.get("events") or []) if "events" in data else None,
            "is_enabled": data.get("is_enabled"),
            "description": data.get("description"),
        }
        return {k: v for k, v in fields.items() if k in data and v is not None}
