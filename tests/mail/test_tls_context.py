"""The shared TLS client context follows OUTBOUND_SMTP_CA_FILE on disk: built once per CA file
version, rebuilt when the file is replaced or rewritten, never kept for a file that failed."""

from __future__ import annotations

import os
import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from outbound.core import tls

pytestmark = pytest.mark.django_db  # the suite's autouse fixture clears the (database) cache


def verifies(client: ssl.SSLContext, ca: trustme.CA) -> bool:
    """Whether ``client`` accepts a server certificate for localhost issued by ``ca``
    (a handshake over memory BIOs, no socket)."""
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("localhost").configure_cert(server)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    c = client.wrap_bio(c_in, c_out, server_hostname="localhost")
    s = server.wrap_bio(s_in, s_out, server_side=True)
    done = {c: False, s: False}
    try:
        for _ in range(10):
            for side in (c, s):
                if not done[side]:
                    try:
                        side.do_handshake()
                        done[side] = True
                    except ssl.SSLWantReadError:
                        pass
            s_in.write(c_out.read())
            c_in.write(s_out.read())
            if all(done.values()):
                return True
    except ssl.SSLCertVerificationError:
        return False
    raise AssertionError("the handshake did not finish")


@pytest.fixture(autouse=True)
def fresh_cache() -> Any:
    tls._context_for.cache_clear()  # as in a fresh process
    yield
    tls._context_for.cache_clear()


def test_the_context_is_built_once_per_ca_file_version(
    settings: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ca.pem"
    trustme.CA().cert_pem.write_to_path(str(path))
    settings.OUTBOUND_SMTP_CA_FILE = str(path)
    built: list[ssl.SSLContext] = []
    real = ssl.create_default_context

    def counted(*args: Any, **kwargs: Any) -> ssl.SSLContext:
        built.append(ctx := real(*args, **kwargs))
        return ctx

    monkeypatch.setattr(ssl, "create_default_context", counted)
    first = tls.client_context()
    assert tls.client_context() is first
    assert len(built) == 1
    assert first.verify_mode == ssl.CERT_REQUIRED and first.check_hostname
    assert first.minimum_version == ssl.TLSVersion.TLSv1_2


def test_a_replaced_ca_file_is_trusted_from_the_next_call(settings: Any, tmp_path: Path) -> None:
    path = tmp_path / "ca.pem"
    old_ca, new_ca = trustme.CA(), trustme.CA()
    old_ca.cert_pem.write_to_path(str(path))
    settings.OUTBOUND_SMTP_CA_FILE = str(path)
    before = tls.client_context()
    stamp = os.stat(path).st_mtime_ns

    new_ca.cert_pem.write_to_path(str(path))  # same path, same size: only its content differs
    os.utime(path, ns=(stamp, stamp))  # even with the old modification time
    after = tls.client_context()

    assert after is not before
    assert verifies(before, old_ca) and not verifies(before, new_ca)
    assert verifies(after, new_ca) and not verifies(after, old_ca)
    assert tls.client_context() is after


def test_a_missing_or_broken_ca_file_raises_each_time_and_is_not_kept(
    settings: Any, tmp_path: Path
) -> None:
    path = tmp_path / "ca.pem"
    settings.OUTBOUND_SMTP_CA_FILE = str(path)
    with pytest.raises(OSError):
        tls.client_context()
    path.write_text("not a certificate")
    with pytest.raises(ssl.SSLError):
        tls.client_context()
    trustme.CA().cert_pem.write_to_path(str(path))
    assert isinstance(tls.client_context(), ssl.SSLContext)


def test_without_a_ca_file_the_system_store_context_is_shared(settings: Any) -> None:
    settings.OUTBOUND_SMTP_CA_FILE = ""
    assert tls.client_context() is tls.client_context()
