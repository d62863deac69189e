"""The OpenAPI document: errors per operation, and bodies that depend on a registry."""

from __future__ import annotations

import json
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

from outbound.integrations.providers import PROVIDERS
from outbound.integrations.types import REGISTRY

pytestmark = pytest.mark.django_db  # the suite's autouse fixture clears the database cache

METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    raw = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(raw, renderer_context={}))


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, item in document["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def body_schema(document: dict[str, Any], holder: dict[str, Any]) -> dict[str, Any]:
    return resolve(document, holder["content"]["application/json"]["schema"])


def test_every_operation_documents_its_errors(document: dict[str, Any]) -> None:
    missing = []
    for method, path, op in operations(document):
        statuses = set(op["responses"])
        if "501" in statuses:
            continue  # unimplemented (ZITADEL's HTTP provider): only 401, 403 and 501
        wanted = set()
        if op.get("security") and {} not in op["security"]:
            wanted.add("401")  # signed in
            if method != "GET":
                wanted.add("403")  # allowed (and, in a console session, the CSRF token)
        if any(p["in"] == "path" for p in op.get("parameters", [])):
            wanted.add("404")
        if "requestBody" in op:
            wanted.add("400")
        missing += [f"{method} {path}: {s}" for s in sorted(wanted - statuses)]
    assert not missing


def test_403_where_a_permission_is_needed(document: dict[str, Any]) -> None:
    paths = document["paths"]
    assert "403" in paths["/api/roles/"]["get"]["responses"]  # roles.list
    assert "403" in paths["/api/auth/api-keys/"]["get"]["responses"]  # never with an API key
    # Signed in is enough: nothing to refuse.
    assert "403" not in paths["/api/users/autocomplete/"]["get"]["responses"]
    assert "403" not in paths["/api/users/permissions/{resource}/"]["get"]["responses"]


def test_native_errors_have_the_native_body(document: dict[str, Any]) -> None:
    op = document["paths"]["/api/roles/{id}/"]["patch"]
    assert body_schema(document, op["responses"]["404"])["required"] == ["detail"]
    bad_request = body_schema(document, op["responses"]["400"])
    names = {ref["$ref"].rsplit("/", 1)[1] for ref in bad_request["oneOf"]}
    assert names == {"ErrorDetail", "ValidationErrors"}
    assert "429" in document["paths"]["/api/auth/token/"]["post"]["responses"]
    assert "401" in document["paths"]["/api/auth/token/"]["post"]["responses"]
    assert "429" in document["paths"]["/api/integrations/test/"]["post"]["responses"]


def test_authentication_object_bodies_are_one_of_by_provider(document: dict[str, Any]) -> None:
    op = document["paths"]["/api/authentication-objects/"]["post"]
    request = body_schema(document, op["requestBody"])
    response = body_schema(document, op["responses"]["201"])
    for schema, direction in ((request, "request"), (response, "response")):
        assert schema["discriminator"]["propertyName"] == "provider"
        assert set(schema["discriminator"]["mapping"]) == set(PROVIDERS)
        for key, provider in PROVIDERS.items():
            branch = resolve(document, {"$ref": schema["discriminator"]["mapping"][key]})
            props = set(branch["properties"])
            assert {"name", "provider"} <= props
            if direction == "request":
                assert {p.name for p in provider.params} <= props
            else:
                assert set(provider.public_names) <= props
                assert {f"has_{n}" for n in provider.secret_names} <= props
                assert not set(provider.secret_names) & props  # secrets are never answered


def test_integration_bodies_are_one_of_by_type(document: dict[str, Any]) -> None:
    op = document["paths"]["/api/integrations/"]["post"]
    request = body_schema(document, op["requestBody"])
    response = body_schema(document, op["responses"]["201"])
    for schema in (request, response):
        assert schema["discriminator"]["propertyName"] == "type"
        assert set(schema["discriminator"]["mapping"]) == {str(t) for t in REGISTRY}
    for type_id, itype in REGISTRY.items():
        branch = resolve(document, {"$ref": request["discriminator"]["mapping"][str(type_id)]})
        assert {f.alias for f in itype.fields} <= set(branch["properties"])
        assert {f.alias for f in itype.fields if f.required} <= set(branch["required"])


def test_smtp_test_failure_documents_both_shapes(document: dict[str, Any]) -> None:
    op = document["paths"]["/api/administration/smtp-settings/test/"]["post"]
    refused = body_schema(document, op["responses"]["400"])
    branches = [resolve(document, ref) for ref in refused["oneOf"]]
    shapes = [set(b.get("properties", {})) for b in branches]
    assert {"status", "msg", "steps"} in shapes
    assert {"detail", "msg", "steps"} in shapes
    step = resolve(
        document, body_schema(document, op["responses"]["200"])["properties"]["steps"]["items"]
    )
    assert {"reply", "addresses", "tls_version", "cipher", "certificate", "capabilities"} <= set(
        step["properties"]
    )


def test_descriptions_are_the_operations_not_a_mixins(document: dict[str, Any]) -> None:
    for _, _, op in operations(document):
        assert "Filters and ordering belong to the list" not in op.get("description", "")


def test_a_partial_update_names_no_provider_and_still_fits(document: dict[str, Any]) -> None:
    """PATCH without ``provider``/``type`` is valid (the object keeps its own): ``anyOf``."""
    for path in ("/api/authentication-objects/{id}/", "/api/integrations/{uuid}/"):
        schema = body_schema(document, document["paths"][path]["patch"]["requestBody"])
        assert "anyOf" in schema and "oneOf" not in schema
