"""Shapes of ``/api/object-classes/`` and ``/api/object-classes/{id}/fields/``."""

from __future__ import annotations

from typing import Any

from django.db import models
from rest_framework import serializers

from outbound.core.validators import CONTROL_MESSAGE, has_control_characters
from outbound.integrations.models import ObjectClass, ObjectClassField


class CleanCharField(serializers.CharField):
    """Trims surrounding spaces like any CharField (so ``"  "`` is blank and ``" Matter"``
    is ``"Matter"``), but refuses control characters in the raw value first: trimming would
    otherwise hide a trailing line break."""

    def run_validation(self, data: Any = serializers.empty) -> Any:
        multiline = self.field_name == "description"
        if isinstance(data, str) and has_control_characters(data, multiline=multiline):
            raise serializers.ValidationError(CONTROL_MESSAGE, code="control_characters")
        return super().run_validation(data)


CLEAN_FIELD_MAPPING = {
    **serializers.ModelSerializer.serializer_field_mapping,
    models.CharField: CleanCharField,
}


class ObjectClassSerializer(serializers.ModelSerializer[ObjectClass]):
    serializer_field_mapping = CLEAN_FIELD_MAPPING

    class Meta:
        model = ObjectClass
        fields = ["id", "name", "description", "created_at", "modified_at"]
        read_only_fields = ["created_at", "modified_at"]


class ObjectClassFieldSerializer(serializers.ModelSerializer[ObjectClassField]):
    serializer_field_mapping = CLEAN_FIELD_MAPPING

    class Meta:
        model = ObjectClassField
        fields = ["id", "object_class", "name", "description", "created_at", "modified_at"]
        read_only_fields = ["object_class", "created_at", "modified_at"]
        # Uniqueness per class is checked by the database (and reported as a 400).
        validators: list[object] = []
