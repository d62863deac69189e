"""Joins the two migrations made side by side on 0012: the failover state and the versions."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("mail", "0013_failover_state"),
        ("mail", "0013_smtpconfigversion"),
    ]

    operations = []
