"""URLs of the webhooks API."""

from rest_framework.routers import SimpleRouter

from outbound.webhooks.api.views import WebhookViewSet

router = SimpleRouter()
router.register("webhooks", WebhookViewSet, basename="webhook")

urlpatterns = router.urls
