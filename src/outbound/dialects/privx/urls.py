"""URLs of the PrivX dialect (mounted under ``/workflow-engine/api/v1/``), as PrivX spells them
(no trailing slash); anything else under the prefix gets PrivX's 404 body from the root
URLconf's catch-all (``outbound.api_errors``)."""

from django.urls import URLPattern, URLResolver, path

from outbound.dialects.privx import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("settings", views.SettingsView.as_view(), name="privx-settings"),
    path("testsmtp", views.TestSmtpView.as_view(), name="privx-testsmtp"),
]
