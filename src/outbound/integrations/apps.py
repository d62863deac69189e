"""App config for integrations: authentication objects (and, later, integration configurations)."""

from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "outbound.integrations"
    label = "integrations"
