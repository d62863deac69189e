"""URLs of the accounts API."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from outbound.accounts.api.views import (
    ApiKeyViewSet,
    ResourcePermissionsView,
    RoleViewSet,
    TokenRefreshView,
    TokenView,
    UserViewSet,
)

router = SimpleRouter()
router.register("auth/api-keys", ApiKeyViewSet, basename="api-key")
router.register("roles", RoleViewSet, basename="role")
router.register("users", UserViewSet, basename="user")

urlpatterns = [
    path("auth/token/", TokenView.as_view(), name="token-obtain"),
    path("auth/token/refresh/", TokenRefreshView.as_view(), name="token-refresh"),
    re_path(
        r"^users/permissions/(?P<resource>[a-z_]+)/?$",
        ResourcePermissionsView.as_view(),
        name="user-permissions",
    ),
    *router.urls,
]
