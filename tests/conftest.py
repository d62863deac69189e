"""Shared fixtures: API clients per user, roles, TLS material, loopback egress for tests."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import RefreshToken

from outbound.accounts import services as account_services
from outbound.accounts.models import Role, User
from outbound.core.secrets import KeyRing, new_key, reset_keyring

PASSWORD = "correct-horse-battery"


@pytest.fixture(autouse=True)
def _outbound_test_settings(settings: Any, tmp_path: Path) -> Iterator[None]:
    # Test traffic stays on loopback: open loopback and high ports for the local servers.
    settings.OUTBOUND_EGRESS_ALLOW = "127.0.0.0/8,::1/128,:1024-65535"
    settings.OUTBOUND_SMTP_TIMEOUT = 3
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast tests
    # Attachments go to this test's own directory, never var/.
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(tmp_path / "storage")},
        },
    }
    reset_keyring(KeyRing.from_texts([new_key()]))
    cache.clear()
    yield
    reset_keyring(None)


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost", "::1").configure_cert(ctx)
    return ctx


@pytest.fixture(scope="session")
def ca_file(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def trust_test_ca(settings: Any, ca_file: str) -> str:
    settings.OUTBOUND_SMTP_CA_FILE = ca_file
    return ca_file


@pytest.fixture
def admin_user(db: None) -> User:
    return account_services.user_create(
        username="admin", password=PASSWORD, email="admin@example.com", is_superuser=True
    )


@pytest.fixture
def make_user(db: None) -> Callable[..., User]:
    counter = iter(range(1, 10_000))

    def make(*permissions: str, username: str | None = None) -> User:
        n = next(counter)
        role = Role.objects.create(name=f"role-{n}", permissions=list(permissions))
        user = account_services.user_create(
            username=username or f"user{n}", password=PASSWORD, email=f"user{n}@example.com"
        )
        user.roles.add(role)
        return user

    return make


def client_for(user: User | None, scheme: str = "JWT") -> APIClient:
    client = APIClient()
    if user is not None:
        token = RefreshToken.for_user(user).access_token
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {token}")
    return client


@pytest.fixture
def admin_client(admin_user: User) -> APIClient:
    return client_for(admin_user)


@pytest.fixture
def api_client_for() -> Callable[..., APIClient]:
    return client_for


@pytest.fixture
def console_client(admin_user: Any) -> Client:
    """A Django test client signed in to the console as the superuser."""
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def console_client_for() -> Callable[[Any], Client]:
    """A Django test client signed in to the console as the given user."""

    def make(user: Any) -> Client:
        client = Client()
        client.force_login(user)
        return client

    return make
