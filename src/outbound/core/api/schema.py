"""The OpenAPI document's error answers: every operation lists each status it can answer,
with that API shape's error body, derived from the view that answers it.

:class:`OutboundAutoSchema` (the project's ``DEFAULT_SCHEMA_CLASS``) reads, per operation, what
the view really does — the authentication and permission classes it runs, its throttles, its
parsers, its path and query parameters, whether it takes a body — and adds the statuses those
produce (400, 401, 403, 404, 409, 415, 429) unless the operation documents them itself. The
body of each comes from the view's :class:`ErrorShape`: the native (ALX/DRF) one here, each
vendor's in its dialect package (``error_shape`` on the dialect's base view). What only a
view's own code answers (a login throttle, a missing active configuration) it names in
``error_statuses``.

Every operation also documents its answer to a database outage (any operation may meet one:
authentication alone reads the database), with ``Retry-After``: 503 in each shape's body, or
the status the shape names (Hitachi's 412, "the server is not available").
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.serializers import PolymorphicProxySerializerExtension
from drf_spectacular.utils import OpenApiResponse, PolymorphicProxySerializer
from rest_framework import serializers
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import AllowAny
from rest_framework.views import APIView

from outbound.core.permissions import AUTHENTICATED, HasOutboundPermission

UNSAFE = ("POST", "PUT", "PATCH", "DELETE")
# Viewset actions that write rows under unique constraints: a lost race is a 409.
WRITE_ACTIONS = ("create", "update", "partial_update")

DESCRIPTIONS = {
    400: "The request is invalid: each problem is named.",
    401: "No valid credentials were sent (missing, malformed, expired or revoked).",
    403: "The credentials are valid but lack the permission this operation needs.",
    404: "Nothing exists at this path.",
    405: "The resource does not answer this method.",
    409: "The request lost a race against a concurrent change; nothing was written. Retry.",
    413: "The request is too large.",
    415: "The request's Content-Type is not one this operation reads.",
    429: "Too many requests: the `Retry-After` header says when to try again.",
    503: "The database is unavailable (restarting, or read-only): the `Retry-After` header "
    "says when to try again.",
}


@dataclass(frozen=True)
class ErrorShape:
    """How one API shape answers errors: one body for every status, or one per status."""

    body: Any
    bodies: dict[int, Any] = field(default_factory=dict)
    descriptions: dict[int, str] = field(default_factory=dict)
    # The status a database outage is answered with (core.errors.answer_unavailable).
    unavailable: int = 503

    def response(self, status: int, description: str | None = None) -> OpenApiResponse:
        return OpenApiResponse(
            self.bodies.get(status, self.body),
            description=description
            or self.descriptions.get(status)
            or DESCRIPTIONS.get(status, "An error."),
        )

    def responses(self, *statuses: int) -> dict[int, OpenApiResponse]:
        """For an explicit ``extend_schema(responses={200: …, **shape.responses(400, 404)})``."""
        return {status: self.response(status) for status in statuses}


RETRY_AFTER = {
    "schema": {"type": "integer", "minimum": 0},
    "description": "Seconds until the next attempt may succeed.",
}


# --- the native (ALX / DRF) shape ---------------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer[Any]):
    detail = serializers.CharField(help_text="One sentence saying what went wrong.")
    error_code = serializers.CharField(
        required=False, help_text="A stable code, where the error has one (`ERR_LIMIT_EXCEEDED`)."
    )


class ErrorDetailExtension(OpenApiSerializerExtension):
    """``{"detail"}`` admits nothing else, so it is told apart from bodies that carry a
    ``detail`` among other fields (one ``oneOf`` branch matches, not two)."""

    target_class = ErrorDetailSerializer

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        return {**schema, "additionalProperties": False}


class ValidationErrorsSerializer(serializers.Serializer[Any]):
    """Marker for DRF's field errors, ``{"<field>": ["message", …]}`` (see the extension)."""


class ValidationErrorsExtension(OpenApiSerializerExtension):
    target_class = ValidationErrorsSerializer

    def get_name(self, auto_schema: Any, direction: str) -> str:
        return "ValidationErrors"

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        return {
            "type": "object",
            "description": "The messages per field (`non_field_errors` for the body as a "
            "whole); a nested field's errors are an object of the same form, a list "
            "item's are keyed by its index.",
            "minProperties": 1,
            "additionalProperties": {
                "oneOf": [
                    {"type": "array", "items": {"type": "string"}},
                    {"type": "object", "additionalProperties": {}},
                ]
            },
        }


class PartialPolymorphicExtension(PolymorphicProxySerializerExtension):
    """A partial update's body is ``anyOf`` its variants, not ``oneOf``: with every field
    optional, a body that names no ``provider``/``type`` (the object keeps its own) fits
    several variants, and ``oneOf`` would call such a valid body invalid."""

    priority = 0  # before drf-spectacular's own (-1)

    def map_serializer(self, auto_schema: Any, direction: str) -> dict[str, Any]:
        schema: dict[str, Any] = super().map_serializer(auto_schema, direction)
        if direction == "request" and auto_schema.method == "PATCH" and "oneOf" in schema:
            schema["anyOf"] = schema.pop("oneOf")
        return schema


BadRequestSerializer = PolymorphicProxySerializer(
    component_name="BadRequest",
    serializers=[ErrorDetailSerializer, ValidationErrorsSerializer],
    resource_type_field_name=None,
)

NATIVE_ERRORS = ErrorShape(body=ErrorDetailSerializer, bodies={400: BadRequestSerializer})


