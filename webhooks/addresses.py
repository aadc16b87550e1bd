"""Which addresses a webhook may be sent to: pure, no sockets.

A webhook URL is chosen by whoever registers the endpoint, and `paymq webhooks run` sits inside
our network; so by default an endpoint may only be a globally routable unicast address. The
verdict is on an IP address, never on URL text: `127.1`, `2130706433`, `0x7f000001` and
`0177.0.0.1` are all 127.0.0.1 to the resolver, and a name may resolve anywhere (and elsewhere
next time). The sender asks `AddressPolicy.refusal` about each address it resolved, at the
moment it connects (webhooks/transport.py).

IPv6 forms that carry an IPv4 address (mapped ::ffff:a.b.c.d, compatible ::a.b.c.d, NAT64
64:ff9b::a.b.c.d, 6to4 2002:aabb:ccdd::) are judged by that IPv4 address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class AddressCategory(StrEnum):
    """Why an address is refused; short and safe to log and store."""

    LOOPBACK = "loopback"
    #: RFC 1918, shared address space (100.64/10), unique local (fc00::/7), site-local.
    PRIVATE = "private"
    #: Any other address that is not globally routable: documentation, benchmarking, 240/4...
    RESERVED = "reserved"
    LINK_LOCAL = "link-local"  # 169.254/16 (cloud metadata at .169.254), fe80::/10
    MULTICAST = "multicast"
    UNSPECIFIED = "unspecified"  # 0.0.0.0/8 and ::; Linux connects 0.0.0.0 to this host
    CLOUD_METADATA = "cloud-metadata"  # metadata services outside link-local


#: What `webhook_allow_private_networks` lets through: networks an operator may own. The rest
#: is never a webhook receiver: the metadata service hands out the host's cloud credentials.
PRIVATE_NETWORKS = frozenset(
    {AddressCategory.LOOPBACK, AddressCategory.PRIVATE, AddressCategory.RESERVED}
)

_CLOUD_METADATA = frozenset(
    {
        ipaddress.ip_address("fd00:ec2::254"),  # AWS instance metadata over IPv6
        ipaddress.ip_address("100.100.100.200"),  # Alibaba Cloud instance metadata
    }
)
#: Networks meant for use inside one organisation or provider, listed rather than taken from
#: `is_private`, which also holds documentation and benchmarking ranges (and changed in 3.11.10).
_PRIVATE = tuple(
    ipaddress.ip_network(net)
    for net in (
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",  # shared address space (RFC 6598): carrier NAT, Kubernetes, Tailscale
        "fc00::/7",  # unique local
        "fec0::/10",  # site-local, deprecated but still routed by some
        "64:ff9b:1::/48",  # local-use IPv4/IPv6 translation (RFC 8215)
    )
)
_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
#: The first test an address meets names its category: the order matters (fd00:ec2::254 is a
#: unique local address too, and every one of these is also not global).
_CATEGORIES: tuple[tuple[Callable[[IPAddress], bool], AddressCategory], ...] = (
    (lambda ip: ip.is_unspecified or ip in _THIS_NETWORK, AddressCategory.UNSPECIFIED),
    (lambda ip: ip.is_loopback, AddressCategory.LOOPBACK),
    (lambda ip: ip.is_link_local, AddressCategory.LINK_LOCAL),
    (lambda ip: ip.is_multicast, AddressCategory.MULTICAST),
    (lambda ip: ip in _CLOUD_METADATA, AddressCategory.CLOUD_METADATA),
    (lambda ip: any(ip in net for net in _PRIVATE), AddressCategory.PRIVATE),
    (lambda ip: not ip.is_global or ip.is_reserved, AddressCategory.RESERVED),
)
#: Spellings an IPv4 resolver reads as an address: 127.1, 2130706433, 0x7f000001, 0177.0.0.1.
_NUMERIC_HOST = re.compile(r"[0-9a-fx.]+")


@dataclass(frozen=True)
class AddressPolicy:
    allow_private_networks: bool = False

    def refusal(self, ip: IPAddress) -> AddressCategory | None:
        """Why a webhook may not connect to `ip`; None when it may."""
        category = category_of(ip)
        if category is None or (self.allow_private_networks and category in PRIVATE_NETWORKS):
            return None
        return category


def category_of(ip: IPAddress) -> AddressCategory | None:
    """The kind of non-global address `ip` is; None for a globally routable unicast one."""
    embedded = embedded_ipv4(ip)
    if embedded is not None:
        return category_of(embedded)
    return next((category for test, category in _CATEGORIES if test(ip)), None)


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, compatible, NAT64, 6to4)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in _NAT64 or (ip in _IPV4_COMPATIBLE and int(ip) > 1):  # not :: nor ::1
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return None


def literal_address(host: str) -> IPAddress | None:
    """The address a URL's host spells without DNS, in any spelling the resolver takes;
    None for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if not _NUMERIC_HOST.fullmatch(host.lower()):
        return None
    try:
        # inet_aton parses the classic shorthands (no lookup): the ones getaddrinfo accepts.
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except OSError:
        return None
