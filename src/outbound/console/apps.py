"""The console app."""

from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "outbound.console"
    label = "console"
    verbose_name = "Outbound console"
