"""The API key form: a name, the permissions the key carries, an optional expiry.

It parses and describes input only; ``accounts.services.api_key_create`` decides (known and
held permissions, an expiry in the future), and its refusals are put next to these fields,
which carry the service's own names.
"""

from __future__ import annotations

import secrets
from typing import Any

from django import forms
from django.utils import timezone

from outbound.accounts.models import ApiKey
from outbound.console.forms.accounts import PermissionGroup, permission_groups
from outbound.console.forms.common import CleanCharField, ConsoleForm, model_max
from outbound.core.permissions import all_permissions

# What the browser's datetime-local control sends (and is given back on a refused form).
LOCAL_FORMAT = "%Y-%m-%dT%H:%M"


class ApiKeyForm(ConsoleForm):
    """Creates one key for the signed-in user.

    ``offered`` is what the user may put in a key: the permissions they hold. Only those get a
    checkbox; every known name is still accepted here, so a forged one reaches the service,
    whose refusal ("You cannot grant a permission you do not hold") shows next to the boxes.
    """

    name = CleanCharField(
        max_length=model_max(ApiKey, "name"),
        label="Name",
        help_text="What will use the key, e.g. “Billing service”. Shown in the list and in "
        "History.",
    )
    permissions = forms.MultipleChoiceField(
        required=False,  # as the API: a key may carry none (it can then do nothing)
        label="Permissions",
        choices=[(p, p) for p in all_permissions()],
        widget=forms.CheckboxSelectMultiple,
    )
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires",
        input_formats=[LOCAL_FORMAT, "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=LOCAL_FORMAT),
    )
    # One per form shown: a reloaded result page (the browser re-sending the POST) must not
    # mint a second key that nobody ever sees. See ``views.api_keys``.
    nonce = forms.CharField(required=False, max_length=64, widget=forms.HiddenInput)

    def __init__(self, *args: Any, offered: frozenset[str], **kwargs: Any):
        kwargs.setdefault("initial", {"nonce": secrets.token_urlsafe(16)})
        super().__init__(*args, **kwargs)
        self.offered = offered
        zone = timezone.get_current_timezone_name()
        self.fields["expires_at"].help_text = (
            f"Optional; date and time in {zone}. From then on the key stops working. "
            "Empty: it works until it is revoked."
        )

    def permission_groups(self) -> list[PermissionGroup]:
        """The role form's checkbox groups, limited to ``offered``."""
        chosen = {str(v) for v in self["permissions"].value() or []}
        return permission_groups(chosen, offered=self.offered)

    def core_data(self) -> dict[str, Any]:
        """The cleaned input in ``api_key_create``'s names; permissions in PERMISSIONS' order.

        A field the form refused is empty here, so the service can still judge the others.
        """
        chosen = set(self.cleaned_data.get("permissions") or [])
        return {
            "name": self.cleaned_data.get("name", ""),
            "permissions": [p for p in all_permissions() if p in chosen],
            "expires_at": self.cleaned_data.get("expires_at"),
        }
