"""``/api/smtp-configurations/{id}/versions/`` and ``…/rollback/``: a configuration's saved
states, and bringing one back (through :func:`outbound.mail.services.smtp_config_rollback`)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outbound.core.api.schema import NATIVE_ERRORS
from outbound.mail import services
from outbound.mail.api.version_serializers import (
    SmtpConfigRollbackInput,
    SmtpConfigVersionSerializer,
)
from outbound.mail.models import SmtpConfig, SmtpConfigVersion

VIEW = "outbound_mail_setup.view"
EDIT = "outbound_mail_setup.edit"


def _config(pk: int) -> SmtpConfig:
    config = SmtpConfig.objects.filter(pk=pk).first()
    if config is None:
        raise Http404
    return config


class SmtpConfigVersionListView(generics.ListAPIView[SmtpConfigVersion]):
    """The configuration's versions, newest first (ALX envelope): every saved state of its
    settings — who saved it, when, which way in, which fields that save changed, and the
    settings as saved. Passwords are never shown: `has_password` says whether one was saved
    with the version."""

    serializer_class = SmtpConfigVersionSerializer
    required_permissions = {"GET": VIEW}
    filter_backends: list[Any] = []

    def get_queryset(self) -> QuerySet[SmtpConfigVersion]:
        return services.smtp_config_versions(_config(self.kwargs["pk"]))

    @extend_schema(
        operation_id="smtp_configurations_versions_list",
        responses={
            200: OpenApiResponse(
                SmtpConfigVersionSerializer(many=True),
                description="The page of versions, newest first.",
            ),
            404: NATIVE_ERRORS.response(404, "No configuration has this id."),
        },
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class SmtpConfigRollbackView(APIView):
    """Bring the configuration back to one of its versions — every setting and the password
    saved with it — saved as a new version (`restored_from` names the version restored), in
    one transaction, and recorded as the event `rolled_back` (webhook `smtp_config.changed`,
    action `rolled_back`). The sender delivers the next message with it. The rollback is
    validated like an update; whether the configuration is active, and its standby rank,
    stay as they are. Rolling back to a version equal to the current state changes nothing
    and answers the current version."""

    required_permissions = {"POST": EDIT}

    @extend_schema(
        operation_id="smtp_configurations_rollback",
        request=SmtpConfigRollbackInput,
        responses={
            200: OpenApiResponse(
                SmtpConfigVersionSerializer,
                description="The configuration's version now: the new one, saved from the "
                "version restored (or the current one, when nothing differed).",
            ),
            400: NATIVE_ERRORS.response(
                400,
                "Nothing was changed: the body is invalid, the configuration has no such "
                "version (`version`), or the version cannot be restored as it is — its "
                "password cannot be opened with the configured keys (`password`), its "
                "authentication object was deleted, or bringing a Microsoft configuration's "
                "object back needs a user who may edit authentication objects "
                "(`authentication_object`), or its settings no longer pass validation.",
            ),
            404: NATIVE_ERRORS.response(
                404,
                "No configuration has this id, or it was deleted while this request ran "
                "(`error_code` `not_found`); nothing was changed.",
            ),
            409: NATIVE_ERRORS.response(
                409, "The rollback lost a race against a concurrent change; nothing was written."
            ),
        },
    )
    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        config = _config(kwargs["pk"])
        body = SmtpConfigRollbackInput(data=request.data)
        body.is_valid(raise_exception=True)
        _, current = services.smtp_config_rollback(
            config=config, version=body.validated_data["version"], actor=request.user
        )
        # The version the rollback saved (or found current), not the newest one now: a
        # concurrent update may already have saved a later one.
        return Response(SmtpConfigVersionSerializer(current).data)
