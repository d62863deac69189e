"""ZITADEL's request and response shapes (``SMTPConfig``, ``EmailProvider``, ``ObjectDetails``,
``ListDetails``), in its field names.

Proto3 JSON as grpc-gateway reads and writes it: uint64 as strings, RFC 3339 timestamps, zero
values left out, unknown fields ignored, ``null`` read as the zero value (a message sent as
``null`` is unset), and every field accepted under its proto name too (``sender_address`` as
well as ``senderAddress``; both at once is a duplicate field).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_field
from rest_framework import exceptions, serializers

from outbound.core.encoding import join_host_port, split_host_port
from outbound.core.events import resource_details, stream_position
from outbound.core.validators import validate_address
from outbound.dialects.zitadel import xoauth2
from outbound.dialects.zitadel.parsers import duplicate_field_error
from outbound.mail.choices import AuthorizationMethod, tls_from_security
from outbound.mail.models import SmtpConfig
from outbound.mail.services import RESOURCE

STATE_ACTIVE = "SMTP_CONFIG_ACTIVE"
STATE_INACTIVE = "SMTP_CONFIG_INACTIVE"
EMAIL_ACTIVE = "EMAIL_PROVIDER_ACTIVE"
EMAIL_INACTIVE = "EMAIL_PROVIDER_INACTIVE"
MIN_LEN_MESSAGE = "value length must be at least 1 runes"
UINT32_MAX = 2**32 - 1
UINT64_MAX = 2**64 - 1
NONE_WITH_USER = "must be empty when none (no authentication) is chosen"


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


def list_details(total: int) -> dict[str, Any]:
    """``zitadel.v1.ListDetails`` of a list of configurations."""
    return omit_zero(
        {
            "totalResult": str(total),
            "processedSequence": str(stream_position(RESOURCE)),
            "viewTimestamp": now_timestamp(),
        }
    )


def _server(config: SmtpConfig) -> dict[str, Any]:
    """The fields ``SMTPConfig`` and ``EmailProviderSMTP`` share, zero values included."""
    return {
        "senderAddress": config.sender_address,
        "senderName": config.sender_name,
        "tls": tls_from_security(config.security),
        "host": join_host_port(config.host, config.port) if config.host else "",
        "user": config.username,
        "replyToAddress": config.reply_to_address,
    }


def smtp_config(config: SmtpConfig) -> dict[str, Any]:
    """``zitadel.settings.v1.SMTPConfig``."""
    return omit_zero(
        {
            "details": object_details(config.pk),
            "id": str(config.pk),
            **_server(config),
            "state": STATE_ACTIVE if config.is_active else STATE_INACTIVE,
            "description": config.description,
        }
    )


def _auth(config: SmtpConfig) -> dict[str, Any]:
    """The ``Auth`` oneof of ``EmailProviderSMTP``: exactly one member, present even if empty."""
    if config.authorization_method == AuthorizationMethod.MICROSOFT_CLIENT_CREDENTIALS:
        return {"xoauth2": xoauth2.render(config.authentication_object)}
    return {"plain": {}} if config.username else {"none": {}}


def email_provider(config: SmtpConfig) -> dict[str, Any]:
    """``zitadel.settings.v1.EmailProvider`` with its ``smtp`` config."""
    return omit_zero(
        {
            "details": object_details(config.pk),
            "id": str(config.pk),
            "state": EMAIL_ACTIVE if config.is_active else EMAIL_INACTIVE,
            "description": config.description,
            "smtp": {**omit_zero(_server(config)), **_auth(config)},
        }
    )


# --- inputs --------------------------------------------------------------------------------


def proto_name(json_name: str) -> str:
    """The proto name of a lowerCamel JSON name: ``senderAddress`` is ``sender_address``."""
    return re.sub(r"[A-Z]", lambda m: "_" + m.group(0).lower(), json_name)


class ProtoMessage(serializers.Serializer[dict[str, Any]]):
    """A proto3 message read as protojson reads it.

    Each field is found under its JSON (lowerCamel) or its proto (snake_case) name; the same
    field twice, under either name, is protojson's "duplicate field" (InvalidArgument), and so
    is a second member of a ``oneof`` (``oneofs``: the oneof's name and its members). A nested
    message sent as ``null`` is unset, as protojson reads it.
    """

    oneofs: ClassVar[dict[str, tuple[str, ...]]] = {}

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None and self.parent is not None:
            return True, None
        return super().validate_empty_values(data)

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if isinstance(data, Mapping):
            data = self.by_json_name(data)
        return super().to_internal_value(data)

    def by_json_name(self, data: Mapping[str, Any]) -> dict[str, Any]:
        aliases = {proto_name(n): n for n, _ in self.fields.items() if proto_name(n) != n}
        named: dict[str, Any] = {}
        for key, value in data.items():
            name = aliases.get(key, key)
            if name in named:
                raise duplicate_field_error(key)
            named[name] = value
        for oneof, members in self.oneofs.items():
            chosen = [name for name in named if name in members and named[name] is not None]
            if len(chosen) > 1:
                raise exceptions.ParseError(
                    f'error parsing "{chosen[1]}", oneof {oneof} is already set'
                )
        return named


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
    """A proto3 ``uint64``: a JSON number or a decimal string, 0 to 2^64-1."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", 0)
        kwargs.setdefault("min_value", 0)
        kwargs.setdefault("max_value", UINT64_MAX)
        super().__init__(**kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None:
            return True, 0
        return super().validate_empty_values(data)


class ProtoUInt32Field(ProtoUInt64Field):
    """A proto3 ``uint32``: 0 to 4294967295."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_value", UINT32_MAX)
        super().__init__(**kwargs)


class ProtoRepeatedField(serializers.ListField):
    """A proto3 ``repeated`` field: ``null`` or missing is the empty list."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("default", list)
        super().__init__(**kwargs)

    def validate_empty_values(self, data: Any) -> tuple[bool, Any]:
        if data is None:
            return True, []
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


class ZitadelSmtpConfigInput(ProtoMessage):
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

    def core_data(
        self, *, keep_password: bool, current: SmtpConfig | None = None
    ) -> dict[str, Any]:
        """Core field names; an empty password is omitted when ``keep_password`` (updates).

        ``current`` is the configuration being updated (subclasses may need it)."""
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


class ZitadelPasswordInput(ProtoMessage):
    password = ProtoCharField(style={"input_type": "password"}, write_only=True)


class ZitadelReceiverInput(ProtoMessage):
    """``TestSMTPConfigById``: where the test message goes."""

    receiverAddress = required_text(200, validators=[_address])


class ZitadelSmtpTestInput(ProtoMessage):
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

    def core_data(self, *, current: SmtpConfig | None = None) -> dict[str, Any]:
        """Core field names; an empty password means "the stored one, if it may be reused"."""
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


class ZitadelListQuery(ProtoMessage):
    """``zitadel.v1.ListQuery``: ``offset`` a uint64, ``limit`` a uint32 (0: no limit)."""

    # A uint64, but no database offsets by more than a signed 64-bit number: InvalidArgument.
    offset = ProtoUInt64Field(max_value=2**63 - 1)
    limit = ProtoUInt32Field()
    asc = ProtoBoolField()


class ZitadelSearchInput(ProtoMessage):
    """``ListSMTPConfigs`` and ``ListEmailProviders``: an optional query (``null``: none)."""

    query = ZitadelListQuery(required=False)


# --- email providers: the SMTP provider's auth oneof ---------------------------------------


def _no_client_secret(value: str) -> None:
    if value:
        raise serializers.ValidationError(xoauth2.SECRET_STAYS_ON_CREDENTIAL)


@extend_schema_field({"type": "object", "description": "No AUTH: send `{}`."})
class SmtpNoAuthInput(ProtoMessage):
    """``SMTPNoAuth``: the server is used without AUTH."""


class SmtpPlainAuthInput(ProtoMessage):
    """``SMTPPlainAuth``: AUTH with ``user`` and this password."""

    password = ProtoCharField(max_length=200, style={"input_type": "password"}, write_only=True)


class SmtpClientCredentialsInput(ProtoMessage):
    """``SMTPXOAuth2Auth.ClientCredentials``."""

    clientId = ProtoCharField(max_length=200)
    clientSecret = ProtoCharField(
        max_length=200,
        style={"input_type": "password"},
        write_only=True,
        validators=[_no_client_secret],
        help_text="Must be empty: the secret is kept on the Outbound credential.",
    )


class SmtpXOAuth2Input(ProtoMessage):
    """``SMTPXOAuth2Auth``: names an Outbound Microsoft client-credentials credential."""

    tokenEndpoint = ProtoCharField(max_length=200)
    scopes = ProtoRepeatedField(child=required_text(100), max_length=20)
    clientCredentials = SmtpClientCredentialsInput(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if attrs.get("clientCredentials") is None:
            raise serializers.ValidationError(
                {"clientCredentials": [xoauth2.NO_CLIENT_CREDENTIALS]}
            )
        return attrs


class SmtpAuthOneof(ProtoMessage):
    """The ``Auth`` oneof of the email-provider SMTP requests: ``none``, ``plain`` or
    ``xoauth2``. Sending none of them keeps the configuration's method (as ``/smtp`` does)."""

    none = SmtpNoAuthInput(required=False)
    plain = SmtpPlainAuthInput(required=False)
    xoauth2 = SmtpXOAuth2Input(required=False)

    oneofs: ClassVar[dict[str, tuple[str, ...]]] = {"Auth": ("none", "plain", "xoauth2")}

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if attrs.get("none") is not None and attrs.get("user"):
            raise serializers.ValidationError({"user": [NONE_WITH_USER]})
        return attrs

    def with_auth(self, data: dict[str, Any], current: SmtpConfig | None) -> dict[str, Any]:
        """``data`` (core names) with the chosen auth applied.

        ``none`` clears the user and password; ``plain`` is username and password (its own
        password, else the deprecated top-level one; neither keeps the stored one on an
        update); ``xoauth2`` is Microsoft client credentials through the credential it names.
        """
        v = self.validated_data
        data = dict(data)
        if v.get("none") is not None:
            data.update(
                authorization_method=AuthorizationMethod.USERNAME_AND_PASSWORD,
                username="",
                password="",
            )
        elif v.get("xoauth2") is not None:
            settings = v["xoauth2"]
            data.update(
                authorization_method=AuthorizationMethod.MICROSOFT_CLIENT_CREDENTIALS,
                authentication_object=xoauth2.credential_for(
                    token_endpoint=settings["tokenEndpoint"],
                    client_id=settings["clientCredentials"]["clientId"],
                    scopes=settings["scopes"],
                    current=current.authentication_object if current else None,
                ),
                password="",  # XOAUTH2 has no password; a saved one is dropped
            )
        elif v.get("plain") is not None:
            data["authorization_method"] = AuthorizationMethod.USERNAME_AND_PASSWORD
            if v["plain"]["password"]:
                data["password"] = v["plain"]["password"]
        return data


class EmailSmtpInput(ZitadelSmtpConfigInput, SmtpAuthOneof):
    """``AddEmailProviderSMTP`` / ``UpdateEmailProviderSMTP``: ``SMTPConfig``'s fields and
    the auth oneof."""

    def core_data(
        self, *, keep_password: bool, current: SmtpConfig | None = None
    ) -> dict[str, Any]:
        return self.with_auth(super().core_data(keep_password=keep_password), current)


class EmailSmtpTestInput(ZitadelSmtpTestInput, SmtpAuthOneof):
    """``TestEmailProviderSMTP``: a full SMTP provider, a receiver, optionally a stored id."""

    def core_data(self, *, current: SmtpConfig | None = None) -> dict[str, Any]:
        return self.with_auth(super().core_data(), current)


# --- outputs, for the schema ---------------------------------------------------------------


# Proto3 JSON leaves out every field that holds its zero value ("", false, 0, [], {}), so
# only what can never be zero is required below.


class ZitadelObjectDetailsOutput(serializers.Serializer[dict[str, Any]]):
    sequence = serializers.CharField(required=False, help_text="uint64 as a string")
    creationDate = serializers.DateTimeField(required=False)
    changeDate = serializers.DateTimeField(required=False)
    resourceOwner = serializers.CharField()


class ZitadelSmtpConfigOutput(serializers.Serializer[dict[str, Any]]):
    details = ZitadelObjectDetailsOutput()
    id = serializers.CharField()
    senderAddress = serializers.CharField(required=False)
    senderName = serializers.CharField(required=False)
    tls = serializers.BooleanField(required=False)
    host = serializers.CharField(required=False, help_text="host:port")
    user = serializers.CharField(required=False)
    replyToAddress = serializers.CharField(required=False)
    state = serializers.ChoiceField(choices=[STATE_ACTIVE, STATE_INACTIVE])
    description = serializers.CharField(required=False)


class ZitadelGetSmtpConfigOutput(serializers.Serializer[dict[str, Any]]):
    smtpConfig = ZitadelSmtpConfigOutput()


class ZitadelListDetailsOutput(serializers.Serializer[dict[str, Any]]):
    totalResult = serializers.CharField(help_text="uint64 as a string; left out when 0")
    processedSequence = serializers.CharField(
        help_text="uint64 as a string: the latest event of the SMTP configurations; left out when 0"
    )
    viewTimestamp = serializers.DateTimeField()

    def get_fields(self) -> dict[str, serializers.Field]:
        fields = super().get_fields()
        for name in ("totalResult", "processedSequence"):  # proto3 JSON leaves out zeros
            fields[name].required = False
        return fields


class ZitadelSearchOutput(serializers.Serializer[dict[str, Any]]):
    details = ZitadelListDetailsOutput()
    result = ZitadelSmtpConfigOutput(many=True, required=False, help_text="left out when empty")


@extend_schema_field({"type": "object", "maxProperties": 0, "description": "Always `{}`."})
class EmptyMessageField(serializers.DictField):
    """An empty message (``SMTPNoAuth``, ``SMTPPlainAuth``): present as ``{}`` when chosen."""


class ClientCredentialsOutput(serializers.Serializer[dict[str, Any]]):
    clientId = serializers.CharField(required=False)


class XOAuth2Output(serializers.Serializer[dict[str, Any]]):
    tokenEndpoint = serializers.CharField(required=False)
    scopes = serializers.ListField(child=serializers.CharField(), required=False)
    clientCredentials = ClientCredentialsOutput(required=False)


class EmailProviderSmtpOutput(serializers.Serializer[dict[str, Any]]):
    """``EmailProviderSMTP``: exactly one of ``none``, ``plain``, ``xoauth2``."""

    senderAddress = serializers.CharField(required=False)
    senderName = serializers.CharField(required=False)
    tls = serializers.BooleanField(required=False)
    host = serializers.CharField(required=False, help_text="host:port")
    user = serializers.CharField(required=False)
    replyToAddress = serializers.CharField(required=False)
    none = EmptyMessageField(required=False)
    plain = EmptyMessageField(required=False)
    xoauth2 = XOAuth2Output(required=False)


class EmailProviderOutput(serializers.Serializer[dict[str, Any]]):
    details = ZitadelObjectDetailsOutput()
    id = serializers.CharField()
    state = serializers.ChoiceField(choices=[EMAIL_ACTIVE, EMAIL_INACTIVE])
    description = serializers.CharField(required=False)
    smtp = EmailProviderSmtpOutput()


class GetEmailProviderOutput(serializers.Serializer[dict[str, Any]]):
    config = EmailProviderOutput()


class ListEmailProvidersOutput(serializers.Serializer[dict[str, Any]]):
    details = ZitadelListDetailsOutput()
    result = EmailProviderOutput(many=True, required=False, help_text="left out when empty")


class EmailHttpInput(serializers.Serializer[dict[str, Any]]):
    """``AddEmailProviderHTTP`` / ``UpdateEmailProviderHTTP`` (answered Unimplemented)."""

    endpoint = serializers.CharField(required=False)
    description = serializers.CharField(required=False)


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
