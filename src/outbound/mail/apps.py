"""App config for mail: SMTP configurations, the connection tester, the sender."""

from django.apps import AppConfig


class MailConfig(AppConfig):
    name = "outbound.mail"
    label = "mail"
