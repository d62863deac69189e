"""Writes to authentication objects; secrets are sealed here and never leave in clear."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from outbound.core.events import record_event
from outbound.core.validators import reject_control_characters
from outbound.integrations.models import AuthenticationObject
from outbound.integrations.providers import PROVIDERS, defaults, https_url

RESOURCE = "authentication_object"


def _apply_params(
    obj: AuthenticationObject, params: dict[str, Any], *, creating: bool
) -> list[str]:
    """Set provider parameters and secrets from ``params``; return the names that changed."""
    provider = PROVIDERS[obj.provider]
    errors: dict[str, list[str]] = {}
    current = dict(obj.parameters or {})
    if creating:
        current = {**defaults(provider), **current}
    changed: list[str] = []
    for spec in provider.params:
        if spec.name not in params:
            continue
        value = params[spec.name]
        if value in (None, ""):
            if spec.default is not None and not spec.secret:
                value = spec.default
            elif spec.required:
                errors[spec.name] = ["This field may not be blank."]
                continue
        try:
            if isinstance(value, str):
                reject_control_characters(value)
                if spec.url and value:
                    https_url(value)
        except ValidationError as exc:
            errors[spec.name] = exc.messages
            continue
        if spec.secret:
            if value:
                obj.set_secret(spec.name, value)
                changed.append(spec.name)
        elif current.get(spec.name) != value:
            current[spec.name] = value
            changed.append(spec.name)
    if creating:
        for spec in provider.params:
            present = obj.has_secret(spec.name) if spec.secret else current.get(spec.name)
            if spec.required and not present and spec.name not in errors:
                errors[spec.name] = ["This field is required."]
    if errors:
        raise ValidationError(errors)
    obj.parameters = current
    return changed


def _check_name(name: str) -> None:
    try:
        reject_control_characters(name)
    except ValidationError as exc:
        raise ValidationError({"name": exc.messages}) from exc


@transaction.atomic
def authentication_object_create(
    *, name: str, provider: str, params: dict[str, Any], actor: Any
) -> AuthenticationObject:
    _check_name(name)
    if provider not in PROVIDERS:
        raise ValidationError({"provider": [f'"{provider}" is not a valid choice.']})
    obj = AuthenticationObject(name=name, provider=provider)
    if getattr(actor, "pk", None):
        obj.created_by = obj.modified_by = actor
    changed = _apply_params(obj, params, creating=True)
    obj.full_clean()
    obj.save()
    record_event(
        resource_type=RESOURCE,
        resource_id=obj.pk,
        action="created",
        actor=actor,
        changed_fields=["name", "provider", *changed],
    )
    return obj


@transaction.atomic
def authentication_object_update(
    *, obj: AuthenticationObject, data: dict[str, Any], actor: Any
) -> AuthenticationObject:
    obj = AuthenticationObject.objects.select_for_update().get(pk=obj.pk)
    if "provider" in data and data["provider"] != obj.provider:
        raise ValidationError(
            {"provider": ["The provider of an authentication object cannot be changed."]}
        )
    changed = []
    if "name" in data and data["name"] != obj.name:
        _check_name(data["name"])
        obj.name = data["name"]
        changed.append("name")
    changed += _apply_params(obj, data.get("params", {}), creating=False)
    if getattr(actor, "pk", None):
        obj.modified_by = actor
    obj.full_clean()
    obj.save()
    if changed:
        record_event(
            resource_type=RESOURCE,
            resource_id=obj.pk,
            action="updated",
            actor=actor,
            changed_fields=changed,
        )
    return obj


@transaction.atomic
def authentication_object_delete(*, obj: AuthenticationObject, actor: Any) -> None:
    pk = obj.pk
    from outbound.mail.models import SmtpConfig

    if SmtpConfig.objects.filter(authentication_object=obj).exists():
        raise ValidationError(
            {"non_field_errors": ["This authentication object is used by an SMTP configuration."]}
        )
    obj.delete()
    record_event(resource_type=RESOURCE, resource_id=pk, action="deleted", actor=actor)
