"""App config for webhooks: endpoints, their deliveries, Standard Webhooks signing."""

from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "outbound.webhooks"
    label = "webhooks"

    def ready(self) -> None:
        from outbound.core import publish
        from outbound.webhooks.services import SUBSCRIPTIONS

        publish.subscribe(SUBSCRIPTIONS)
