"""Object class and object class field forms: a name and a description, with the model's
limits. Uniqueness is the services' (and the database's) rule; its error lands on ``name``."""

from __future__ import annotations

from typing import Any

from django import forms
from django.db import models

from outbound.console.forms.common import CleanCharField, ConsoleForm, model_max
from outbound.integrations.models import ObjectClass, ObjectClassField


class _NamedForm(ConsoleForm):
    model: type[models.Model]
    name_help = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["name"] = CleanCharField(
            max_length=model_max(self.model, "name"), label="Name", help_text=self.name_help
        )
        limit = model_max(self.model, "description")
        self.fields["description"] = CleanCharField(
            required=False,
            multiline=True,
            max_length=limit,
            label="Description",
            widget=forms.Textarea(attrs={"rows": 2}),
            help_text=f"Optional, up to {limit} characters.",
        )

    def core_data(self) -> dict[str, Any]:
        return {"name": self.cleaned_data["name"], "description": self.cleaned_data["description"]}


class ObjectClassForm(_NamedForm):
    model = ObjectClass
    name_help = "A kind of record in the platform, e.g. “Matter”. Unique."


class ObjectClassFieldForm(_NamedForm):
    model = ObjectClassField
    name_help = "e.g. “Matter number”. Unique within this object class."


def initial_from(obj: ObjectClass | ObjectClassField) -> dict[str, Any]:
    return {"name": obj.name, "description": obj.description}
