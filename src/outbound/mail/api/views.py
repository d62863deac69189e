"""``/api/administration/smtp-settings/``: the ALX singleton over the active configuration."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outbound.core.api.schema import NATIVE_ERRORS, BadRequestSerializer
from outbound.core.api.throttling import CallOutThrottle
from outbound.core.permissions import AUTHENTICATED
from outbound.mail import selectors, services
from outbound.mail.api.serializers import (
    MicrosoftTestFailedSerializer,
    SmtpSettingsInput,
    SmtpSettingsOutput,
    SmtpTestFailedSerializer,
    SmtpTestInput,
    SmtpTestResultSerializer,
    options_document,
    remap_errors,
)
from outbound.mail.tester import TestReport

MICROSOFT_FAILURE = "Error. Please check username, authentication object and MS Graph settings"

# The 400 of a connection test: it ran and failed, or the request is invalid.
TEST_REFUSED = PolymorphicProxySerializer(
    component_name="SmtpTestRefused",
    serializers=[SmtpTestFailedSerializer, MicrosoftTestFailedSerializer, BadRequestSerializer],
    resource_type_field_name=None,
)


class SmtpSettingsView(APIView):
    required_permissions = {
        "GET": "outbound_mail_setup.view",
        "PATCH": "outbound_mail_setup.edit",
        "OPTIONS": AUTHENTICATED,
    }

    def options(self, request: Request, *args: object, **kwargs: object) -> Response:  # type: ignore[override]
        return Response(options_document())

    @extend_schema(responses=SmtpSettingsOutput)
    def get(self, request: Request) -> Response:
        # to_representation directly: ``.data`` of a serializer without an instance would be
        # its initial data, not the empty form.
        return Response(SmtpSettingsOutput().to_representation(selectors.active_smtp_config()))

    @extend_schema(
        request=SmtpSettingsInput,
        responses={200: SmtpSettingsOutput, **NATIVE_ERRORS.responses(409)},
    )
    def patch(self, request: Request) -> Response:
        body = SmtpSettingsInput(data=request.data)
        body.is_valid(raise_exception=True)
        try:
            config = services.active_smtp_config_save(data=body.core_data(), actor=request.user)
        except DjangoValidationError as exc:
            return Response(remap_errors(exc), status=status.HTTP_400_BAD_REQUEST)
        return Response(SmtpSettingsOutput(config).data)


class SmtpSettingsTestView(APIView):
    required_permissions = {"POST": "outbound_mail_setup.edit"}
    throttle_classes = [CallOutThrottle]
    throttle_scope = "smtp_test"

    @extend_schema(
        request=SmtpTestInput,
        responses={
            200: SmtpTestResultSerializer,
            400: OpenApiResponse(
                TEST_REFUSED,
                description="The test failed (`status` `ERROR`, or ALX's `detail` for a "
                "Microsoft configuration), or the request is invalid (nothing was tried).",
            ),
        },
    )
    def post(self, request: Request) -> Response:
        body = SmtpTestInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.core_data()
        receiver = data.pop("receiver_address", None)
        try:
            report = services.smtp_config_test(
                stored=selectors.active_smtp_config(), data=data, receiver=receiver
            )
        except DjangoValidationError as exc:
            return Response(remap_errors(exc), status=status.HTTP_400_BAD_REQUEST)
        return report_answer(report)


def report_answer(report: TestReport) -> Response:
    """A connection test's staged report as ALX answers it: 200 ``status`` ``OK``; 400
    ``status`` ``ERROR``, or ALX's ``detail`` for a Microsoft configuration (the native
    ``/api/smtp-configurations/`` answers its tests the same way)."""
    steps = report.steps_as_dicts()
    if report.ok:
        return Response({"status": "OK", "msg": report.message, "steps": steps})
    if report.uses_microsoft:
        return Response(
            {"detail": MICROSOFT_FAILURE, "msg": report.message, "steps": steps},
            status=status.HTTP_400_BAD_REQUEST,
        )
    return Response(
        {"status": "ERROR", "msg": report.message, "steps": steps},
        status=status.HTTP_400_BAD_REQUEST,
    )
