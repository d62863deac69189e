"""``/Analytics/v1``: Hitachi Ops Center Analyzer's mail server settings, one view per operation.

Hitachi knows one mail server setting, ``mailServerSetting#0``: it is the active SMTP
configuration. Reads and writes go through the core's selectors and services.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework.exceptions import NotFound
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outbound.core.api.throttling import spend_call_outs
from outbound.core.authentication import OutboundJWTAuthentication
from outbound.core.parsers import JSONParser
from outbound.core.permissions import HasOutboundPermission
from outbound.dialects.hitachi import schema
from outbound.dialects.hitachi.authentication import HitachiBasicAuthentication
from outbound.dialects.hitachi.errors import (
    core_errors_message,
    error_response,
    hitachi_exception_handler,
    invalid_body,
)
from outbound.dialects.hitachi.serializers import (
    INSTANCE_ID,
    HitachiActionTemplateOutput,
    HitachiEmailSettingInput,
    HitachiEmailSettingOutput,
    HitachiErrorSerializer,
    HitachiInvokeInput,
    HitachiJobOutput,
    core_data,
    email_setting,
    email_setting_list,
    email_setting_list_schema,
)
from outbound.mail import selectors, services
from outbound.mail.models import SmtpConfig

TAGS = ["Hitachi"]
VIEW = "outbound_mail_setup.view"
EDIT = "outbound_mail_setup.edit"


def _errors(*codes: int) -> dict[int, OpenApiResponse]:
    return {code: OpenApiResponse(HitachiErrorSerializer) for code in codes}


INSTANCE = OpenApiParameter(
    "instance_id",
    str,
    OpenApiParameter.PATH,
    description="`mailServerSetting#0` (URL-encoded `mailServerSetting%230`).",
)


class HitachiView(APIView):
    """Basic (a user's credentials) or Bearer (JWT); Hitachi's error body for every failure."""

    authentication_classes = [HitachiBasicAuthentication, OutboundJWTAuthentication]
    permission_classes = [HasOutboundPermission]
    parser_classes = [JSONParser]  # Hitachi's API takes JSON (and the schema offers only that)
    error_shape = schema.ERRORS  # the document's error bodies, for every status answered

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response]:
        return hitachi_exception_handler


def _instance(instance_id: str) -> SmtpConfig | None:
    if instance_id != INSTANCE_ID:
        raise NotFound(f"{instance_id} does not exist.")
    return selectors.active_smtp_config()


class EmailServerSettingsView(HitachiView):
    required_permissions = {"GET": VIEW}

    @extend_schema(
        tags=TAGS,
        operation_id="hitachi_email_server_settings_list",
        responses={200: email_setting_list_schema(), **_errors(401, 403, 412, 500)},
    )
    def get(self, request: Request) -> Response:
        return Response(email_setting_list(selectors.active_smtp_config()))


class EmailServerSettingView(HitachiView):
    required_permissions = {"GET": VIEW, "PUT": EDIT}

    @extend_schema(
        tags=TAGS,
        operation_id="hitachi_email_server_setting_get",
        parameters=[INSTANCE],
        responses={200: HitachiEmailSettingOutput, **_errors(401, 403, 404, 412, 500)},
    )
    def get(self, request: Request, instance_id: str) -> Response:
        config = _instance(instance_id)
        if config is None:
            raise NotFound(f"{instance_id} is not configured yet.")
        return Response(email_setting(config))

    @extend_schema(
        tags=TAGS,
        operation_id="hitachi_email_server_setting_update",
        parameters=[INSTANCE],
        request=HitachiEmailSettingInput,
        responses={200: HitachiEmailSettingOutput, **_errors(400, 401, 403, 404, 412, 500)},
        description="Updates the mail server settings (creates them, active, the first time). "
        "`password` is base64 and is used when `updatePassword` is true; "
        "`authenticationEnabled: false` removes the user and the stored password.",
    )
    def put(self, request: Request, instance_id: str) -> Response:
        current = _instance(instance_id)
        body = HitachiEmailSettingInput(data=request.data, context={"current": current})
        body.is_valid(raise_exception=True)
        config = services.active_smtp_config_save(
            data=core_data(body.validated_data), actor=request.user
        )
        return Response(email_setting(config))


class SendTestMailTemplateView(HitachiView):
    required_permissions = {"GET": VIEW}

    @extend_schema(
        tags=TAGS,
        operation_id="hitachi_send_test_mail_template",
        responses={200: HitachiActionTemplateOutput, **_errors(401, 403, 412, 500)},
        description="The action template: edit `parameters` and POST them to `href`.",
    )
    def get(self, request: Request) -> Response:
        setting = {**email_setting(selectors.active_smtp_config()), "updatePassword": False}
        return Response(
            {
                "name": "sendTestMail",
                # From the request's own path, not reverse(): the invoke URL sits below it.
                "href": request.build_absolute_uri(request.path.rstrip("/") + "/invoke"),
                "method": "POST",
                "type": "-",
                "parameters": [{"destinationAddresses": [], "emailSetting": setting}],
            }
        )


class SendTestMailInvokeView(HitachiView):
    required_permissions = {"POST": EDIT}

    @extend_schema(
        tags=TAGS,
        operation_id="hitachi_send_test_mail_invoke",
        request=HitachiInvokeInput,
        responses={
            200: HitachiJobOutput,
            400: OpenApiResponse(
                HitachiErrorSerializer,
                description="Invalid body, or the test mail could not be sent (the message "
                "says which step failed).",
            ),
            **_errors(401, 403, 412, 429, 500),
        },
        description="Sends a test mail to each destination address with `emailSetting` "
        "over the saved settings (without `updatePassword: true`, the saved password). "
        "Each destination is one connection test of the caller's `OUTBOUND_TEST_RATE`.",
    )
    def post(self, request: Request) -> Response:
        stored = selectors.active_smtp_config()
        body = HitachiInvokeInput(data=request.data, context={"current": stored})
        body.is_valid(raise_exception=True)
        test_mail = body.validated_data["parameters"][0]
        # One connection test per destination, each a unit of the caller's budget.
        spend_call_outs(request, len(test_mail["destinationAddresses"]))
        data = core_data(test_mail.get("emailSetting", {}))
        created = timezone.now()
        results = []
        for address in test_mail["destinationAddresses"]:
            try:
                report = services.smtp_config_test(stored=stored, data=data, receiver=address)
            except DjangoValidationError as exc:
                return invalid_body(request, core_errors_message(exc, "emailSetting"))
            if not report.ok:
                return error_response(
                    request, 400, f"The test mail to {address} was not sent: {report.message}"
                )
            results.append(
                {
                    "destinationAddress": address,
                    "status": "success",
                    "message": report.message,
                    "steps": report.steps_as_dicts(),
                }
            )
        done = timezone.now().isoformat()
        return Response(
            {
                "instanceID": str(uuid.uuid4()),
                "created": created.isoformat(),
                "updated": done,
                "completed": done,
                "state": "success",
                "affectedResource": [],
                "result": results,
            }
        )
