"""Input/output shapes of ``/api/authentication-objects/``, generated from the provider registry."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from drf_spectacular.utils import PolymorphicProxySerializer
from rest_framework import serializers

from outbound.core.validators import CONTROL_MESSAGE, has_control_characters
from outbound.integrations.models import AuthenticationObject
from outbound.integrations.providers import PROVIDER_CHOICES, PROVIDERS


@cache
def params_serializer_class(provider_key: str) -> type[serializers.Serializer[Any]]:
    """A serializer for one provider's parameters, built from its declaration."""
    provider = PROVIDERS[provider_key]
    fields: dict[str, serializers.Field] = {}
    for p in provider.params:
        fields[p.name] = serializers.CharField(
            max_length=p.max_length,
            required=p.required and p.default is None,
            allow_blank=not p.required or p.default is not None,
            write_only=p.secret,
            trim_whitespace=not p.secret,
        )
    return type(f"{provider_key.title().replace('_', '')}Params", (serializers.Serializer,), fields)


class AuthenticationObjectSerializer(serializers.Serializer[AuthenticationObject]):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(max_length=100)
    provider = serializers.ChoiceField(choices=PROVIDER_CHOICES)
    created_at = serializers.DateTimeField(read_only=True)
    modified_at = serializers.DateTimeField(read_only=True)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        errors: dict[str, Any] = {}
        # Checked on the raw input: CharField trims surrounding whitespace (CR/LF included)
        # before its validators run, so a trailing line break would otherwise pass unseen.
        if isinstance(data, Mapping):
            known = set(self.fields) | {p.name for v in PROVIDERS.values() for p in v.params}
            for key, value in data.items():
                if key in known and isinstance(value, str) and has_control_characters(value):
                    errors[key] = [CONTROL_MESSAGE]
        try:
            validated = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors.update(exc.detail)  # type: ignore[arg-type]
            validated = {}
        provider = validated.get("provider") or getattr(self.instance, "provider", None)
        raw_provider = data.get("provider") if isinstance(data, Mapping) else None
        if provider is None and isinstance(raw_provider, str) and raw_provider in PROVIDERS:
            # Another field failed: still report every missing or invalid provider parameter,
            # not one error per round trip.
            provider = raw_provider
        if provider in PROVIDERS:
            params = params_serializer_class(provider)(data=data, partial=self.partial)
            if params.is_valid():
                validated["params"] = dict(params.validated_data)
            else:
                errors.update(params.errors)
        if errors:
            raise serializers.ValidationError(errors)
        return validated

    def to_representation(self, instance: AuthenticationObject) -> dict[str, Any]:
        body = super().to_representation(instance)
        provider = instance.provider_spec
        for name in provider.public_names:
            body[name] = instance.param(name)
        for name in provider.secret_names:
            body[f"has_{name}"] = instance.has_secret(name)
        return body


# --- the OpenAPI document ------------------------------------------------------------------


@cache
def documented_serializer_class(provider_key: str) -> type[AuthenticationObjectSerializer]:
    """One provider's body as the document shows it, generated from the same declaration as
    the validation: the common fields, the provider's parameters (secrets write-only) and,
    in responses, ``has_<secret>`` for each secret."""
    provider = PROVIDERS[provider_key]
    attrs: dict[str, Any] = {
        "provider": serializers.ChoiceField(choices=[(provider.key, provider.label)]),
        **params_serializer_class(provider_key)().get_fields(),
    }
    for name in provider.secret_names:
        attrs[f"has_{name}"] = serializers.BooleanField(
            read_only=True, help_text=f"Whether a {name.replace('_', ' ')} is saved."
        )
    name = provider_key.title().replace("_", "")
    return type(f"{name}AuthenticationObject", (AuthenticationObjectSerializer,), attrs)


def documented_serializer(*, many: bool = False) -> PolymorphicProxySerializer:
    """An authentication object in the document: one of the providers' bodies, by ``provider``."""
    return PolymorphicProxySerializer(
        component_name="AuthenticationObject",
        serializers={key: documented_serializer_class(key) for key in PROVIDERS},
        resource_type_field_name="provider",
        many=many,
    )
