"""``/admin/v1/smtp…`` and ``/admin/v1/email…``: ZITADEL's SMTP configuration API and its
current form, the email-provider API, over the same configurations.

Thin views: validate with the ZITADEL serializers, call :mod:`outbound.mail.services` with core
field names, answer in ZITADEL's shapes. Each operation is written once, as a mixin, and served
in both shapes; a :class:`Shape` says what differs (the input messages, how a configuration
reads, the key a read wraps it in). Errors are rendered by :mod:`.errors`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outbound.core.api.throttling import CallOutThrottle
from outbound.core.authentication import OutboundJWTAuthentication
from outbound.core.permissions import HasOutboundPermission
from outbound.dialects.zitadel import errors
from outbound.dialects.zitadel.authentication import ZitadelApiKeyAuthentication
from outbound.dialects.zitadel.parsers import GatewayJSONParser
from outbound.dialects.zitadel.serializers import (
    EmailHttpInput,
    EmailSmtpInput,
    EmailSmtpTestInput,
    GetEmailProviderOutput,
    ListEmailProvidersOutput,
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
    email_provider,
    list_details,
    object_details,
    omit_zero,
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
    409: OpenApiResponse(ZitadelErrorOutput, description="Aborted: a concurrent change."),
}
TEST_ERRORS = {
    **ERRORS,
    429: OpenApiResponse(ZitadelErrorOutput, description="ResourceExhausted: too many tests."),
}
UNIMPLEMENTED = {
    401: ERRORS[401],
    403: ERRORS[403],
    501: OpenApiResponse(ZitadelErrorOutput, description="Unimplemented."),
}


def zitadel_schema(
    rpc: str,
    summary: str,
    *,
    request: Any = None,
    response: Any = ZitadelDetailsOutput,
    errors: dict[int, OpenApiResponse] = ERRORS,
) -> Any:
    return extend_schema(
        tags=[TAG],
        operation_id=f"AdminService_{rpc}",
        summary=summary,
        # The gateway reads any Content-Type as JSON; the document names the one to send.
        request={"application/json": request} if request is not None else None,
        responses={200: response, **errors},
    )


@dataclass(frozen=True)
class Shape:
    """What differs between ``/smtp`` (``SMTPConfig``) and ``/email`` (``EmailProvider``)."""

    config_input: type[ZitadelSmtpConfigInput]
    test_input: type[ZitadelSmtpTestInput]
    render: Callable[[SmtpConfig], dict[str, Any]]
    read_key: str  # a read answers {read_key: <the configuration>}


SMTP = Shape(ZitadelSmtpConfigInput, ZitadelSmtpTestInput, smtp_config, "smtpConfig")
EMAIL = Shape(EmailSmtpInput, EmailSmtpTestInput, email_provider, "config")


class ZitadelView(APIView):
    """Base of every ZITADEL operation: Bearer auth (JWT or API key), gRPC-style errors,
    bodies read as JSON whatever their Content-Type (as ZITADEL's gateway reads them).

    Each operation mixin names the permission of its method in ``grants``; a view's
    ``required_permissions`` is the union of its operations' grants.
    """

    authentication_classes = [ZitadelApiKeyAuthentication, OutboundJWTAuthentication]
    permission_classes = [HasOutboundPermission]
    parser_classes = [GatewayJSONParser]
    shape: ClassVar[Shape] = SMTP
    grants: ClassVar[dict[str, str]] = {}
    required_permissions: dict[str, str | None] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        merged: dict[str, str | None] = {}
        for base in reversed(cls.__mro__):
            merged.update(base.__dict__.get("grants", {}))
        cls.required_permissions = merged

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
        config = configurations().filter(pk=int(config_id)).first()
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

    def read(self, config: SmtpConfig) -> Response:
        return Response({self.shape.read_key: self.shape.render(config)})


def configurations() -> QuerySet[SmtpConfig]:
    # xoauth2 reads show the credential's endpoint: fetch it with the row.
    return selectors.smtp_config_list().select_related("authentication_object")


def page(
    configs: QuerySet[SmtpConfig], query: dict[str, Any] | None, total: int
) -> list[SmtpConfig]:
    """``ListQuery`` over ``configs``: newest first unless ``asc``; ``limit`` 0 is no limit."""
    query = query or {"offset": 0, "limit": 0, "asc": False}
    offset, limit = query["offset"], query["limit"]
    configs = configs.order_by("id" if query["asc"] else "-id")
    # An offset past the end is an empty page, without asking the database.
    if offset >= total:
        return []
    return list(configs[offset : offset + limit] if limit else configs[offset:])


# --- operations, each once for both shapes --------------------------------------------------


class GetActive(ZitadelView):
    grants = {"GET": VIEW}

    def get(self, request: Request) -> Response:
        config = configurations().filter(is_active=True).first()
        if config is None:
            raise errors.not_found()
        return self.read(config)


class GetById(ZitadelView):
    grants = {"GET": VIEW}

    def get(self, request: Request, id: str) -> Response:
        return self.read(self.get_config(id))


class Search(ZitadelView):
    grants = {"POST": VIEW}

    def post(self, request: Request) -> Response:
        body = self.parse(ZitadelSearchInput, request)
        configs = configurations()
        total = configs.count()
        result = page(configs, body.validated_data.get("query"), total)
        return Response(
            omit_zero(
                {
                    "details": list_details(total),
                    "result": [self.shape.render(c) for c in result],
                }
            )
        )


class Add(ZitadelView):
    """New configurations start inactive."""

    grants = {"POST": EDIT}

    def post(self, request: Request) -> Response:
        body = self.parse(self.shape.config_input, request)
        config = services.smtp_config_create(
            data=body.core_data(keep_password=False), actor=request.user, activate=False
        )
        return Response({"details": object_details(config.pk), "id": str(config.pk)})


class Update(ZitadelView):
    """The seed: an updated configuration "will be activated as soon as it is saved"."""

    grants = {"PUT": EDIT}

    def put(self, request: Request, id: str) -> Response:
        config = self.get_config(id)
        body = self.parse(self.shape.config_input, request)
        config = services.smtp_config_update(
            config=config,
            data=body.core_data(keep_password=True, current=config),
            actor=request.user,
            activate=True,
        )
        return Response({"details": object_details(config.pk)})


class Remove(ZitadelView):
    grants = {"DELETE": EDIT}

    def delete(self, request: Request, id: str) -> Response:
        config = self.get_config(id)
        pk = config.pk
        services.smtp_config_delete(config=config, actor=request.user)
        return Response({"details": object_details(pk)})


class SetPassword(ZitadelView):
    grants = {"PUT": EDIT}

    def put(self, request: Request, id: str) -> Response:
        config = self.get_config(id)
        body = self.parse(ZitadelPasswordInput, request)
        services.smtp_config_update(
            config=config, data={"password": body.validated_data["password"]}, actor=request.user
        )
        return Response({"details": object_details(config.pk)})


class Activate(ZitadelView):
    """This one becomes the active one; the others are not."""

    grants = {"POST": EDIT}

    def post(self, request: Request, id: str) -> Response:
        config = self.get_config(id)
        services.smtp_config_activate(config=config, actor=request.user)
        return Response({"details": object_details(config.pk)})


class Deactivate(ZitadelView):
    grants = {"POST": EDIT}

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


class Test(ZitadelView):
    """Test proposed settings by sending a real message; ``id`` lends a stored password."""

    grants = {"POST": EDIT}
    throttle_classes = [CallOutThrottle]
    throttle_scope = "smtp_test"

    def post(self, request: Request) -> Response:
        body = self.parse(self.shape.test_input, request)
        stored_id = body.validated_data["id"]
        stored = self.get_config(stored_id) if stored_id else None
        report = services.smtp_config_test(
            stored=stored,
            data=body.core_data(current=stored),
            receiver=body.validated_data["receiverAddress"],
        )
        return test_answer(report)


class TestById(ZitadelView):
    """Test a stored configuration, with its stored password."""

    grants = {"POST": EDIT}
    throttle_classes = [CallOutThrottle]
    throttle_scope = "smtp_test"

    def post(self, request: Request, id: str) -> Response:
        config = self.get_config(id)
        body = self.parse(ZitadelReceiverInput, request)
        report = services.smtp_config_test(
            stored=config, data={}, receiver=body.validated_data["receiverAddress"]
        )
        return test_answer(report)


class Unimplemented(ZitadelView):
    """What ZITADEL answers for a method its server does not implement: Unimplemented (501).
    Authentication and the permission still come first."""

    rpc: ClassVar[str] = ""

    def unimplemented(self) -> Response:
        raise errors.ZitadelError(
            errors.Code.UNIMPLEMENTED,
            "EMAIL-HTTP",
            f"method {self.rpc} not implemented: Outbound sends mail over SMTP only",
        )


# --- /smtp: SMTPConfig ---------------------------------------------------------------------


@extend_schema_view(
    get=zitadel_schema(
        "GetSMTPConfig", "Get the active SMTP configuration", response=ZitadelGetSmtpConfigOutput
    ),
    post=zitadel_schema(
        "AddSMTPConfig",
        "Add an SMTP configuration",
        request=ZitadelSmtpConfigInput,
        response=ZitadelAddOutput,
    ),
)
class SmtpView(GetActive, Add):
    """``GET /smtp`` (the active configuration) and ``POST /smtp`` (add one, inactive)."""


@extend_schema_view(
    post=zitadel_schema(
        "ListSMTPConfigs",
        "List SMTP configurations",
        request=ZitadelSearchInput,
        response=ZitadelSearchOutput,
    )
)
class SmtpSearchView(Search):
    """``POST /smtp/_search``."""


@extend_schema_view(
    get=zitadel_schema(
        "GetSMTPConfigById", "Get an SMTP configuration", response=ZitadelGetSmtpConfigOutput
    ),
    put=zitadel_schema(
        "UpdateSMTPConfig", "Update an SMTP configuration", request=ZitadelSmtpConfigInput
    ),
    delete=zitadel_schema("RemoveSMTPConfig", "Remove an SMTP configuration"),
)
class SmtpByIdView(GetById, Update, Remove):
    """``GET``, ``PUT`` and ``DELETE /smtp/{id}``."""


@extend_schema_view(
    put=zitadel_schema(
        "UpdateSMTPConfigPassword",
        "Update the password of an SMTP configuration",
        request=ZitadelPasswordInput,
    )
)
class SmtpPasswordView(SetPassword):
    """``PUT /smtp/{id}/password``."""


@extend_schema_view(
    post=zitadel_schema(
        "ActivateSMTPConfig", "Activate an SMTP configuration", request=ZitadelEmptyOutput
    )
)
class SmtpActivateView(Activate):
    """``POST /smtp/{id}/_activate``."""


@extend_schema_view(
    post=zitadel_schema(
        "DeactivateSMTPConfig", "Deactivate an SMTP configuration", request=ZitadelEmptyOutput
    )
)
class SmtpDeactivateView(Deactivate):
    """``POST /smtp/{id}/_deactivate``."""


@extend_schema_view(
    post=zitadel_schema(
        "TestSMTPConfig",
        "Test an SMTP configuration by sending a test mail",
        request=ZitadelSmtpTestInput,
        response=ZitadelEmptyOutput,
        errors=TEST_ERRORS,
    )
)
class SmtpTestView(Test):
    """``POST /smtp/_test``."""


@extend_schema_view(
    post=zitadel_schema(
        "TestSMTPConfigById",
        "Test a stored SMTP configuration by sending a test mail",
        request=ZitadelReceiverInput,
        response=ZitadelEmptyOutput,
        errors=TEST_ERRORS,
    )
)
class SmtpTestByIdView(TestById):
    """``POST /smtp/{id}/_test``."""


# --- /email: EmailProvider (SMTP; HTTP is not implemented) ----------------------------------


@extend_schema_view(
    get=zitadel_schema(
        "GetEmailProvider", "Get the active email provider", response=GetEmailProviderOutput
    )
)
class EmailView(GetActive):
    """``GET /email``: the active provider."""

    shape = EMAIL


@extend_schema_view(
    post=zitadel_schema(
        "ListEmailProviders",
        "List email providers",
        request=ZitadelSearchInput,
        response=ListEmailProvidersOutput,
    )
)
class EmailSearchView(Search):
    """``POST /email/_search``."""

    shape = EMAIL


@extend_schema_view(
    get=zitadel_schema(
        "GetEmailProviderById", "Get an email provider", response=GetEmailProviderOutput
    ),
    delete=zitadel_schema("RemoveEmailProvider", "Remove an email provider"),
)
class EmailByIdView(GetById, Remove):
    """``GET`` and ``DELETE /email/{id}``."""

    shape = EMAIL


@extend_schema_view(
    post=zitadel_schema(
        "AddEmailProviderSMTP",
        "Add an SMTP email provider",
        request=EmailSmtpInput,
        response=ZitadelAddOutput,
    )
)
class EmailSmtpView(Add):
    """``POST /email/smtp``: add one, inactive."""

    shape = EMAIL


@extend_schema_view(
    put=zitadel_schema(
        "UpdateEmailProviderSMTP", "Update an SMTP email provider", request=EmailSmtpInput
    )
)
class EmailSmtpByIdView(Update):
    """``PUT /email/smtp/{id}``: update and activate."""

    shape = EMAIL


@extend_schema_view(
    put=zitadel_schema(
        "UpdateEmailProviderSMTPPassword",
        "Update the password of an SMTP email provider",
        request=ZitadelPasswordInput,
    )
)
class EmailSmtpPasswordView(SetPassword):
    """``PUT /email/smtp/{id}/password``."""

    shape = EMAIL


@extend_schema_view(
    post=zitadel_schema(
        "ActivateEmailProvider", "Activate an email provider", request=ZitadelEmptyOutput
    )
)
class EmailActivateView(Activate):
    """``POST /email/{id}/_activate``."""

    shape = EMAIL


@extend_schema_view(
    post=zitadel_schema(
        "DeactivateEmailProvider", "Deactivate an email provider", request=ZitadelEmptyOutput
    )
)
class EmailDeactivateView(Deactivate):
    """``POST /email/{id}/_deactivate``."""

    shape = EMAIL


@extend_schema_view(
    post=zitadel_schema(
        "TestEmailProviderSMTP",
        "Test an SMTP email provider by sending a test mail",
        request=EmailSmtpTestInput,
        response=ZitadelEmptyOutput,
        errors=TEST_ERRORS,
    )
)
class EmailSmtpTestView(Test):
    """``POST /email/smtp/_test``."""

    shape = EMAIL


@extend_schema_view(
    post=zitadel_schema(
        "TestEmailProviderSMTPById",
        "Test a stored SMTP email provider by sending a test mail",
        request=ZitadelReceiverInput,
        response=ZitadelEmptyOutput,
        errors=TEST_ERRORS,
    )
)
class EmailSmtpTestByIdView(TestById):
    """``POST /email/smtp/{id}/_test``."""

    shape = EMAIL


class EmailHttpView(Unimplemented):
    """``POST /email/http``: ZITADEL's HTTP provider has no Outbound equivalent."""

    grants = {"POST": EDIT}
    rpc = "AddEmailProviderHTTP"

    @zitadel_schema(
        "AddEmailProviderHTTP",
        "Add an HTTP email provider (not implemented)",
        request=EmailHttpInput,
        response=ZitadelEmptyOutput,
        errors=UNIMPLEMENTED,
    )
    def post(self, request: Request) -> Response:
        return self.unimplemented()


class EmailHttpByIdView(Unimplemented):
    """``PUT /email/http/{id}``: ZITADEL's HTTP provider has no Outbound equivalent."""

    grants = {"PUT": EDIT}
    rpc = "UpdateEmailProviderHTTP"

    @zitadel_schema(
        "UpdateEmailProviderHTTP",
        "Update an HTTP email provider (not implemented)",
        request=EmailHttpInput,
        response=ZitadelEmptyOutput,
        errors=UNIMPLEMENTED,
    )
    def put(self, request: Request, id: str) -> Response:
        return self.unimplemented()
