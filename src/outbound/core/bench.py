"""The baseline view for ``make bench``: authenticated, no database work, same stack."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from outbound.core.permissions import AUTHENTICATED


class BareView(APIView):
    required_permissions = {"GET": AUTHENTICATED}

    def get(self, request: Request) -> Response:
        return Response({"ok": True})
