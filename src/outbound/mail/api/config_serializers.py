"""Input and output of the native ``/api/smtp-configurations/``, in core field names.

Field types and lengths only: every rule (required fields, addresses, TLS for Microsoft, the
saved password that never follows a changed server, the active configuration that is never
a standby) is the services' and the model's, so this shape answers as every other does.
Unlike the ALX seed, ``username`` may be empty: the server is then used without AUTH.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from outbound.core.validators import validate_address
from outbound.integrations.api.integration_serializers import UserRefSerializer
from outbound.integrations.models import AuthenticationObject
from outbound.mail.choices import (
    MAX_FAILURE_EMAILS,
    NATIVE_SECURITY,
    SECURITY_NATIVE,
    AuthorizationMethod,
)
from outbound.mail.models import SmtpConfig

PASSWORD_MAX = 1024


class SecurityField(serializers.ChoiceField):
    """The mode in the native names (``none``, ``starttls``, ``tls``), the core's inside."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=list(NATIVE_SECURITY), **kwargs)

    def to_internal_value(self, data: Any) -> str:
        return NATIVE_SECURITY[super().to_internal_value(data)]

    def to_representation(self, value: Any) -> str:
        return SECURITY_NATIVE.get(value, value)


class SmtpConfigurationSerializer(serializers.ModelSerializer[SmtpConfig]):
    """An SMTP configuration. ``password`` is write-only (``has_password`` says whether one
    is saved); ``is_active``, ``version`` and ``serving`` change only through the actions."""

    description = serializers.CharField(
        max_length=200, required=False, allow_blank=True, trim_whitespace=False
    )
    host = serializers.CharField(
        max_length=255,
        required=False,
        trim_whitespace=False,
        help_text="Required when creating.",
    )
    port = serializers.IntegerField(required=False, help_text="0-65535. Required when creating.")
    security = SecurityField(
        required=False,
        help_text="`none`: plain SMTP; `starttls`: upgraded with STARTTLS (required); "
        "`tls`: implicit TLS from the first byte (port 465). Default `starttls`.",
    )
    username = serializers.CharField(
        max_length=254,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        help_text="Empty: the server is used without AUTH (a relay that needs no login).",
    )
    password = serializers.CharField(
        max_length=PASSWORD_MAX,
        required=False,
        allow_blank=True,
        trim_whitespace=False,
        write_only=True,
        help_text='Write-only. Sealed at rest and never answered. `""` removes the saved '
        "password. A saved password is only used for the host, port, security, username and "
        "method it was saved for: a change to any of them must send it again.",
    )
    has_password = serializers.BooleanField(read_only=True)
    authorization_method = serializers.ChoiceField(
        choices=AuthorizationMethod.choices, required=False
    )
    authentication_object = serializers.PrimaryKeyRelatedField(
        queryset=AuthenticationObject.objects.all(),
        required=False,
        allow_null=True,
        help_text="For `microsoft_client_credentials`: the authentication object whose "
        "client credentials mint the XOAUTH2 token.",
    )
    sender_address = serializers.CharField(
        max_length=254, required=False, allow_blank=True, trim_whitespace=False
    )
    sender_name = serializers.CharField(
        max_length=200, required=False, allow_blank=True, trim_whitespace=False
    )
    reply_to_address = serializers.CharField(
        max_length=254, required=False, allow_blank=True, trim_whitespace=False
    )
    failure_emails = serializers.ListField(
        child=serializers.CharField(trim_whitespace=False),
        required=False,
        help_text=f"Up to {MAX_FAILURE_EMAILS} addresses told when a message cannot be delivered.",
    )
    timeout = serializers.FloatField(
        required=False,
        allow_null=True,
        help_text="Seconds, 0.1-300; `null`: OUTBOUND_SMTP_TIMEOUT.",
    )
    standby = serializers.IntegerField(
        required=False,
        allow_null=True,
        help_text="Failover rank, 0-32767: `null` is not a standby; among standbys the "
        "lowest serves first when the active configuration fails. The active configuration "
        "cannot be a standby (activating a standby takes it off the list).",
    )
    is_active = serializers.BooleanField(
        read_only=True, help_text="The admin's choice: change it with activate/deactivate."
    )
    version = serializers.IntegerField(
        read_only=True, help_text="The number of the saved state (each save adds one)."
    )
    serving = serializers.SerializerMethodField(
        help_text="Whether this configuration delivers mail now: the active one, or the "
        "standby it failed over to."
    )
    created_by = UserRefSerializer(read_only=True, allow_null=True)
    modified_by = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = SmtpConfig
        fields = [
            "id",
            "description",
            "host",
            "port",
            "security",
            "username",
            "password",
            "has_password",
            "authorization_method",
            "authentication_object",
            "sender_address",
            "sender_name",
            "reply_to_address",
            "failure_emails",
            "timeout",
            "is_active",
            "standby",
            "version",
            "serving",
            "created_at",
            "created_by",
            "modified_at",
            "modified_by",
        ]
        read_only_fields = ["id", "created_at", "modified_at"]

    def get_serving(self, config: SmtpConfig) -> bool:
        return bool(config.pk) and config.pk == self.context.get("serving_id")


class ActivateInput(serializers.Serializer[Any]):
    require_test = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Test the saved configuration first and activate it only if the test "
        "passes (a failed test answers 400 with the report; nothing is activated).",
    )


class ConfigTestInput(serializers.Serializer[Any]):
    receiver_address = serializers.CharField(
        max_length=254,
        trim_whitespace=False,
        required=False,
        help_text="Optional: also send one test message to this address.",
    )

    def validate_receiver_address(self, value: str) -> str:
        try:
            validate_address(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc
        return value
