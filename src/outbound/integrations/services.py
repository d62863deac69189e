"""Writes to authentication objects, object classes (and their fields) and integrations.

Secrets are sealed here and never leave in clear; every write records its event in the same
transaction.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from outbound.core.errors import ServiceError
from outbound.core.events import record_event
from outbound.core.locks import serialize
from outbound.core.models import stamp_actor
from outbound.core.validators import reject_control_characters
from outbound.integrations.models import (
    AuthenticationObject,
    Integration,
    ObjectClass,
    ObjectClassField,
)
from outbound.integrations.providers import PROVIDERS, defaults, https_url
from outbound.integrations.types import REGISTRY, TestOutcome

RESOURCE = "authentication_object"


SECRET_AGAIN = (
    "Enter this secret again: the endpoint or client changed, so the saved secret is not reused."
)


def _apply_params(
    obj: AuthenticationObject, params: dict[str, Any], *, creating: bool
) -> list[str]:
    """Set provider parameters and secrets from ``params``; return the names that changed.

    Secrets are sealed last, for the destination the public parameters now name; a change
    of destination (``Param.destination``) must bring every saved secret again.
    """
    provider = PROVIDERS[obj.provider]
    errors: dict[str, list[str]] = {}
    saved = obj.destination()
    current = dict(obj.parameters or {})
    if creating:
        current = {**defaults(provider), **current}
    changed: list[str] = []
    secrets: dict[str, str] = {}
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
                secrets[spec.name] = value
        elif current.get(spec.name) != value:
            current[spec.name] = value
            changed.append(spec.name)
    obj.parameters = current
    if not creating and obj.destination() != saved:
        for name in provider.secret_names:
            if obj.has_secret(name) and name not in secrets and name not in errors:
                errors[name] = [SECRET_AGAIN]
    if creating:
        for spec in provider.params:
            present = spec.name in secrets if spec.secret else current.get(spec.name)
            if spec.required and not present and spec.name not in errors:
                errors[spec.name] = ["This field is required."]
    if errors:
        raise ValidationError(errors)
    for name, value in secrets.items():
        obj.set_secret(name, value)
        changed.append(name)
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
    obj = AuthenticationObject.objects.select_for_update().get(pk=obj.pk)  # see _lock_references
    pk = obj.pk
    from outbound.mail.models import SmtpConfig

    if SmtpConfig.objects.filter(authentication_object=obj).exists():
        raise ValidationError(
            {"non_field_errors": ["This authentication object is used by an SMTP configuration."]}
        )
    if Integration.objects.filter(authentication_object=obj).exists():
        raise ValidationError(
            {"non_field_errors": [IN_USE_BY_INTEGRATION.format(what="authentication object")]}
        )
    obj.delete()
    record_event(resource_type=RESOURCE, resource_id=pk, action="deleted", actor=actor)


# --- object classes and their fields -----------------------------------------------------

OBJECT_CLASS = "object_class"
OBJECT_CLASS_FIELD = "object_class_field"
IN_USE_BY_INTEGRATION = "This {what} is used by an integration and cannot be deleted."


def _reject_controls(data: dict[str, Any], names: tuple[str, ...]) -> None:
    errors = {}
    for name in names:
        value = data.get(name)
        if isinstance(value, str):
            try:
                reject_control_characters(value, multiline=name == "description")
            except ValidationError as exc:
                errors[name] = exc.messages
    if errors:
        raise ValidationError(errors)


def _unique_name_error(exc: IntegrityError) -> ValidationError:
    return ValidationError({"name": ["This field must be unique."]})


def _save_named(obj: Any) -> None:
    """Save; a name taken by a concurrent writer is the same 400 a serializer gives."""
    try:
        with transaction.atomic():
            obj.save()
    except IntegrityError as exc:
        raise _unique_name_error(exc) from exc


_Named = TypeVar("_Named", ObjectClass, ObjectClassField)


def _update_named(obj: _Named, data: dict[str, Any], *, resource_type: str, actor: Any) -> _Named:
    """Rename or re-describe an object class or field, recording what changed."""
    _reject_controls(data, ("name", "description"))
    changed = [k for k in ("name", "description") if k in data and getattr(obj, k) != data[k]]
    for k in changed:
        setattr(obj, k, data[k])
    if changed:
        _save_named(obj)
        record_event(
            resource_type=resource_type,
            resource_id=obj.pk,
            action="updated",
            actor=actor,
            changed_fields=changed,
        )
    return obj


@transaction.atomic
def object_class_create(*, data: dict[str, Any], actor: Any) -> ObjectClass:
    _reject_controls(data, ("name", "description"))
    obj = ObjectClass(name=data["name"], description=data.get("description", ""))
    _save_named(obj)
    record_event(
        resource_type=OBJECT_CLASS,
        resource_id=obj.pk,
        action="created",
        actor=actor,
        changed_fields=[k for k in ("name", "description") if k in data],
    )
    return obj


@transaction.atomic
def object_class_update(*, obj: ObjectClass, data: dict[str, Any], actor: Any) -> ObjectClass:
    return _update_named(obj, data, resource_type=OBJECT_CLASS, actor=actor)


@transaction.atomic
def object_class_delete(*, obj: ObjectClass, actor: Any) -> None:
    obj = ObjectClass.objects.select_for_update().get(pk=obj.pk)  # see _lock_references
    if Integration.objects.filter(object_class=obj).exists():
        raise ValidationError(
            {"non_field_errors": [IN_USE_BY_INTEGRATION.format(what="object class")]}
        )
    field_ids = list(obj.fields.values_list("pk", flat=True))
    pk = obj.pk
    obj.delete()
    record_event(resource_type=OBJECT_CLASS, resource_id=pk, action="deleted", actor=actor)
    for field_id in field_ids:
        record_event(
            resource_type=OBJECT_CLASS_FIELD, resource_id=field_id, action="deleted", actor=actor
        )


@transaction.atomic
def object_class_field_create(
    *, object_class: ObjectClass, data: dict[str, Any], actor: Any
) -> ObjectClassField:
    _reject_controls(data, ("name", "description"))
    obj = ObjectClassField(
        object_class=object_class, name=data["name"], description=data.get("description", "")
    )
    _save_named(obj)
    record_event(
        resource_type=OBJECT_CLASS_FIELD,
        resource_id=obj.pk,
        action="created",
        actor=actor,
        changed_fields=[k for k in ("name", "description") if k in data],
    )
    return obj


@transaction.atomic
def object_class_field_update(
    *, obj: ObjectClassField, data: dict[str, Any], actor: Any
) -> ObjectClassField:
    return _update_named(obj, data, resource_type=OBJECT_CLASS_FIELD, actor=actor)


def _integrations_referencing(model: type[Any], pk: Any) -> bool:
    """Whether a type-specific ``pk`` field of any integration points at ``model`` ``pk``."""
    for itype in REGISTRY.values():
        for f in itype.fields:
            if f.kind == "pk" and f.model is model:
                lookup = {"type": itype.id, f"parameters__{f.alias}": pk}
                if Integration.objects.filter(**lookup).exists():
                    return True
    return False


@transaction.atomic
def object_class_field_delete(*, obj: ObjectClassField, actor: Any) -> None:
    obj = ObjectClassField.objects.select_for_update().get(pk=obj.pk)  # see _lock_references
    if _integrations_referencing(ObjectClassField, obj.pk):
        raise ValidationError(
            {"non_field_errors": [IN_USE_BY_INTEGRATION.format(what="object class field")]}
        )
    pk = obj.pk
    obj.delete()
    record_event(resource_type=OBJECT_CLASS_FIELD, resource_id=pk, action="deleted", actor=actor)


# --- integrations --------------------------------------------------------------------------

INTEGRATION = "integration"
INTEGRATION_LIMIT = 100
LIMIT_MESSAGE = f"Limit of {INTEGRATION_LIMIT} Integrations has been exceeded."
LIMIT_CODE = "ERR_LIMIT_EXCEEDED"
CREATE_LOCK = "outbound.integrations.create"
COMMON_FIELDS = ("name", "description", "is_enabled", "authentication_object", "object_class")
TYPE_IMMUTABLE = "The type of an integration cannot be changed."


def does_not_exist(model_name: str, pk: Any) -> str:
    return f'Invalid pk "{pk}" - {model_name} does not exist.'


def _apply_integration(integration: Integration, data: dict[str, Any]) -> list[str]:
    itype = REGISTRY[integration.type]
    changed = [f for f in COMMON_FIELDS if f in data and getattr(integration, f) != data[f]]
    for name in changed:
        setattr(integration, name, data[name])
    params = dict(integration.parameters or {})
    for f in itype.fields:
        if f.alias not in data:
            continue
        value = data[f.alias]
        if f.kind == "pk" and value is not None:
            value = getattr(value, "pk", value)
        if f.secret:
            if value:
                integration.set_secret(f.alias, value)
                changed.append(f.alias)
        elif params.get(f.alias) != value:
            params[f.alias] = value
            changed.append(f.alias)
    integration.parameters = params
    return changed


def _lock_references(integration: Integration) -> None:
    """Hold the rows this integration points at until commit, so that a delete racing with
    this write either waits and then sees the use, or wins and this write fails cleanly."""
    for model, pk in (
        (AuthenticationObject, integration.authentication_object_id),
        (ObjectClass, integration.object_class_id),
    ):
        if pk is not None:
            list(model.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True))


def _validate_integration(integration: Integration) -> None:
    """The type's rules over the merged configuration (what a partial update can break)."""
    itype = REGISTRY[integration.type]
    errors: dict[str, list[str]] = {}
    for relation in itype.requires:
        if getattr(integration, f"{relation}_id") is None:
            errors[relation] = ["This field is required."]
    _lock_references(integration)
    auth = integration.authentication_object
    if auth is not None and auth.provider not in itype.authentication_providers:
        errors["authentication_object"] = [does_not_exist("AuthenticationObjectData", auth.pk)]
    params = integration.parameters or {}
    for f in itype.fields:
        value = params.get(f.alias)
        present = integration.has_secret(f.alias) if f.secret else value not in (None, "")
        if f.required and not present:
            errors.setdefault(f.alias, ["This field is required."])
            continue
        if f.kind == "pk" and value is not None and f.model is not None:
            scope = (
                {f"{f.scoped_by}_id": getattr(integration, f"{f.scoped_by}_id")}
                if f.scoped_by
                else {}
            )
            # Locked until commit: a concurrent delete of the row waits, then sees this use.
            if not f.model.objects.select_for_update().filter(pk=value, **scope).exists():
                errors.setdefault(f.alias, [does_not_exist(f.model_name, value)])
        if f.kind == "string" and isinstance(value, str):
            try:
                reject_control_characters(value)
            except ValidationError as exc:
                errors.setdefault(f.alias, exc.messages)
    for name in ("name", "description"):
        try:
            reject_control_characters(
                getattr(integration, name) or "", multiline=name == "description"
            )
        except ValidationError as exc:
            errors.setdefault(name, exc.messages)
    if errors:
        raise ValidationError(errors)


