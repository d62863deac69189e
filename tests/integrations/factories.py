"""Object classes, their fields, iManage authentication objects and integrations, created
through ``outbound.integrations.services`` exactly as the API creates them."""

from __future__ import annotations

from typing import Any

from outbound.integrations import services
from outbound.integrations.models import (
    AuthenticationObject,
    Integration,
    ObjectClass,
    ObjectClassField,
)
from outbound.integrations.types import IManage

IMANAGE_PASSWORD = "imanage-Pa55word"
IMANAGE_CLIENT_SECRET = "imanage-client-secret"


def make_imanage_auth(
    actor: Any, name: str = "iManage prod", server_url: str = "https://imanage.example.com"
) -> AuthenticationObject:
    return services.authentication_object_create(
        name=name,
        provider="imanage",
        params={
            "server_url": server_url,
            "username": "filer",
            "password": IMANAGE_PASSWORD,
            "client_id": "outbound",
            "client_secret": IMANAGE_CLIENT_SECRET,
        },
        actor=actor,
    )


def make_object_class(actor: Any, name: str = "Matter", description: str = "") -> ObjectClass:
    return services.object_class_create(
        data={"name": name, "description": description}, actor=actor
    )


def make_field(
    actor: Any, object_class: ObjectClass, name: str = "Matter number", description: str = ""
) -> ObjectClassField:
    return services.object_class_field_create(
        object_class=object_class, data={"name": name, "description": description}, actor=actor
    )


def make_integration(
    actor: Any,
    *,
    name: str,
    authentication_object: AuthenticationObject,
    object_class: ObjectClass,
    field: ObjectClassField,
    folder: str = "/Matters",
    **data: Any,
) -> Integration:
    """An iManage integration (type 1); ``data`` overrides any other common or type field."""
    body: dict[str, Any] = {
        "name": name,
        "authentication_object": authentication_object,
        "object_class": object_class,
        "object_class_field": field,
        "folder": folder,
        **data,
    }
    return services.integration_create(type_id=IManage.id, data=body, actor=actor)
