"""``/api/authentication-objects/``: CRUD, ``?provider=`` filter and autocomplete."""

from __future__ import annotations

from django.db.models import QuerySet
from rest_framework import viewsets
from rest_framework.serializers import BaseSerializer

from outbound.core.api.autocomplete import AutocompleteMixin
from outbound.core.permissions import AUTHENTICATED
from outbound.integrations import selectors, services
from outbound.integrations.api.serializers import AuthenticationObjectSerializer
from outbound.integrations.models import AuthenticationObject


class AuthenticationObjectViewSet(AutocompleteMixin, viewsets.ModelViewSet[AuthenticationObject]):
    serializer_class = AuthenticationObjectSerializer
    permission_resource = "authentication_objects"
    permission_actions = {"autocomplete": AUTHENTICATED}
    filterset_fields = ["provider", "name"]

    def get_queryset(self) -> QuerySet[AuthenticationObject]:
        return selectors.authentication_object_list()

    def perform_create(self, serializer: BaseSerializer[AuthenticationObject]) -> None:
        data = serializer.validated_data
        serializer.instance = services.authentication_object_create(
            name=data["name"],
            provider=data["provider"],
            params=data.get("params", {}),
            actor=self.request.user,
        )

    def perform_update(self, serializer: BaseSerializer[AuthenticationObject]) -> None:
        assert serializer.instance is not None
        serializer.instance = services.authentication_object_update(
            obj=serializer.instance, data=serializer.validated_data, actor=self.request.user
        )

    def perform_destroy(self, instance: AuthenticationObject) -> None:
        services.authentication_object_delete(obj=instance, actor=self.request.user)