# --- the inspector ------------------------------------------------------------------------


def _is_default_handler(view: APIView) -> bool:
    return type(view).get_exception_handler is APIView.get_exception_handler


class OutboundAutoSchema(AutoSchema):
    """drf-spectacular's AutoSchema plus the error statuses each operation can answer."""

    def get_description(self) -> str:  # type: ignore[override]
        """The action's docstring, else the view's own — never a shared mixin's (the mixins
        in ``outbound.core`` document how they work, not the operation)."""
        action = getattr(self.view, getattr(self.view, "action", self.method.lower()), None)
        if action is not None and action.__doc__:
            return inspect.cleandoc(action.__doc__)
        for cls in type(self.view).__mro__:
            module = cls.__module__
            ours = module.startswith("outbound.") and not module.startswith("outbound.core.")
            if ours and cls.__doc__:
                return inspect.cleandoc(cls.__doc__)
        return ""

    def get_tags(self) -> list[str]:
        """Native operations by resource (``users``, ``integrations``, ``smtp-settings``, …);
        the dialects name their vendor themselves."""
        parts = [p for p in self._tokenize_path() if not p.startswith("{")]
        if parts[:1] == ["api"] and len(parts) > 1:
            return [
                parts[2] if parts[1] in ("administration", "auth") and len(parts) > 2 else parts[1]
            ]
        return parts[:1]

    def error_shape(self) -> ErrorShape | None:
        shape = getattr(self.view, "error_shape", None)
        if shape is None and _is_default_handler(self.view):
            return NATIVE_ERRORS
        return shape

    def error_statuses(self, operation: dict[str, Any], shape: ErrorShape) -> set[int]:
        """What this view's own machinery answers besides success."""
        view, method = self.view, self.method
        statuses: set[int] = set()
        parameters = operation.get("parameters", [])
        if "requestBody" in operation or any(p["in"] == "query" for p in parameters):
            statuses.add(400)
        if _is_default_handler(view):
            if method in UNSAFE:
                statuses.add(400)  # the services' refusals (in use, not allowed, …)
            if getattr(view, "action", None) in WRITE_ACTIONS:
                statuses.add(409)  # core.errors: a race lost against a unique constraint
        if view.get_authenticators():
            statuses.add(401)  # sent credentials that do not authenticate
        permissions = [p for p in view.get_permissions() if not isinstance(p, AllowAny)]
        if permissions:
            statuses.add(401)  # no credentials at all
        if any(self._may_forbid(p) for p in permissions):
            statuses.add(403)
        if method in UNSAFE and any(
            isinstance(a, SessionAuthentication) for a in view.get_authenticators()
        ):
            statuses.add(403)  # a console session without its CSRF token
        if any(p["in"] == "path" for p in parameters):
            statuses.add(404)
        if "requestBody" in operation and not any(
            p.media_type == "*/*" for p in view.get_parsers()
        ):
            statuses.add(415)
        if view.get_throttles():
            statuses.add(429)
        return statuses

    def _may_forbid(self, permission: object) -> bool:
        """Whether ``permission`` can refuse a signed-in caller: Outbound's permission class
        asks what the view declares for this method (``AUTHENTICATED`` cannot refuse)."""
        if not isinstance(permission, HasOutboundPermission):
            return True
        view = self.view
        # The inspected view is not dispatched: bind its actions to their HTTP methods, as
        # ``as_view`` would, so the permission class sees the handlers it looks for.
        for http_method, action in (getattr(view, "action_map", None) or {}).items():
            if not hasattr(view, http_method) and hasattr(view, action):
                setattr(view, http_method, getattr(view, action))
        request: Any = SimpleNamespace(method=self.method)  # all ``required`` reads of it
        needed = HasOutboundPermission.required(request, view)
        return needed is not AUTHENTICATED

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        shape = self.error_shape()
        if shape is not None:
            # A view names what its own code answers besides (``error_statuses``: status ->
            # description, or None for the shape's wording).
            declared: dict[int, str | None] = dict(getattr(self.view, "error_statuses", {}))
            statuses = self.error_statuses(operation, shape) | set(declared)
            responses = operation["responses"]
            for status in sorted(statuses):
                if str(status) not in responses:
                    responses[str(status)] = self._get_response_for_code(
                        shape.response(status, declared.get(status)), str(status)
                    )
            if "429" in responses:
                responses["429"].setdefault("headers", {})["Retry-After"] = RETRY_AFTER
        self.add_unavailable(operation, shape)
        return operation

    def add_unavailable(self, operation: dict[str, Any], shape: ErrorShape | None) -> None:
        """The answer to a database outage, with ``Retry-After``. A view that documents its
        errors itself, with no :class:`ErrorShape` (ZITADEL's), answers it in the body its
        other errors have."""
        responses = operation["responses"]
        code = shape.unavailable if shape is not None else 503
        description = (shape.descriptions if shape is not None else {}).get(code, DESCRIPTIONS[503])
        status = str(code)
        if status not in responses:
            errors = [r for c, r in sorted(responses.items()) if c[0] in "45"]
            borrowed = next((r for r in errors if "content" in r), None)
            if shape is None and borrowed is not None:
                responses[status] = {"content": copy.deepcopy(borrowed["content"])}
            else:
                body = shape if shape is not None else NATIVE_ERRORS
                responses[status] = self._get_response_for_code(body.response(code), status)
        if shape is None or not responses[status].get("description"):
            responses[status]["description"] = description
        responses[status].setdefault("headers", {})["Retry-After"] = RETRY_AFTER
