"""The SMTP configuration form: every core field, with its limits."""

from __future__ import annotations

from typing import Any

from django import forms

from outbound.console.forms.common import ConsoleForm, model_max
from outbound.core.validators import split_addresses, validate_address
from outbound.integrations.models import AuthenticationObject
from outbound.integrations.providers import MICROSOFT_CLIENT_CREDENTIALS
from outbound.mail.choices import MAX_FAILURE_EMAILS, AuthorizationMethod, Security
from outbound.mail.models import SmtpConfig

PASSWORD_MAX = 128  # the ALX API's limit; the console accepts no more than the API does
# The model's range (a positive small integer); the services refuse what else they refuse.
STANDBY_MIN, STANDBY_MAX = 0, 32767


class SmtpConfigForm(ConsoleForm):
    """Edits one configuration. An empty password keeps the saved one."""

    description = forms.CharField(
        required=False,
        max_length=model_max(SmtpConfig, "description"),
        label="Description",
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text=f"Optional, up to {model_max(SmtpConfig, 'description')} characters.",
    )
    host = forms.CharField(
        max_length=model_max(SmtpConfig, "host"),
        label="Host",
        strip=False,
        help_text="The SMTP server's name or IP address.",
    )
    port = forms.IntegerField(
        min_value=0, max_value=65535, label="Port", help_text="587 for STARTTLS, 465 for TLS."
    )
    security = forms.ChoiceField(
        choices=Security.choices,
        label="Connection security",
        help_text="STARTTLS upgrades a plain connection; implicit TLS starts encrypted.",
    )
    authorization_method = forms.ChoiceField(
        choices=AuthorizationMethod.choices, label="Authorization method"
    )
    username = forms.CharField(
        required=False,
        max_length=model_max(SmtpConfig, "username"),
        label="Username",
        strip=False,
        help_text="The account (for Microsoft, the mailbox) to sign in as; leave empty for a "
        "relay that needs no login.",
    )
    password = forms.CharField(
        required=False,
        max_length=PASSWORD_MAX,
        label="Password",
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    clear_password = forms.BooleanField(required=False, label="Remove the saved password")
    authentication_object = forms.ModelChoiceField(
        queryset=AuthenticationObject.objects.none(),
        required=False,
        label="Authentication object",
        help_text="The Microsoft client credentials that fetch the access token.",
    )
    sender_address = forms.CharField(
        required=False,
        max_length=model_max(SmtpConfig, "sender_address"),
        label="Sender address",
        strip=False,
        help_text="The From address of the mail sent through this server.",
    )
    sender_name = forms.CharField(
        required=False,
        max_length=model_max(SmtpConfig, "sender_name"),
        label="Sender name",
        strip=False,
    )
    reply_to_address = forms.CharField(
        required=False,
        max_length=model_max(SmtpConfig, "reply_to_address"),
        label="Reply-To address",
        strip=False,
    )
    failure_emails = forms.CharField(
        required=False,
        label="Failure notices to",
        strip=False,
        help_text=f"Up to {MAX_FAILURE_EMAILS} addresses, separated by commas.",
    )
    timeout = forms.FloatField(
        required=False,
        min_value=0.1,
        max_value=300,
        label="Timeout (seconds)",
        help_text="0.1 to 300; empty uses the service's default.",
    )
    standby = forms.IntegerField(
        required=False,
        min_value=STANDBY_MIN,
        max_value=STANDBY_MAX,
        label="Standby rank",
        help_text="Empty: not a standby. A standby is kept ready to take over when the active "
        "configuration fails; the lowest rank is tried first.",
    )

    def __init__(self, *args: Any, instance: SmtpConfig | None = None, **kwargs: Any):
        self.instance = instance
        if instance is not None and "initial" not in kwargs:
            kwargs["initial"] = initial_from(instance)
        super().__init__(*args, **kwargs)
        field = self.fields["authentication_object"]
        assert isinstance(field, forms.ModelChoiceField)
        field.queryset = AuthenticationObject.objects.filter(
            provider=MICROSOFT_CLIENT_CREDENTIALS.key
        ).order_by("name")
        has_password = instance is not None and instance.has_password
        self.fields["password"].help_text = (
            "A password is saved; leave this empty to keep it."
            if has_password
            else "No password is saved."
        )
        if not has_password:
            del self.fields["clear_password"]
        if instance is not None and instance.is_active:
            self.fields["standby"].help_text = (
                "Empty: the active configuration is not a standby (activating a standby "
                "takes it off the list)."
            )

    def core_data(self) -> dict[str, Any]:
        """The cleaned input in the services' field names."""
        data = dict(self.cleaned_data)
        data["failure_emails"] = split_addresses(data.get("failure_emails") or "")
        if data.pop("clear_password", False):
            data["password"] = ""
        elif not data.get("password"):
            data.pop("password", None)  # empty keeps the saved password
        if data.get("authorization_method") != AuthorizationMethod.MICROSOFT_CLIENT_CREDENTIALS:
            data["authentication_object"] = None
        return data


def initial_from(config: SmtpConfig) -> dict[str, Any]:
    return {
        "description": config.description,
        "host": config.host,
        "port": config.port,
        "security": config.security,
        "authorization_method": config.authorization_method,
        "username": config.username,
        "authentication_object": config.authentication_object_id,
        "sender_address": config.sender_address,
        "sender_name": config.sender_name,
        "reply_to_address": config.reply_to_address,
        "failure_emails": ", ".join(config.failure_emails or []),
        "timeout": config.timeout,
        "standby": config.standby,
    }


class TestAddressForm(ConsoleForm):
    receiver = forms.CharField(
        required=False,
        max_length=254,
        label="Send a test mail to",
        help_text="Optional: the test also sends one message to this address.",
    )

    def clean_receiver(self) -> str:
        value: str = self.cleaned_data["receiver"]
        if value:
            validate_address(value)
        return value
