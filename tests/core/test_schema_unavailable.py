"""The OpenAPI document tells every operation's answer to a database outage: 503 (Hitachi's
412, "The server is not available.") in that shape's own error body, with ``Retry-After``."""

from __future__ import annotations

import json
from typing import Any

import pytest
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer

pytestmark = pytest.mark.django_db  # the suite's autouse fixture clears the database cache

METHODS = ("get", "post", "put", "patch", "delete")
# The error body each API shape answers in (its components' names in the document).
BODIES = {
    "/api/": {"ErrorDetail"},
    "/admin/v1/": {"ZitadelErrorOutput"},
    "/Analytics/v1/": {"HitachiError"},
    "/commandcenter/api/": {"CommvaultResult"},
    "/workflow-engine/api/v1/": {"PrivxError"},
}


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    raw = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(raw, renderer_context={}))


def test_every_operation_documents_the_outage_answer(document: dict[str, Any]) -> None:
    seen, wrong = 0, []
    for path, item in document["paths"].items():
        prefix = next(p for p in BODIES if path.startswith(p))
        status = "412" if prefix == "/Analytics/v1/" else "503"
        for method, op in item.items():
            if method not in METHODS:
                continue
            seen += 1
            answer = op["responses"].get(status)
            if answer is None:
                wrong.append(f"{method} {path}: no {status}")
                continue
            if "Retry-After" not in answer.get("headers", {}):
                wrong.append(f"{method} {path}: {status} without Retry-After")
            if not answer.get("description"):
                wrong.append(f"{method} {path}: {status} undescribed")
            ref = answer["content"]["application/json"]["schema"].get("$ref", "")
            if ref.rsplit("/", 1)[-1] not in BODIES[prefix]:
                wrong.append(f"{method} {path}: {status} body {ref}")
    assert seen > 50
    assert not wrong
