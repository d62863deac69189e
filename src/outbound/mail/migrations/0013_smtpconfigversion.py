"""Versions of SMTP configurations (issue 14): the table, and version 1 of every existing
configuration, written from its current state.

The initial version's time and author are the configuration's last change (``modified_at``,
``modified_by``), its source that of the configuration's latest event ("" — unknown — when it
has none or the event predates sources), and its ``changed_fields`` empty: what that change
changed is not known. The password is copied as it is sealed: bound to the configuration and
to the destination the version's values hold, it opens for exactly that again (see
``SmtpConfigVersion.secret_context``). The fields are written out here as they were when this
migration was made.
"""

import uuid

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

SETTINGS = (
    "description",
    "host",
    "port",
    "security",
    "username",
    "authorization_method",
    "sender_address",
    "sender_name",
    "reply_to_address",
    "failure_emails",
    "timeout",
)


def initial_versions(apps, schema_editor):
    config_model = apps.get_model("mail", "SmtpConfig")
    version_model = apps.get_model("mail", "SmtpConfigVersion")
    event_model = apps.get_model("core", "Event")
    rows = []
    for config in config_model.objects.select_related("modified_by").order_by("pk").iterator():
        values = {name: getattr(config, name) for name in SETTINGS}
        values["authentication_object"] = config.authentication_object_id
        password = (config.sealed_secrets or {}).get("password")
        latest = (
            event_model.objects.filter(resource_type="smtp_config", resource_id=str(config.pk))
            .order_by("-sequence")
            .values_list("source", flat=True)
            .first()
        )
        user = config.modified_by
        rows.append(
            version_model(
                uid=uuid.uuid4(),
                config=config,
                number=config.version,
                created_at=config.modified_at,
                created_by=user,
                created_by_username=getattr(user, "username", "") or "",
                source=latest or "",
                changed_fields=[],
                values=values,
                sealed_secrets={"password": password} if password else {},
            )
        )
    version_model.objects.bulk_create(rows, batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0012_smtpconfig_standby_version"),
        ("core", "0003_event_source"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="SmtpConfigVersion",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("uid", models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ("sealed_secrets", models.JSONField(blank=True, default=dict, editable=False)),
                ("number", models.PositiveIntegerField()),
                ("created_at", models.DateTimeField(default=django.utils.timezone.now)),
                ("created_by_username", models.CharField(blank=True, default="", max_length=150)),
                (
                    "source",
                    models.CharField(
                        blank=True,
                        choices=[
                            ("alx", "ALX API"),
                            ("native", "Outbound API"),
                            ("zitadel", "ZITADEL API"),
                            ("hitachi", "Hitachi API"),
                            ("commvault", "Commvault API"),
                            ("privx", "PrivX API"),
                            ("console", "Console"),
                            ("cli", "Command line"),
                        ],
                        default="",
                        max_length=20,
                    ),
                ),
                ("changed_fields", models.JSONField(blank=True, default=list)),
                ("values", models.JSONField(blank=True, default=dict)),
                ("restored_from", models.PositiveIntegerField(blank=True, null=True)),
                (
                    "config",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="versions",
                        to="mail.smtpconfig",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["config", "-number"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("config", "number"), name="mail_smtp_config_version_number"
                    )
                ],
            },
        ),
        migrations.RunPython(initial_versions, migrations.RunPython.noop),
    ]
