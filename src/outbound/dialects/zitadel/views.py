"""``/admin/v1/smtp…``: ZITADEL's SMTP configuration API, one view per operation.

Thin views: validate with the ZITADEL serializers, call :mod:`outbound.mail.services` with core
field names, answer in ZITADEL's shapes. Errors are rendered by :mod:`.errors`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outbound.core.api.throttling import CallOutThrottle
from outbound.core.authentication import OutboundJWTAuthentication
from outbound.core.permissions import HasOutboundPermission
from outbound.dialects.zitadel import errors
from outbound.dialects.zitadel.authentication import ZitadelApiKeyAuthentication
from outbound.dialects.zitadel.serializers import (
    ZitadelAddOutput,
    ZitadelDetailsOutput,
    ZitadelEmptyOutput,
    ZitadelErrorOutput,
    ZitadelGetSmtpConfigOutput,
    ZitadelPasswordInput,
    ZitadelReceiverInput,
    ZitadelSearchInput,
    ZitadelSearchOutput,
    ZitadelSmtpConfigInput,
    ZitadelSmtpTestInput,
    now_timestamp,
    object_details,
    smtp_config,
)
from outbound.mail import selectors, services
from outbound.mail.models import SmtpConfig
from outbound.mail.tester import TestReport

VIEW = "outbound_mail_setup.view"
EDIT = "outbound_mail_setup.edit"
TAG = "ZITADEL"
MAX_ID_LENGTH = 100

ERRORS = {
    400: OpenApiResponse(ZitadelErrorOutput, description="InvalidArgument or FailedPrecondition."),
    401: OpenApiResponse(ZitadelErrorOutput, description="Unauthenticated."),
    403: OpenApiResponse(ZitadelErrorOutput, description="PermissionDenied."),
    404: OpenApiResponse(ZitadelErrorOutput, description="NotFound."),
}


def zitadel_schema(
    rpc: str, summary: str, *, request: Any = None, response: Any = ZitadelDetailsOutput
) -> Callable[[Any], Any]:
    return extend_schema(
        tags=[TAG],
        operation_id=f"AdminService_{rpc}",
        summary=summary,
        request=request,
        responses={200: response, **ERRORS},
    )


class ZitadelView(APIView):
    """Base of every ZITADEL operation: Bearer auth (JWT or API key), gRPC-style errors."""

    authentication_classes = [ZitadelApiKeyAuthentication, OutboundJWTAuthentication]
    permission_classes = [HasOutboundPermission]
    parser_classes = [JSONParser]  # grpc-gateway speaks JSON only
    required_permissions: dict[str, str | None] = {}

    def get_exception_handler(self) -> Callable[[Exception, dict[str, Any]], Response | None]:
        return errors.exception_handler

    def get_config(self, config_id: str) -> SmtpConfig:
        if not config_id or len(config_id) > MAX_ID_LENGTH:
            raise errors.ZitadelError(
                errors.Code.INVALID_ARGUMENT,
                "VALIDATION-id",
                "id: value length must be between 1 and 100 runes, inclusive",
            )
        if not config_id.isdigit() or not config_id.isascii():
            raise errors.not_found()
        config = selectors.smtp_config_list().filter(pk=int(config_id)).first()
        if config is None:
            raise errors.not_found()
        return config

    @staticmethod
    def parse(serializer_class: type[Any], request: Request) -> Any:
        # A body that is not a JSON object (a list, a string) is an InvalidArgument too.
        data = request.data if isinstance(request.data, dict) else None
        if data is None:
            raise errors.ZitadelError(
                errors.Code.INVALID_ARGUMENT, "HTTP-Body", "the request body must be an object"
            )
        body = serializer_class(data=data)
        body.is_valid(raise_exception=True)
        return body


class SmtpView(ZitadelView):
    """``GET /smtp`` (the active configuration) and ``POST /smtp`` (add one, inactive)."""

    required_permissions = {"GET": VIEW, "POST": EDIT}

    @zitadel_schema(
        "GetSMTPConfig", "Get the active SMTP configuration", response=ZitadelGetSmtpConfigOutput
    )
    def get(self, request: Request) -> Response:
        config = selectors.active_smtp_config()
        if config is None:
            raise errors.not_found()
        return Response({"smtpConfig": smtp_config(config)})

    @zitadel_schema(
        "AddSMTPConfig",
        "Add an SMTP configuration",
        request=ZitadelSmtpConfigInput,
        response=ZitadelAddOutput,
    )
    def post(self, request: Request) -> Response:
        body = self.parse(ZitadelSmtpConfigInput, request)
        config = services.smtp_config_create(
            data=body.core_data(keep_password=False), actor=request.user, activate=False
        )
        return Response({"details": object_details(config.pk), "id": str(config.pk)})


class SmtpSearchView(ZitadelView):
    """``POST /smtp/_search``."""

    required_permissions = {"POST": VIEW}

    @zitadel_schema(
        "ListSMTPConfigs",
        "List SMTP configurations",
        request=ZitadelSearchInput,
        response=ZitadelSearchOutput,
    )
    def post(self, request: Request) -> Response:
        body = self.parse(ZitadelSearchInput, request)
        query = body.validated_data.get("query") or {"offset": 0, "limit": 0, "asc": False}
        configs = selectors.smtp_config_list()
        total = configs.count()
        configs = configs.order_by("id" if query["asc"] else "-id")
        offset, limit = query["offset"], query["limit"]
        page = configs[offset : offset + limit] if limit else configs[offset:]
        return Response(
            {
                "details": {"totalResult": str(total), "viewTimestamp": now_timestamp()},
                "result": [smtp_config(c) for c in page],
            }
        )


class SmtpByIdView(ZitadelView):
    """``GET``, ``PUT`` and ``DELETE /smtp/{id}``."""

    required_permissions = {"GET": VIEW, "PUT": EDIT, "DELETE": EDIT}

    @zitadel_schema(
        "GetSMTPConfigById", "Get an SMTP configuration", response=ZitadelGetSmtpConfigOutput
    )
    def get(self, request: Request, id: str) -> Response:
        return Response({"smtpConfig": smtp_config(self.get_config(id))})

    @zitadel_schema(
        "UpdateSMTPConfig", "Update an SMTP configuration", request=ZitadelSmtpConfigInput
    )
    def put(self, request: Request, id: str) -> Response:
        config = self.get_config(id)
        body = self.parse(ZitadelSmtpConfigInput, request)
        # The seed: an updated configuration "will be activated as soon as it is saved".
        config = services.smtp_config_update(
            config=config,
            data=body.core_data(keep_password=True),
            actor=request.user,
            activate=True,
        )
        return Response({"details": object_details(config.pk)})

    @zitadel_schema("RemoveSMTPConfig", "Remove an SMTP configuration")
    def delete(self, request: Request, id: str) -> Response:
        config = self.get_config(id)
        pk = config.pk
        services.smtp_config_delete(config=config, actor=request.user)
        return Response({"details": object_details(pk)})


class SmtpPasswordView(ZitadelView):
    """``PUT /smtp/{id}/password``."""

    required_permissions = {"PUT": EDIT}

    @zitadel_schema(
        "UpdateSMTPConfigPassword",
        "Update the password of an SMTP configuration",
        request=ZitadelPasswordInput,
    )
    def put(self, request: Request, id: str) -> Response:
        config = self.get_config(id)
        body = self.parse(ZitadelPasswordInput, request)
        services.smtp_config_update(
            config=config, data={"password": body.validated_data["password"]}, actor=request.user
        )
        return Response({"details": object_details(config.pk)})


class SmtpActivateView(ZitadelView):
    """``POST /smtp/{id}/_activate``: this one becomes the active one; the others are not."""

    required_permissions = {"POST": EDIT}

    @zitadel_schema(
        "ActivateSMTPConfig", "Activate an SMTP configuration", request=ZitadelEmptyOutput
    )
    def post(self, request: Request, id: str) -> Response:
        config = self.get_config(id)
        services.smtp_config_activate(config=config, actor=request.user)
        return Response({"details": object_details(config.pk)})


class SmtpDeactivateView(ZitadelView):
    """``POST /smtp/{id}/_deactivate``."""

    required_permissions = {"POST": EDIT}

    @zitadel_schema(
        "DeactivateSMTPConfig", "Deactivate an SMTP configuration", request=ZitadelEmptyOutput
    )
    def post(self, request: Request, id: str) -> Response:
        config = self.get_config(id)
        services.smtp_config_deactivate(config=config, actor=request.user)
        return Response({"details": object_details(config.pk)})


def test_answer(report: TestReport) -> Response:
    """``{}`` when the test mail went out; otherwise FailedPrecondition naming the failed step."""
    if report.ok:
        return Response({})
    step = report.failed_step or "test"
    raise errors.ZitadelError(
        errors.Code.FAILED_PRECONDITION,
        f"SMTP-TEST-{step}",
        report.message,
        details=[(f"SMTP-TEST-{s.name}", f"{s.name}: {s.detail}") for s in report.steps] or None,
    )


class SmtpTestView(ZitadelView):
    """``POST /smtp/_test``: test proposed settings by sending a real message."""

    required_permissions = {"POST": EDIT}
    throttle_classes = [CallOutThrottle]
    throttle_scope = "smtp_test"

    @zitadel_schema(
        "TestSMTPConfig",
        "Test an SMTP configuration by sending a test mail",
        request=ZitadelSmtpTestInput,
        response=ZitadelEmptyOutput,
    )
    def post(self, request: Request) -> Response:
        body = self.parse(ZitadelSmtpTestInput, request)
        stored_id = body.validated_data["id"]
        stored = self.get_config(stored_id) if stored_id else None
        report = services.smtp_config_test(
            stored=stored, data=body.core_data(), receiver=body.validated_data["receiverAddress"]
        )
        return test_answer(report)


class SmtpTestByIdView(ZitadelView):
    """``POST /smtp/{id}/_test``: test a stored configuration, with its stored password."""

    required_permissions = {"POST": EDIT}
    throttle_classes = [CallOutThrottle]
    throttle_scope = "smtp_test"

    @zitadel_schema(
        "TestSMTPConfigById",
        "Test a stored SMTP configuration by sending a test mail",
        request=ZitadelReceiverInput,
        response=ZitadelEmptyOutput,
    )
    def post(self, request: Request, id: str) -> Response:
        config = self.get_config(id)
        body = self.parse(ZitadelReceiverInput, request)
        report = services.smtp_config_test(
            stored=config, data={}, receiver=body.validated_data["receiverAddress"]
        )
        return test_answer(report)


class NotFoundView(ZitadelView):
    """Any other path under the prefix: grpc-gateway's NotFound, whatever the method."""

    authentication_classes = []
    permission_classes = []

    @extend_schema(exclude=True)
    def dispatch_not_found(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise errors.ZitadelError(errors.Code.NOT_FOUND, "HTTP-NotFound", "Not Found")

    get = post = put = patch = delete = head = dispatch_not_found

    @extend_schema(exclude=True)
    def options(self, request: Request, *args: Any, **kwargs: Any) -> Response:  # type: ignore[override]
        return self.dispatch_not_found(request)
