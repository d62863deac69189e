"""URLs of the mail API: the ALX SMTP settings, the native SMTP configurations and the outbox."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from outbound.mail.api.config_views import SmtpConfigurationViewSet
from outbound.mail.api.message_views import MessageViewSet
from outbound.mail.api.version_views import SmtpConfigRollbackView, SmtpConfigVersionListView
from outbound.mail.api.views import SmtpSettingsTestView, SmtpSettingsView

router = SimpleRouter()
router.register("messages", MessageViewSet, basename="message")
router.register("smtp-configurations", SmtpConfigurationViewSet, basename="smtp-configuration")

urlpatterns = [
    path("administration/smtp-settings/", SmtpSettingsView.as_view(), name="smtp-settings"),
    path(
        "administration/smtp-settings/test/",
        SmtpSettingsTestView.as_view(),
        name="smtp-settings-test",
    ),
    path(
        "smtp-configurations/<int:pk>/versions/",
        SmtpConfigVersionListView.as_view(),
        name="smtp-configuration-versions",
    ),
    path(
        "smtp-configurations/<int:pk>/rollback/",
        SmtpConfigRollbackView.as_view(),
        name="smtp-configuration-rollback",
    ),
    *router.urls,
]
