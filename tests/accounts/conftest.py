"""Fixtures of the accounts tests: logging in through the real token endpoint."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from rest_framework.response import Response
from rest_framework.test import APIClient

TOKEN_URL = "/api/auth/token/"
REFRESH_URL = "/api/auth/token/refresh/"

Login = Callable[[str, str], Response]


@pytest.fixture
def login() -> Login:
    """``login(username, password)``: one POST to the token endpoint from a fresh client."""

    def post(username: str, password: str) -> Response:
        return APIClient().post(
            TOKEN_URL, {"username": username, "password": password}, format="json"
        )

    return post
