"""Commvault's request and response bodies, with Commvault's field names, and their
translation to and from the core's fields."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from outbound.core.encoding import InvalidBase64, decode_base64_text
from outbound.mail.choices import AuthorizationMethod, Security
from outbound.mail.models import SmtpConfig

# Commvault ``encryptionAlgorithm`` <-> core ``security`` (OVERVIEW: decided mapping).
ENCRYPTION_TO_SECURITY: dict[str, str] = {
    "NONE": Security.NONE,
    "TLS": Security.STARTTLS,
    "SSL": Security.SSL,
}
SECURITY_TO_ENCRYPTION: dict[str, str] = {v: k for k, v in ENCRYPTION_TO_SECURITY.items()}

# Core field -> Commvault field, for error messages.
CORE_TO_COMMVAULT: dict[str, str] = {
    "host": "SMTPServerName",
    "port": "SMTPPort",
    "security": "encryptionAlgorithm",
    "sender_address": "senderEmail",
    "sender_name": "senderName",
    "username": "username",
    "password": "password",
    "authorization_method": "useAuthentication",
    "authentication_object": "useAuthentication",
}

REQUIRED = "This field is required."
USERNAME_FOR_AUTHENTICATION = "This field is required when useAuthentication is true."
USERNAME_FOR_PASSWORD = "This field is required when a password is given."
PASSWORD_FOR_USERNAME = "This field is required when a username is given."

# Core fields each Commvault field sets.
_PLAIN_FIELDS = {
    "SMTPServerName": "host",
    "SMTPPort": "port",
    "senderEmail": "sender_address",
    "senderName": "sender_name",
}


class EncryptionAlgorithmField(serializers.ChoiceField):
    """``NONE`` / ``TLS`` / ``SSL``; accepted in any letter case."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=list(ENCRYPTION_TO_SECURITY), **kwargs)

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, str):
            data = data.strip().upper()
        return super().to_internal_value(data)


class Base64PasswordField(serializers.CharField):
    """A base64-encoded password, decoded here; invalid base64 is a 400 (never echoed)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("write_only", True)
        super().__init__(trim_whitespace=False, allow_blank=True, allow_null=True, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        try:
            return decode_base64_text(text)
        except InvalidBase64 as exc:
            raise serializers.ValidationError(str(exc)) from None


def _optional_text(**kwargs: Any) -> serializers.CharField:
    return serializers.CharField(required=False, allow_null=True, **kwargs)


class _Input(serializers.Serializer[Any]):
    """Shared behaviour: ``null`` is the same as leaving a field out."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in attrs.items() if v is not None}


class EmailServerInput(_Input):
    """``POST /V4/EmailServer``: the seed's body; configures the email server in full."""

    SMTPServerName = serializers.CharField()
    SMTPPort = serializers.IntegerField(min_value=1, max_value=65535)
    senderEmail = serializers.CharField()
    senderName = serializers.CharField()
    encryptionAlgorithm = EncryptionAlgorithmField(required=False, default="NONE")
    username = _optional_text(allow_blank=True)
    password = Base64PasswordField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        errors: dict[str, list[str]] = {}
        if attrs.get("username") and not attrs.get("password"):
            errors["password"] = [PASSWORD_FOR_USERNAME]
        if attrs.get("password") and not attrs.get("username"):
            errors["username"] = [USERNAME_FOR_PASSWORD]
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def core_data(self) -> dict[str, Any]:
        """A full configuration: no username means no authentication (and no password)."""
        attrs = self.validated_data
        data = {core: attrs[name] for name, core in _PLAIN_FIELDS.items()}
        data["security"] = ENCRYPTION_TO_SECURITY[attrs["encryptionAlgorithm"]]
        data["username"] = attrs.get("username", "")
        data["password"] = attrs.get("password", "") if data["username"] else ""
        data["authorization_method"] = AuthorizationMethod.USERNAME_AND_PASSWORD
        return data


