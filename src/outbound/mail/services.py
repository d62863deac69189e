"""Writes to SMTP configurations, and the connection test over stored or proposed settings
(a test of a saved configuration's own server is kept as its last test).

Every API shape (native ALX, ZITADEL, Hitachi, Commvault, PrivX) and the console call these
functions with core field names; each write records its event in the same transaction.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ParamSpec, TypeVar

from django.core.exceptions import ValidationError
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from outbound.core.errors import Conflict, ServiceError, database_error_reason
from outbound.core.events import record_event
from outbound.core.locks import serialize
from outbound.core.models import stamp_actor
from outbound.core.permissions import has_permission
from outbound.core.secrets import SecretDecryptionError
from outbound.mail import failover, publishing, versions
from outbound.mail.choices import AuthorizationMethod, Security, security_from_tls
from outbound.mail.models import SmtpConfig, SmtpConfigVersion, SmtpTestResult
from outbound.mail.tester import TestReport, run_test
from outbound.mail.transport import SmtpTarget, Step

logger = logging.getLogger(__name__)

RESOURCE = "smtp_config"
ACTIVATION_LOCK = "outbound.smtp-activation"

# Core fields a write may set (``password`` and ``tls`` are handled apart): the settings a
# version records, and the standby rank.
FIELDS = (*versions.SETTINGS, *versions.NOT_VERSIONED)
# A saved password goes only to the destination it was saved for: a write or a test that
# changes any of these must bring the password again.
SAME_SERVER_FIELDS = SmtpConfig.DESTINATION_FIELDS
PASSWORD_AGAIN = (
    "Enter the password again: the server or user changed, so the saved password is not reused."
)

# The token of a Microsoft configuration follows the same rule as a password.
CREDENTIALS_PERMISSION = "authentication_objects.edit"
MICROSOFT_AGAIN = (
    "Choose the authentication object again: the server or user changed, so its token is not "
    "sent there unconfirmed."
)
MICROSOFT_NOT_PERMITTED = (
    "Only a user who may edit authentication objects can send an object's tokens to a "
    "server: ask one to make this change."
)

PASSWORD_UNREADABLE = (
    "The saved password cannot be read (was the encryption key changed?); enter it again."
)
MICROSOFT_SAVE_FIRST = (
    "Save the settings before testing them: the authentication object's client secret is "
    "only used for the server, port, TLS mode and username it was saved with."
)

ACTIVE_NOT_DELETED = (
    "The active SMTP configuration cannot be deleted: activate another one, or deactivate "
    "this one, first."
)
DELETED = "The SMTP configuration was deleted."
CHANGED_WHILE_TESTED = (
    "The configuration's server or credentials changed while it was tested; nothing was "
    "activated. Test it again."
)

P = ParamSpec("P")
R = TypeVar("R")


def _published(event_type: str, config: SmtpConfig, action: str, changed: Any = ()) -> None:
    """Publish a configuration event (webhooks) in the change's transaction: both or neither."""
    publishing.publish_config_event(
        publishing.config_event(event_type, config, action=action, changed=changed)
    )


class StateConflict(ServiceError):
    """The configuration is already in the requested state (ZITADEL: FailedPrecondition)."""


def _locked(config: SmtpConfig) -> SmtpConfig:
    """``config``'s row, read again under its lock: a 404 refusal when a concurrent delete
    took it meanwhile (every write over a configuration the caller looked up goes through
    here, so a change racing a delete is answered 404 in every API shape, never a 500)."""
    locked = SmtpConfig.objects.select_for_update().filter(pk=config.pk).first()
    if locked is None:
        raise ServiceError(DELETED, code="not_found", status_code=404)
    return locked


