"""Commvault Command Center's ``/V4/EmailServer`` operations over the active SMTP configuration."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outbound.core.api.throttling import CallOutThrottle
from outbound.core.parsers import JSONParser
from outbound.core.permissions import HasOutboundPermission
from outbound.dialects.commvault import schema
from outbound.dialects.commvault.authentication import AuthtokenAuthentication
from outbound.dialects.commvault.errors import commvault_exception_handler
from outbound.dialects.commvault.serializers import (
    REQUIRED,
    CommvaultResultSerializer,
    EmailServerInput,
    EmailServerOutput,
    EmailServerTestInput,
    EmailServerUpdateInput,
    result,
)
from outbound.mail import selectors, services

TAGS = ["Commvault"]
NO_EMAIL = "Your user has no email address to send the test mail to."

ERRORS = {
    400: OpenApiResponse(CommvaultResultSerializer, description="Bad Request"),
    401: OpenApiResponse(CommvaultResultSerializer, description="Unauthorized"),
    403: OpenApiResponse(
        CommvaultResultSerializer, description="Forbidden: the key lacks the permission"
    ),
}


class CommvaultView(APIView):
    """Commvault's authentication and error body for every operation of the dialect."""

    authentication_classes = [AuthtokenAuthentication]
    permission_classes = [HasOutboundPermission]
    parser_classes = [JSONParser]  # what Commvault's API takes (and all the schema offers)
    error_shape = schema.ERRORS  # the document's error bodies, for every status answered

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return commvault_exception_handler


class EmailServerView(CommvaultView):
    """``/V4/EmailServer``: read, configure (POST) and modify (PUT) the email server."""

    required_permissions = {
        "GET": "outbound_mail_setup.view",
        "POST": "outbound_mail_setup.edit",
        "PUT": "outbound_mail_setup.edit",
    }

    @extend_schema(
        tags=TAGS,
        operation_id="commvault_email_server_get",
        summary="Get the email server settings",
        description=(
            "The active SMTP configuration; `username` only when authentication is used, "
            "never the password."
        ),
        responses={200: EmailServerOutput, **ERRORS},
    )
    def get(self, request: Request) -> Response:
        # ``to_representation`` directly: ``.data`` of a serializer without an instance would be
        # the fields' initial values, not the empty configuration.
        return Response(EmailServerOutput().to_representation(selectors.active_smtp_config()))

    @extend_schema(
        tags=TAGS,
        operation_id="commvault_email_server_configure",
        summary="Configure Email Server",
        description=(
            "Configure SMTP server settings. `password` is base64-encoded and required with "
            "`username`; without a username the server is used without authentication."
        ),
        request=EmailServerInput,
        responses={200: CommvaultResultSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        body = EmailServerInput(data=request.data)
        body.is_valid(raise_exception=True)
        services.active_smtp_config_save(data=body.core_data(), actor=request.user)
        return Response(result())

    @extend_schema(
        tags=TAGS,
        operation_id="commvault_email_server_modify",
        summary="Modify Email Server",
        description=(
            "Change some of the settings. An omitted (or empty) `password` keeps the stored one; "
            "`useAuthentication: false` removes the username and password."
        ),
        request=EmailServerUpdateInput,
        responses={200: CommvaultResultSerializer, **ERRORS},
    )
    def put(self, request: Request) -> Response:
        body = EmailServerUpdateInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.core_data()
        services.active_smtp_config_save(data=data, actor=request.user)
        return Response(result())


class EmailServerTestView(CommvaultView):
    """``/V4/EmailServer/Action/Test``: send a real test mail to the caller's address."""

    required_permissions = {"POST": "outbound_mail_setup.edit"}
    throttle_classes = [CallOutThrottle]
    throttle_scope = "smtp_test"

    @extend_schema(
        tags=TAGS,
        operation_id="commvault_email_server_test",
        summary="Send a test email",
        description=(
            "Tests the given settings over the stored ones by sending a test mail to the "
            "caller's email address. Without `username` and `password` the stored credentials "
            "are used, only for the stored server. A failed test answers 400 with the reason."
        ),
        request=EmailServerTestInput,
        responses={200: CommvaultResultSerializer, **ERRORS},
    )
    def post(self, request: Request) -> Response:
        body = EmailServerTestInput(data=request.data)
        body.is_valid(raise_exception=True)
        receiver = getattr(request.user, "email", "")
        if not receiver:
            raise exceptions.ValidationError(NO_EMAIL)
        stored = selectors.active_smtp_config()
        data = body.core_data()
        if not (data.get("sender_address") or (stored and stored.sender_address)):
            # The test sends a mail, which needs a sender (the core fails without one).
            raise exceptions.ValidationError({"senderEmail": [REQUIRED]})
        report = services.smtp_config_test(stored=stored, data=data, receiver=receiver)
        if report.ok:
            return Response(result())
        code = status.HTTP_400_BAD_REQUEST
        return Response(result(report.message, code), status=code)
