"""Attachments: one row per file a message carries; the content is in Django's storage."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0006_attempt_server"),
    ]

    operations = [
        migrations.CreateModel(
            name="Attachment",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("filename", models.CharField(max_length=255)),
                ("content_type", models.CharField(max_length=255)),
                ("size", models.PositiveBigIntegerField()),
                ("content_id", models.CharField(blank=True, default="", max_length=200)),
                ("storage_name", models.CharField(max_length=255)),
                ("sha256", models.CharField(max_length=64)),
                (
                    "message",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="attachments",
                        to="mail.message",
                    ),
                ),
            ],
            options={
                "ordering": ["id"],
            },
        ),
    ]
