"""The egress policy: where Outbound may open connections on an admin's say-so (SSRF guard).

Resolve first, check every address, then connect to an address that was checked — never
resolve twice. By default only public unicast addresses on the mail ports are allowed;
``OUTBOUND_EGRESS_ALLOW`` opens more (CIDRs, ``:port`` and ``:low-high`` entries).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_PORT_ENTRY = re.compile(r"^:\d{1,5}(-\d{1,5})?$")
DEFAULT_PORTS = frozenset({25, 465, 587, 2525})
# Names the setting that opens more, so an admin knows where to look.
DENIED_MESSAGE = (
    "The destination is not allowed by the egress policy (OUTBOUND_EGRESS_ALLOW opens more)."
)

_DENIED_NETWORKS: tuple[IPNetwork, ...] = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network", incl. unspecified
        "10.0.0.0/8",
        "100.64.0.0/10",  # CGNAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, incl. 169.254.169.254 metadata
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, incl. broadcast
        "::/128",
        "::1/128",
        "fc00::/7",  # ULA
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated, still private)
        "ff00::/8",  # multicast
        "64:ff9b::/96",  # NAT64 of anything
        "2001:db8::/32",
    )
)


class EgressDenied(Exception):
    """The destination is refused; no socket was opened."""

    def __init__(self, reason: str = DENIED_MESSAGE):
        super().__init__(reason)


class ResolutionFailed(Exception):
    pass


@dataclass(frozen=True)
class EgressPolicy:
    networks: tuple[IPNetwork, ...] = ()
    ports: frozenset[int] = DEFAULT_PORTS
    port_ranges: tuple[tuple[int, int], ...] = field(default_factory=tuple)

    @classmethod
    def parse(cls, spec: str, *, default_ports: frozenset[int] = DEFAULT_PORTS) -> EgressPolicy:
        """The policy ``spec`` describes over ``default_ports`` (the mail ports; web
        destinations such as webhooks start from 443 alone)."""
        networks: list[IPNetwork] = []
        ports = set(default_ports)
        ranges: list[tuple[int, int]] = []
        for raw in spec.split(","):
            entry = raw.strip()
            if not entry:
                continue
            if _PORT_ENTRY.match(entry):
                low, _, high = entry[1:].partition("-")
                lo, hi = int(low), int(high or low)
                if not 1 <= lo <= hi <= 65535:
                    raise ValueError(f"OUTBOUND_EGRESS_ALLOW: {entry!r} is not a port in 1-65535.")
                if high:
                    ranges.append((lo, hi))
                else:
                    ports.add(lo)
            else:
                try:
                    networks.append(ipaddress.ip_network(entry, strict=False))
                except ValueError as exc:
                    raise ValueError(
                        f"OUTBOUND_EGRESS_ALLOW: {entry!r} is neither a CIDR nor a :port entry."
                    ) from exc
        return cls(networks=tuple(networks), ports=frozenset(ports), port_ranges=tuple(ranges))

    def port_allowed(self, port: int) -> bool:
        return port in self.ports or any(lo <= port <= hi for lo, hi in self.port_ranges)

    def address_allowed(self, address: IPAddress) -> bool:
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address):
            if address.ipv4_mapped is not None:
                # ::ffff:a.b.c.d *is* a.b.c.d on the wire: judge (and allow) it as IPv4.
                candidates = [address.ipv4_mapped]
            for embedded in (address.sixtofour, _compat_v4(address)):
                if embedded is not None:
                    candidates.append(embedded)
            if address.teredo:
                candidates.extend(address.teredo)
        for candidate in candidates:
            if any(candidate in net for net in self.networks if net.version == candidate.version):
                continue
            if candidate.is_multicast or candidate.is_unspecified or candidate.is_link_local:
                return False
            if any(
                candidate in net for net in _DENIED_NETWORKS if net.version == candidate.version
            ):
                return False
            if candidate.is_private or candidate.is_reserved or candidate.is_loopback:
                return False
        return True


def _compat_v4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """IPv4-compatible (``::a.b.c.d``) forms, deprecated but still routable by some stacks."""
    if int(address) >> 32 == 0 and int(address) > 1:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def current_policy(*, default_ports: frozenset[int] = DEFAULT_PORTS) -> EgressPolicy:
    return EgressPolicy.parse(settings.OUTBOUND_EGRESS_ALLOW, default_ports=default_ports)


# Lookups that hang hold a worker until the resolver gives up; keep enough for the rest.
_resolver_pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="resolve")


def resolve(host: str, port: int, *, timeout: float) -> list[IPAddress]:
    """All addresses of ``host`` (an IP literal resolves to itself), within ``timeout``."""
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        return [ipaddress.ip_address(literal)]
    except ValueError:
        pass
    future = _resolver_pool.submit(socket.getaddrinfo, literal, port, 0, socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=max(timeout, 0.01))
    except FutureTimeout as exc:
        raise ResolutionFailed(f"Could not resolve {host} within the timeout.") from exc
    except OSError as exc:
        raise ResolutionFailed(f"Could not resolve {host}: {exc.strerror or exc}.") from exc
    seen: list[IPAddress] = []
    for info in infos:
        addr = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if addr not in seen:
            seen.append(addr)
    if not seen:
        raise ResolutionFailed(f"{host} has no addresses.")
    return seen


def check(addresses: list[IPAddress], port: int, policy: EgressPolicy | None = None) -> None:
    """Raise :class:`EgressDenied` unless the port and *every* address are allowed."""
    policy = policy or current_policy()
    if not addresses:  # nothing was checked, so nothing may be connected to
        raise EgressDenied()
    if not policy.port_allowed(port) or not all(policy.address_allowed(a) for a in addresses):
        raise EgressDenied()
