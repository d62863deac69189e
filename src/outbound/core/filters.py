"""The FilterSet base every list uses, and the filters that make lookups behave the same on
SQLite and PostgreSQL."""

from __future__ import annotations

import copy
from typing import Any

import django_filters
from django import forms
from django.core.exceptions import ValidationError
from django.db import connections, models
from django.db.models import F, QuerySet, Value
from django.db.models.functions import Left, Right, StrIndex
from django.db.models.lookups import Exact, GreaterThan
from django.http import QueryDict
from django_filters.constants import EMPTY_VALUES

BOOLEAN_MESSAGE = "Must be a valid boolean."
# What a 64-bit integer column can hold (SQLite's INTEGER, PostgreSQL's bigint).
DB_INTEGER_MIN = -(2**63)
DB_INTEGER_MAX = 2**63 - 1
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


class StrictBooleanField(forms.Field):
    """``true``/``false`` (also ``1``/``0``, any case); anything else is a 400, not ignored."""

    def to_python(self, value: Any) -> bool | None:
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValidationError(BOOLEAN_MESSAGE, code="invalid")


class StrictBooleanFilter(django_filters.BooleanFilter):
    field_class = StrictBooleanField


CASE_SENSITIVE_LOOKUPS = frozenset({"contains", "startswith", "endswith"})


class CaseSensitiveCharFilter(django_filters.CharFilter):
    """``contains``/``startswith``/``endswith`` that respect case on every database.

    SQLite's ``LIKE`` ignores ASCII case, so Django's case-sensitive lookups behave like the
    ``i…`` ones there; on SQLite they are computed with ``instr``/``substr`` instead.
    """

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        if value in EMPTY_VALUES or connections[qs.db].vendor != "sqlite":
            return super().filter(qs, value)
        field, text = F(self.field_name), Value(value)
        if self.lookup_expr == "contains":
            return qs.filter(GreaterThan(StrIndex(field, text), 0))
        cut = Left if self.lookup_expr == "startswith" else Right
        return qs.filter(Exact(cut(field, len(value)), text))


class StableOrderingFilter(django_filters.OrderingFilter):
    """Orders as asked, then by ``tie_breakers`` so that pages never overlap or skip rows
    when the asked field has equal values (e.g. many integrations share an object class)."""

    def __init__(self, *args: Any, tie_breakers: tuple[str, ...] = (), **kwargs: Any) -> None:
        self.tie_breakers = tie_breakers
        super().__init__(*args, **kwargs)

    def filter(self, qs: QuerySet[Any], value: Any) -> QuerySet[Any]:
        qs = super().filter(qs, value)
        if not value:
            return qs
        ordering = list(qs.query.order_by)
        taken = {o.lstrip("-") for o in ordering if isinstance(o, str)}
        return qs.order_by(*ordering, *(t for t in self.tie_breakers if t not in taken))


class OutboundFilterSet(django_filters.FilterSet):
    """A FilterSet that binds only the filters the request names.

    django-filter deep-copies *every* declared filter (and its form field) for each request;
    with thirty-odd lookups that is milliseconds per list call. A filter whose parameter is
    absent filters nothing, so leaving it out changes no result. ``base_filters`` (what
    OPTIONS documents) still holds them all.
    """

    def __init__(
        self,
        data: QueryDict | None = None,
        queryset: Any = None,
        *,
        request: Any = None,
        prefix: str | None = None,
    ) -> None:
        if queryset is None:
            queryset = self._meta.model._default_manager.all()
        self.is_bound = data is not None
        self.data = data or QueryDict()
        self.queryset = queryset
        self.request = request
        self.form_prefix = prefix
        wanted = {name: f for name, f in self.base_filters.items() if name in self.data}
        self.filters = copy.deepcopy(wanted)
        for filter_ in self.filters.values():
            filter_.model = queryset.model
            filter_.parent = self

    # Form classes by (FilterSet class, the filters it binds): building one per request is a
    # metaclass run over fields that depend only on the declarations. Bounded: a caller
    # naming ever new combinations of filters does not grow it without end.
    _form_classes: dict[tuple[type[Any], tuple[str, ...]], type[forms.Form]] = {}
    FORM_CLASSES_KEPT = 256

    def get_form_class(self) -> type[forms.Form]:
        if any(callable(getattr(f, "queryset", None)) for f in self.filters.values()):
            return super().get_form_class()  # a field built from the request: never shared
        key = (type(self), tuple(self.filters))
        form_class = self._form_classes.get(key)
        if form_class is None:
            form_class = super().get_form_class()
            if len(self._form_classes) >= self.FORM_CLASSES_KEPT:
                self._form_classes.clear()
            self._form_classes[key] = form_class
        return form_class

    @classmethod
    def filter_for_lookup(cls, field: Any, lookup_type: str) -> tuple[Any, dict[str, Any]]:
        if lookup_type in CASE_SENSITIVE_LOOKUPS and isinstance(field, models.CharField):
            return CaseSensitiveCharFilter, {}
        if lookup_type == "exact" and isinstance(field, models.BooleanField):
            return StrictBooleanFilter, {}
        filter_class, params = super().filter_for_lookup(field, lookup_type)
        if isinstance(field, models.IntegerField) and issubclass(
            filter_class, django_filters.NumberFilter
        ):
            # A number no database column holds is a 400 naming the parameter, not a driver
            # error (SQLite cannot even bind it) — for each value of an ``__in`` list too.
            params = {**params, "min_value": DB_INTEGER_MIN, "max_value": DB_INTEGER_MAX}
        return filter_class, params
