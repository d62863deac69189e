"""Accounts API: tokens, API keys, users, roles and the caller's permissions."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.exceptions import AuthenticationFailed, NotFound, Throttled
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer
from rest_framework.views import APIView
from rest_framework_simplejwt.views import TokenObtainPairView
from rest_framework_simplejwt.views import TokenRefreshView as TokenRefreshViewBase

from outbound.accounts import selectors, services, throttling
from outbound.accounts.api.serializers import (
    ApiKeyCreatedSerializer,
    ApiKeyCreateInput,
    ApiKeySerializer,
    PermissionFlagsSerializer,
    RoleSerializer,
    TokenRefreshRequestSerializer,
    UserSerializer,
)
from outbound.accounts.models import ApiKey, Role, User
from outbound.core.api.autocomplete import AutocompleteMixin
from outbound.core.api.viewsets import ListFiltersOnlyMixin
from outbound.core.authentication import RefuseApiKeys
from outbound.core.permissions import (
    AUTHENTICATED,
    PERMISSIONS,
    HasOutboundPermission,
    resource_permissions,
)


class TokenView(TokenObtainPairView):
    """``POST /api/auth/token/``: a JWT pair; failed attempts per username are throttled."""

    permission_classes = [AllowAny]  # type: ignore[assignment]
    error_statuses = {
        401: "No active account has these credentials.",
        429: "Too many failed logins for this username: `Retry-After` says when to retry.",
    }

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        username = str(request.data.get("username", "")) if hasattr(request.data, "get") else ""
        slot = throttling.claim(username)
        if slot is None:
            raise Throttled(
                wait=throttling.retry_after(username),
                detail="Too many failed login attempts. Try again later.",
            )
        failed = False
        try:
            return super().post(request, *args, **kwargs)
        except AuthenticationFailed:
            failed = True  # the failure keeps its slot until the window has passed
            raise
        finally:
            if not failed:
                throttling.release(slot)


class TokenRefreshView(TokenRefreshViewBase):
    """``POST /api/auth/token/refresh/``: a new access token for a valid refresh token."""

    serializer_class = TokenRefreshRequestSerializer
    error_statuses = {
        401: "The refresh token is invalid or expired, its user is inactive, or the password "
        "changed since it was issued."
    }


@extend_schema_view(
    list=extend_schema(
        description="Your API keys (a superuser: everyone's), revoked ones included. "
        "The keys themselves are never shown again; `prefix` identifies each."
    ),
    retrieve=extend_schema(description="One of your API keys, without the key."),
    destroy=extend_schema(
        description="Revokes the key: it stops working at once; the entry stays, with "
        "`revoked_at`. Revoking a revoked key changes nothing."
    ),
)
class ApiKeyViewSet(
    mixins.CreateModelMixin,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[ApiKey],
):
    """``/api/auth/api-keys/``: the caller's own keys (a superuser's: everyone's). The key is
    in the create answer only; ``DELETE`` revokes, keeping the row for the audit trail."""

    permission_classes = [HasOutboundPermission, RefuseApiKeys]
    permission_actions = {
        "list": AUTHENTICATED,
        "retrieve": AUTHENTICATED,
        "create": AUTHENTICATED,
        "destroy": AUTHENTICATED,
    }

    def get_queryset(self) -> QuerySet[ApiKey]:
        return selectors.api_key_list(user=self.request.user)

    def get_serializer_class(self) -> type[BaseSerializer[Any]]:
        return ApiKeyCreateInput if self.action == "create" else ApiKeySerializer

    @extend_schema(
        request=ApiKeyCreateInput,
        responses={201: ApiKeyCreatedSerializer},
        description="Creates an API key for you and returns it in `key`: the only time it is "
        "shown. Send it as `Authorization: Api-Key <key>`. Its `permissions` must be ones you "
        "hold; it can never do more than you can at the time of use. Requests made with an "
        "API key cannot create or manage keys.",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        body = ApiKeyCreateInput(data=request.data)
        body.is_valid(raise_exception=True)
        key, plaintext = services.api_key_create(
            owner=request.user,  # type: ignore[arg-type]
            **body.validated_data,
            actor=request.user,
        )
        data = ApiKeyCreatedSerializer(key, context={"key": plaintext}).data
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: ApiKey) -> None:
        services.api_key_revoke(key=instance, actor=self.request.user)


class RoleViewSet(ListFiltersOnlyMixin, viewsets.ModelViewSet[Role]):
    serializer_class = RoleSerializer
    permission_resource = "roles"
    filterset_fields = ["name"]

    def get_queryset(self) -> QuerySet[Role]:
        return selectors.role_list()

    def perform_create(self, serializer: BaseSerializer[Role]) -> None:
        serializer.instance = services.role_create(
            **serializer.validated_data, actor=self.request.user
        )

    def perform_update(self, serializer: BaseSerializer[Role]) -> None:
        assert serializer.instance is not None
        serializer.instance = services.role_update(
            role=serializer.instance, data=serializer.validated_data, actor=self.request.user
        )

    def perform_destroy(self, instance: Role) -> None:
        services.role_delete(role=instance, actor=self.request.user)


class UserViewSet(ListFiltersOnlyMixin, AutocompleteMixin, viewsets.ModelViewSet[User]):
    serializer_class = UserSerializer
    permission_resource = "users"
    permission_actions = {"autocomplete": AUTHENTICATED}
    autocomplete_field = "username"
    filterset_fields = ["username", "email", "is_active"]

    def get_queryset(self) -> QuerySet[User]:
        return selectors.user_list()

    def perform_create(self, serializer: BaseSerializer[User]) -> None:
        serializer.instance = services.user_create(
            **serializer.validated_data, actor=self.request.user
        )

    def perform_update(self, serializer: BaseSerializer[User]) -> None:
        assert serializer.instance is not None
        serializer.instance = services.user_update(
            user=serializer.instance, data=serializer.validated_data, actor=self.request.user
        )

    def perform_destroy(self, instance: User) -> None:
        services.user_delete(user=instance, actor=self.request.user)


class ResourcePermissionsView(APIView):
    """``GET /api/users/permissions/<resource>``: the caller's five flags on a resource."""

    required_permissions = {"GET": AUTHENTICATED}

    @extend_schema(responses=PermissionFlagsSerializer)
    def get(self, request: Request, resource: str) -> Response:
        if resource not in PERMISSIONS:
            raise NotFound()
        return Response(resource_permissions(request.user, resource), status=status.HTTP_200_OK)
