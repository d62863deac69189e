"""ZITADEL's request and response shapes (``SMTPConfig``, ``ObjectDetails``), in its field names.

Proto3 JSON: uint64 as strings, RFC 3339 timestamps, zero values left out, unknown fields
ignored and ``null`` read as the zero value.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from outbound.core.encoding import join_host_port, split_host_port
from outbound.core.events import resource_details
from outbound.core.validators import validate_address
from outbound.mail.choices import tls_from_security
from outbound.mail.models import SmtpConfig
from outbound.mail.services import RESOURCE

STATE_ACTIVE = "SMTP_CONFIG_ACTIVE"
STATE_INACTIVE = "SMTP_CONFIG_INACTIVE"
MIN_LEN_MESSAGE = "value length must be at least 1 runes"


def timestamp(value: datetime | None) -> str | None:
    """A protobuf ``Timestamp`` in JSON: UTC, ``Z``, 0, 3 or 6 fractional digits."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    micro = value.microsecond
    if micro:
        text += f".{micro // 1000:03d}" if micro % 1000 == 0 else f".{micro:06d}"
    return text + "Z"


def omit_zero(data: dict[str, Any]) -> dict[str, Any]:
    """Proto3 JSON leaves out fields that hold their zero value."""
    return {k: v for k, v in data.items() if v not in (None, "", False, 0, "0", [], {})}


def object_details(config_id: Any) -> dict[str, Any]:
    """``zitadel.v1.ObjectDetails`` of one configuration, from the event stream."""
    details = resource_details(RESOURCE, config_id)
    return omit_zero(
        {
            "sequence": str(details.sequence),
            "creationDate": timestamp(details.creation_date),
            "changeDate": timestamp(details.change_date),
            "resourceOwner": details.resource_owner,
        }
    )


def smtp_config(config: SmtpConfig) -> dict[str, Any]:
    """``zitadel.settings.v1.SMTPConfig``."""
    return omit_zero(
        {
            "details": object_details(config.pk),
            "id": str(config.pk),
            "senderAddress": config.sender_address,
            "senderName": config.sender_name,
            "tls": tls_from_security(config.security),
            "host": join_host_port(config.host, config.port) if config.host else "",
            "user": config.username,
            "replyToAddress": config.reply_to_address,
            "state": STATE_ACTIVE if config.is_active else STATE_INACTIVE,
            "description": config.description,
        }
    )


# --- inputs --------------------------------------------------------------------------------


