"""Hitachi's ``EmailSetting``, ``TestMail`` and their envelopes, and the translation of an
``EmailSetting`` to and from the core's field names."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field, inline_serializer
from rest_framework import serializers

from outbound.core.encoding import InvalidBase64, decode_base64_text
from outbound.mail.choices import Security
from outbound.mail.models import SmtpConfig

# The one instance Hitachi knows: the active configuration (the product has one mail server).
INSTANCE_ID = "mailServerSetting#0"
# ``secureConnection`` <-> core ``security`` (OVERVIEW: TLS and SSL are implicit TLS).
SECURE_IN = {"plain": Security.NONE, "starttls": Security.STARTTLS, "tls": Security.SSL}
SECURE_IN["ssl"] = Security.SSL
SECURE_OUT = {Security.NONE: "Plain", Security.STARTTLS: "STARTTLS", Security.SSL: "TLS"}
SECURE_CHOICES = ["Plain", "STARTTLS", "TLS", "SSL"]
MAX_DESTINATIONS = 10


class SecureConnectionField(serializers.ChoiceField):
    """``Plain``/``STARTTLS``/``TLS`` (``SSL`` accepted as ``TLS``), in any letter case."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(choices=SECURE_CHOICES, **kwargs)

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid_choice", input=data)
        key = data.lower()
        if key not in SECURE_IN:
            self.fail("invalid_choice", input=data)
        return str(SECURE_IN[key])


@extend_schema_field({"type": "string", "format": "byte", "nullable": True})
class Base64PasswordField(serializers.Field):
    """Taken as sent: whether it must be a base64 string depends on ``updatePassword``, so
    the serializer's ``validate`` checks and decodes it (:func:`_decoded_password`)."""

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


def _decoded_password(raw: Any) -> str:
    if not isinstance(raw, str):
        raise serializers.ValidationError({"password": ["Not a valid string."]})
    try:
        return decode_base64_text(raw)
    except InvalidBase64 as exc:
        raise serializers.ValidationError({"password": [str(exc)]}) from None


class HitachiEmailSettingInput(serializers.Serializer[Any]):
    """The ``EmailSetting`` a client sends; every attribute is optional (absent: unchanged)."""

    instanceID = serializers.JSONField(required=False, help_text="Ignored: the path names it.")
    hostname = serializers.CharField(required=False, max_length=255)
    authenticationEnabled = serializers.BooleanField(required=False)
    userId = serializers.CharField(required=False, allow_blank=True, max_length=254)
    updatePassword = serializers.BooleanField(required=False)
    password = Base64PasswordField(
        required=False,
        allow_null=True,
        write_only=True,
        help_text="Base64 of the UTF-8 password; used when updatePassword is true, ignored "
        "(whatever it holds) when updatePassword is false.",
    )
    senderAddress = serializers.CharField(required=False, allow_blank=True, max_length=254)
    secureConnection = SecureConnectionField(required=False)
    portNumber = serializers.IntegerField(required=False, min_value=1, max_value=65535)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        raw = attrs.pop("password", None)
        update = attrs.get("updatePassword")
        # ``updatePassword: false`` means "keep the stored password": whatever ``password``
        # holds then (null, anything, invalid base64) is not looked at. Without
        # updatePassword, a password that is sent is taken as meant; null is no password.
        if update is not False and raw is not None:
            attrs["password"] = _decoded_password(raw)
        if update and "password" not in attrs:
            raise serializers.ValidationError({"password": ["This field is required."]})
        current: SmtpConfig | None = self.context.get("current")
        if attrs.get("authenticationEnabled"):
            username = attrs.get("userId", current.username if current else "")
            if not username:
                raise serializers.ValidationError({"userId": ["This field is required."]})
        return attrs


def core_data(attrs: dict[str, Any]) -> dict[str, Any]:
    """Validated ``EmailSetting`` attributes under core names (``password`` only when it
    changes)."""
    data: dict[str, Any] = {}
    if "hostname" in attrs:
        data["host"] = attrs["hostname"]
    if "portNumber" in attrs:
        data["port"] = attrs["portNumber"]
    if "secureConnection" in attrs:
        data["security"] = attrs["secureConnection"]
    if "senderAddress" in attrs:
        data["sender_address"] = attrs["senderAddress"]
    if attrs.get("authenticationEnabled") is False:
        # No authentication: no user and no stored password (userId is then ignored).
        data["username"] = ""
        data["password"] = ""
        return data
    if "userId" in attrs:
        data["username"] = attrs["userId"]
    # updatePassword:false keeps the stored password whatever ``password`` says; a password
    # sent without updatePassword is taken as meant.
    if "password" in attrs and attrs.get("updatePassword", True):
        data["password"] = attrs["password"]
    return data


