"""The egress policy: which addresses and ports Outbound may connect to (pure policy checks)."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from outbound.core.apps import check_egress_allow
from outbound.core.egress import EgressDenied, EgressPolicy, IPAddress, check, resolve

# The shared autouse fixture clears the database cache, so every test needs the database.
pytestmark = pytest.mark.django_db

DEFAULT = EgressPolicy.parse("")


@pytest.fixture(autouse=True)
def _no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Policy checks are pure: any DNS lookup or connection attempt fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access during a policy check: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


def allowed(address: str, port: int, policy: EgressPolicy = DEFAULT) -> bool:
    try:
        check([ip(address)], port, policy)
    except EgressDenied:
        return False
    return True


DENIED_BY_DEFAULT = [
    "127.0.0.1",  # loopback
    "127.255.255.254",
    "::1",
    "10.0.0.1",  # RFC 1918
    "172.16.0.1",
    "172.31.255.254",
    "192.168.1.1",
    "fc00::1",  # ULA fc00::/7
    "fd12:3456::1",
    "169.254.169.254",  # link-local, cloud metadata
    "169.254.0.1",
    "fe80::1",
    "100.64.0.1",  # CGNAT 100.64/10
    "100.127.255.254",
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "ff02::1",
    "0.0.0.0",  # unspecified
    "::",
    "255.255.255.255",  # broadcast
    "::ffff:127.0.0.1",  # IPv4-mapped forms
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:192.168.0.1",
    "::127.0.0.1",  # IPv4-compatible
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
]


@pytest.mark.parametrize("address", DENIED_BY_DEFAULT)
def test_default_policy_denies_internal_addresses(address: str) -> None:
    assert not allowed(address, 587)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"])
@pytest.mark.parametrize("port", [25, 465, 587, 2525])
def test_default_policy_allows_public_addresses_on_mail_ports(address: str, port: int) -> None:
    assert allowed(address, port)


@pytest.mark.parametrize("port", [0, 22, 80, 443, 1025, 2526, 8080, 65535])
def test_default_policy_denies_other_ports(port: int) -> None:
    assert not allowed("8.8.8.8", port)


def test_denial_has_a_plain_message_naming_the_setting_that_opens_more() -> None:
    with pytest.raises(EgressDenied) as denied:
        check([ip("127.0.0.1")], 25, DEFAULT)
    assert str(denied.value) == (
        "The destination is not allowed by the egress policy (OUTBOUND_EGRESS_ALLOW opens more)."
    )


def test_one_denied_address_denies_the_whole_destination() -> None:
    with pytest.raises(EgressDenied):
        check([ip("8.8.8.8"), ip("10.0.0.1")], 587, DEFAULT)
    with pytest.raises(EgressDenied):
        check([ip("2001:4860:4860::8888"), ip("::ffff:127.0.0.1")], 587, DEFAULT)


def test_no_address_is_denied() -> None:
    with pytest.raises(EgressDenied):
        check([], 587, DEFAULT)


def test_allow_list_opens_a_network_and_a_port() -> None:
    policy = EgressPolicy.parse("127.0.0.0/8,:1025")
    assert allowed("127.0.0.1", 1025, policy)
    assert allowed("127.0.0.1", 587, policy)
    assert not allowed("127.0.0.1", 1026, policy)
    assert allowed("8.8.8.8", 1025, policy)  # an opened port is open for public addresses
    # Only what is listed opens: other internal networks stay closed.
    assert not allowed("10.0.0.1", 1025, policy)
    assert not allowed("169.254.169.254", 1025, policy)
    assert not allowed("::1", 1025, policy)


def test_allow_list_port_range_is_inclusive() -> None:
    policy = EgressPolicy.parse(" :8000-8010 , ::1/128 ")
    assert [p for p in range(7998, 8013) if allowed("::1", p, policy)] == list(range(8000, 8011))
    assert allowed("::1", 25, policy)  # the mail ports stay open
    assert not allowed("127.0.0.1", 8000, policy)


def test_allow_list_single_address_and_v6_network() -> None:
    policy = EgressPolicy.parse("10.1.2.3,fd00::/8")
    assert allowed("10.1.2.3", 587, policy)
    assert not allowed("10.1.2.4", 587, policy)
    assert allowed("fd00::25", 587, policy)
    assert not allowed("fc00::25", 587, policy)


@pytest.mark.parametrize(
    "spec", ["localhost", "10.0.0.1:25", ":0", ":70000", ":2000-1000", ":1-99999", "10.0.0.0/33"]
)
def test_malformed_allow_list_is_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="OUTBOUND_EGRESS_ALLOW"):
        EgressPolicy.parse(spec)


def test_check_uses_the_settings_when_no_policy_is_given(settings: Any) -> None:
    settings.OUTBOUND_EGRESS_ALLOW = ""
    with pytest.raises(EgressDenied):
        check([ip("127.0.0.1")], 25)
    check([ip("8.8.8.8")], 25)
    settings.OUTBOUND_EGRESS_ALLOW = "127.0.0.0/8,:1025"
    check([ip("127.0.0.1")], 1025)


@pytest.mark.parametrize(
    ("host", "expected"),
    [("127.0.0.1", "127.0.0.1"), ("::1", "::1"), ("[::1]", "::1"), ("8.8.8.8", "8.8.8.8")],
)
def test_ip_literal_resolves_to_itself_without_dns(host: str, expected: str) -> None:
    assert resolve(host, 25, timeout=1) == [ip(expected)]


def test_system_check_reports_a_malformed_allow_list(settings: Any) -> None:
    settings.OUTBOUND_EGRESS_ALLOW = "127.0.0.0/8,:99999"
    errors = check_egress_allow()
    assert [e.id for e in errors] == ["outbound.E001"]
    assert "':99999'" in errors[0].msg
    settings.OUTBOUND_EGRESS_ALLOW = "127.0.0.0/8,:1025"
    assert check_egress_allow() == []


def test_ipv4_mapped_addresses_follow_the_ipv4_allow_list() -> None:
    policy = EgressPolicy.parse("127.0.0.0/8")
    assert policy.address_allowed(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not policy.address_allowed(ipaddress.ip_address("::ffff:10.0.0.1"))


def test_site_local_ipv6_is_denied() -> None:
    assert not EgressPolicy.parse("").address_allowed(ipaddress.ip_address("fec0::1"))
