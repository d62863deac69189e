"""URLs of the ZITADEL dialect, mounted under ``/admin/v1/``."""

from django.urls import URLPattern, URLResolver, path, re_path

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
    re_path(r"^.*$", views.NotFoundView.as_view(), name="zitadel-not-found"),
]
