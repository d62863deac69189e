"""URLs of the integrations API."""

from rest_framework.routers import SimpleRouter

from outbound.integrations.api.views import AuthenticationObjectViewSet

router = SimpleRouter()
router.register(
    "authentication-objects", AuthenticationObjectViewSet, basename="authentication-object"
)

urlpatterns = router.urls
