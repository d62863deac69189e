"""SMTP configurations: any number stored, at most one active (enforced by the database)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from outbound.core.models import SecretHolder
from outbound.core.validators import (
    reject_control_characters,
    validate_address,
    validate_host,
    validate_multiline_text,
)
from outbound.integrations.providers import MICROSOFT_CLIENT_CREDENTIALS
from outbound.mail.choices import MAX_FAILURE_EMAILS, AuthorizationMethod, Security

REQUIRED = {"blank": "This field is required.", "null": "This field is required."}


class SmtpConfig(SecretHolder):
    """One SMTP server Outbound can send through. The password is a sealed secret."""

    SECRET_PASSWORD = "password"

    description = models.CharField(
        max_length=200, blank=True, default="", validators=[validate_multiline_text]
    )
    host = models.CharField(max_length=255, validators=[validate_host], error_messages=REQUIRED)
    port = models.PositiveIntegerField(
        validators=[MinValueValidator(0), MaxValueValidator(65535)], error_messages=REQUIRED
    )
    security = models.CharField(max_length=16, choices=Security.choices, default=Security.STARTTLS)
    username = models.CharField(
        max_length=254, blank=True, default="", validators=[reject_control_characters]
    )
    authorization_method = models.CharField(
        max_length=64,
        choices=AuthorizationMethod.choices,
        default=AuthorizationMethod.USERNAME_AND_PASSWORD,
    )
    authentication_object = models.ForeignKey(
        "integrations.AuthenticationObject",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="smtp_configs",
    )
    sender_address = models.CharField(
        max_length=254, blank=True, default="", validators=[validate_address]
    )
    sender_name = models.CharField(
        max_length=200, blank=True, default="", validators=[reject_control_characters]
    )
    reply_to_address = models.CharField(
        max_length=254, blank=True, default="", validators=[validate_address]
    )
    failure_emails = models.JSONField(default=list, blank=True)
    timeout = models.FloatField(
        null=True, blank=True, validators=[MinValueValidator(0.1), MaxValueValidator(300)]
    )
    is_active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    modified_at = models.DateTimeField(auto_now=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    modified_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["is_active"],
                condition=Q(is_active=True),
                name="mail_one_active_smtp_config",
            ),
            models.CheckConstraint(
                condition=Q(port__gte=0) & Q(port__lte=65535), name="mail_smtp_port_range"
            ),
            models.CheckConstraint(
                condition=Q(security__in=[s.value for s in Security]),
                name="mail_smtp_security_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if not isinstance(self.failure_emails, list):
            errors["failure_emails"] = ["Enter a list of email addresses."]
        else:
            if len(self.failure_emails) > MAX_FAILURE_EMAILS:
                errors["failure_emails"] = [f"Up to {MAX_FAILURE_EMAILS} items allowed."]
            for address in self.failure_emails:
                try:
                    validate_address(str(address))
                except ValidationError as exc:
                    errors.setdefault("failure_emails", []).extend(exc.messages)
                    break
        obj = self.authentication_object
        if obj is not None and obj.provider != MICROSOFT_CLIENT_CREDENTIALS.key:
            errors["authentication_object"] = [f"{obj.pk} is not a valid choice."]
        if self.authorization_method == AuthorizationMethod.MICROSOFT_CLIENT_CREDENTIALS:
            if self.security == Security.NONE:  # bearer tokens never cross in clear
                errors["security"] = ["Microsoft client credentials require TLS."]
            if obj is None:
                errors["authentication_object"] = ["This field is required."]
        if errors:
            raise ValidationError(errors)

    @property
    def has_password(self) -> bool:
        return self.has_secret(self.SECRET_PASSWORD)

    @property
    def effective_timeout(self) -> float:
        return float(self.timeout or settings.OUTBOUND_SMTP_TIMEOUT)
