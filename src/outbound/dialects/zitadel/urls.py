"""URLs of the ZITADEL dialect, mounted under ``/admin/v1/``: the routes of ZITADEL's
``admin.proto`` for SMTP configurations (``/smtp…``) and email providers (``/email…``)."""

from django.urls import URLPattern, URLResolver, path

from outbound.dialects.zitadel import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("smtp", views.SmtpView.as_view(), name="zitadel-smtp"),
    path("smtp/_search", views.SmtpSearchView.as_view(), name="zitadel-smtp-search"),
    path("smtp/_test", views.SmtpTestView.as_view(), name="zitadel-smtp-test"),
    path("smtp/<str:id>", views.SmtpByIdView.as_view(), name="zitadel-smtp-id"),
    path(
        "smtp/<str:id>/password",
        views.SmtpPasswordView.as_view(),
        name="zitadel-smtp-password",
    ),
    path(
        "smtp/<str:id>/_activate",
        views.SmtpActivateView.as_view(),
        name="zitadel-smtp-activate",
    ),
    path(
        "smtp/<str:id>/_deactivate",
        views.SmtpDeactivateView.as_view(),
        name="zitadel-smtp-deactivate",
    ),
    path("smtp/<str:id>/_test", views.SmtpTestByIdView.as_view(), name="zitadel-smtp-id-test"),
    # Email providers (the current API); fixed segments come before ``email/<id>``.
    path("email", views.EmailView.as_view(), name="zitadel-email"),
    path("email/_search", views.EmailSearchView.as_view(), name="zitadel-email-search"),
    path("email/smtp", views.EmailSmtpView.as_view(), name="zitadel-email-smtp"),
    path("email/smtp/_test", views.EmailSmtpTestView.as_view(), name="zitadel-email-smtp-test"),
    path("email/http", views.EmailHttpView.as_view(), name="zitadel-email-http"),
    path("email/smtp/<str:id>", views.EmailSmtpByIdView.as_view(), name="zitadel-email-smtp-id"),
    path(
        "email/smtp/<str:id>/password",
        views.EmailSmtpPasswordView.as_view(),
        name="zitadel-email-smtp-password",
    ),
    path(
        "email/smtp/<str:id>/_test",
        views.EmailSmtpTestByIdView.as_view(),
        name="zitadel-email-smtp-id-test",
    ),
    path("email/http/<str:id>", views.EmailHttpByIdView.as_view(), name="zitadel-email-http-id"),
    path("email/<str:id>", views.EmailByIdView.as_view(), name="zitadel-email-id"),
    path(
        "email/<str:id>/_activate",
        views.EmailActivateView.as_view(),
        name="zitadel-email-activate",
    ),
    path(
        "email/<str:id>/_deactivate",
        views.EmailDeactivateView.as_view(),
        name="zitadel-email-deactivate",
    ),
]
