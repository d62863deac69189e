"""SMTP configurations: any number stored, at most one active (enforced by the database)."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import post_delete
from django.dispatch import receiver
from django.utils import timezone

from outbound.core.encoding import join_host_port
from outbound.core.models import EventSource, SecretHolder
from outbound.core.validators import (
    reject_control_characters,
    validate_address,
    validate_host,
    validate_multiline_text,
)
from outbound.integrations.providers import MICROSOFT_CLIENT_CREDENTIALS
from outbound.mail.choices import MAX_FAILURE_EMAILS, AuthorizationMethod, Security

REQUIRED = {"blank": "This field is required.", "null": "This field is required."}
ACTIVE_NOT_STANDBY = "The active configuration cannot be a standby."
STANDBY_MAX = 32767


class SmtpConfig(SecretHolder):
    """One SMTP server Outbound can send through. The password is a sealed secret."""

    SECRET_PASSWORD = "password"
    # The destination the password is saved for: change one and the password must be entered
    # again (the services' rule), and it is sealed for these values (``secret_binding``).
    DESTINATION_FIELDS = ("host", "port", "security", "username", "authorization_method")

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
    # Failover rank: a standby is kept ready to serve when the active configuration fails;
    # lower is preferred, NULL is not a standby. The active configuration is never a
    # standby (clean() refuses it on a write, activation takes it off the list, and the
    # database checks it).
    # 0-32767 on every database (SQLite would store more than PostgreSQL's smallint).
    standby = models.PositiveSmallIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(STANDBY_MAX)]
    )
    # Every saved state is a version; the versions services increment it on each save.
    version = models.PositiveIntegerField(default=1)
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
            models.CheckConstraint(
                condition=Q(is_active=False) | Q(standby__isnull=True),
                name="mail_smtp_active_not_standby",
            ),
        ]

    def __str__(self) -> str:
        return join_host_port(self.host, self.port)  # [::1]:25, as the attempts record it

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
        if self.is_active and self.standby is not None:
            errors["standby"] = [ACTIVE_NOT_STANDBY]
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

    def secret_binding(self, name: str) -> tuple[object, ...]:
        port = self.port
        if isinstance(port, str) and port.strip().isdecimal():
            port = int(port)
        return (self.host, port, self.security, self.username, self.authorization_method)

    def destination(self) -> tuple[object, ...]:
        return self.secret_binding(self.SECRET_PASSWORD)

    @property
    def has_password(self) -> bool:
        return self.has_secret(self.SECRET_PASSWORD)

    @property
    def effective_timeout(self) -> float:
        return float(self.timeout or settings.OUTBOUND_SMTP_TIMEOUT)


class SmtpTestResult(models.Model):
    """The last connection test of a saved configuration, as a test of exactly its server
    reported it (written by :meth:`outbound.mail.services.SmtpTestPlan.record`, which every
    test path passes through; dropped when the configuration's destination changes). The
    console's dashboard shows it with the active configuration."""

    config = models.OneToOneField(
        SmtpConfig, primary_key=True, on_delete=models.CASCADE, related_name="last_test"
    )
    tested_at = models.DateTimeField()
    ok = models.BooleanField()
    message = models.CharField(max_length=1000, blank=True, default="")
    failed_step = models.CharField(max_length=32, blank=True, default="")
    tls_version = models.CharField(max_length=32, blank=True, default="")
    cipher = models.CharField(max_length=200, blank=True, default="")
    certificate_subject = models.CharField(max_length=1000, blank=True, default="")
    certificate_not_after = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"last test of configuration {self.config_id}"


class SmtpConfigVersion(SecretHolder):
    """One saved state of a configuration's settings (``number`` 1, 2, … per configuration;
    ``SmtpConfig.version`` is the latest), written by :mod:`outbound.mail.versions` in the
    transaction of each write that changes them. ``values`` holds the non-secret settings;
    the password is kept as it was sealed then, in ``sealed_secrets``: the configuration's
    own ciphertext, bound to the configuration and to the destination in ``values``, so it
    opens only for that configuration pointed at that server again — which is what a
    rollback restores, both together (see :meth:`secret_context`). Key rotation re-seals it
    like any other secret (``outbound rotate-key``)."""

    config = models.ForeignKey(SmtpConfig, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # As at the time (the user may be renamed or deleted since), like Event.actor_username.
    created_by_username = models.CharField(max_length=150, blank=True, default="")
    # The way in, as the version's event records it (outbound.core.events.current_source);
    # "" for the versions the migration wrote from configurations saved before versions were.
    source = models.CharField(max_length=20, choices=EventSource.choices, blank=True, default="")
    changed_fields = models.JSONField(default=list, blank=True)
    values = models.JSONField(default=dict, blank=True)
    # The version a rollback restored (this version is then that state saved again).
    restored_from = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["config", "-number"]
        constraints = [
            models.UniqueConstraint(
                fields=["config", "number"], name="mail_smtp_config_version_number"
            ),
        ]

    def __str__(self) -> str:
        return f"version {self.number} of configuration {self.config_id}"

    def holder(self) -> SmtpConfig:
        """An unsaved configuration with this version's destination and the configuration's
        identity: what the password was sealed for."""
        destination = {name: self.values.get(name) for name in SmtpConfig.DESTINATION_FIELDS}
        return SmtpConfig(uid=self.config.uid, **destination)

    def secret_context(self, name: str) -> str:
        return self.holder().secret_context(name)

    @property
    def has_password(self) -> bool:
        return self.has_secret(SmtpConfig.SECRET_PASSWORD)


class MessageStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    SENDING = "sending", "Sending"
    SENT = "sent", "Sent"
    DEFERRED = "deferred", "Deferred"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class RecipientStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SENT = "sent", "Sent"
    DEFERRED = "deferred", "Deferred"
    FAILED = "failed", "Failed"


class RecipientKind(models.TextChoices):
    TO = "to", "To"
    CC = "cc", "Cc"
    BCC = "bcc", "Bcc"


class Message(models.Model):
    """One message in the outbox. Written with its recipients in the submitting request's
    transaction; the worker claims it with a lease, sends it with the configuration active
    at that moment and records every attempt."""

    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # NULL, not "", when absent: the per-caller unique constraint only covers given keys.
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)  # noqa: DJ001
    # SHA-256 of the submission (outbox.request_fingerprint): a key reused for another message
    # is refused instead of answering with the first one.
    request_fingerprint = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.QUEUED
    )
    subject = models.CharField(max_length=998, blank=True, default="")
    text = models.TextField(blank=True, default="")
    html = models.TextField(blank=True, default="")
    reply_to = models.CharField(max_length=254, blank=True, default="")
    headers = models.JSONField(default=dict, blank=True)
    message_id = models.CharField(max_length=255)
    is_failure_notice = models.BooleanField(default=False)
    config = models.ForeignKey(
        SmtpConfig, null=True, blank=True, on_delete=models.SET_NULL, related_name="messages"
    )
    attempt_count = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField()
    lease_owner = models.CharField(max_length=64, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=1000, blank=True, default="")
    # Write-ahead: the result of an attempt that reached recipients, noted on the row the
    # moment the server accepted the message and cleared when the results are written out
    # in bulk; a worker that takes the message over from a dead one completes the record
    # from it instead of sending the message again.
    outcome_note = models.JSONField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["submitted_by", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False),
                name="mail_message_idempotency_per_caller",
            )
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self) -> str:
        return f"message {self.pk} ({self.status})"


