"""App config for webhooks: endpoints, their deliveries, Standard Webhooks signing."""

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "outbound.webhooks"
    label = "webhooks"
