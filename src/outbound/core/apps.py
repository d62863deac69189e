"""App config for the shared core (events, secrets, permissions, policies)."""

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "outbound.core"
    label = "core"
    verbose_name = "Outbound core"
