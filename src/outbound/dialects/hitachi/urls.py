"""URLs of the Hitachi dialect (mounted under ``/Analytics/v1/``); anything else under the
prefix gets Hitachi's 404 body from the root URLconf's catch-all (``outbound.api_errors``)."""

from django.urls import URLPattern, URLResolver, path

from outbound.dialects.hitachi import views

SEND_TEST_MAIL = "services/EmailServerSettings/actions/sendTestMail"

urlpatterns: list[URLPattern | URLResolver] = [
    path("objects/EmailServerSettings", views.EmailServerSettingsView.as_view()),
    path("objects/EmailServerSettings/<str:instance_id>", views.EmailServerSettingView.as_view()),
    path(SEND_TEST_MAIL, views.SendTestMailTemplateView.as_view()),
    path(
        f"{SEND_TEST_MAIL}/invoke",
        views.SendTestMailInvokeView.as_view(),
        name="hitachi-send-test-mail-invoke",
    ),
]
