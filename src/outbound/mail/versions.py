"""Versions of SMTP configurations: every saved state of a configuration's settings, and what
a rollback to one restores.

Every write of the services (:mod:`outbound.mail.services`: create, update, rollback — which
every API shape and the console call) saves through :func:`save`: when a setting changed, the
configuration's ``version`` goes up by one and an :class:`SmtpConfigVersion` with that number
records the new state, in the write's transaction. A version holds the non-secret settings in
``values`` and the password as it was sealed, never in clear (see the model).

What is versioned: the settings (:data:`SETTINGS` and the password). Whether a configuration
is active and its standby rank are its role among the others — changed by activation and the
failover order, recorded as events — not versioned, and a rollback leaves them as they are.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import QuerySet

from outbound.core.events import current_source
from outbound.core.secrets import SecretDecryptionError
from outbound.integrations.models import AuthenticationObject
from outbound.mail.models import SmtpConfig, SmtpConfigVersion

# The settings a version records and a rollback restores: the services' write fields but the
# standby rank (tests/mail/test_versions.py checks the two lists agree).
SETTINGS = (
    "description",
    "host",
    "port",
    "security",
    "username",
    "authorization_method",
    "authentication_object",
    "sender_address",
    "sender_name",
    "reply_to_address",
    "failure_emails",
    "timeout",
)
NOT_VERSIONED = ("standby",)
PASSWORD = SmtpConfig.SECRET_PASSWORD
VERSIONED = frozenset((*SETTINGS, PASSWORD))

UNKNOWN_VERSION = "Configuration {config} has no version {number}."
PASSWORD_UNREADABLE = (
    "The password saved with version {number} cannot be read (was the encryption key "
    "changed?): roll back to another version, or enter the password again."
)
OBJECT_GONE = (
    "The authentication object version {number} used no longer exists: choose another one."
)


def values_of(config: SmtpConfig) -> dict[str, Any]:
    """``config``'s settings as a version keeps them (JSON; the authentication object by id)."""
    values: dict[str, Any] = {}
    for name in SETTINGS:
        if name == "authentication_object":
            values[name] = config.authentication_object_id
        elif name == "failure_emails":
            values[name] = list(config.failure_emails or [])
        else:
            values[name] = getattr(config, name)
    return values


def save(
    config: SmtpConfig,
    *,
    actor: Any,
    changed_fields: list[str],
    restored_from: int | None = None,
) -> SmtpConfigVersion | None:
    """Save ``config`` (new, or locked by the caller's ``select_for_update``) and, when a new
    configuration is saved or a versioned setting changed, its new version, numbered
    ``config.version``. Call inside the write's transaction."""
    creating = config._state.adding
    if not creating and not VERSIONED.intersection(changed_fields):
        config.save()
        return None
    if not creating:
        config.version += 1
    config.save()
    user = actor if getattr(actor, "pk", None) else None
    sealed = (config.sealed_secrets or {}).get(PASSWORD)
    return SmtpConfigVersion.objects.create(
        config=config,
        number=config.version,
        created_by=user,
        created_by_username=getattr(user, "username", "") or "",
        source=current_source(),
        changed_fields=sorted(set(changed_fields)),
        values=values_of(config),
        # The configuration's own ciphertext: bound to it and to this version's destination.
        sealed_secrets={PASSWORD: sealed} if sealed else {},
        restored_from=restored_from,
    )


def smtp_config_versions(config: SmtpConfig) -> QuerySet[SmtpConfigVersion]:
    """``config``'s versions, newest first (the number of the newest is ``config.version``)."""
    return (
        SmtpConfigVersion.objects.filter(config_id=config.pk)
        .select_related("config")
        .order_by("-number")
    )


def smtp_config_version(config: SmtpConfig, number: Any) -> SmtpConfigVersion | None:
    """Version ``number`` of ``config``, or ``None``."""
    try:
        number = int(number)
    except (TypeError, ValueError):
        return None
    return smtp_config_versions(config).filter(number=number).first()


def unknown_version(config: SmtpConfig, number: Any) -> ValidationError:
    return ValidationError({"version": [UNKNOWN_VERSION.format(config=config.pk, number=number)]})


def restore_data(version: SmtpConfigVersion) -> dict[str, Any]:
    """What a write must set to bring the configuration back to ``version``: every setting,
    and the password (``""``: none) opened from the version's seal — so the services' rule
    that a secret never follows a changed destination sees it brought again, for the
    destination it was saved for. Raises ``ValidationError`` when the password cannot be
    opened or the authentication object is gone."""
    data = {name: version.values[name] for name in SETTINGS if name in version.values}
    errors: dict[str, list[str]] = {}
    object_id = data.get("authentication_object")
    if object_id is not None:
        data["authentication_object"] = AuthenticationObject.objects.filter(pk=object_id).first()
        if data["authentication_object"] is None:
            errors["authentication_object"] = [OBJECT_GONE.format(number=version.number)]
    try:
        data[PASSWORD] = version.get_secret(PASSWORD) or ""
    except SecretDecryptionError:
        errors[PASSWORD] = [PASSWORD_UNREADABLE.format(number=version.number)]
    if errors:
        raise ValidationError(errors)
    return data


def password_changed(config: SmtpConfig, old: SmtpConfigVersion, new: SmtpConfigVersion) -> bool:
    """Whether the password differs between the two versions (never what it is).

    Each version keeps the password sealed on its own, so two seals of one password differ:
    the two are opened and compared in memory. A seal that no longer opens (the key was
    changed) leaves what the versions recorded: whether one after the older, up to the newer,
    changed the password."""
    if old.has_password != new.has_password:
        return True
    if not new.has_password:
        return False
    try:
        return old.get_secret(PASSWORD) != new.get_secret(PASSWORD)
    except SecretDecryptionError:
        low, high = sorted((old.number, new.number))
        between = smtp_config_versions(config).filter(number__gt=low, number__lte=high)
        return any(PASSWORD in (v.changed_fields or []) for v in between)
