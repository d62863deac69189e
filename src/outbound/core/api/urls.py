"""URLs of the core API: the event stream."""

from rest_framework.routers import SimpleRouter

from outbound.core.api.events import EventViewSet

router = SimpleRouter()
router.register("events", EventViewSet, basename="event")

urlpatterns = router.urls
