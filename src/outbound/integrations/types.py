"""The registry of integration types. Each type class declares its fields (with validators
and which are secret), the common relations it requires, and its connection test.

The serializer, the validation, the OPTIONS ``details.schema_by_type`` and the console's
forms are generated from these declarations: adding a type is adding one class here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from outbound.core import egress
from outbound.core.http import HttpCallFailed, post_form
from outbound.core.secrets import SecretDecryptionError
from outbound.integrations.models import AuthenticationObject, ObjectClassField
from outbound.integrations.providers import IMANAGE, SECRETS_UNREADABLE

FieldKind = Literal["string", "bool", "pk"]


@dataclass(frozen=True)
class TypeField:
    """One type-specific field of an integration."""

    alias: str
    kind: FieldKind
    required: bool = False
    max_length: int | None = None
    default: Any = None
    secret: bool = False
    label: str = ""
    # For ``pk`` fields: the model, the name its errors use, the field of the integration
    # that scopes the choices (e.g. fields *of the chosen object class*) and the autocomplete.
    model: type[Any] | None = None
    model_name: str = ""
    scoped_by: str | None = None
    autocomplete: str | None = None
    # The model's column that its ``str()`` shows: the label lists read with the rows.
    label_field: str = "name"


@dataclass(frozen=True)
class TestOutcome:
    ok: bool
    errors: dict[str, list[str]]

    __test__ = False  # not a pytest class


AUTHENTICATION_FAILED = "Authentication failed."


class IntegrationType:
    """Base class of integration types; subclasses are registered with :func:`register`."""

    id: ClassVar[int]
    label: ClassVar[str]
    # Providers of authentication objects this type can use.
    authentication_providers: ClassVar[tuple[str, ...]] = ()
    # Common relations this type requires (shown in its ``schema_by_type``).
    requires: ClassVar[tuple[str, ...]] = ("authentication_object", "object_class")
    fields: ClassVar[tuple[TypeField, ...]] = ()

    @classmethod
    def field(cls, alias: str) -> TypeField:
        return next(f for f in cls.fields if f.alias == alias)

    @classmethod
    def test(cls, *, authentication_object: AuthenticationObject, timeout: float) -> TestOutcome:
        raise NotImplementedError


REGISTRY: dict[int, type[IntegrationType]] = {}


# The keys every integration body and its ``_meta.labels`` have besides the type's own fields.
COMMON_OUTPUT_KEYS = frozenset(
    {
        "uuid", "type", "name", "description", "is_enabled", "authentication_object",
        "object_class", "created_at", "created_by", "modified_at", "modified_by", "_meta",
    }
)  # fmt: skip


def register(cls: type[IntegrationType]) -> type[IntegrationType]:
    if cls.id in REGISTRY:
        raise ValueError(f"integration type {cls.id} is registered twice")
    keys = [f"has_{f.alias}" if f.secret else f.alias for f in cls.fields]
    if len(set(keys)) != len(keys) or COMMON_OUTPUT_KEYS & set(keys):
        # A body (or its labels) would carry one key for two things.
        raise ValueError(f"integration type {cls.id}: a field's key repeats another key")
    REGISTRY[cls.id] = cls
    return cls


def type_choices() -> list[tuple[int, str]]:
    return [(t.id, t.label) for t in REGISTRY.values()]


def _failure(message: str) -> TestOutcome:
    return TestOutcome(ok=False, errors={"non_field_errors": [message]})


@register
class IManage(IntegrationType):
    """iManage Work: documents are filed into ``folder``, matched on an object class field."""

    id = 1
    label = "iManage"
    authentication_providers = (IMANAGE.key,)
    fields = (
        TypeField(
            "object_class_field",
            "pk",
            required=True,
            label="Object class field",
            model=ObjectClassField,
            model_name="ObjectClassField",
            scoped_by="object_class",
            autocomplete="/api/object-classes/{object_class}/fields/autocomplete/?text__icontains=",
        ),
        TypeField("folder", "string", required=True, max_length=255, label="Folder"),
        TypeField("dedupe", "bool", default=False, label="Deduplicate documents"),
    )

    @classmethod
    def test(cls, *, authentication_object: AuthenticationObject, timeout: float) -> TestOutcome:
        """Authenticate against ``{server_url}/auth/oauth2/token`` (OAuth2 password grant)."""
        obj = authentication_object
        url = str(obj.param("server_url") or "").rstrip("/") + "/auth/oauth2/token"
        try:
            form = {
                "grant_type": "password",
                "username": str(obj.param("username") or ""),
                "password": obj.get_secret("password") or "",
                "client_id": str(obj.param("client_id") or ""),
                "client_secret": obj.get_secret("client_secret") or "",
            }
        except SecretDecryptionError:
            return _failure(SECRETS_UNREADABLE)
        try:
            response = post_form(url, form, timeout=timeout)
        except egress.EgressDenied as exc:
            return _failure(str(exc))
        except egress.ResolutionFailed as exc:
            return _failure(f"The iManage server could not be reached: {exc}")
        except HttpCallFailed as exc:
            return _failure(str(exc).replace("The endpoint", "The iManage server"))
        if response.status == 200 and response.body.get("access_token"):
            return TestOutcome(ok=True, errors={})
        if response.status in (400, 401, 403):
            return _failure(AUTHENTICATION_FAILED)
        return _failure(f"The iManage server answered HTTP {response.status}.")
