"""Output and input of ``/api/smtp-configurations/{id}/versions/`` and ``…/rollback/``.

A version shows its settings (never the password: ``has_password`` says whether one was
saved with it) and who made it, when, which way in, and which fields that save changed.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from outbound.core import events
from outbound.mail.choices import NATIVE_SECURITY, SECURITY_NATIVE, AuthorizationMethod
from outbound.mail.models import SmtpConfigVersion
from outbound.mail.versions import SETTINGS


class SmtpConfigVersionValues(serializers.Serializer[dict[str, Any]]):
    """The settings as that version saved them, named as ``/api/smtp-configurations/`` names
    them."""

    description = serializers.CharField()
    host = serializers.CharField()
    port = serializers.IntegerField()
    security = serializers.ChoiceField(
        choices=list(NATIVE_SECURITY),
        help_text="As `/api/smtp-configurations/` names it: `none`, `starttls`, `tls` (implicit).",
    )
    username = serializers.CharField()
    authorization_method = serializers.ChoiceField(choices=AuthorizationMethod.choices)
    authentication_object = serializers.IntegerField(
        allow_null=True, help_text="The authentication object's id (it may be deleted since)."
    )
    sender_address = serializers.CharField()
    sender_name = serializers.CharField()
    reply_to_address = serializers.CharField()
    failure_emails = serializers.ListField(child=serializers.CharField())
    timeout = serializers.FloatField(allow_null=True)


class SmtpConfigVersionSerializer(serializers.ModelSerializer[SmtpConfigVersion]):
    number = serializers.IntegerField(
        help_text="1 for the configuration's first saved state, one more for each save that "
        "changed a setting; the configuration's `version` is its latest."
    )
    created_at = serializers.DateTimeField(help_text="When this state was saved.")
    created_by = serializers.SerializerMethodField(
        help_text="The username of who saved it, as at the time; null: no signed-in user "
        "(the command line)."
    )
    # The metaclass takes declared fields off the class, so this does not shadow Field.source.
    source = serializers.SerializerMethodField(  # type: ignore[assignment]
        help_text="Which way in the save came: an API shape (`alx`, `native`, `zitadel`, "
        "`hitachi`, `commvault`, `privx`), the `console`, or the command line (`cli`); "
        f"`{events.UNKNOWN_SOURCE}`: a configuration saved before versions were (its "
        "version 1 was written when they were introduced)."
    )
    changed_fields = serializers.ListField(
        child=serializers.CharField(),
        help_text="The names of the settings this save changed (`password` when the password "
        "did; never a value). Empty for a version 1 written when versions were introduced.",
    )
    values = serializers.SerializerMethodField(
        help_text="The settings as saved (never the password)."
    )
    has_password = serializers.BooleanField(
        help_text="Whether a password was saved with this version (a rollback restores it)."
    )
    restored_from = serializers.IntegerField(
        allow_null=True,
        help_text="The version a rollback restored, when this version is one; else null.",
    )

    class Meta:
        model = SmtpConfigVersion
        fields = [
            "number",
            "created_at",
            "created_by",
            "source",
            "changed_fields",
            "values",
            "has_password",
            "restored_from",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_created_by(self, version: SmtpConfigVersion) -> str | None:
        return version.created_by_username or None

    @extend_schema_field(serializers.ChoiceField(choices=events.SOURCE_VALUES))
    def get_source(self, version: SmtpConfigVersion) -> str:
        return version.source or events.UNKNOWN_SOURCE

    @extend_schema_field(SmtpConfigVersionValues)
    def get_values(self, version: SmtpConfigVersion) -> dict[str, Any]:
        values = {name: (version.values or {}).get(name) for name in SETTINGS}
        security = str(values["security"])
        values["security"] = SECURITY_NATIVE.get(security, security)
        return values


class SmtpConfigRollbackInput(serializers.Serializer[dict[str, Any]]):
    version = serializers.IntegerField(
        min_value=1, help_text="The number of the version to restore (see `versions/`)."
    )
