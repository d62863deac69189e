"""Reads of users and roles."""

from __future__ import annotations

from django.db.models import QuerySet

from outbound.accounts.models import Role, User


def user_list() -> QuerySet[User]:
    return User.objects.prefetch_related("roles").order_by("username")


def role_list() -> QuerySet[Role]:
    return Role.objects.order_by("name")
