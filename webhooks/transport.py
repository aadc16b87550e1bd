"""HTTP connections for webhooks that only reach the addresses the policy allows.

The check sits where urllib3 opens a socket (`HTTPConnection._new_conn`): the endpoint's host is
resolved once, every answer is judged (webhooks/addresses.py), and the socket is
connected to an allowed answer as a literal IP, so the address checked is the address
connected to: a name that resolved to a public address when it was registered, or a moment
ago, and to 127.0.0.1 now (DNS rebinding) is refused now. TLS still names and verifies the
URL's host (urllib3 takes SNI and the certificate's name from `host`, not from the socket).
Redirects, retries and new pooled connections all open sockets here.
"""

from __future__ import annotations

import ipaddress
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError
from urllib3.util.connection import allowed_gai_family, create_connection

from webhooks.addresses import AddressCategory, AddressPolicy

#: host, port -> the addresses it resolves to, in the resolver's order.
Resolve = Callable[[str, int], list[str]]


def system_resolve(host: str, port: int) -> list[str]:
    """getaddrinfo, as urllib3 calls it (IPv6 answers only where the host has IPv6)."""
    answers = socket.getaddrinfo(host, port, allowed_gai_family(), socket.SOCK_STREAM)
    return list(dict.fromkeys(str(sockaddr[0]) for *_, sockaddr in answers))


@dataclass(frozen=True)
class AddressGuard:
    policy: AddressPolicy = field(default_factory=AddressPolicy)
    resolve: Resolve = system_resolve


class AddressNotAllowed(Exception):
    """Every address the endpoint's host resolved to is refused; nothing was connected.

    Not an OSError on purpose: urllib3 and requests pass it through untouched instead of
    retrying it or wrapping it as a connection error."""

    def __init__(self, category: AddressCategory) -> None:
        super().__init__(f"address not allowed: {category}")
        self.category = category


def guarded_session(guard: AddressGuard) -> requests.Session:
    """A requests.Session whose every connection goes through `guard`."""
    session = requests.Session()
    # No proxy from HTTP(S)_PROXY: a proxy resolves the endpoint's name itself, where no check
    # sees it. (This also leaves ~/.netrc and REQUESTS_CA_BUNDLE unread.)
    session.trust_env = False
    adapter = GuardedAdapter(guard)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class GuardedAdapter(HTTPAdapter):
    def __init__(self, guard: AddressGuard) -> None:
        self._guard = guard  # before super().__init__, which builds the pool manager
        super().__init__()

    def init_poolmanager(
        self, connections: int, maxsize: int, block: bool = False, **pool_kwargs: Any
    ) -> None:
        super().init_poolmanager(connections, maxsize, block, **pool_kwargs)
        self.poolmanager.pool_classes_by_scheme = _pool_classes(self._guard)


def _pool_classes(guard: AddressGuard) -> dict[str, type[HTTPConnectionPool]]:
    class GuardedHTTPConnection(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, guard)

    class GuardedHTTPSConnection(HTTPSConnection):
        def _new_conn(self) -> socket.socket:
            return _connect(self, guard)

    class GuardedHTTPConnectionPool(HTTPConnectionPool):
        ConnectionCls = GuardedHTTPConnection

    class GuardedHTTPSConnectionPool(HTTPSConnectionPool):
        ConnectionCls = GuardedHTTPSConnection

    return {"http": GuardedHTTPConnectionPool, "https": GuardedHTTPSConnectionPool}


def _connect(conn: HTTPConnection, guard: AddressGuard) -> socket.socket:
    """urllib3's `_new_conn`, with every resolved address judged before any is connected."""
    try:
        addresses = guard.resolve(conn._dns_host.strip("[]"), conn.port)
    except socket.gaierror as exc:
        raise NameResolutionError(conn.host, conn, exc) from exc
    verdicts = [
        (address, guard.policy.refusal(ipaddress.ip_address(address))) for address in addresses
    ]
    allowed = [address for address, refusal in verdicts if refusal is None]
    refusals = [refusal for _, refusal in verdicts if refusal is not None]
    if not allowed and refusals:
        raise AddressNotAllowed(refusals[0])
    error: OSError = OSError("the name resolved to no address")
    for address in allowed:
        try:
            sock = create_connection(
                (address, conn.port),  # a literal: connecting resolves nothing again
                conn.timeout,
                source_address=conn.source_address,
                socket_options=conn.socket_options,
            )
        except OSError as exc:
            error = exc
            continue
        sys.audit("http.client.connect", conn, conn.host, conn.port)
        return sock
    if isinstance(error, TimeoutError):
        raise ConnectTimeoutError(
            conn, f"Connection to {conn.host} timed out. (connect timeout={conn.timeout})"
        ) from error
    raise NewConnectionError(conn, f"Failed to establish a new connection: {error}") from error
