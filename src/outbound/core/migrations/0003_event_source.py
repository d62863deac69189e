"""Events record which way in made the change (`source`); older events: "" (unknown)."""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('core', '0002_cache_table'),
    ]

    operations = [
        migrations.AddField(
            model_name='event',
            name='source',
            field=models.CharField(blank=True, choices=[('alx', 'ALX API'), ('native', 'Outbound API'), ('zitadel', 'ZITADEL API'), ('hitachi', 'Hitachi API'), ('commvault', 'Commvault API'), ('privx', 'PrivX API'), ('console', 'Console'), ('cli', 'Command line')], default='', max_length=20),
        ),
    ]