def retry_on_conflict(fn: Callable[P, R]) -> Callable[P, R]:
    """Run ``fn`` atomically; a lost race on a unique constraint is retried from the start."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        for attempt in range(3):
            try:
                with transaction.atomic():
                    return fn(*args, **kwargs)
            except IntegrityError:
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    return wrapper


def _resolve_tls(data: dict[str, Any], current: SmtpConfig) -> dict[str, Any]:
    """Turn a dialect's ``tls`` flag into ``security`` (465 means implicit TLS).

    Only dialects that speak in a TLS flag (ALX, ZITADEL) send ``tls``; ``tls: None`` means
    "the flag as it is" and still re-derives the mode from the (new) port, so 465 means
    implicit TLS and a new configuration is TLS unless told otherwise. Dialects that name the
    mode (Hitachi, Commvault, PrivX) send ``security`` or nothing, and a new port alone then
    keeps the mode.
    """
    data = dict(data)
    if "tls" not in data:
        return data
    tls = data.pop("tls")
    if "security" in data:
        return data
    if tls is None:
        tls = current.security != Security.NONE if current.pk else True
    data["security"] = security_from_tls(bool(tls), data.get("port", current.port))
    return data


def _apply(config: SmtpConfig, data: dict[str, Any]) -> list[str]:
    """Set ``data`` on ``config``; return the names of the fields that changed."""
    data = _resolve_tls(data, config)
    changed = []
    for name in FIELDS:
        if name in data and getattr(config, name) != data[name]:
            setattr(config, name, data[name])
            changed.append(name)
    password = data.get("password")
    if password is not None:
        if password == "":
            if config.has_password:
                config.set_secret(SmtpConfig.SECRET_PASSWORD, None)
                changed.append("password")
        elif not _same_secret(config, password):
            config.set_secret(SmtpConfig.SECRET_PASSWORD, password)
            changed.append("password")
    microsoft = config.authorization_method == AuthorizationMethod.MICROSOFT_CLIENT_CREDENTIALS
    if (
        not microsoft
        and config.authentication_object_id is not None
        and "authentication_object" not in data
    ):
        config.authentication_object = None
        changed.append("authentication_object")
    if microsoft and "authorization_method" in changed and password is None and config.has_password:
        # Microsoft signs in with a token, not the password: switching to it drops the saved
        # password (as switching back drops the authentication object), so it follows nowhere.
        config.set_secret(SmtpConfig.SECRET_PASSWORD, None)
        changed.append("password")
    return changed


def _moved_secret_errors(
    config: SmtpConfig, saved: tuple[Any, ...] | None, data: dict[str, Any], actor: Any
) -> dict[str, list[str]]:
    """The rule every write passes through: a secret never follows a changed destination.

    ``saved`` is ``(destination, authentication object id)`` as stored, ``None`` for a new
    configuration. A saved password goes only to the server, port, TLS mode, user and method
    it was saved for, unless the write brings it again (the ciphertext is bound to them as
    well, see ``secret_binding``, so a path that skipped this check could not open it either).
    A Microsoft configuration sends a token minted with an authentication object's client
    secret: pointing it at another server, or at another object, must name the object again,
    by a user who may edit authentication objects."""
    errors: dict[str, list[str]] = {}
    moved = saved is None or config.destination() != saved[0]
    if data.get("password") is None and config.has_password and moved:
        errors["password"] = [PASSWORD_AGAIN]
    if (
        config.authorization_method == AuthorizationMethod.MICROSOFT_CLIENT_CREDENTIALS
        and config.authentication_object_id is not None
        and (saved is None or moved or config.authentication_object_id != saved[1])
    ):
        if "authentication_object" not in data:
            errors["authentication_object"] = [MICROSOFT_AGAIN]
        elif getattr(actor, "pk", None) and not has_permission(actor, CREDENTIALS_PERMISSION):
            errors["authentication_object"] = [MICROSOFT_NOT_PERMITTED]
    return errors


def _full_clean(config: SmtpConfig, errors: dict[str, list[str]]) -> None:
    """``full_clean`` with ``errors`` found before it, so one answer names every field (the
    model's errors keep their codes, which the dialects map to their own)."""
    found: dict[str, list[ValidationError]] = {
        name: [ValidationError(message, code="secret_again") for message in messages]
        for name, messages in errors.items()
    }
    try:
        config.full_clean(validate_constraints=False)
    except ValidationError as exc:
        for name, refusals in exc.error_dict.items():
            found.setdefault(name, []).extend(refusals)
    if found:
        raise ValidationError(found)


def _same_secret(config: SmtpConfig, password: str) -> bool:
    """Whether ``password`` is the stored one; an unreadable stored one is simply replaced."""
    try:
        return password == config.get_secret(SmtpConfig.SECRET_PASSWORD)
    except SecretDecryptionError:
        return False


def _deactivate_others(config: SmtpConfig, actor: Any) -> None:
    serialize(ACTIVATION_LOCK)
    for other in (
        SmtpConfig.objects.select_for_update().filter(is_active=True).exclude(pk=config.pk)
    ):
        other.is_active = False
        stamp_actor(other, actor, creating=False)
        other.save(update_fields=["is_active", "modified_at", "modified_by"])
        record_event(
            resource_type=RESOURCE, resource_id=other.pk, action="deactivated", actor=actor
        )
        _published(publishing.CONFIG_CHANGED, other, "deactivated", ["is_active"])


def _create(*, data: dict[str, Any], actor: Any, activate: bool) -> SmtpConfig:
    config = SmtpConfig()
    changed = _apply(config, data)
    stamp_actor(config, actor, creating=True)
    _full_clean(config, _moved_secret_errors(config, None, data, actor))
    if activate:
        _deactivate_others(config, actor)
        config.is_active = True
        config.standby = None  # activation takes it off the standby list (see _activate)
    versions.save(config, actor=actor, changed_fields=changed)  # and its version 1
    if activate:
        failover.reset(config.pk)
    record_event(
        resource_type=RESOURCE,
        resource_id=config.pk,
        action="created",
        actor=actor,
        changed_fields=changed,
    )
    _published(publishing.CONFIG_CHANGED, config, "created", changed)
    if activate:
        record_event(resource_type=RESOURCE, resource_id=config.pk, action="activated", actor=actor)
        _published(publishing.CONFIG_ACTIVATED, config, "activated", ["is_active"])
    return config


def _update(
    *,
    config: SmtpConfig,
    data: dict[str, Any],
    actor: Any,
    action: str = "updated",
    restored_from: int | None = None,
) -> tuple[SmtpConfig, SmtpConfigVersion | None]:
    """Change ``config``: the saved configuration, and the version this write created
    (``None`` when no versioned setting changed)."""
    config = _locked(config)
    saved = (config.destination(), config.authentication_object_id)
    changed = _apply(config, data)
    if not changed:
        return config, None
    stamp_actor(config, actor, creating=False)
    _full_clean(config, _moved_secret_errors(config, saved, data, actor))
    # A changed setting makes a new version (outbound.mail.versions).
    created = versions.save(
        config, actor=actor, changed_fields=changed, restored_from=restored_from
    )
    if "standby" in changed and config.standby is None:
        failover.standby_gone(config, actor)  # it served: the primary serves again
    if config.destination() != saved[0]:  # its last test was of another server
        SmtpTestResult.objects.filter(config=config).delete()
    record_event(
        resource_type=RESOURCE,
        resource_id=config.pk,
        action=action,
        actor=actor,
        changed_fields=changed,
    )
    _published(publishing.CONFIG_CHANGED, config, action, changed)
    return config, created


@retry_on_conflict
def smtp_config_create(*, data: dict[str, Any], actor: Any, activate: bool = False) -> SmtpConfig:
    return _create(data=data, actor=actor, activate=activate)


@retry_on_conflict
def smtp_config_update(
    *, config: SmtpConfig, data: dict[str, Any], actor: Any, activate: bool = False
) -> SmtpConfig:
    """Change ``config``; with ``activate``, also make it the active one — both or neither."""
    config, _ = _update(config=config, data=data, actor=actor)
    if activate and not config.is_active:
        _activate(config, actor)
    return config


@retry_on_conflict
def active_smtp_config_save(*, data: dict[str, Any], actor: Any) -> SmtpConfig:
    """The singleton write of ALX, Commvault and PrivX: update the active configuration,
    or create it (active) when none is."""
    serialize(ACTIVATION_LOCK)
    current = SmtpConfig.objects.select_for_update().filter(is_active=True).first()
    if current is None:
        return _create(data=data, actor=actor, activate=True)
    return _update(config=current, data=data, actor=actor)[0]


smtp_config_versions = versions.smtp_config_versions


@retry_on_conflict
def smtp_config_rollback(
    *, config: SmtpConfig, version: int, actor: Any
) -> tuple[SmtpConfig, SmtpConfigVersion]:
    """Bring ``config`` back to its version ``version`` — every setting and the password
    saved with it — saved as a new version, in one transaction: recorded as the event
    ``rolled_back`` (the changed field names) and published as ``smtp_config.changed`` with
    action ``rolled_back``; the sender uses it from its next configuration read (within a
    second). It passes through the same validation and rules as an update (the password
    comes back with the destination it was saved for; a Microsoft configuration's object
    only by a user who may edit authentication objects). Whether the configuration is active,
    and its standby rank, stay as they are. A version equal to the current state changes
    nothing (no new version, no event). Unknown ``version``: ValidationError on
    ``version``; a configuration deleted meanwhile: 404.

    Returns the configuration and its version now: the one this rollback saved, or the
    current one when nothing differed — read under the row's lock, never a later change's."""
    locked = _locked(config)
    target = versions.smtp_config_version(locked, version)
    if target is None:
        raise versions.unknown_version(locked, version)
    saved, created = _update(
        config=locked,
        data=versions.restore_data(target),
        actor=actor,
        action="rolled_back",
        restored_from=target.number,
    )
    current = created or versions.smtp_config_version(saved, saved.version)
    if current is None:  # every configuration has its versions (migration 0013)
        raise AssertionError(f"SMTP configuration {saved.pk} has no version {saved.version}")
    return saved, current


def _activate(config: SmtpConfig, actor: Any) -> None:
    """Make ``config`` the active one. The active configuration is never a standby
    (``SmtpConfig.clean`` refuses a write that makes it one, the database checks it), so
    activating a standby takes it off the standby list: it serves as the primary now."""
    _deactivate_others(config, actor)
    config.is_active = True
    changed = ["is_active"]
    if config.standby is not None:
        config.standby = None
        changed.append("standby")
    stamp_actor(config, actor, creating=False)
    config.save(update_fields=[*changed, "modified_at", "modified_by"])
    failover.reset(config.pk)  # it serves, its failures count from 0
    record_event(
        resource_type=RESOURCE,
        resource_id=config.pk,
        action="activated",
        actor=actor,
        changed_fields=changed if len(changed) > 1 else (),
    )
    _published(publishing.CONFIG_ACTIVATED, config, "activated", changed)


@retry_on_conflict
def smtp_config_activate(*, config: SmtpConfig, actor: Any) -> SmtpConfig:
    config = _locked(config)
    if config.is_active:
        raise StateConflict("The SMTP configuration is already active.", code="already_active")
    _activate(config, actor)
    return config


@retry_on_conflict
def smtp_config_deactivate(*, config: SmtpConfig, actor: Any) -> SmtpConfig:
    config = _locked(config)
    if not config.is_active:
        raise StateConflict("The SMTP configuration is not active.", code="not_active")
    config.is_active = False
    stamp_actor(config, actor, creating=False)
    config.save(update_fields=["is_active", "modified_at", "modified_by"])
    failover.reset(None)
    record_event(resource_type=RESOURCE, resource_id=config.pk, action="deactivated", actor=actor)
    _published(publishing.CONFIG_CHANGED, config, "deactivated", ["is_active"])
    return config


def smtp_config_activate_tested(
    *, config: SmtpConfig, actor: Any
) -> tuple[TestReport, SmtpConfig | None]:
    """Test the saved configuration, then activate it only if the test passed: ``(report,
    the activated configuration)``, or ``(report, None)`` with nothing changed when it failed.

    The test talks to the server outside any transaction (it may take the whole timeout, and
    must hold no lock meanwhile); the activation then checks, under the row's lock, that the
    server, user, method and secrets are still those tested — otherwise it activates nothing
    (409), so what becomes active is exactly what passed."""
    if config.is_active:
        raise StateConflict("The SMTP configuration is already active.", code="already_active")
    plan = smtp_test_plan(stored=config, data={})
    tested = (config.destination(), config.authentication_object_id, config.sealed_secrets)
    report = plan.run()
    if not report.ok:
        return report, None
    return report, _activate_if_unchanged(config=config, tested=tested, actor=actor)


@retry_on_conflict
def _activate_if_unchanged(
    *, config: SmtpConfig, tested: tuple[Any, ...], actor: Any
) -> SmtpConfig:
    current = _locked(config)
    if (current.destination(), current.authentication_object_id, current.sealed_secrets) != (
        tested
    ):
        raise Conflict(CHANGED_WHILE_TESTED, code="changed")
    if current.is_active:
        raise StateConflict("The SMTP configuration is already active.", code="already_active")
    _activate(current, actor)
    return current


@transaction.atomic
def smtp_config_delete(*, config: SmtpConfig, actor: Any, refuse_active: bool = False) -> None:
    """Delete ``config``. With ``refuse_active`` (the native API), the active configuration
    is refused (400) — checked under the row's lock, so an activation racing the delete
    cannot slip between; the console asks for a confirmation instead, and ZITADEL deletes
    it as ZITADEL does. Under the row's lock too: of two deletes racing, the second finds
    the row gone and is refused (404), so one delete is answered and recorded once."""
    locked = _locked(config)
    if refuse_active and locked.is_active:
        raise ServiceError(ACTIVE_NOT_DELETED, code="active")
    pk = locked.pk
    event = publishing.config_event(publishing.CONFIG_CHANGED, locked, action="deleted")
    if locked.is_active:
        failover.reset(None)
    else:
        failover.standby_gone(locked, actor)  # a standby serving: the primary serves again
    locked.delete()
    record_event(resource_type=RESOURCE, resource_id=pk, action="deleted", actor=actor)
    publishing.publish_config_event(event)


def smtp_test_target(*, stored: SmtpConfig | None, data: dict[str, Any]) -> SmtpTarget:
    """The settings to test: ``data`` over the stored configuration, validated like a write.

    A stored secret (the password, or the client secret behind the authentication object) is
    reused only when the test goes to the same server as the same user with the same TLS
    mode and method; otherwise the caller must send the password again, or save first.
    """
    proposal = SmtpConfig()
    if stored is not None:
        for name in ("uid", "sealed_secrets", *FIELDS):
            setattr(proposal, name, getattr(stored, name))
        proposal.pk = stored.pk
    data = dict(data)
    password = data.pop("password", None)
    _apply(proposal, data)
    errors: dict[str, list[str]] = {}
    try:
        proposal.full_clean(validate_unique=False, validate_constraints=False, exclude=["uid"])
    except ValidationError as exc:
        errors.update(exc.message_dict)
    same_server = stored is not None and all(
        getattr(proposal, f) == getattr(stored, f) for f in SAME_SERVER_FIELDS
    )
    if proposal.authorization_method == AuthorizationMethod.MICROSOFT_CLIENT_CREDENTIALS:
        # The client secret lives on the authentication object and cannot be typed into a
        # test, so a token is only ever fetched for the server the configuration was saved for.
        same = (
            stored is not None
            and same_server
            and proposal.authentication_object_id == stored.authentication_object_id
        )
        if not same and "authentication_object" not in errors:
            errors.setdefault("authentication_object", []).append(MICROSOFT_SAVE_FIRST)
    elif password is None and proposal.username:
        if same_server and stored is not None and stored.has_password:
            try:
                password = stored.get_secret(SmtpConfig.SECRET_PASSWORD)
            except SecretDecryptionError:
                errors.setdefault("password", []).append(PASSWORD_UNREADABLE)
        elif stored is not None and stored.has_password:
            errors.setdefault("password", []).append(PASSWORD_AGAIN)
        else:
            errors.setdefault("password", []).append("This field is required.")
    if errors:
        raise ValidationError(errors)
    return SmtpTarget(
        host=proposal.host,
        port=proposal.port,
        security=proposal.security,
        username=proposal.username,
        password=password,
        authorization_method=proposal.authorization_method,
        authentication_object=proposal.authentication_object,
        timeout=proposal.effective_timeout,
    )


@dataclass(frozen=True)
class SmtpTestPlan:
    """A validated test, ready to run: where to connect and what, if anything, to send.

    ``config_id``: the saved configuration this is a test *of* — set when the test goes to
    its saved server, port, TLS mode, user and method (edited but unsaved values elsewhere
    test something else); its result is then kept as that configuration's last test."""

    target: SmtpTarget
    receiver: str | None = None
    sender: str = ""
    sender_name: str = ""
    config_id: int | None = None

    def run(self, on_step: Callable[[Step], None] | None = None) -> TestReport:
        """Talk to the server, then keep the result (:meth:`record`); ``on_step`` is told of
        each step as it finishes. Every test path runs this, except the console's live
        report, which talks in a thread of its own (one that must not touch the database)
        and records from the request's thread."""
        report = self.talk(on_step)
        self.record(report)
        return report

    def talk(self, on_step: Callable[[Step], None] | None = None) -> TestReport:
        """The network part alone: no database access. Pass its report to :meth:`record`."""
        return run_test(
            self.target,
            receiver=self.receiver,
            sender=self.sender,
            sender_name=self.sender_name,
            on_step=on_step,
        )

    def record(self, report: TestReport) -> None:
        """Keep ``report`` as the configuration's last test (nothing for other tests)."""
        if self.config_id is not None:
            _record_test(self.config_id, _destination_of(self.target), report)


def _destination_of(target: SmtpTarget) -> tuple[object, ...]:
    return (target.host, target.port, target.security, target.username, target.authorization_method)


def _tls_facts(report: TestReport) -> dict[str, Any]:
    """TLS version, cipher and certificate from the step that negotiated TLS, if any."""
    facts: dict[str, Any] = {}
    for step in report.steps:
        if step.data.get("tls_version"):
            cert = step.data.get("certificate") or {}
            not_after = cert.get("not_after")
            facts = {
                "tls_version": str(step.data["tls_version"])[:32],
                "cipher": str(step.data.get("cipher") or "")[:200],
                "certificate_subject": str(cert.get("subject") or "")[:1000],
                "certificate_not_after": datetime.fromisoformat(not_after) if not_after else None,
            }
    return facts


def _record_test(config_id: int, destination: tuple[object, ...], report: TestReport) -> None:
    """Upsert the configuration's last test. A configuration deleted or pointed elsewhere
    while the test ran keeps no result; a database that takes no writes costs the record,
    never the test's answer."""
    values = {
        "tested_at": timezone.now(),
        "ok": report.ok,
        "message": report.message[:1000],
        "failed_step": (report.failed_step or "")[:32],
        "tls_version": "",
        "cipher": "",
        "certificate_subject": "",
        "certificate_not_after": None,
        **_tls_facts(report),
    }
    try:
        with transaction.atomic():
            config = SmtpConfig.objects.select_for_update().filter(pk=config_id).first()
            if config is None or config.destination() != destination:
                return
            SmtpTestResult.objects.update_or_create(config=config, defaults=values)
    except DatabaseError as exc:
        logger.warning("The SMTP test's result was not recorded: %s", database_error_reason(exc))


def smtp_test_plan(
    *, stored: SmtpConfig | None, data: dict[str, Any], receiver: str | None = None
) -> SmtpTestPlan:
    """Validate ``data`` over ``stored`` for a test (raises ValidationError). Writes nothing."""
    target = smtp_test_target(stored=stored, data=data)
    sender = data.get("sender_address") or (stored.sender_address if stored else "")
    name = data.get("sender_name") or (stored.sender_name if stored else "")
    if receiver and not (sender or "@" in target.username):
        raise ValidationError(
            {"sender_address": ["A sender address is needed to send a test message."]}
        )
    of = (
        stored.pk
        if stored is not None and _destination_of(target) == stored.destination()
        else None
    )
    return SmtpTestPlan(
        target=target, receiver=receiver, sender=sender, sender_name=name, config_id=of
    )


def smtp_config_test(
    *, stored: SmtpConfig | None, data: dict[str, Any], receiver: str | None = None
) -> TestReport:
    """Validate ``data`` over ``stored`` and really talk to the server. Writes nothing but
    the configuration's last test (see :class:`SmtpTestPlan`)."""
    return smtp_test_plan(stored=stored, data=data, receiver=receiver).run()
