"""What every console form shares: limits read from the models, and text fields that refuse
control characters the way the API does."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models

from outbound.core.validators import CONTROL_MESSAGE, has_control_characters


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
