"""Shapes of ``/api/object-classes/`` and ``/api/object-classes/{id}/fields/``."""

from __future__ import annotations

from rest_framework import serializers

from outbound.integrations.models import ObjectClass, ObjectClassField


class ObjectClassSerializer(serializers.ModelSerializer[ObjectClass]):
    class Meta:
        model = ObjectClass
        fields = ["id", "name", "description", "created_at", "modified_at"]
        read_only_fields = ["created_at", "modified_at"]
        extra_kwargs = {"name": {"trim_whitespace": False}}


class ObjectClassFieldSerializer(serializers.ModelSerializer[ObjectClassField]):
    class Meta:
        model = ObjectClassField
        fields = ["id", "object_class", "name", "description", "created_at", "modified_at"]
        read_only_fields = ["object_class", "created_at", "modified_at"]
        extra_kwargs = {"name": {"trim_whitespace": False}}
        # Uniqueness per class is checked by the database (and reported as a 400).
        validators: list[object] = []
