"""PrivX settings: the SMTP keys of ``/settings`` and ``/testsmtp`` and the test's answer.

Types are strict, as a PrivX (Go) server's are: a string where a number or a boolean belongs
is ``VALUE_INCORRECT_TYPE``, not silently converted. Two PrivX keys have no core field:

- ``smtp_server_insecure_verify``: Outbound always verifies the server's certificate, so only
  ``false`` is accepted; ``true`` is refused (``VALUE_OUT_OF_BOUNDS``).
- ``smtp_retry_attempts``: Outbound retries temporary failures with backoff until a message is
  ``OUTBOUND_MAX_MESSAGE_AGE`` old, not a fixed number of times. ``0`` (or null) stands for
  that policy and is what GET shows; any other number is refused rather than stored nowhere.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from outbound.mail.choices import Security
from outbound.mail.models import SmtpConfig
from outbound.mail.tester import TestReport

# PrivX protocol <-> core security.
PROTOCOL_TO_SECURITY: dict[str, str] = {
    "none": Security.NONE,
    "starttls": Security.STARTTLS,
    "tls": Security.SSL,
}
SECURITY_TO_PROTOCOL: dict[str, str] = {v: k for k, v in PROTOCOL_TO_SECURITY.items()}

HOST_MAX = 255
USERNAME_MAX = 254
PASSWORD_MAX = 1024
ADDRESS_MAX = 254
RETRY_DEFAULT = 0

INSECURE_VERIFY_REFUSED = (
    "Outbound always verifies the SMTP server's certificate; "
    "smtp_server_insecure_verify can only be false."
)
RETRY_REFUSED = (
    "Outbound retries temporary failures with backoff until the message expires; a fixed "
    "number of retry attempts cannot be set. Use 0 (the server's retry policy)."
)


class StrictChoiceField(serializers.ChoiceField):
    """A choice that must be a string: another type is VALUE_INCORRECT_TYPE, not a bad value."""

    def to_internal_value(self, data: Any) -> Any:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)

    default_error_messages = {
        **serializers.ChoiceField.default_error_messages,
        "invalid": "Must be a string.",
    }


class StrictCharField(serializers.CharField):
    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return str(super().to_internal_value(data))


class StrictIntegerField(serializers.IntegerField):
    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return int(super().to_internal_value(data))


class StrictBooleanField(serializers.BooleanField):
    def to_internal_value(self, data: Any) -> bool:
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class PrivxSmtpSettingsInput(serializers.Serializer[dict[str, Any]]):
    """The SMTP keys of a PrivX settings object; all optional, unknown keys ignored.

    An omitted, null or empty ``smtp_server_password`` keeps the stored one (clients send the
    settings they read back, and the password is never read back); clearing
    ``smtp_server_username`` turns authentication off and forgets the password.
    """

    smtp_server = StrictCharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=HOST_MAX
    )
    smtp_server_port = StrictIntegerField(required=False, min_value=0, max_value=65535)
    smtp_server_enabled = StrictBooleanField(required=False)
    smtp_server_username = StrictCharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=USERNAME_MAX
    )
    smtp_server_password = StrictCharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        trim_whitespace=False,
        max_length=PASSWORD_MAX,
        write_only=True,
    )
    smtp_server_protocol = StrictChoiceField(choices=list(PROTOCOL_TO_SECURITY), required=False)
    smtp_server_insecure_verify = StrictBooleanField(
        required=False, help_text="Always false: Outbound never skips certificate verification."
    )
    smtp_sender_address = StrictCharField(
        required=False, allow_blank=True, trim_whitespace=False, max_length=ADDRESS_MAX
    )
    smtp_retry_attempts = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=0,
        help_text="Only 0: Outbound's own retry policy (backoff until the message expires).",
    )

    def validate_smtp_server_insecure_verify(self, value: bool) -> bool:
        if value:
            raise serializers.ValidationError(INSECURE_VERIFY_REFUSED, code="out_of_bounds")
        return value

    def validate_smtp_retry_attempts(self, value: int | None) -> int | None:
        if value not in (None, RETRY_DEFAULT):
            raise serializers.ValidationError(RETRY_REFUSED, code="out_of_bounds")
        return value

    def core_data(self) -> dict[str, Any]:
        """The validated keys under core names (``smtp_server_enabled`` is not among them)."""
        v = self.validated_data
        data: dict[str, Any] = {}
        for key, core in (
            ("smtp_server", "host"),
            ("smtp_server_port", "port"),
            ("smtp_server_username", "username"),
            ("smtp_sender_address", "sender_address"),
        ):
            if key in v:
                data[core] = v[key]
        if "smtp_server_protocol" in v:
            data["security"] = PROTOCOL_TO_SECURITY[v["smtp_server_protocol"]]
        if v.get("smtp_server_password"):
            data["password"] = v["smtp_server_password"]
        elif v.get("smtp_server_username") == "":
            data["password"] = ""  # no user, no password: forget the stored one
        return data


class PrivxSmtpSettingsOutput(serializers.Serializer[SmtpConfig]):
    """The SMTP keys as GET shows them (never the password); zero values when none is set."""

    smtp_server = serializers.CharField()
    smtp_server_port = serializers.IntegerField()
    smtp_server_enabled = serializers.BooleanField()
    smtp_server_username = serializers.CharField()
    smtp_server_protocol = serializers.ChoiceField(choices=list(PROTOCOL_TO_SECURITY))
    smtp_server_insecure_verify = serializers.BooleanField()
    smtp_sender_address = serializers.CharField()
    smtp_retry_attempts = serializers.IntegerField()

    def to_representation(self, instance: SmtpConfig | None) -> dict[str, Any]:
        if instance is None:
            return {
                "smtp_server": "",
                "smtp_server_port": 0,
                "smtp_server_enabled": False,
                "smtp_server_username": "",
                "smtp_server_protocol": "none",
                "smtp_server_insecure_verify": False,
                "smtp_sender_address": "",
                "smtp_retry_attempts": RETRY_DEFAULT,
            }
        return {
            "smtp_server": instance.host,
            "smtp_server_port": instance.port,
            "smtp_server_enabled": instance.is_active,
            "smtp_server_username": instance.username,
            "smtp_server_protocol": SECURITY_TO_PROTOCOL.get(instance.security, "none"),
            "smtp_server_insecure_verify": False,
            "smtp_sender_address": instance.sender_address,
            "smtp_retry_attempts": RETRY_DEFAULT,
        }


class PrivxTestResultOutput(serializers.Serializer[TestReport]):
    """``{"status": "OK"|"ERROR", "details": {…}}``: the test's steps as flat key-value pairs.

    Each step is ``"<step>": "ok 3 ms"`` or its failure (``"auth": "The server rejected the
    credentials: 535 …"``); TLS facts are ``tls_version``/``cipher``/``certificate_*``; other
    facts are ``<step>_<fact>`` (``ehlo_reply``, ``resolve_addresses``); ``message`` sums up.
    """

    # Not an enum in the schema: it would collide with the native test's ``status`` enum.
    status = serializers.CharField(help_text="`OK` or `ERROR`.")
    details = serializers.DictField(child=serializers.CharField())

    def to_representation(self, instance: TestReport) -> dict[str, Any]:
        return {"status": "OK" if instance.ok else "ERROR", "details": flat_details(instance)}


UNPREFIXED = ("tls_version", "cipher", "certificate")


def flat_details(report: TestReport) -> dict[str, str]:
    details: dict[str, str] = {}
    for step in report.steps:
        details[step.name] = (
            f"ok {round(step.duration_ms)} ms" if step.ok else step.detail or "failed"
        )
        for key, value in step.data.items():
            name = key if key in UNPREFIXED else f"{step.name}_{key}"
            if isinstance(value, dict):
                for sub, subvalue in value.items():
                    if subvalue is not None:
                        details[f"{name}_{sub}"] = str(subvalue)
            elif isinstance(value, list | tuple):
                details[name] = ", ".join(map(str, value))
            elif value is not None:
                details[name] = str(value)
    details["message"] = report.message
    return details


class PrivxErrorSerializer(serializers.Serializer[dict[str, Any]]):
    """PrivX's error body; ``details`` holds one such object per problem found."""

    error_code = serializers.CharField()
    error_message = serializers.CharField()
    property = serializers.CharField()
    details = serializers.ListField(child=serializers.DictField())
