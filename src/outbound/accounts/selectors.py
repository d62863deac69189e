"""Reads of users, roles and API keys."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from outbound.accounts import keys
from outbound.accounts.models import ApiKey, Role, User


def user_list() -> QuerySet[User]:
    return User.objects.prefetch_related("roles").order_by("username")


def role_list() -> QuerySet[Role]:
    return Role.objects.order_by("name")


def api_key_list(*, user: Any) -> QuerySet[ApiKey]:
    """The keys ``user`` may see: its own; a superuser sees everyone's."""
    queryset = ApiKey.objects.select_related("owner").order_by("-created_at", "-id")
    if getattr(user, "is_superuser", False):
        return queryset
    return queryset.filter(owner_id=getattr(user, "pk", None))


def api_key_authenticate(raw_key: str) -> ApiKey | None:
    """The key ``raw_key`` is, with its owner loaded, if it may be used now; else ``None``.

    Unknown, malformed, revoked and expired keys and keys of inactive owners all give
    ``None``: the caller learns nothing about which of those it was.
    """
    prefix = keys.parse_prefix(raw_key)
    if prefix is None:
        return None
    key = ApiKey.objects.select_related("owner").filter(prefix=prefix).first()
    if key is None or not keys.key_matches(raw_key, key.hashed_key):
        return None
    if key.state() != "active" or not key.owner.is_active:
        return None
    return key
