"""Template context for every console page: what the signed-in user may do, and the menu."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.urls import reverse

from outbound.core.permissions import user_permissions

# (label, url name, permission needed to see the entry)
MENU = (
    ("Outbound mail", "console:smtp-list", "outbound_mail_setup.view"),
    ("Messages", "console:message-list", "messages.view"),
    ("Webhooks", "console:webhook-list", "webhooks.list"),
    ("Integrations", "console:integration-list", "integrations.list"),
    ("Credentials", "console:credential-list", "authentication_objects.list"),
    ("Object classes", "console:object-class-list", "object_classes.list"),
    ("History", "console:history", None),
    ("API keys", "console:api-key-list", None),
    ("Users", "console:user-list", "users.list"),
    ("Roles", "console:role-list", "roles.list"),
)


def console(request: HttpRequest) -> dict[str, Any]:
    """``can``: the user's permission names (``{% if "integrations.edit" in can %}``)."""
    if not request.path.startswith("/console/"):
        return {}
    user = getattr(request, "user", None)
    can = user_permissions(user)
    menu = []
    if can:
        for label, name, needed in MENU:
            if needed is None or needed in can:
                url = reverse(name)
                menu.append({"label": label, "url": url, "current": request.path.startswith(url)})
    return {"can": can, "menu": menu}
