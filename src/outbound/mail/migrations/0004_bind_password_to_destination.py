"""Re-seal saved SMTP passwords bound to the destination they were saved for (issue 10).

Before, a password's associated data named only its row and field; now it also names the
host, port, TLS mode, username and authorization method, so it opens for that server only.
The binding is written out here as it was when this migration was made.
"""

from django.db import migrations

from outbound.core.rotation import rebind
from outbound.core.secrets import binding_text


def _legacy(row, name):
    return f"mail.smtpconfig:{row.uid}:{name}"


def _bound(row, name):
    destination = (row.host, row.port, row.security, row.username, row.authorization_method)
    return f"{_legacy(row, name)}@{binding_text(destination)}"


def forwards(apps, schema_editor):
    rows = apps.get_model("mail", "SmtpConfig").objects.exclude(sealed_secrets={})
    rebind(rows, old_context=_legacy, new_context=_bound)


def backwards(apps, schema_editor):
    rows = apps.get_model("mail", "SmtpConfig").objects.exclude(sealed_secrets={})
    rebind(rows, old_context=_bound, new_context=_legacy)


class Migration(migrations.Migration):
    dependencies = [("mail", "0003_outbox")]
    operations = [migrations.RunPython(forwards, backwards)]
