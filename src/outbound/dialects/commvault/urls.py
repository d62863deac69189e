"""URLs of the Commvault dialect; Commvault matches paths in any letter case. Anything else
under the prefix is answered by the root URLconf's catch-all (``outbound.api_errors``)."""

from __future__ import annotations

import re

from django.urls import URLPattern, URLResolver, path, re_path
from rest_framework.views import APIView

from outbound.dialects.commvault.views import EmailServerTestView, EmailServerView


def _caseless(route: str) -> str:
    """``V4`` -> ``[vV]4``: case-insensitive without an inline ``(?i)`` flag, which Django
    cannot reverse (it would break ``reverse()`` for the whole project)."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in route)


def _any_case(route: str, view: type[APIView], name: str) -> list[URLPattern]:
    """``route`` as documented (the one in the schema), then in any case, with or without a
    trailing slash (the same view, left out of the schema so it is documented once)."""
    hidden: type[APIView] = type(f"{view.__name__}AnyCase", (view,), {"schema": None})
    return [
        path(route, view.as_view(), name=name),
        re_path(rf"^{_caseless(route)}/?$", hidden.as_view()),
    ]


urlpatterns: list[URLPattern | URLResolver] = [
    *_any_case("V4/EmailServer/Action/Test", EmailServerTestView, "commvault-email-server-test"),
    *_any_case("V4/EmailServer", EmailServerView, "commvault-email-server"),
]
