"""Permission names (``<resource>.<action>``), who holds them, and the DRF permission class.

Every permission the product knows is declared in :data:`PERMISSIONS`; adding one is one line.
Views declare which permission each action needs; nothing else decides access.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import BasePermission
from rest_framework.request import Request

CRUD: tuple[str, ...] = ("list", "view", "create", "edit", "delete")

PERMISSIONS: dict[str, tuple[str, ...]] = {
    "outbound_mail_setup": ("view", "edit"),
    "authentication_objects": CRUD,
    "users": CRUD,
    "roles": CRUD,
    "integrations": CRUD,
    "object_classes": CRUD,
    "messages": ("send", "view"),
    "webhooks": CRUD,
}

# DRF viewset action -> permission action.
VIEWSET_ACTIONS = {
    "list": "list",
    "retrieve": "view",
    "create": "create",
    "update": "edit",
    "partial_update": "edit",
    "destroy": "delete",
}

AUTHENTICATED = None  # marker: the action needs a signed-in user and nothing more


def all_permissions() -> list[str]:
    return [f"{res}.{act}" for res, acts in PERMISSIONS.items() for act in acts]


def is_known_permission(name: str) -> bool:
    resource, _, action = name.partition(".")
    return action in PERMISSIONS.get(resource, ())


def user_permissions(user: Any) -> frozenset[str]:
    """All permission names ``user`` holds through its roles (superusers hold all)."""
    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return frozenset()
    cached = getattr(user, "_outbound_permissions", None)
    if cached is not None:
        return cached
    if user.is_superuser:
        perms = frozenset(all_permissions())
    else:
        perms = frozenset(
            p for role_perms in user.roles.values_list("permissions", flat=True) for p in role_perms
        )
    restrict = getattr(user, "_outbound_permission_limit", None)
    if restrict is not None:  # e.g. an API key carrying a subset of its creator's permissions
        perms = perms & restrict
    user._outbound_permissions = perms
    return perms


def has_permission(user: Any, name: str) -> bool:
    return name in user_permissions(user)


def resource_permissions(user: Any, resource: str) -> dict[str, bool]:
    """The five CRUD flags for ``resource`` as the seed's ``/api/users/permissions/…`` shows."""
    perms = user_permissions(user)
    return {action: f"{resource}.{action}" in perms for action in CRUD}


class HasOutboundPermission(BasePermission):
    """Grants a request when the user holds the permission its view declares for it.

    A view declares either ``permission_resource`` (viewsets: CRUD actions map through
    :data:`VIEWSET_ACTIONS`, extra actions through ``permission_actions``) or
    ``required_permissions``, a map from HTTP method to permission name. ``None`` means
    "authenticated only". Anything undeclared is refused.
    """

    message = "You do not have permission to perform this action."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        if not (user and user.is_authenticated):
            return False
        needed = self.required(request, view)
        if needed is None:
            return True
        return isinstance(needed, str) and has_permission(user, needed)

    @staticmethod
    def required(request: Request, view: Any) -> str | bool | None:
        method = "GET" if request.method == "HEAD" else request.method
        if not hasattr(view, str(request.method).lower()):
            return AUTHENTICATED  # no handler: let the view answer 405, not 403
        explicit: dict[str, str | None] = getattr(view, "required_permissions", {})
        if method in explicit:
            return explicit[method]
        if method == "OPTIONS":
            return AUTHENTICATED
        action = getattr(view, "action", None)
        extra: dict[str, str | None] = getattr(view, "permission_actions", {})
        if action in extra:
            return extra[action]
        resource = getattr(view, "permission_resource", None)
        if resource and action in VIEWSET_ACTIONS:
            return f"{resource}.{VIEWSET_ACTIONS[action]}"
        return False
