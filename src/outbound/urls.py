"""Root URLs: probes, the API, its schema and Swagger UI, the vendor dialects, the console."""

import re

from django.conf import settings
from django.urls import include, path, re_path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from outbound import api_errors
from outbound.core.metrics import metrics_view
from outbound.core.views import healthz, readyz

FAVICON = f"{settings.STATIC_URL}console/favicon.svg"


class SchemaView(api_errors.JsonErrorsMixin, SpectacularAPIView):
    """The OpenAPI document (YAML or JSON); its refusals are JSON."""


class SwaggerView(api_errors.JsonErrorsMixin, SpectacularSwaggerView):
    """Swagger UI; its refusals are JSON, not an HTML page."""


api_patterns = [
    path("", include("outbound.accounts.api.urls")),
    path("", include("outbound.integrations.api.urls")),
    path("", include("outbound.mail.api.urls")),
    path("", include("outbound.webhooks.api.urls")),
    path("", include("outbound.core.api.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),  # Prometheus; not an API operation
    path("api/schema/", SchemaView.as_view(permission_classes=[]), name="schema"),
    path(
        "api/docs/",
        SwaggerView.as_view(url_name="schema", permission_classes=[]),
        name="swagger-ui",
    ),
    path("api/", include(api_patterns)),
    path("console/", include("outbound.console.urls")),
    path("", RedirectView.as_view(pattern_name="console:home", permanent=False)),
    # Browsers ask for /favicon.ico on pages that name no icon (Swagger UI, the JSON errors).
    path("favicon.ico", RedirectView.as_view(url=FAVICON, permanent=True)),
    # Vendor dialects, each under its vendor's prefix.
    path("admin/v1/", include("outbound.dialects.zitadel.urls")),
    path("Analytics/v1/", include("outbound.dialects.hitachi.urls")),
    path("commandcenter/api/", include("outbound.dialects.commvault.urls")),
    path("workflow-engine/api/v1/", include("outbound.dialects.privx.urls")),
    # Last: whatever no route above matched under an API prefix is that shape's JSON 404.
    *[
        re_path(rf"^{re.escape(shape.prefix)}(?:/.*)?$", api_errors.not_found)
        for shape in api_errors.SHAPES
    ],
]

# What Django raises itself (outside any view's exception handler): in the shape of the
# prefix it happened under, Django's pages elsewhere (the console).
handler400 = api_errors.bad_request
handler403 = api_errors.permission_denied
handler404 = api_errors.page_not_found
handler500 = api_errors.server_error

if settings.OUTBOUND_BENCH:  # a bare DRF view, the baseline of `make bench`
    from outbound.core.bench import BareView

    urlpatterns.append(path("bench/bare/", BareView.as_view()))
