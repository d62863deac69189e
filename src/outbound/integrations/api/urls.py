"""URLs of the integrations API."""

from rest_framework.routers import SimpleRouter

from outbound.integrations.api.views import (
    AuthenticationObjectViewSet,
    IntegrationViewSet,
    ObjectClassFieldViewSet,
    ObjectClassViewSet,
)

router = SimpleRouter()
router.register(
    "authentication-objects", AuthenticationObjectViewSet, basename="authentication-object"
)
router.register("object-classes", ObjectClassViewSet, basename="object-class")
router.register(
    r"object-classes/(?P<object_class_pk>[^/.]+)/fields",
    ObjectClassFieldViewSet,
    basename="object-class-field",
)
router.register("integrations", IntegrationViewSet, basename="integration")

urlpatterns = router.urls
