"""Which addresses a webhook may connect to: the verdict on resolved addresses, pure, no
sockets (the spellings of a host are parsed, never looked up)."""

from __future__ import annotations

import ipaddress

import pytest

from webhooks.addresses import (
    AddressCategory,
    AddressPolicy,
    category_of,
    literal_address,
)

STRICT = AddressPolicy()
OPTED_IN = AddressPolicy(allow_private_networks=True)

#: Documented public addresses of well-known resolvers: global unicast.
PUBLIC = ("8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "2001:4860:4860::8888")

FORBIDDEN = {
    "127.0.0.1": AddressCategory.LOOPBACK,
    "127.255.255.254": AddressCategory.LOOPBACK,
    "::1": AddressCategory.LOOPBACK,
    "10.1.2.3": AddressCategory.PRIVATE,
    "172.16.0.1": AddressCategory.PRIVATE,
    "172.31.255.255": AddressCategory.PRIVATE,
    "192.168.1.1": AddressCategory.PRIVATE,
    "100.64.0.1": AddressCategory.PRIVATE,
    "fc00::1": AddressCategory.PRIVATE,
    "fd12:3456::1": AddressCategory.PRIVATE,
    "169.254.169.254": AddressCategory.LINK_LOCAL,
    "169.254.0.1": AddressCategory.LINK_LOCAL,
    "fe80::1": AddressCategory.LINK_LOCAL,
    "224.0.0.1": AddressCategory.MULTICAST,
    "239.255.255.250": AddressCategory.MULTICAST,
    "ff02::1": AddressCategory.MULTICAST,
    "0.0.0.0": AddressCategory.UNSPECIFIED,  # noqa: S104 - an address under test, not a bind
    "0.1.2.3": AddressCategory.UNSPECIFIED,
    "::": AddressCategory.UNSPECIFIED,
    "fd00:ec2::254": AddressCategory.CLOUD_METADATA,
    "100.100.100.200": AddressCategory.CLOUD_METADATA,
    "192.0.2.1": AddressCategory.RESERVED,  # documentation
    "198.18.0.1": AddressCategory.RESERVED,  # benchmarking
    "240.0.0.1": AddressCategory.RESERVED,
    "255.255.255.255": AddressCategory.RESERVED,
    "2001:db8::1": AddressCategory.RESERVED,  # documentation
    # IPv6 forms of an IPv4 address are judged by that address
    "::ffff:127.0.0.1": AddressCategory.LOOPBACK,
    "::ffff:169.254.169.254": AddressCategory.LINK_LOCAL,
    "::ffff:10.0.0.1": AddressCategory.PRIVATE,
    "::127.0.0.1": AddressCategory.LOOPBACK,  # IPv4-compatible
    "64:ff9b::127.0.0.1": AddressCategory.LOOPBACK,  # NAT64
    "64:ff9b::a9fe:a9fe": AddressCategory.LINK_LOCAL,  # NAT64 of 169.254.169.254
    "2002:7f00:1::": AddressCategory.LOOPBACK,  # 6to4 of 127.0.0.1
    "2002:c0a8:101::1": AddressCategory.PRIVATE,  # 6to4 of 192.168.1.1
}


def ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    return ipaddress.ip_address(text)


@pytest.mark.parametrize("address", PUBLIC)
def test_a_public_address_is_allowed(address: str) -> None:
    assert category_of(ip(address)) is None
    assert STRICT.refusal(ip(address)) is None


@pytest.mark.parametrize("address", ["::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1"])
def test_an_ipv6_form_of_a_public_ipv4_address_is_allowed(address: str) -> None:
    assert STRICT.refusal(ip(address)) is None


@pytest.mark.parametrize(("address", "category"), FORBIDDEN.items())
def test_a_non_global_address_is_refused_by_default_with_its_category(
    address: str, category: AddressCategory
) -> None:
    assert STRICT.refusal(ip(address)) is category


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "::ffff:127.0.0.1", "10.1.2.3", "fd12::1", "100.64.0.1"]
)
def test_the_opt_in_allows_loopback_and_private_networks(address: str) -> None:
    assert STRICT.refusal(ip(address)) is not None
    assert OPTED_IN.refusal(ip(address)) is None


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "::ffff:169.254.169.254",
        "fe80::1",
        "fd00:ec2::254",
        "100.100.100.200",
        "224.0.0.1",
        "ff02::1",
        "0.0.0.0",  # noqa: S104 - an address under test, not a bind
        "::",
    ],
)
def test_metadata_link_local_multicast_and_unspecified_stay_refused_with_the_opt_in(
    address: str,
) -> None:
    assert OPTED_IN.refusal(ip(address)) is not None


@pytest.mark.parametrize(
    "host", ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "0x7F000001", "0177.0.0.1"]
)
def test_every_spelling_of_an_ipv4_host_is_read_as_the_address_the_resolver_would_use(
    host: str,
) -> None:
    assert literal_address(host) == ip("127.0.0.1")


def test_an_ipv6_host_is_read_as_its_address() -> None:
    assert literal_address("::ffff:127.0.0.1") == ip("::ffff:127.0.0.1")


@pytest.mark.parametrize("host", ["localhost", "shop.example", "cafe", "0x7f.example", ""])
def test_a_name_is_no_literal_address(host: str) -> None:
    assert literal_address(host) is None
