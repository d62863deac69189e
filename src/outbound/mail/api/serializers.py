"""The ALX ``/api/administration/smtp-settings/`` shapes, in ALX's field names and messages.

The limits below are the seed's; the OPTIONS document is built from the same constants.
Input is translated to core field names by :meth:`SmtpSettingsInput.core_data`; core
validation errors come back through :data:`CORE_TO_ALX`.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from outbound.core.validators import (
    reject_control_characters,
    split_addresses,
    validate_address,
)
from outbound.integrations.models import AuthenticationObject
from outbound.integrations.providers import MICROSOFT_CLIENT_CREDENTIALS
from outbound.mail.choices import MAX_FAILURE_EMAILS, AuthorizationMethod, tls_from_security
from outbound.mail.models import SmtpConfig

PASSWORD_MAX = 128
HOST_MAX = 63
USERNAME_MAX = 254
FROM_EMAIL_MAX = 254
FAILURE_EMAIL_MAX = 255

# Core field name -> ALX field name, for errors raised by the core.
CORE_TO_ALX = {
    "sender_address": "from_email",
    "failure_emails": "failure_email",
    "security": "tls",
}

INVALID_CHOICE = "{input} is not a valid choice."


def _run(validator: Any, value: Any) -> None:
    """Run a core validator, raising its messages as DRF errors."""
    try:
        validator(value)
    except DjangoValidationError as exc:
        raise serializers.ValidationError(exc.messages) from exc


class SmtpSettingsOutput(serializers.Serializer[SmtpConfig]):
    username = serializers.CharField()
    port = serializers.IntegerField(allow_null=True)
    tls = serializers.BooleanField()
    host = serializers.CharField()
    from_email = serializers.CharField()
    failure_email = serializers.CharField()
    authorization_method = serializers.ChoiceField(choices=AuthorizationMethod.choices)
    authentication_object = serializers.IntegerField(allow_null=True)

    def to_representation(self, instance: SmtpConfig | None) -> dict[str, Any]:
        if instance is None:  # nothing configured yet: the empty form
            return {
                "username": "",
                "port": None,
                "tls": False,
                "host": "",
                "from_email": "",
                "failure_email": "",
                "authorization_method": AuthorizationMethod.USERNAME_AND_PASSWORD,
                "authentication_object": None,
            }
        return {
            "username": instance.username,
            "port": instance.port,
            "tls": tls_from_security(instance.security),
            "host": instance.host,
            "from_email": instance.sender_address,
            "failure_email": ", ".join(instance.failure_emails or []),
            "authorization_method": instance.authorization_method,
            "authentication_object": instance.authentication_object_id,
        }


class SmtpSettingsInput(serializers.Serializer[dict[str, Any]]):
    """PATCH body (and the test body): every field optional, checked as the seed documents."""

    password = serializers.CharField(
        max_length=PASSWORD_MAX, required=False, trim_whitespace=False, write_only=True
    )
    # No trimming: a trailing CR/LF must be refused, not silently dropped.
    username = serializers.CharField(max_length=USERNAME_MAX, required=False, trim_whitespace=False)
    port = serializers.IntegerField(min_value=0, max_value=65535, required=False)
    tls = serializers.BooleanField(required=False)
    host = serializers.CharField(max_length=HOST_MAX, required=False, trim_whitespace=False)
    from_email = serializers.CharField(
        max_length=FROM_EMAIL_MAX, required=False, trim_whitespace=False
    )
    failure_email = serializers.CharField(
        max_length=FAILURE_EMAIL_MAX, required=False, allow_blank=True, trim_whitespace=False
    )
    authorization_method = serializers.ChoiceField(
        choices=AuthorizationMethod.choices,
        required=False,
        error_messages={"invalid_choice": INVALID_CHOICE},
    )
    authentication_object = serializers.IntegerField(required=False, allow_null=True)

    # Syntax, address and provider rules are the core's (SmtpConfig.clean and its field
    # validators); their errors come back under ALX names through CORE_TO_ALX. Only what the
    # core cannot see is checked here.
    def validate_failure_email(self, value: str) -> str:
        _run(reject_control_characters, value)  # before splitting strips a CR/LF away
        return value

    def validate_authentication_object(self, value: int | None) -> AuthenticationObject | None:
        if value is None:
            return None
        obj = AuthenticationObject.objects.filter(pk=value).first()
        if obj is None:
            raise serializers.ValidationError(INVALID_CHOICE.format(input=value))
        return obj

    def core_data(self) -> dict[str, Any]:
        """The validated body in core field names."""
        data = dict(self.validated_data)
        if "from_email" in data:
            data["sender_address"] = data.pop("from_email")
        if "failure_email" in data:
            data["failure_emails"] = split_addresses(data.pop("failure_email"))
        if "port" in data and "tls" not in data:
            data["tls"] = None  # ALX speaks in a TLS flag: a new port re-derives the mode
        return data


class SmtpTestInput(SmtpSettingsInput):
    receiver_address = serializers.CharField(
        max_length=254,
        trim_whitespace=False,
        required=False,
        help_text="Optional: also send one test message to this address.",
    )

    def validate_receiver_address(self, value: str) -> str:
        _run(validate_address, value)
        return value


class CertificateSerializer(serializers.Serializer[dict[str, Any]]):
    subject = serializers.CharField()
    issuer = serializers.CharField()
    not_after = serializers.DateTimeField(allow_null=True)


class TestStepSerializer(serializers.Serializer[dict[str, Any]]):
    """One step of a connection test; the optional fields are there where the step has them."""

    name = serializers.CharField(help_text="`resolve`, `connect`, `banner`, `ehlo`, `auth`, …")
    ok = serializers.BooleanField()
    duration_ms = serializers.FloatField()
    detail = serializers.CharField()
    reply = serializers.CharField(required=False, help_text="The server's reply.")
    addresses = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="What the host resolved to."
    )
    tls_version = serializers.CharField(required=False, allow_null=True)
    cipher = serializers.CharField(required=False, allow_null=True)
    certificate = CertificateSerializer(required=False)
    capabilities = serializers.ListField(
        child=serializers.CharField(), required=False, help_text="The EHLO extensions."
    )
    mechanism = serializers.CharField(required=False, help_text="The AUTH mechanism used.")
    message_id = serializers.CharField(required=False, help_text="The test message's.")


class SmtpTestResultSerializer(serializers.Serializer[dict[str, Any]]):
    """The test passed: ``status`` ``OK`` and every step."""

    status = serializers.ChoiceField(choices=["OK"])
    msg = serializers.CharField()
    steps = TestStepSerializer(many=True)


class SmtpTestFailedSerializer(serializers.Serializer[dict[str, Any]]):
    """The test ran and failed: ``status`` ``ERROR``, what failed, and every step."""

    status = serializers.ChoiceField(choices=["ERROR"])
    msg = serializers.CharField()
    steps = TestStepSerializer(many=True)


class MicrosoftTestFailedSerializer(serializers.Serializer[dict[str, Any]]):
    """A Microsoft (XOAUTH2) test failed: ALX's ``detail``, plus what failed and every step."""

    detail = serializers.CharField()
    msg = serializers.CharField()
    steps = TestStepSerializer(many=True)


