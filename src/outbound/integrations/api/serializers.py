"""Input/output shapes of ``/api/authentication-objects/``, generated from the provider registry."""

from __future__ import annotations

from functools import cache
from typing import Any

from rest_framework import serializers

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
        try:
            validated = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            errors.update(exc.detail)  # type: ignore[arg-type]
            validated = {}
        provider = validated.get("provider") or getattr(self.instance, "provider", None)
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