class HitachiEmailSettingOutput(serializers.Serializer[Any]):
    """The ``EmailSetting`` Outbound answers with: never ``password``/``updatePassword``."""

    instanceID = serializers.CharField()
    hostname = serializers.CharField()
    authenticationEnabled = serializers.BooleanField()
    userId = serializers.CharField(
        required=False, help_text="Present only when authenticationEnabled is true."
    )
    senderAddress = serializers.CharField()
    secureConnection = serializers.ChoiceField(choices=["Plain", "STARTTLS", "TLS"])
    portNumber = serializers.IntegerField()


def email_setting(config: SmtpConfig | None) -> dict[str, Any]:
    """A configuration as Hitachi's ``EmailSetting`` (an empty one when none is active)."""
    if config is None:
        return {
            "instanceID": INSTANCE_ID,
            "hostname": "",
            "authenticationEnabled": False,
            "senderAddress": "",
            "secureConnection": "Plain",
            "portNumber": 25,
        }
    enabled = bool(config.username)
    out: dict[str, Any] = {
        "instanceID": INSTANCE_ID,
        "hostname": config.host,
        "authenticationEnabled": enabled,
    }
    if enabled:
        out["userId"] = config.username
    out["senderAddress"] = config.sender_address
    out["secureConnection"] = SECURE_OUT[Security(config.security)]
    out["portNumber"] = config.port
    return out


class HitachiPaginationSerializer(serializers.Serializer[Any]):
    page = serializers.IntegerField()
    pageSize = serializers.IntegerField()
    numPages = serializers.IntegerField()
    totalCount = serializers.IntegerField()


def email_setting_list_schema() -> serializers.Serializer[Any]:
    """The list envelope, for the schema only (``data`` would shadow ``Serializer.data``)."""
    return inline_serializer(
        "HitachiEmailSettingList",
        fields={
            "data": HitachiEmailSettingOutput(many=True),
            "pagination": HitachiPaginationSerializer(),
            "count": serializers.IntegerField(),
        },
    )


def email_setting_list(config: SmtpConfig | None) -> dict[str, Any]:
    data = [email_setting(config)] if config is not None else []
    count = len(data)
    return {
        "data": data,
        "pagination": {"page": 1, "pageSize": count, "numPages": 1, "totalCount": count},
        "count": count,
    }


class HitachiTestMailInput(serializers.Serializer[Any]):
    """``TestMail``: where to send the test mail, and the settings to send it with."""

    destinationAddresses = serializers.ListField(
        child=serializers.EmailField(max_length=254),
        min_length=1,
        max_length=MAX_DESTINATIONS,
    )
    emailSetting = HitachiEmailSettingInput(
        required=False, help_text="Absent: the saved settings are tested."
    )


class HitachiTestMailOutput(serializers.Serializer[Any]):
    destinationAddresses = serializers.ListField(child=serializers.CharField())
    emailSetting = serializers.DictField(
        help_text="The saved EmailSetting (with updatePassword false), to edit and send back."
    )


class HitachiInvokeInput(serializers.Serializer[Any]):
    parameters = serializers.ListField(child=HitachiTestMailInput(), min_length=1, max_length=1)


class HitachiActionTemplateOutput(serializers.Serializer[Any]):
    name = serializers.CharField()
    href = serializers.CharField()
    method = serializers.CharField()
    type = serializers.CharField()
    parameters = HitachiTestMailOutput(many=True)


class HitachiTestResultSerializer(serializers.Serializer[Any]):
    destinationAddress = serializers.CharField()
    status = serializers.CharField(help_text="`success` or `failed`.")
    message = serializers.CharField()
    steps = serializers.ListField(child=serializers.DictField())


class HitachiJobOutput(serializers.Serializer[Any]):
    instanceID = serializers.CharField()
    created = serializers.DateTimeField()
    updated = serializers.DateTimeField()
    completed = serializers.DateTimeField()
    state = serializers.CharField(help_text="`success`: every test mail was accepted.")
    affectedResource = serializers.ListField(child=serializers.CharField())
    result = HitachiTestResultSerializer(many=True)


class HitachiErrorSerializer(serializers.Serializer[Any]):
    errorSource = serializers.CharField()
    message = serializers.CharField()
    messageID = serializers.CharField()
    application = serializers.CharField()
