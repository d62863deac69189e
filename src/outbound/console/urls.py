"""Console URLs (``/console/…``); each area's module declares its own patterns."""

from django.urls import include, path

from outbound.console.views import (
    accounts,
    api_keys,
    auth,
    credentials,
    history,
    integrations,
    mail,
    mail_versions,
    messages,
    object_classes,
    webhooks,
)

app_name = "console"

urlpatterns = [
    path("", auth.HomeView.as_view(), name="home"),
    path("sign-in/", auth.LoginView.as_view(), name="login"),
    path("sign-out/", auth.LogoutView.as_view(), name="logout"),
    path("mail/", include(mail.urlpatterns)),
    path("mail/<int:pk>/versions/", include(mail_versions.urlpatterns)),
    path("messages/", include(messages.urlpatterns)),
    path("integrations/", include(integrations.urlpatterns)),
    path("credentials/", include(credentials.urlpatterns)),
    path("object-classes/", include(object_classes.urlpatterns)),
    path("history/", include(history.urlpatterns)),
    path("api-keys/", include(api_keys.urlpatterns)),
    path("webhooks/", include(webhooks.urlpatterns)),
    path("", include(accounts.urlpatterns)),  # users/ and roles/
]
