"""What every console form shares: the API's wording for generic errors, limits read from the
models, and text fields that refuse control characters the way the API does."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxLengthValidator
from django.db import models

from outbound.core.validators import CONTROL_MESSAGE, has_control_characters

# The native API's words (DRF's, and ALX's for a choice) for what a form checks before the
# services do, so a console error reads as the API's would.
API_INVALID_INTEGER = "A valid integer is required."
API_INVALID_NUMBER = "A valid number is required."
API_MAX_LENGTH = "Ensure this field has no more than %(limit_value)d characters."
API_INVALID_CHOICE = "%(value)s is not a valid choice."


def _reword(field: forms.Field, code: str, message: str) -> None:
    """Replace Django's default message for ``code``; a message the form declared stays."""
    defaults: dict[str, Any] = {}
    for klass in reversed(type(field).__mro__):
        defaults.update(getattr(klass, "default_error_messages", {}))
    if field.error_messages.get(code) == defaults.get(code):
        field.error_messages[code] = message


def use_api_messages(field: forms.Field) -> None:
    """Give ``field`` (a form's own copy) the API's messages for generic errors."""
    if isinstance(field, forms.FloatField):  # a FloatField is an IntegerField too
        _reword(field, "invalid", API_INVALID_NUMBER)
    elif isinstance(field, forms.IntegerField):
        _reword(field, "invalid", API_INVALID_INTEGER)
    if isinstance(field, forms.ChoiceField | forms.ModelChoiceField):
        _reword(field, "invalid_choice", API_INVALID_CHOICE)
    if isinstance(field, forms.CharField) and field.max_length is not None:
        field.validators = [
            MaxLengthValidator(field.max_length, message=API_MAX_LENGTH)
            if isinstance(v, MaxLengthValidator)
            else v
            for v in field.validators
        ]


class ConsoleForm(forms.Form):
    """The base of the console's forms: generic errors in the API's words."""

    def full_clean(self) -> None:
        # Here rather than in __init__, so fields a form adds itself (from a registry) count.
        for field in self.fields.values():
            use_api_messages(field)
        super().full_clean()


def model_max(model: type[models.Model], name: str) -> int:
    """The model's limit, so the form and the database never disagree."""
    field = model._meta.get_field(name)
    assert isinstance(field, models.CharField)  # EmailField is a CharField
    return int(field.max_length or 0)


class CleanCharField(forms.CharField):
    """Refuses control characters in the raw value, then trims as any CharField does.

    The API does the same (a trimmed trailing line break would otherwise pass unseen);
    ``multiline`` text such as a description may hold line breaks and tabs.
    """

    def __init__(self, *args: Any, multiline: bool = False, **kwargs: Any) -> None:
        self.multiline = multiline
        super().__init__(*args, **kwargs)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str) and has_control_characters(value, multiline=self.multiline):
            raise ValidationError(CONTROL_MESSAGE, code="control_characters")
        return super().to_python(value)
