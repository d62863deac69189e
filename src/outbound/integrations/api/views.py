"""``/api/authentication-objects/``, ``/api/object-classes/…`` and ``/api/integrations/``."""

from __future__ import annotations

import json
import uuid
from typing import Any, cast

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema, extend_schema_view, inline_serializer
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from outbound.core.api.autocomplete import AutocompleteMixin
from outbound.core.api.metadata import list_columns
from outbound.core.api.throttling import CallOutThrottle
from outbound.core.api.viewsets import ListFiltersOnlyMixin
from outbound.core.pagination import CountingLimitOffsetPagination
from outbound.core.permissions import AUTHENTICATED, resource_permissions
from outbound.integrations import selectors, services
from outbound.integrations.api.integration_serializers import (
    IntegrationOutput,
    IntegrationTestInput,
    connection_test_serializer_for,
    details_document,
    documented_input,
    documented_output,
    page_json,
    serializer_for,
)
from outbound.integrations.api.object_class_serializers import (
    ObjectClassFieldSerializer,
    ObjectClassSerializer,
)
from outbound.integrations.api.rendering import (
    ListJSONRenderer,
    RenderedRows,
    integration_renderer_classes,
)
from outbound.integrations.api.serializers import (
    AuthenticationObjectSerializer,
    documented_serializer,
)
from outbound.integrations.filtersets import IntegrationFilterSet
from outbound.integrations.models import (
    AuthenticationObject,
    Integration,
    ObjectClass,
    ObjectClassField,
)


@extend_schema_view(
    list=extend_schema(responses=documented_serializer(many=True)),
    retrieve=extend_schema(responses=documented_serializer()),
    create=extend_schema(request=documented_serializer(), responses={201: documented_serializer()}),
    update=extend_schema(request=documented_serializer(), responses=documented_serializer()),
    partial_update=extend_schema(
        request=documented_serializer(), responses=documented_serializer()
    ),
)
class AuthenticationObjectViewSet(
    ListFiltersOnlyMixin, AutocompleteMixin, viewsets.ModelViewSet[AuthenticationObject]
):
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


class ObjectClassViewSet(
    ListFiltersOnlyMixin, AutocompleteMixin, viewsets.ModelViewSet[ObjectClass]
):
    serializer_class = ObjectClassSerializer
    permission_resource = "object_classes"
    permission_actions = {"autocomplete": AUTHENTICATED}
    filterset_fields = {"name": ["exact", "icontains"]}

    def get_queryset(self) -> QuerySet[ObjectClass]:
        return selectors.object_class_list()

    def perform_create(self, serializer: BaseSerializer[ObjectClass]) -> None:
        serializer.instance = services.object_class_create(
            data=serializer.validated_data, actor=self.request.user
        )

    def perform_update(self, serializer: BaseSerializer[ObjectClass]) -> None:
        assert serializer.instance is not None
        serializer.instance = services.object_class_update(
            obj=serializer.instance, data=serializer.validated_data, actor=self.request.user
        )

    def perform_destroy(self, instance: ObjectClass) -> None:
        services.object_class_delete(obj=instance, actor=self.request.user)


class ObjectClassFieldViewSet(
    ListFiltersOnlyMixin, AutocompleteMixin, viewsets.ModelViewSet[ObjectClassField]
):
    serializer_class = ObjectClassFieldSerializer
    permission_resource = "object_classes"
    permission_actions = {"autocomplete": AUTHENTICATED}
    filterset_fields = {"name": ["exact", "icontains"]}

    def object_class(self) -> ObjectClass:
        pk = self.kwargs["object_class_pk"]
        if not str(pk).isdigit():
            raise NotFound()
        return get_object_or_404(ObjectClass, pk=pk)

    def get_queryset(self) -> QuerySet[ObjectClassField]:
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return ObjectClassField.objects.none()
        return selectors.object_class_field_list(self.object_class())

    def perform_create(self, serializer: BaseSerializer[ObjectClassField]) -> None:
        serializer.instance = services.object_class_field_create(
            object_class=self.object_class(),
            data=serializer.validated_data,
            actor=self.request.user,
        )

    def perform_update(self, serializer: BaseSerializer[ObjectClassField]) -> None:
        assert serializer.instance is not None
        serializer.instance = services.object_class_field_update(
            obj=serializer.instance, data=serializer.validated_data, actor=self.request.user
        )

    def perform_destroy(self, instance: ObjectClassField) -> None:
        services.object_class_field_delete(obj=instance, actor=self.request.user)