class EmailServerUpdateInput(_Input):
    """``PUT /V4/EmailServer``: every field optional; an omitted password keeps the stored one."""

    SMTPServerName = _optional_text()
    SMTPPort = serializers.IntegerField(
        required=False, allow_null=True, min_value=1, max_value=65535
    )
    senderEmail = _optional_text()
    senderName = _optional_text()
    encryptionAlgorithm = EncryptionAlgorithmField(required=False, allow_null=True)
    useAuthentication = serializers.BooleanField(required=False, allow_null=True)
    username = _optional_text(allow_blank=True)
    password = Base64PasswordField(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if attrs.get("useAuthentication") is True and not attrs.get("username"):
            raise serializers.ValidationError({"username": [USERNAME_FOR_AUTHENTICATION]})
        return attrs

    def core_data(self) -> dict[str, Any]:
        """The changes, in core fields, to apply over the active configuration."""
        attrs = self.validated_data
        data: dict[str, Any] = {
            core: attrs[name] for name, core in _PLAIN_FIELDS.items() if name in attrs
        }
        if "encryptionAlgorithm" in attrs:
            data["security"] = ENCRYPTION_TO_SECURITY[attrs["encryptionAlgorithm"]]
        use_auth = attrs.get("useAuthentication")
        if use_auth is False or (use_auth is None and attrs.get("username") == ""):
            data.update(
                username="",
                password="",
                authorization_method=AuthorizationMethod.USERNAME_AND_PASSWORD,
            )
            return data
        if "username" in attrs:
            data["username"] = attrs["username"]
        if attrs.get("password"):  # "" or omitted: keep the stored password
            data["password"] = attrs["password"]
            data["authorization_method"] = AuthorizationMethod.USERNAME_AND_PASSWORD
        return data


class EmailServerTestInput(EmailServerUpdateInput):
    """``POST /V4/EmailServer/Action/Test``: settings to test over the stored ones; without a
    username and password the stored credentials are reused (for the same server only)."""


class EmailServerOutput(serializers.Serializer[SmtpConfig]):
    """``GET /V4/EmailServer``: never the password; ``username`` only with authentication."""

    SMTPServerName = serializers.CharField()
    SMTPPort = serializers.IntegerField()
    senderEmail = serializers.CharField()
    senderName = serializers.CharField()
    encryptionAlgorithm = serializers.ChoiceField(choices=list(ENCRYPTION_TO_SECURITY))
    useAuthentication = serializers.BooleanField()
    username = serializers.CharField(required=False)

    def to_representation(self, instance: SmtpConfig | None) -> dict[str, Any]:
        if instance is None:  # nothing configured yet
            return {
                "SMTPServerName": "",
                "SMTPPort": 0,
                "senderEmail": "",
                "senderName": "",
                "encryptionAlgorithm": "NONE",
                "useAuthentication": False,
            }
        body: dict[str, Any] = {
            "SMTPServerName": instance.host,
            "SMTPPort": instance.port,
            "senderEmail": instance.sender_address,
            "senderName": instance.sender_name,
            "encryptionAlgorithm": SECURITY_TO_ENCRYPTION.get(instance.security, "NONE"),
            "useAuthentication": bool(instance.username),
        }
        if instance.username:
            body["username"] = instance.username
        return body


class CommvaultResultSerializer(serializers.Serializer[Any]):
    """Every write's and the test's answer, and every error: ``errorCode`` 0 means success."""

    errorMessage = serializers.CharField()
    errorCode = serializers.IntegerField()


def result(message: str = "", code: int = 0) -> dict[str, Any]:
    return {"errorMessage": message, "errorCode": code}


def _messages(detail: Any) -> list[str]:
    if isinstance(detail, dict):
        return [m for value in detail.values() for m in _messages(value)]
    if isinstance(detail, list | tuple):
        return [m for value in detail for m in _messages(value)]
    return [str(detail)]


def error_message(detail: Any) -> str:
    """A DRF error detail or core error dict as one line, under Commvault's field names."""
    if isinstance(detail, dict):
        parts = []
        for field, value in detail.items():
            name = CORE_TO_COMMVAULT.get(str(field), str(field))
            for message in _messages(value):
                parts.append(message if name == "non_field_errors" else f"{name}: {message}")
        return " ".join(parts)
    return " ".join(_messages(detail))


def core_error_message(exc: DjangoValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return error_message(exc.message_dict)
    return " ".join(exc.messages)
