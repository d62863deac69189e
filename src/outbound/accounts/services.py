"""Writes to users, roles and API keys, each recording its event in the same transaction."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.views.decorators.debug import sensitive_variables

from outbound.accounts import keys
from outbound.accounts.models import ApiKey, Role, User
from outbound.core.events import record_event
from outbound.core.permissions import all_permissions, is_known_permission, user_permissions

ROLE_FIELDS = ("name", "permissions")
USER_FIELDS = ("username", "email", "first_name", "last_name", "is_active")
API_KEY_FIELDS = ("name", "permissions", "expires_at")
# last_used_at is written at most this often per key, not on every request.
API_KEY_USE_RESOLUTION = timedelta(minutes=1)


def validate_permission_names(names: Iterable[str]) -> list[str]:
    names = list(dict.fromkeys(names))
    unknown = [n for n in names if not is_known_permission(n)]
    if unknown:
        raise ValidationError(
            {"permissions": [f'"{n}" is not a known permission.' for n in unknown]}
        )
    return names


def _check_grant(actor: Any, permissions: Iterable[str]) -> None:
    """Nobody hands out (or takes away) a permission they do not hold. System calls pass
    ``actor=None``; a superuser holds everything, unless acting through a narrower API key."""
    if actor is None:
        return
    _refuse_ungranted(sorted(set(permissions) - user_permissions(actor)))


def _refuse_ungranted(missing: Iterable[str]) -> None:
    """The 400 for permissions someone tried to hand out without holding them."""
    messages = [f'You cannot grant a permission you do not hold: "{n}".' for n in missing]
    if messages:
        raise ValidationError({"permissions": messages})


def _check_roles_grant(actor: Any, roles: Iterable[Role]) -> None:
    """Nobody gives (or takes away) a role with a permission they do not hold themselves."""
    if actor is None:
        return
    held = user_permissions(actor)
    refused = sorted(r.name for r in roles if not set(r.permissions) <= held)
    if refused:
        raise ValidationError(
            {
                "roles": [
                    f'You cannot give the role "{n}": it has permissions you do not hold.'
                    for n in refused
                ]
            }
        )


@transaction.atomic
def role_create(*, name: str, permissions: Iterable[str], actor: Any) -> Role:
    permissions = validate_permission_names(permissions)
    _check_grant(actor, permissions)
    role = Role(name=name, permissions=permissions)
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
        _check_grant(actor, set(data["permissions"]) ^ set(role.permissions))
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


def _validate_user(user: User, password: str | None) -> None:
    """The password rules (for a new ``password``) and the model's, refused together, so a
    form shows every field's error at once instead of one per round."""
    errors: dict[str, list[str]] = {}
    if password is not None:
        try:
            validate_password(password, user)
        except ValidationError as exc:
            errors["password"] = exc.messages
    try:
        # The hash is set after validation, so a refused form costs no password hashing.
        user.full_clean(exclude=["password"])
    except ValidationError as exc:
        for field, messages in exc.message_dict.items():
            errors.setdefault(field, []).extend(messages)
    if errors:
        raise ValidationError(errors)


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
    roles = list(roles)
    _check_roles_grant(actor, roles)
    _validate_user(user, password)
    user.set_password(password)
    user.save()
    user.roles.set(roles)
    record_event(
        resource_type="user",
        resource_id=user.pk,
        action="created",
        actor=actor,
        changed_fields=[*USER_FIELDS, "password", "roles"],
    )
    return user


OUTRANKED = "You cannot change or delete a user who holds permissions you do not hold."


def _guard_outranked(user: User, actor: Any) -> None:
    """Nobody changes or deletes a user who holds more than they do: no taking over an
    account through ``users.edit`` (a new password), and only a superuser touches one."""
    if outranks(user, actor):
        raise PermissionDenied(OUTRANKED)


def granted_permissions(user: User) -> frozenset[str]:
    """What ``user``'s account carries, whether or not it is active now."""
    if user.is_superuser:
        return frozenset(all_permissions())
    # roles.all(): prefetched roles (a list page) cost no query.
    return frozenset(p for role in user.roles.all() for p in role.permissions)


def outranks(user: User, actor: Any) -> bool:
    """Whether ``user`` holds a permission ``actor`` does not (``None``: the system, never)."""
    return actor is not None and not granted_permissions(user) <= user_permissions(actor)


