"""Integration forms, generated from the type registry, and the list's filter form.

There is no hand-written form per type: :class:`IntegrationForm` adds one field per
``TypeField`` of the type it is given, so registering a type is all it takes to edit it here.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from django import forms

from outbound.console.forms.common import ConsoleForm, model_max
from outbound.integrations.models import AuthenticationObject, Integration, ObjectClass
from outbound.integrations.providers import PROVIDERS
from outbound.integrations.types import REGISTRY, IntegrationType, TypeField, type_choices

SECRET_SAVED = "A value is saved; leave empty to keep it."
SECRET_MISSING = "No value is saved."
DATE_INPUT = forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")


def type_label(type_id: int) -> str:
    itype = REGISTRY.get(type_id)
    return itype.label if itype else f"Type {type_id}"


# --- the list's filters ----------------------------------------------------------------------


class IntegrationFilterForm(ConsoleForm):
    """The list's filters, named as the API's ``IntegrationFilterSet`` parameters.

    The view hands :meth:`filter_params` to that FilterSet, so the console filters exactly as
    ``GET /api/integrations/`` does.
    """

    type = forms.TypedChoiceField(
        required=False, coerce=int, empty_value=None, label="Type", choices=()
    )
    name__icontains = forms.CharField(
        required=False, max_length=model_max(Integration, "name"), label="Name contains"
    )
    is_enabled = forms.ChoiceField(
        required=False,
        label="Enabled",
        choices=(("", "Any"), ("true", "Yes"), ("false", "No")),
    )
    created_at__gte = forms.DateField(required=False, label="Created from", widget=DATE_INPUT)
    created_at__lte = forms.DateField(required=False, label="Created to", widget=DATE_INPUT)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["type"]
        assert isinstance(field, forms.TypedChoiceField)
        # Read at each request: a type registered later is offered at once.
        field.choices = [("", "Any type"), *type_choices()]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        start, end = data.get("created_at__gte"), data.get("created_at__lte")
        if start and end and end < start:
            self.add_error("created_at__lte", "Must be on or after the “Created from” date.")
        return data

    def filter_params(self) -> dict[str, str]:
        """The cleaned filters as FilterSet parameters (empty ones left out).

        The dates are whole days (UTC, the server's time zone): "to" takes in all of its day,
        so it becomes ``created_at__lt`` the next midnight.
        """
        data = self.cleaned_data
        params: dict[str, str] = {}
        if data.get("type") is not None:
            params["type"] = str(data["type"])
        if data.get("name__icontains"):
            params["name__icontains"] = data["name__icontains"]
        if data.get("is_enabled"):
            params["is_enabled"] = data["is_enabled"]
        start: datetime.date | None = data.get("created_at__gte")
        end: datetime.date | None = data.get("created_at__lte")
        if start:
            params["created_at__gte"] = f"{start.isoformat()}T00:00:00"
        if end and end < datetime.date.max:  # "to" the last day there is: no upper bound
            params["created_at__lt"] = f"{(end + datetime.timedelta(days=1)).isoformat()}T00:00:00"
        return params


# --- create and edit -------------------------------------------------------------------------


def _providers_label(itype: type[IntegrationType]) -> str:
    labels = [PROVIDERS[k].label for k in itype.authentication_providers if k in PROVIDERS]
    return " or ".join(labels) or "no"


def _grouped_choices(f: TypeField) -> list[Any]:
    """A scoped ``pk`` field's options grouped by their scope, labelled "Scope / option".

    The service checks that the choice belongs to the chosen scope (e.g. a field *of the
    chosen object class*) and its refusal is shown next to this field.
    """
    assert f.model is not None
    assert f.scoped_by is not None
    groups: dict[str, list[tuple[str, str]]] = {}
    for obj in f.model.objects.select_related(f.scoped_by):
        scope = str(getattr(obj, f.scoped_by))
        groups.setdefault(scope, []).append((str(obj.pk), f"{scope} / {obj}"))
    return [
        (scope, sorted(options, key=lambda o: o[1].casefold()))
        for scope, options in sorted(groups.items(), key=lambda g: g[0].casefold())
    ]


def _type_field(f: TypeField, *, has_secret: bool) -> forms.Field:
    """The form field of one ``TypeField`` (limits and requiredness from the registry)."""
    label = f.label or f.alias.replace("_", " ").capitalize()
    if f.kind == "bool":
        # Unticked is a value (false), so a checkbox is never "required".
        return forms.BooleanField(required=False, label=label, initial=bool(f.default))
    if f.kind == "pk":
        assert f.model is not None
        to_python: Callable[[Any], Any] = f.model._meta.pk.to_python
        if f.scoped_by:
            choices: list[Any] = _grouped_choices(f)
            scope = f.scoped_by.replace("_", " ")
            help_text = f"Must belong to the chosen {scope}."
        else:
            choices = [(str(o.pk), str(o)) for o in f.model.objects.all()]
            help_text = ""
        return forms.TypedChoiceField(
            choices=[("", "---------"), *choices],
            coerce=to_python,
            empty_value=None,
            required=f.required,
            label=label,
            help_text=help_text,
        )
    if f.secret:
        return forms.CharField(
            # A saved secret is kept when the input is left empty.
            required=f.required and not has_secret,
            max_length=f.max_length,
            strip=False,
            label=label,
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            help_text=SECRET_SAVED if has_secret else SECRET_MISSING,
        )
    return forms.CharField(
        required=f.required,
        max_length=f.max_length,
        label=label,
        initial=f.default,
        help_text=f"Up to {f.max_length} characters." if f.max_length else "",
    )


class IntegrationForm(ConsoleForm):
    """One integration of ``itype``: the common fields, then one field per ``TypeField``."""

    name = forms.CharField(
        max_length=model_max(Integration, "name"),
        label="Name",
        help_text=f"Unique, up to {model_max(Integration, 'name')} characters.",
    )
    description = forms.CharField(
        required=False,
        max_length=model_max(Integration, "description"),
        label="Description",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=f"Optional, up to {model_max(Integration, 'description')} characters.",
    )
    is_enabled = forms.BooleanField(required=False, label="Enabled")
    authentication_object = forms.ModelChoiceField(
        queryset=AuthenticationObject.objects.none(), label="Authentication object"
    )
    object_class = forms.ModelChoiceField(queryset=ObjectClass.objects.none(), label="Object class")

    def __init__(
        self,
        *args: Any,
        itype: type[IntegrationType],
        instance: Integration | None = None,
        **kwargs: Any,
    ) -> None:
        self.itype = itype
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = initial_from(instance)
        super().__init__(*args, **kwargs)
        auth = self.fields["authentication_object"]
        assert isinstance(auth, forms.ModelChoiceField)
        # Only what the type can use: other providers' credentials are never offered.
        auth.queryset = AuthenticationObject.objects.filter(
            provider__in=itype.authentication_providers
        ).order_by("name")
        auth.required = "authentication_object" in itype.requires
        providers = _providers_label(itype)
        auth.help_text = (
            f"{providers} credentials, kept under Credentials."
            if auth.queryset.exists()
            else f"No {providers} credentials exist yet: add them under Credentials first."
        )
        oc = self.fields["object_class"]
        assert isinstance(oc, forms.ModelChoiceField)
        oc.queryset = ObjectClass.objects.order_by("name")
        oc.required = "object_class" in itype.requires
        for f in itype.fields:
            has_secret = bool(instance is not None and f.secret and instance.has_secret(f.alias))
            self.fields[f.alias] = _type_field(f, has_secret=has_secret)

    def type_fields(self) -> list[forms.BoundField]:
        """The type's own fields, in the registry's order (for the template)."""
        return [self[f.alias] for f in self.itype.fields]

    def core_data(self) -> dict[str, Any]:
        """The cleaned input in the service's names (``integration_create`` / ``_update``)."""
        data = dict(self.cleaned_data)
        for f in self.itype.fields:
            if f.secret and not data.get(f.alias):
                data.pop(f.alias, None)  # empty keeps the saved secret
            elif (
                self.instance is None
                and f.kind == "string"
                and not f.required
                and not data.get(f.alias)
            ):
                # As the API leaves an omitted optional field to its default on create.
                data.pop(f.alias, None)
        return data


def initial_from(integration: Integration) -> dict[str, Any]:
    """The saved values as form initial data (never a secret)."""
    itype = REGISTRY[integration.type]
    params = integration.parameters or {}
    initial: dict[str, Any] = {
        "name": integration.name,
        "description": integration.description,
        "is_enabled": integration.is_enabled,
        "authentication_object": integration.authentication_object_id,
        "object_class": integration.object_class_id,
    }
    for f in itype.fields:
        if not f.secret:
            value = params.get(f.alias, f.default)
            initial[f.alias] = str(value) if f.kind == "pk" and value is not None else value
    return initial
