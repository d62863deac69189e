"""Writes to users and roles, each recording its event in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction

from outbound.accounts.models import Role, User
from outbound.core.events import record_event
from outbound.core.permissions import is_known_permission

ROLE_FIELDS = ("name", "permissions")
USER_FIELDS = ("username", "email", "first_name", "last_name", "is_active")


def validate_permission_names(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if not is_known_permission(n)]
    if unknown:
        raise ValidationError(
            {"permissions": [f'"{n}" is not a known permission.' for n in unknown]}
        )
    return names


@transaction.atomic
def role_create(*, name: str, permissions: Iterable[str], actor: Any) -> Role:
    role = Role(name=name, permissions=validate_permission_names(permissions))
    role.full_clean()
    role.save()
    record_event(
        resource_type="role",
        resource_id=role.pk,
        action="created",
        actor=actor,
        changed_fields=ROLE_FIELDS,
    )
    return role


@transaction.atomic
def role_update(*, role: Role, data: dict[str, Any], actor: Any) -> Role:
    changed = []
    if "permissions" in data:
        data = {**data, "permissions": validate_permission_names(data["permissions"])}
    for field in ROLE_FIELDS:
        if field in data and getattr(role, field) != data[field]:
            setattr(role, field, data[field])
            changed.append(field)
    role.full_clean()
    role.save()
    if changed:
        record_event(
            resource_type="role",
            resource_id=role.pk,
            action="updated",
            actor=actor,
            changed_fields=changed,
        )
    return role


@transaction.atomic
def role_delete(*, role: Role, actor: Any) -> None:
    pk = role.pk
    role.delete()
    record_event(resource_type="role", resource_id=pk, action="deleted", actor=actor)


def _check_password(password: str, user: User) -> None:
    try:
        validate_password(password, user)
    except ValidationError as exc:
        raise ValidationError({"password": exc.messages}) from exc


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    email: str = "",
    roles: Iterable[Role] = (),
    actor: Any = None,
    is_superuser: bool = False,
    **extra: Any,
) -> User:
    user = User(
        username=username, email=email, is_superuser=is_superuser, is_staff=is_superuser, **extra
    )
    _check_password(password, user)
    user.set_password(password)
    user.full_clean()
    user.save()
    user.roles.set(list(roles))
    record_event(
        resource_type="user",
        resource_id=user.pk,
        action="created",
        actor=actor,
        changed_fields=[*USER_FIELDS, "password", "roles"],
    )
    return user


def _guard_superuser(user: User, actor: Any) -> None:
    """Only a superuser may change or delete a superuser (no escalation through users.edit)."""
    if user.is_superuser and actor is not None and not getattr(actor, "is_superuser", False):
        raise PermissionDenied


@transaction.atomic
def user_update(*, user: User, data: dict[str, Any], actor: Any) -> User:
    _guard_superuser(user, actor)
    changed = [f for f in USER_FIELDS if f in data and getattr(user, f) != data[f]]
    for field in changed:
        setattr(user, field, data[field])
    if data.get("password"):
        _check_password(data["password"], user)
        user.set_password(data["password"])
        changed.append("password")
    user.full_clean()
    user.save()
    if "roles" in data:
        new = {r.pk for r in data["roles"]}
        if new != set(user.roles.values_list("pk", flat=True)):
            user.roles.set(list(data["roles"]))
            changed.append("roles")
    if changed:
        record_event(
            resource_type="user",
            resource_id=user.pk,
            action="updated",
            actor=actor,
            changed_fields=changed,
        )
    return user


@transaction.atomic
def user_delete(*, user: User, actor: Any) -> None:
    if actor is not None and actor.pk == user.pk:
        raise ValidationError({"non_field_errors": ["You cannot delete your own account."]})
    _guard_superuser(user, actor)
    pk = user.pk
    user.delete()
    record_event(resource_type="user", resource_id=pk, action="deleted", actor=actor)


def ensure_bootstrap_admin(*, username: str, password: str) -> User | None:
    """Create the first administrator unless that username already exists."""
    if User.objects.filter(username=username).exists():
        return None
    return user_create(username=username, password=password, is_superuser=True)
