"""``/api/smtp-configurations/``: Outbound's own API over every stored SMTP configuration.

Thin views over :mod:`outbound.mail.services` (the same services as the ALX singleton, the
dialects and the console, so the same rules), reading through :mod:`outbound.mail.selectors`.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import BaseSerializer

from outbound.core.api.metadata import field_schema, list_columns
from outbound.core.api.schema import NATIVE_ERRORS
from outbound.core.api.throttling import CallOutThrottle, spend_call_outs
from outbound.core.api.viewsets import ListFiltersOnlyMixin
from outbound.mail import failover, selectors, services
from outbound.mail.api.config_serializers import (
    ActivateInput,
    ConfigTestInput,
    SmtpConfigurationSerializer,
)
from outbound.mail.api.serializers import SmtpTestResultSerializer
from outbound.mail.api.views import TEST_REFUSED, report_answer
from outbound.mail.filtersets import SmtpConfigFilterSet
from outbound.mail.models import SmtpConfig

VIEW = "outbound_mail_setup.view"
EDIT = "outbound_mail_setup.edit"

REFUSED = (
    "The configuration is refused: each problem is named by its field (a missing host or "
    "port, an invalid address, a saved password that must be sent again because the "
    "server or user changed, an active configuration made a standby, …)."
)
TEST_FAILED = (
    "The test ran and failed (`status` `ERROR` with the staged report, or ALX's `detail` "
    "for a Microsoft configuration), or the request is invalid and nothing was tried."
)


NOT_FOUND = (
    "No configuration has this id, or it was deleted while this request ran (`error_code` "
    "`not_found`); nothing was changed."
)


def _config_answer(description: str) -> OpenApiResponse:
    return OpenApiResponse(SmtpConfigurationSerializer, description=description)


@extend_schema_view(
    list=extend_schema(
        responses={200: SmtpConfigurationSerializer(many=True)},
    ),
    create=extend_schema(
        responses={
            201: _config_answer("Created (inactive: activate it to send through it)."),
            400: NATIVE_ERRORS.response(400, REFUSED),
        },
    ),
    partial_update=extend_schema(
        responses={
            200: _config_answer("Saved."),
            400: NATIVE_ERRORS.response(400, REFUSED),
            404: NATIVE_ERRORS.response(404, NOT_FOUND),
        },
    ),
    destroy=extend_schema(
        responses={
            204: OpenApiResponse(description="Deleted."),
            400: NATIVE_ERRORS.response(
                400,
                "The active configuration cannot be deleted (`error_code` `active`): "
                "activate another one, or deactivate it, first.",
            ),
            404: NATIVE_ERRORS.response(
                404,
                "No configuration has this id, or it was deleted meanwhile — by a concurrent "
                "delete too, which alone is answered 204 (`error_code` `not_found`).",
            ),
        }
    ),
)
class SmtpConfigurationViewSet(
    ListFiltersOnlyMixin,
    mixins.ListModelMixin,
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet[SmtpConfig],
):
    """SMTP configurations: every server Outbound may send through. At most one is active
    (the admin's choice); standbys are kept ready for failover; `serving` is the one
    delivering now."""

    serializer_class = SmtpConfigurationSerializer
    filterset_class = SmtpConfigFilterSet
    required_permissions = {"GET": VIEW, "POST": EDIT, "PATCH": EDIT, "DELETE": EDIT}
    throttle_scope = "smtp_test"  # only the test action is throttled (and require_test)

    def get_queryset(self) -> QuerySet[SmtpConfig]:
        return selectors.smtp_config_rows()

    def get_serializer_context(self) -> dict[str, Any]:
        context = dict(super().get_serializer_context())
        if not getattr(self, "swagger_fake_view", False):
            context["serving_id"] = failover.serving_config_id()
        return context

    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        fields = SmtpConfigurationSerializer().fields
        return Response(
            {
                "list": {"columns": list_columns(SmtpConfigFilterSet)},
                "details": {
                    "schema": [
                        field_schema(name, field)
                        for name, field in fields.items()
                        if not field.read_only
                    ]
                },
            }
        )

    def _answer(self, config: SmtpConfig, code: int = status.HTTP_200_OK) -> Response:
        fresh = selectors.smtp_config_rows().get(pk=config.pk)
        return Response(self.get_serializer(fresh).data, status=code)

    def perform_create(self, serializer: BaseSerializer[SmtpConfig]) -> None:
        serializer.instance = services.smtp_config_create(
            data=dict(serializer.validated_data), actor=self.request.user
        )

    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        config = self.get_object()
        body = self.get_serializer(config, data=request.data, partial=True)
        body.is_valid(raise_exception=True)
        config = services.smtp_config_update(
            config=config, data=dict(body.validated_data), actor=request.user
        )
        return self._answer(config)

    def perform_destroy(self, instance: SmtpConfig) -> None:
        services.smtp_config_delete(config=instance, actor=self.request.user, refuse_active=True)

    @extend_schema(
        request=ActivateInput,
        responses={
            200: _config_answer("Active now; the one active before is not."),
            400: OpenApiResponse(
                TEST_REFUSED,
                description="Already active (`error_code` `already_active`; nothing "
                "changed), or, with `require_test`, the test failed (`status` `ERROR` and "
                "the staged report; nothing was activated) or could not be run (the saved "
                "settings are incomplete: each problem is named).",
            ),
            404: NATIVE_ERRORS.response(404, NOT_FOUND),
            409: NATIVE_ERRORS.response(
                409,
                "The server, user or credentials changed while the configuration was tested "
                "(`require_test`), or a concurrent change won a race; nothing was activated.",
            ),
            429: NATIVE_ERRORS.response(
                429, "`require_test` only: the caller's connection-test budget is spent."
            ),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        """Make this the active configuration (the one active before stops being active; a
        standby leaves the standby list). With `{"require_test": true}` the saved settings
        are tested first and the configuration is activated only if the test passes."""
        config = self.get_object()
        body = ActivateInput(data=request.data)
        body.is_valid(raise_exception=True)
        if not body.validated_data["require_test"]:
            return self._answer(services.smtp_config_activate(config=config, actor=request.user))
        spend_call_outs(request, 1)
        report, activated = services.smtp_config_activate_tested(config=config, actor=request.user)
        if activated is None:
            return report_answer(report)
        return self._answer(activated)

    @extend_schema(
        request=None,
        responses={
            200: _config_answer("Inactive now: no configuration is active."),
            400: NATIVE_ERRORS.response(
                400, "The configuration is not active (`error_code` `not_active`)."
            ),
            404: NATIVE_ERRORS.response(404, NOT_FOUND),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[])
    def deactivate(self, request: Request, pk: str | None = None) -> Response:
        """Stop using this configuration: no mail is sent until one is activated."""
        config = services.smtp_config_deactivate(config=self.get_object(), actor=request.user)
        return self._answer(config)

    @extend_schema(
        request=ConfigTestInput,
        responses={
            200: OpenApiResponse(SmtpTestResultSerializer, description="The test passed."),
            400: OpenApiResponse(TEST_REFUSED, description=TEST_FAILED),
        },
    )
    @action(detail=True, methods=["post"], filter_backends=[], throttle_classes=[CallOutThrottle])
    def test(self, request: Request, pk: str | None = None) -> Response:
        """Connect to the saved server and go through each step (resolve, connect, TLS,
        EHLO, AUTH; with `receiver_address`, also send one message), answered as the ALX
        test answers it. Spends the caller's connection-test budget (`OUTBOUND_TEST_RATE`)."""
        config = self.get_object()
        body = ConfigTestInput(data=request.data)
        body.is_valid(raise_exception=True)
        report = services.smtp_config_test(
            stored=config, data={}, receiver=body.validated_data.get("receiver_address")
        )
        return report_answer(report)