@transaction.atomic
def user_update(*, user: User, data: dict[str, Any], actor: Any) -> User:
    _guard_outranked(user, actor)
    current_roles = set(user.roles.values_list("pk", flat=True))
    if "roles" in data:
        new_roles = {r.pk for r in data["roles"]}
        _check_roles_grant(
            actor,
            [r for r in data["roles"] if r.pk not in current_roles]
            + list(Role.objects.filter(pk__in=current_roles - new_roles)),
        )
    changed = [f for f in USER_FIELDS if f in data and getattr(user, f) != data[f]]
    for field in changed:
        setattr(user, field, data[field])
    _validate_user(user, data.get("password") or None)
    if data.get("password"):
        user.set_password(data["password"])
        changed.append("password")
    user.save()
    if "roles" in data:
        new = {r.pk for r in data["roles"]}
        if new != current_roles:
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
    _guard_outranked(user, actor)
    pk = user.pk
    user.delete()
    record_event(resource_type="user", resource_id=pk, action="deleted", actor=actor)


def ensure_bootstrap_admin(*, username: str, password: str, email: str = "") -> str:
    """Create the first administrator unless that username already exists: ``"created"``.

    An existing one is left as it is (``"unchanged"``), except that ``email`` fills in an
    address it lacks (``"email_set"``): Commvault's test mail goes to the caller's address.
    An address set since (in the console, say) is kept.
    """
    existing = User.objects.filter(username=username).first()
    if existing is None:
        user_create(username=username, password=password, email=email, is_superuser=True)
        return "created"
    if email and not existing.email:
        user_update(user=existing, data={"email": email}, actor=None)
        return "email_set"
    return "unchanged"


# --- API keys -----------------------------------------------------------------------------


def _is_limited(actor: Any) -> bool:
    """Whether ``actor`` acts through an API key (its permissions carry a limit)."""
    return getattr(actor, "_outbound_permission_limit", None) is not None


def _unused_prefix() -> str:
    for _ in range(5):
        prefix = keys.new_prefix()
        if not ApiKey.objects.filter(prefix=prefix).exists():
            return prefix
    # 36**8 prefixes: reaching this means the random source is broken, not bad luck.
    raise RuntimeError("could not find an unused API key prefix")


@sensitive_variables("plaintext")
@transaction.atomic
def api_key_create(
    *,
    owner: User,
    name: str,
    permissions: Iterable[str],
    expires_at: datetime | None = None,
    actor: Any,
) -> tuple[ApiKey, str]:
    """A new key for ``owner`` and its plaintext, which is returned here once and never stored.

    The permissions must be known and held by the owner and by the actor creating the key
    (the key could never use more, and a 400 says so instead of a key that silently can't).
    A request made with an API key may not create keys: a leaked key must not mint more.
    """
    if _is_limited(actor):
        raise PermissionDenied("An API key cannot create API keys.")
    names = validate_permission_names(permissions)
    held = user_permissions(owner)
    if actor is not None and getattr(actor, "pk", None) != owner.pk:
        held &= user_permissions(actor)
    _refuse_ungranted(n for n in names if n not in held)
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": ["The expiry must be in the future."]})
    prefix = _unused_prefix()
    plaintext = keys.new_key(prefix)
    key = ApiKey(
        owner=owner,
        name=name,
        prefix=prefix,
        hashed_key=keys.hash_key(plaintext),
        permissions=names,
        expires_at=expires_at,
    )
    key.full_clean()
    key.save()
    record_event(
        resource_type="api_key",
        resource_id=key.pk,
        action="created",
        actor=actor,
        changed_fields=API_KEY_FIELDS,
    )
    return key, plaintext


@transaction.atomic
def api_key_revoke(*, key: ApiKey, actor: Any) -> ApiKey:
    """Revoke ``key`` from now on; revoking a revoked key changes nothing and records nothing."""
    locked = ApiKey.objects.select_for_update().get(pk=key.pk)
    if locked.revoked_at is None:
        locked.revoked_at = timezone.now()
        locked.save(update_fields=["revoked_at"])
        record_event(
            resource_type="api_key",
            resource_id=key.pk,
            action="revoked",
            actor=actor,
            changed_fields=["revoked_at"],
        )
    key.revoked_at = locked.revoked_at
    return key


def api_key_mark_used(*, key: ApiKey, now: datetime | None = None) -> None:
    """Note that ``key`` was used, writing at most once per :data:`API_KEY_USE_RESOLUTION`.

    One conditional UPDATE (atomic by itself, no event: using a key changes nothing a user
    did), so concurrent requests with the same key write once between them, not once each.
    """
    now = now or timezone.now()
    stale = now - API_KEY_USE_RESOLUTION
    if key.last_used_at is not None and key.last_used_at > stale:
        return
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale), pk=key.pk
    ).update(last_used_at=now)
    key.last_used_at = now
