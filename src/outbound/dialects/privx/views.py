"""PrivX workflow engine: ``GET``/``PUT /settings`` and ``POST /testsmtp`` over the core.

PrivX has one SMTP setting, so it acts on the active configuration; ``smtp_server_enabled``
is that configuration's state. When none is active, PrivX sees (and writes) the most
recently changed configuration, shown as disabled, so disabling and re-enabling through
PrivX never creates a second configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.db import transaction
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outbound.core.api.throttling import CallOutThrottle
from outbound.core.parsers import JSONParser
from outbound.dialects.privx import schema
from outbound.dialects.privx.authentication import (
    EDIT,
    VIEW,
    PrivxBearerAuthentication,
    PrivxScopePermission,
)
from outbound.dialects.privx.errors import exception_handler
from outbound.dialects.privx.serializers import (
    PrivxErrorSerializer,
    PrivxSmtpSettingsInput,
    PrivxSmtpSettingsOutput,
    PrivxTestResultOutput,
)
from outbound.mail import selectors, services
from outbound.mail.models import SmtpConfig

TAG = "PrivX"


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    described = {
        400: "Bad request",
        401: "Unauthorized request, OAuth2 authorization missing or invalid",
        403: "Unauthorized request, OAuth2 authorization OK but scope insufficient",
        404: "The stored settings were deleted (in another API or the console) while this "
        "request saved them (CONFIGURATION_ERROR); nothing was changed: send it again",
        429: "Too many tests (MAX_LOAD)",
    }
    return {c: OpenApiResponse(PrivxErrorSerializer, description=described[c]) for c in codes}


def privx_config() -> SmtpConfig | None:
    """The configuration PrivX shows: the active one, else the most recently changed one."""
    active = selectors.active_smtp_config()
    if active is not None:
        return active
    return selectors.smtp_config_list().order_by("-modified_at", "-id").first()


def settings_body(config: SmtpConfig | None) -> dict[str, Any]:
    # Not ``.data``: for ``None`` DRF would answer the fields' initial values, not ours.
    return PrivxSmtpSettingsOutput().to_representation(config)


class PrivxView(APIView):
    """Base of every PrivX operation: Bearer JWT, scope-named 403s, PrivX error bodies."""

    authentication_classes = [PrivxBearerAuthentication]
    permission_classes = [PrivxScopePermission]
    parser_classes = [JSONParser]  # PrivX's API takes JSON (and the schema offers only that)
    error_shape = schema.ERRORS  # the document's error bodies, for every status answered

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return exception_handler


class SettingsView(PrivxView):
    required_permissions = {"GET": VIEW, "PUT": EDIT}

    @extend_schema(
        tags=[TAG],
        operation_id="privx_settings_get",
        summary="Get the settings (SMTP keys)",
        description="Scopes: `workflowsView`, `workflowsManage` or `admin`.",
        responses={200: PrivxSmtpSettingsOutput, **_errors(401, 403)},
    )
    def get(self, request: Request) -> Response:
        return Response(settings_body(privx_config()))

    @extend_schema(
        tags=[TAG],
        operation_id="privx_settings_update",
        summary="Update the settings (SMTP keys)",
        description=(
            "Scopes: `workflowsManage` or `admin`. Omitted keys keep their value; an omitted "
            "or empty `smtp_server_password` keeps the stored password. `smtp_server_enabled` "
            "activates (true) or deactivates (false) the configuration."
        ),
        request=PrivxSmtpSettingsInput,
        responses={200: PrivxSmtpSettingsOutput, **_errors(400, 401, 403, 404)},
    )
    def put(self, request: Request) -> Response:
        body = PrivxSmtpSettingsInput(data=request.data)
        body.is_valid(raise_exception=True)
        data = body.core_data()
        enabled: bool | None = body.validated_data.get("smtp_server_enabled")
        actor = request.user
        with transaction.atomic():
            current = privx_config()
            if current is None:
                if enabled is False and not data.get("host"):
                    # Disabled and empty: PrivX's unconfigured state; nothing to store.
                    return Response(settings_body(None))
                if enabled is False:
                    config = services.smtp_config_create(data=data, actor=actor, activate=False)
                else:
                    config = services.active_smtp_config_save(data=data, actor=actor)
            elif current.is_active:
                config = services.active_smtp_config_save(data=data, actor=actor)
                if enabled is False:
                    config = services.smtp_config_deactivate(config=config, actor=actor)
            else:
                config = services.smtp_config_update(
                    config=current, data=data, actor=actor, activate=bool(enabled)
                )
        return Response(settings_body(config))


class TestSmtpView(PrivxView):
    required_permissions = {"POST": EDIT}
    throttle_classes = [CallOutThrottle]
    throttle_scope = "smtp_test"

    @extend_schema(
        tags=[TAG],
        operation_id="privx_testsmtp",
        summary="Test the email settings",
        description=(
            "Scopes: `workflowsManage` or `admin`. The body's SMTP keys over the stored "
            "settings (an empty body tests the stored settings); really connects, negotiates "
            "TLS and authenticates. Returns debug info from the SMTP sender component as "
            "key-value pairs; a failed test is still 200 with status ERROR."
        ),
        request=PrivxSmtpSettingsInput,
        responses={200: PrivxTestResultOutput, **_errors(400, 401, 403, 429)},
    )
    def post(self, request: Request) -> Response:
        body = PrivxSmtpSettingsInput(data=request.data if request.data else {})
        body.is_valid(raise_exception=True)
        report = services.smtp_config_test(stored=privx_config(), data=body.core_data())
        return Response(PrivxTestResultOutput(report).data)