def remap_errors(exc: DjangoValidationError) -> dict[str, list[str]]:
    """Core validation errors under ALX field names."""
    return {CORE_TO_ALX.get(field, field): list(msgs) for field, msgs in exc.message_dict.items()}


def options_document() -> dict[str, Any]:
    """The seed's ``OPTIONS /api/administration/smtp-settings/`` document."""
    password = {
        "alias": "password",
        "type": "string",
        "required": True,
        "validators": [{"type": "max_length", "length": PASSWORD_MAX}],
    }
    return {
        "details": {
            "schema": [
                password,
                {
                    "alias": "host",
                    "type": "string",
                    "required": True,
                    "validators": [{"type": "max_length", "length": HOST_MAX}],
                },
                {"alias": "port", "required": True, "type": "int"},
                {"alias": "tls", "type": "bool"},
                {
                    "alias": "username",
                    "type": "string",
                    "required": True,
                    "validators": [{"type": "max_length", "length": USERNAME_MAX}],
                },
                {
                    "alias": "from_email",
                    "type": "string",
                    "required": True,
                    "validators": [
                        {"type": "email"},
                        {"type": "max_length", "length": FROM_EMAIL_MAX},
                    ],
                },
                {
                    "alias": "failure_email",
                    "type": "string",
                    "required": True,
                    "validators": [
                        {"type": "max_length", "length": FAILURE_EMAIL_MAX},
                        {"type": "max_value", "length": MAX_FAILURE_EMAILS},
                    ],
                },
                {
                    "alias": "authorization_method",
                    "type": "enum",
                    "required": False,
                    "values": [{"value": v, "text": t} for v, t in AuthorizationMethod.choices],
                    "schema_by_authorization_method": [
                        {
                            "authorization_method": AuthorizationMethod.USERNAME_AND_PASSWORD.value,
                            "schema": [password],
                        },
                        {
                            "authorization_method": (
                                AuthorizationMethod.MICROSOFT_CLIENT_CREDENTIALS.value
                            ),
                            "schema": [
                                {
                                    "alias": "authentication_object",
                                    "type": "enum",
                                    "required": True,
                                    "autocomplete": "/api/authentication-objects/?provider="
                                    + MICROSOFT_CLIENT_CREDENTIALS.key,
                                }
                            ],
                        },
                    ],
                },
            ]
        }
    }
