"""Each attempt keeps the ``host:port`` it used; earlier attempts take their
configuration's current one (the best there is)."""

from django.db import migrations, models


def fill_server(apps, schema_editor):
    Attempt = apps.get_model("mail", "Attempt")
    SmtpConfig = apps.get_model("mail", "SmtpConfig")
    for pk, host, port in SmtpConfig.objects.values_list("pk", "host", "port"):
        Attempt.objects.filter(config_id=pk).update(server=f"{host}:{port}")


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0005_message_request_fingerprint"),
    ]

    operations = [
        migrations.AddField(
            model_name="attempt",
            name="server",
            field=models.CharField(blank=True, default="", max_length=300),
        ),
        migrations.RunPython(fill_server, migrations.RunPython.noop),
    ]
