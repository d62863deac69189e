"""Re-seal authentication objects' secrets bound to the endpoint they were saved for (issue 10).

Before, a secret's associated data named only its row and field; now it also names the
provider's destination parameters (Microsoft: tenant, client id, authority URL; iManage:
server URL, username, client id), so it opens for that endpoint only. The lists are written
out here as they were when this migration was made.
"""

from django.db import migrations

from outbound.core.rotation import rebind
from outbound.core.secrets import binding_text

DESTINATIONS = {
    "microsoft_client_credentials": ("tenant_id", "client_id", "authority_url"),
    "imanage": ("server_url", "username", "client_id"),
}


def _legacy(row, name):
    return f"integrations.authenticationobject:{row.uid}:{name}"


def _bound(row, name):
    params = row.parameters or {}
    destination = tuple(params.get(n) for n in DESTINATIONS.get(row.provider, ()))
    if not destination:
        return _legacy(row, name)
    return f"{_legacy(row, name)}@{binding_text(destination)}"


def forwards(apps, schema_editor):
    rows = apps.get_model("integrations", "AuthenticationObject").objects.exclude(
        sealed_secrets={}
    )
    rebind(rows, old_context=_legacy, new_context=_bound)


def backwards(apps, schema_editor):
    rows = apps.get_model("integrations", "AuthenticationObject").objects.exclude(
        sealed_secrets={}
    )
    rebind(rows, old_context=_bound, new_context=_legacy)


class Migration(migrations.Migration):
    dependencies = [("integrations", "0002_object_classes_and_integrations")]
    operations = [migrations.RunPython(forwards, backwards)]
