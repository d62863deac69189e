"""Fixtures shared by the dialect tests: one admin client per API shape."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from outbound.accounts import services as account_services
from tests.conftest import client_for


@pytest.fixture
def clients(admin_user: Any) -> dict[str, APIClient]:
    _, key = account_services.api_key_create(
        owner=admin_user, name="cv", permissions=["outbound_mail_setup.view",
                                                  "outbound_mail_setup.edit"], actor=admin_user,
    )  # fmt: skip
    commvault = APIClient()
    commvault.credentials(HTTP_AUTHTOKEN=key)
    return {
        "native": client_for(admin_user),
        "hitachi": client_for(admin_user, "Bearer"),
        "zitadel": client_for(admin_user, "Bearer"),
        "privx": client_for(admin_user, "Bearer"),
        "commvault": commvault,
    }