class ProtoCharField(serializers.CharField):
    """A proto3 ``string``: ``null`` is the empty string; nothing is trimmed.

    ``non_empty`` is ZITADEL's ``min_len: 1``: then missing, ``null`` and ``""`` are refused.
    """

    def __init__(self, *, non_empty: bool = False, **kwargs: Any) -> None:
        self.non_empty = non_empty
        kwargs.setdefault("trim_whitespace", False)
        if non_empty:
            kwargs.update(required=True, allow_blank=False)
            kwargs.setdefault("error_messages", {}).update(
                required=MIN_LEN_MESSAGE, blank=MIN_LEN_MESSAGE, null=MIN_LEN_MESSAGE
            )
        else:
            kwargs.update(required=False, allow_blank=True, default="")
        super().__init__(**kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None:
            if self.non_empty:
                self.fail("required")
            return True, ""
        return super().validate_empty_values(data)


class ProtoBoolField(serializers.BooleanField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", False)
        super().__init__(**kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None:
            return True, False
        return super().validate_empty_values(data)


class ProtoUInt64Field(serializers.IntegerField):
    """A proto3 ``uint64``: a JSON number or a decimal string."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", 0)
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", 2**63 - 1)  # beyond what a database can offset by
        super().__init__(**kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None:
            return True, 0
        return super().validate_empty_values(data)


def required_text(max_length: int, **kwargs: Any) -> ProtoCharField:
    """A string that must hold 1 to ``max_length`` characters (ZITADEL's ``min_len: 1``)."""
    return ProtoCharField(non_empty=True, max_length=max_length, **kwargs)


def _address(value: str) -> None:
    if value:  # an optional address may be empty
        try:
            validate_address(value)
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.messages) from exc


class ZitadelSmtpConfigInput(serializers.Serializer[dict[str, Any]]):
    """The body of ``AddSMTPConfig`` / ``UpdateSMTPConfig``: the whole configuration."""

    senderAddress = required_text(200)
    senderName = required_text(200)
    tls = ProtoBoolField()
    host = required_text(500)
    user = ProtoCharField()
    password = ProtoCharField(style={"input_type": "password"}, write_only=True)
    replyToAddress = ProtoCharField(max_length=200)
    description = ProtoCharField(max_length=200)

    def validate_host(self, value: str) -> str:
        try:
            split_host_port(value)
        except ValueError as exc:
            raise serializers.ValidationError(
                f"{exc}; include the port, e.g. smtp.example.com:587"
            ) from exc
        return value

    def core_data(self, *, keep_password: bool) -> dict[str, Any]:
        """Core field names; an empty password is omitted when ``keep_password`` (updates)."""
        v = self.validated_data
        host, port = split_host_port(v["host"])
        data: dict[str, Any] = {
            "host": host,
            "port": port,
            "tls": v["tls"],
            "username": v["user"],
            "sender_address": v["senderAddress"],
            "sender_name": v["senderName"],
            "reply_to_address": v["replyToAddress"],
            "description": v["description"],
        }
        if v["password"] or not keep_password:
            data["password"] = v["password"]
        return data


class ZitadelPasswordInput(serializers.Serializer[dict[str, Any]]):
    password = ProtoCharField(style={"input_type": "password"}, write_only=True)


class ZitadelReceiverInput(serializers.Serializer[dict[str, Any]]):
    """``TestSMTPConfigById``: where the test message goes."""

    receiverAddress = required_text(200, validators=[_address])


class ZitadelSmtpTestInput(serializers.Serializer[dict[str, Any]]):
    """``TestSMTPConfig``: a full configuration, a receiver, and optionally the id of a stored
    configuration whose password is used when none is given."""

    senderAddress = required_text(200)
    senderName = required_text(200)
    tls = ProtoBoolField()
    host = required_text(500)
    user = ProtoCharField()
    password = ProtoCharField(style={"input_type": "password"}, write_only=True)
    receiverAddress = required_text(200, validators=[_address])
    id = ProtoCharField(max_length=100)

    validate_host = ZitadelSmtpConfigInput.validate_host

    def core_data(self) -> dict[str, Any]:
        v = self.validated_data
        host, port = split_host_port(v["host"])
        data: dict[str, Any] = {
            "host": host,
            "port": port,
            "tls": v["tls"],
            "username": v["user"],
            "sender_address": v["senderAddress"],
            "sender_name": v["senderName"],
        }
        if v["password"]:
            data["password"] = v["password"]
        return data


class ZitadelListQuery(serializers.Serializer[dict[str, Any]]):
    """``zitadel.v1.ZitadelListQuery``."""

    offset = ProtoUInt64Field()
    limit = ProtoUInt64Field()
    asc = ProtoBoolField()


class ZitadelSearchInput(serializers.Serializer[dict[str, Any]]):
    query = ZitadelListQuery(required=False)


# --- outputs, for the schema ---------------------------------------------------------------


class ZitadelObjectDetailsOutput(serializers.Serializer[dict[str, Any]]):
    sequence = serializers.CharField(help_text="uint64 as a string")
    creationDate = serializers.DateTimeField(required=False)
    changeDate = serializers.DateTimeField(required=False)
    resourceOwner = serializers.CharField()


class ZitadelSmtpConfigOutput(serializers.Serializer[dict[str, Any]]):
    details = ZitadelObjectDetailsOutput()
    id = serializers.CharField()
    senderAddress = serializers.CharField()
    senderName = serializers.CharField()
    tls = serializers.BooleanField()
    host = serializers.CharField(help_text="host:port")
    user = serializers.CharField(required=False)
    replyToAddress = serializers.CharField(required=False)
    state = serializers.ChoiceField(choices=[STATE_ACTIVE, STATE_INACTIVE])
    description = serializers.CharField(required=False)


class ZitadelGetSmtpConfigOutput(serializers.Serializer[dict[str, Any]]):
    smtpConfig = ZitadelSmtpConfigOutput()


class ZitadelListDetailsOutput(serializers.Serializer[dict[str, Any]]):
    totalResult = serializers.CharField(help_text="uint64 as a string")
    viewTimestamp = serializers.DateTimeField()


class ZitadelSearchOutput(serializers.Serializer[dict[str, Any]]):
    details = ZitadelListDetailsOutput()
    result = ZitadelSmtpConfigOutput(many=True)


class ZitadelAddOutput(serializers.Serializer[dict[str, Any]]):
    details = ZitadelObjectDetailsOutput()
    id = serializers.CharField()


class ZitadelDetailsOutput(serializers.Serializer[dict[str, Any]]):
    details = ZitadelObjectDetailsOutput()


class ZitadelEmptyOutput(serializers.Serializer[dict[str, Any]]):
    pass


class ZitadelErrorDetailOutput(serializers.Serializer[dict[str, Any]]):
    def get_fields(self) -> dict[str, serializers.Field]:  # "@type" is no Python name
        return {
            "@type": serializers.CharField(),
            "id": serializers.CharField(),
            "message": serializers.CharField(),
        }


class ZitadelErrorOutput(serializers.Serializer[dict[str, Any]]):
    code = serializers.IntegerField()
    message = serializers.CharField()
    details = ZitadelErrorDetailOutput(many=True)


def now_timestamp() -> str:
    return timestamp(datetime.now(UTC)) or ""
