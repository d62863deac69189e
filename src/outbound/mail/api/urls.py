"""URLs of the native SMTP settings API."""

from django.urls import path

from outbound.mail.api.views import SmtpSettingsTestView, SmtpSettingsView

urlpatterns = [
    path("administration/smtp-settings/", SmtpSettingsView.as_view(), name="smtp-settings"),
    path(
        "administration/smtp-settings/test/",
        SmtpSettingsTestView.as_view(),
        name="smtp-settings-test",
    ),
]