TestResult = inline_serializer(
    "IntegrationTestResult",
    {
        "status": serializers.ChoiceField(choices=["ok", "error"]),
        "errors": serializers.DictField(child=serializers.ListField()),
    },
)


class IntegrationViewSet(
    ListFiltersOnlyMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[Integration],
):
    """ALX integrations: typed configurations over the registry in ``integrations.types``."""

    permission_resource = "integrations"
    permission_actions = {"test": "integrations.create"}
    throttle_scope = "integration_test"  # only the test action is throttled
    serializer_class = IntegrationOutput  # type: ignore[assignment]  # it presents rows
    filterset_class = IntegrationFilterSet
    lookup_field = "uuid"
    http_method_names = ["get", "post", "patch", "delete", "options", "head"]
    renderer_classes = integration_renderer_classes()

    def get_queryset(self) -> QuerySet[Integration]:
        if self.action == "list":  # rows with their labels and counts, filtered as they are
            return selectors.integration_list_rows()  # type: ignore[return-value]
        return selectors.integration_list()

    def get_object(self) -> Integration:
        try:  # a malformed uuid is simply not found
            uuid.UUID(str(self.kwargs[self.lookup_field]))
        except ValueError:
            raise NotFound() from None
        return super().get_object()

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        if getattr(self, "request", None) is not None and self.request.user:
            context["permissions"] = resource_permissions(self.request.user, "integrations")
        return context

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        return Response(
            {
                "list": {
                    "columns": list_columns(IntegrationFilterSet, types={"type": "enum"}),
                },
                "details": details_document(),
                "restrictions": {"limit_items": services.INTEGRATION_LIMIT},
            }
        )

    def _output(self, integration: Integration, code: int = status.HTTP_200_OK) -> Response:
        row = selectors.integration_row(integration.pk)
        return Response(IntegrationOutput(row, context=self.get_serializer_context()).data, code)

    @extend_schema(responses=documented_output(many=True))
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        rows = self.filter_queryset(self.get_queryset())
        paginator = cast(CountingLimitOffsetPagination, self.paginator)  # the default class

        def fetch(offset: int, limit: int) -> tuple[selectors.IntegrationPage, int, int]:
            page = selectors.integration_page(rows, offset=offset, limit=limit)
            return page, page.total_count, page.filtered_count

        page = paginator.paginate_counted(request, fetch)
        permissions = self.get_serializer_context().get("permissions", {})
        rows_json = page_json(page, permissions)
        renderer = getattr(request, "accepted_renderer", None)
        if isinstance(renderer, ListJSONRenderer) and renderer.takes_rendered_rows(
            getattr(request, "accepted_media_type", None), self.get_renderer_context()
        ):
            return self.get_paginated_response(RenderedRows(rows_json))
        # Another form (the browsable API, indented JSON): the same rows as objects.
        return self.get_paginated_response(json.loads(rows_json))

    @extend_schema(responses=documented_output())
    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self._output(self.get_object())

    @extend_schema(request=documented_input(), responses={201: documented_output()})
    def create(self, request: Request) -> Response:
        body = serializer_for(request.data)(data=request.data)
        body.is_valid(raise_exception=True)
        data = dict(body.validated_data)
        integration = services.integration_create(
            type_id=data.pop("type"), data=data, actor=request.user
        )
        return self._output(integration, status.HTTP_201_CREATED)

    @extend_schema(request=documented_input(), responses=documented_output())
    def partial_update(self, request: Request, uuid: str) -> Response:
        integration = self.get_object()
        body = serializer_for(request.data, instance=integration)(
            integration, data=request.data, partial=True
        )
        body.is_valid(raise_exception=True)
        integration = services.integration_update(
            integration=integration, data=dict(body.validated_data), actor=request.user
        )
        return self._output(integration)

    def perform_destroy(self, instance: Integration) -> None:
        services.integration_delete(integration=instance, actor=self.request.user)

    @extend_schema(request=IntegrationTestInput, responses=TestResult)
    @action(
        detail=False,
        methods=["post"],
        filter_backends=[],
        pagination_class=None,
        throttle_classes=[CallOutThrottle],
    )
    def test(self, request: Request) -> Response:
        body = connection_test_serializer_for(request.data)(data=request.data)
        body.is_valid(raise_exception=True)
        outcome = services.integration_test(
            type_id=body.validated_data["type"],
            authentication_object=body.validated_data["authentication_object"],
        )
        return Response({"status": "ok" if outcome.ok else "error", "errors": outcome.errors})
