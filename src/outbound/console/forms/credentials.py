"""Credential (authentication object) forms, generated from the provider registry.

Each provider's ``Param`` declarations give the fields: label, length limit, whether it is
required, a URL hint, defaults as initial values and which values are secret. Adding a
provider to :data:`outbound.integrations.providers.PROVIDERS` adds its form here unchanged.
"""

from __future__ import annotations

from typing import Any

from django import forms

from outbound.console.forms.common import CleanCharField, ConsoleForm, model_max
from outbound.integrations.models import AuthenticationObject
from outbound.integrations.providers import PROVIDER_CHOICES, PROVIDERS, Param, Provider

SECRET_SET = "A value is saved; leave empty to keep it."
SECRET_UNSET = "Not set."


class ProviderPickForm(ConsoleForm):
    """The first step of a new credential: which kind it is (sent as ``?provider=``)."""

    provider = forms.ChoiceField(
        choices=PROVIDER_CHOICES,
        label="Provider",
        help_text="What these credentials sign in to. It cannot be changed later.",
    )


def _param_field(param: Param, *, has_secret: bool, creating: bool) -> forms.Field:
    label = param.label or param.name.replace("_", " ").capitalize()
    if param.secret:
        # A stored secret never goes back to the browser; empty keeps it.
        return CleanCharField(
            label=label,
            max_length=param.max_length,
            required=param.required and not has_secret,
            strip=False,  # as the API: a secret is taken exactly as typed
            widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
            help_text=SECRET_SET if has_secret else SECRET_UNSET,
        )
    help_parts = []
    if param.url:
        help_parts.append("An https:// address.")
    if param.default is not None:
        help_parts.append(f"Empty uses the default, {param.default}.")
    widget: forms.Widget = forms.URLInput() if param.url else forms.TextInput()
    widget.attrs["autocomplete"] = "off"
    return CleanCharField(
        label=label,
        max_length=param.max_length,
        # Same rule as the API: a parameter with a default may be left empty.
        required=param.required and param.default is None,
        widget=widget,
        help_text=" ".join(help_parts),
        initial=param.default if creating else None,
    )


class CredentialForm(ConsoleForm):
    """A credential's name and its provider's parameters (field names = parameter names,
    as in the API's request body)."""

    name = CleanCharField(
        max_length=model_max(AuthenticationObject, "name"),
        label="Name",
        help_text="Shown where the credential is chosen, e.g. in an integration.",
    )

    def __init__(
        self,
        *args: Any,
        provider: Provider,
        instance: AuthenticationObject | None = None,
        **kwargs: Any,
    ) -> None:
        self.provider = provider
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            initial: dict[str, Any] = {"name": instance.name}
            for name in provider.public_names:
                initial[name] = instance.param(name)
            kwargs["initial"] = initial
        super().__init__(*args, **kwargs)
        for param in provider.params:
            self.fields[param.name] = _param_field(
                param,
                has_secret=instance is not None and instance.has_secret(param.name),
                creating=instance is None,
            )

    @property
    def public_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.provider.public_names]

    @property
    def secret_fields(self) -> list[forms.BoundField]:
        return [self[name] for name in self.provider.secret_names]

    def params(self) -> dict[str, Any]:
        """The provider's parameters for the services; an empty secret is left out (kept)."""
        data: dict[str, Any] = {}
        for param in self.provider.params:
            value = self.cleaned_data.get(param.name)
            if param.secret and not value:
                continue
            data[param.name] = value or ""
        return data


def provider_or_none(key: str | None) -> Provider | None:
    return PROVIDERS.get(key or "")