class Recipient(models.Model):
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="recipients")
    kind = models.CharField(max_length=3, choices=RecipientKind.choices)
    address = models.CharField(max_length=254)
    status = models.CharField(
        max_length=16, choices=RecipientStatus.choices, default=RecipientStatus.PENDING
    )
    smtp_code = models.PositiveSmallIntegerField(null=True, blank=True)
    smtp_reply = models.CharField(max_length=1000, blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.address


class Attempt(models.Model):
    """One delivery attempt of one message."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    config = models.ForeignKey(
        SmtpConfig, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # ``host:port`` as the attempt used it: the configuration may be edited or deleted since.
    server = models.CharField(max_length=300, blank=True, default="")
    worker = models.CharField(max_length=64, blank=True, default="")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, blank=True, default="")
    detail = models.CharField(max_length=1000, blank=True, default="")

    class Meta:
        ordering = ["number"]
        # The dashboard counts and lists the attempts of the last hours by when they ended.
        indexes = [models.Index(fields=["finished_at"], name="mail_attempt_finished_at")]

    def __str__(self) -> str:
        return f"attempt {self.number} of message {self.message_id}"


class Attachment(models.Model):
    """One file attached to a message. The content lives in Django's default storage under
    ``storage_name`` (never in this row or a task's arguments); ``sha256`` is checked when
    the sender reads it back."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    content_type = models.CharField(max_length=255)
    size = models.PositiveBigIntegerField()
    # Set for an inline part (``cid:`` in the html), without angle brackets.
    content_id = models.CharField(max_length=200, blank=True, default="")
    storage_name = models.CharField(max_length=255)
    sha256 = models.CharField(max_length=64)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.filename


class Worker(models.Model):
    """A running ``outbound worker`` process as its heartbeat reports it (every
    ``OUTBOUND_WORKER_BEAT`` seconds): ``/readyz`` counts the workers seen lately, so a
    monitor can alert when none is."""

    name = models.CharField(max_length=64, unique=True)  # host:pid:random, as in leases
    host = models.CharField(max_length=255)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class FailoverState(models.Model):
    """Which configuration serves delivery now (issue 14): one row (id 1), shared by every
    worker and written only with conditional updates (see :mod:`outbound.mail.failover`).
    It holds for ``primary``, the configuration that was active when it was written: once
    the admin activates another one it no longer applies (the active one serves)."""

    primary = models.ForeignKey(
        SmtpConfig, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # The standby serving instead of the primary; NULL: the primary serves.
    serving = models.ForeignKey(
        SmtpConfig, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    failures = models.PositiveIntegerField(default=0)  # consecutive server-level failures
    failing_since = models.DateTimeField(null=True, blank=True)  # the first of them
    since = models.DateTimeField(null=True, blank=True)  # when ``serving`` last changed
    probe_at = models.DateTimeField(null=True, blank=True)  # the last probe (primary/standbys)
    probe_ok = models.BooleanField(null=True, blank=True)
    probe_detail = models.CharField(max_length=1000, blank=True, default="")
    # The standbys' last probes: {"<config id>": {"at": iso, "ok": bool, "detail": str}}.
    standby_probes = models.JSONField(default=dict, blank=True)
    version = models.PositiveIntegerField(default=0)  # +1 on every switch and reset

    def __str__(self) -> str:
        return f"failover state (serving {self.serving_id or self.primary_id})"


@receiver(post_delete, sender=Attachment)
def _delete_stored_file(sender: type[Attachment], instance: Attachment, **kwargs: object) -> None:
    # Once the deletion is committed (a rolled-back delete keeps its file); a message's
    # deletion cascades here for each of its attachments.
    name = instance.storage_name
    transaction.on_commit(lambda: default_storage.delete(name))
