"""ALX OPTIONS documents generated from the code that enforces them.

``list.columns`` comes from a FilterSet (its lookups are the predicates, its ordering filter
says what sorts) and ``details.schema`` from serializer fields, so the documents can never
disagree with what the API accepts.
"""

from __future__ import annotations

from typing import Any

import django_filters
from django.conf import settings
from django.db import models
from rest_framework import serializers

USER_AUTOCOMPLETE = "/api/users/autocomplete/?text__icontains="


def _column_type(field: models.Field[Any, Any]) -> str:
    if isinstance(field, models.UUIDField):
        return "uuid"
    if isinstance(field, models.BooleanField):
        return "bool"
    if isinstance(field, models.DateTimeField):
        return "datetime"
    if isinstance(field, models.ForeignKey):
        model = field.related_model
        user_label = settings.AUTH_USER_MODEL.lower()
        if model is not None and model._meta.label_lower == user_label:
            return "user"
        return "enum"
    if isinstance(field, models.IntegerField):
        return "int"
    return "string"


def list_columns(
    filterset_class: type[django_filters.FilterSet],
    *,
    types: dict[str, str] | None = None,
    autocomplete: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """``[{"alias","type","predicates","sort_ok"[, "autocomplete"]}]`` for a FilterSet.

    Read from the filters the FilterSet really has (generated from ``Meta.fields`` or
    declared), so every predicate listed is a parameter the API accepts: ``alias`` for
    ``exact``, ``alias__<predicate>`` otherwise.
    """
    model = filterset_class._meta.model
    sortable: set[str] = set()
    predicates: dict[str, list[str]] = {}
    for param, f in filterset_class.base_filters.items():
        if isinstance(f, django_filters.OrderingFilter):
            sortable.update(f.param_map)
            continue
        alias, lookup = f.field_name, f.lookup_expr
        if param != (alias if lookup == "exact" else f"{alias}__{lookup}"):
            continue  # not expressible as a column predicate
        predicates.setdefault(alias, []).append(lookup)
    columns = []
    for alias, lookups in predicates.items():
        column_type = (types or {}).get(alias) or _column_type(model._meta.get_field(alias))
        column: dict[str, Any] = {
            "alias": alias,
            "type": column_type,
            "predicates": lookups,
            "sort_ok": alias in sortable,
        }
        hint = (autocomplete or {}).get(alias)
        if hint is None and column_type == "user":
            hint = USER_AUTOCOMPLETE
        if hint:
            column["autocomplete"] = hint
        columns.append(column)
    return columns


def field_schema(alias: str, field: serializers.Field, **extra: Any) -> dict[str, Any]:
    """One entry of ``details.schema`` for a DRF field."""
    entry: dict[str, Any] = {"alias": alias, "type": _serializer_type(field)}
    entry["required"] = bool(field.required)
    if isinstance(field, serializers.ChoiceField):
        entry["values"] = [{"value": v, "text": str(t)} for v, t in field.choices.items()]
    validators = []
    if isinstance(field, serializers.CharField):
        if not field.allow_blank:
            validators.append({"type": "min_length", "length": 1})
        if field.max_length is not None:
            validators.append({"type": "max_length", "length": field.max_length})
    if validators:
        entry["validators"] = validators
    entry.update(extra)
    return entry


def _serializer_type(field: serializers.Field) -> str:
    if isinstance(field, serializers.ChoiceField | serializers.RelatedField):
        return "enum"
    if isinstance(field, serializers.BooleanField):
        return "bool"
    if isinstance(field, serializers.IntegerField):
        return "int"
    return "string"