@transaction.atomic
def integration_create(*, type_id: int, data: dict[str, Any], actor: Any) -> Integration:
    itype = REGISTRY[type_id]
    # One creator at a time, so the limit holds under concurrent requests.
    serialize(CREATE_LOCK)
    if Integration.objects.count() >= INTEGRATION_LIMIT:
        raise ServiceError(LIMIT_MESSAGE, code=LIMIT_CODE)
    integration = Integration(type=type_id)
    integration.parameters = {f.alias: f.default for f in itype.fields if f.default is not None}
    changed = _apply_integration(integration, data)
    _validate_integration(integration)
    stamp_actor(integration, actor, creating=True)
    _save_named(integration)
    record_event(
        resource_type=INTEGRATION,
        resource_id=integration.pk,
        action="created",
        actor=actor,
        changed_fields=["type", *changed],
    )
    return integration


@transaction.atomic
def integration_update(
    *, integration: Integration, data: dict[str, Any], actor: Any
) -> Integration:
    integration = Integration.objects.select_for_update().get(pk=integration.pk)
    data = dict(data)
    if "type" in data and str(data.pop("type")) != str(integration.type):
        raise ValidationError({"type": [TYPE_IMMUTABLE]})
    changed = _apply_integration(integration, data)
    if not changed:
        return integration
    _validate_integration(integration)
    stamp_actor(integration, actor, creating=False)
    _save_named(integration)
    record_event(
        resource_type=INTEGRATION,
        resource_id=integration.pk,
        action="updated",
        actor=actor,
        changed_fields=changed,
    )
    return integration


@transaction.atomic
def integration_delete(*, integration: Integration, actor: Any) -> None:
    pk = integration.pk
    integration.delete()
    record_event(resource_type=INTEGRATION, resource_id=pk, action="deleted", actor=actor)


def integration_test(*, type_id: int, authentication_object: AuthenticationObject) -> TestOutcome:
    """Run the type's connection test with ``authentication_object``. Writes nothing."""
    itype = REGISTRY[type_id]
    if authentication_object.provider not in itype.authentication_providers:
        # Another provider's credentials would be sent to this type's server: never.
        raise ValidationError(
            {
                "authentication_object": [
                    does_not_exist("AuthenticationObjectData", authentication_object.pk)
                ]
            }
        )
    return itype.test(
        authentication_object=authentication_object, timeout=settings.OUTBOUND_SMTP_TIMEOUT
    )
