"""The TCP fault proxy, with plain sockets on loopback: each mode does what it says. No broker.

The upstream is a listening socket the test accepts on itself, so every test sees exactly what
arrived at each end, and whether its connection was closed or reset.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from paymq_tools.chaos.linkproxy import LinkProxy, Mode

pytestmark = pytest.mark.timeout(30)

#: Long enough for bytes to cross loopback and the proxy's thread; what has not arrived by
#: then was not forwarded.
QUIET_S = 0.5


class Upstream:
    """A server socket on 127.0.0.1; the test accepts and reads its connections itself."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]

    def accept(self, timeout_s: float = 5.0) -> socket.socket:
        self.server.settimeout(timeout_s)
        connection, _ = self.server.accept()
        connection.settimeout(5.0)
        _OPENED.append(connection)
        return connection

    def accepts_nothing(self) -> bool:
        try:
            self.accept(timeout_s=QUIET_S)
        except TimeoutError:
            return True
        return False


#: Every socket a test opened, closed after it.
_OPENED: list[socket.socket] = []


@pytest.fixture(autouse=True)
def _close_sockets() -> Iterator[None]:
    yield
    while _OPENED:
        _OPENED.pop().close()


@pytest.fixture
def upstream() -> Upstream:
    server = Upstream()
    _OPENED.append(server.server)
    return server


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[LinkProxy]:
    with LinkProxy("127.0.0.1", upstream.port, name="test") as link:
        yield link


def connect(proxy: LinkProxy) -> socket.socket:
    client = socket.create_connection(("127.0.0.1", proxy.port), timeout=5.0)
    client.settimeout(5.0)
    _OPENED.append(client)
    return client


def linked(proxy: LinkProxy, upstream: Upstream) -> tuple[socket.socket, socket.socket]:
    """A client connected through the proxy, and the upstream's end of it."""
    client = connect(proxy)
    return client, upstream.accept()


def receive_exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def read_to_the_end(sock: socket.socket) -> tuple[bytes, str]:
    """Everything until the connection ends, and how it ended: "reset" or "closed"."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return data, "reset"
        if not chunk:
            return data, "closed"
        data += chunk


def connect_and_read(proxy: LinkProxy) -> str:
    """How a new connection through the proxy ends, with nothing sent: "reset" even when the
    reset comes before connect() returns."""
    try:
        client = connect(proxy)
    except ConnectionResetError:
        return "reset"
    data, end = read_to_the_end(client)
    assert data == b""
    return end


def silent(sock: socket.socket) -> bool:
    """Nothing arrives within QUIET_S, and the connection is neither closed nor reset."""
    sock.settimeout(QUIET_S)
    try:
        sock.recv(1)
    except TimeoutError:
        return True
    finally:
        sock.settimeout(5.0)
    return False


def test_pass_forwards_bytes_both_ways_unchanged(proxy: LinkProxy, upstream: Upstream) -> None:
    client, server = linked(proxy, upstream)

    client.sendall(b"ping" * 10_000)
    assert receive_exactly(server, 40_000) == b"ping" * 10_000
    server.sendall(b"pong")
    assert receive_exactly(client, 4) == b"pong"
    assert proxy.stats().forwarded_bytes == 40_004


def test_an_orderly_close_passes_through(proxy: LinkProxy, upstream: Upstream) -> None:
    client, server = linked(proxy, upstream)

    client.sendall(b"bye")
    client.close()

    assert read_to_the_end(server) == (b"bye", "closed")


def test_blackhole_forwards_nothing_and_closes_nothing(
    proxy: LinkProxy, upstream: Upstream
) -> None:
    client, server = linked(proxy, upstream)

    proxy.blackhole()
    client.sendall(b"into the void")
    server.sendall(b"nor back")

    assert proxy.mode is Mode.BLACKHOLE
    assert silent(server), "bytes crossed the partition, or the upstream end was closed"
    assert silent(client), "bytes crossed the partition, or the client end was closed"


def test_blackhole_accepts_new_connections_but_connects_nothing_upstream(
    proxy: LinkProxy, upstream: Upstream
) -> None:
    proxy.blackhole()

    client = connect(proxy)  # accepted: the connect succeeds

    assert upstream.accepts_nothing()
    assert silent(client)


def test_healing_a_blackhole_delivers_what_was_held_and_connects_the_waiting(
    proxy: LinkProxy, upstream: Upstream
) -> None:
    client, server = linked(proxy, upstream)
    proxy.blackhole()
    client.sendall(b"sent during the partition")
    waiting = connect(proxy)
    assert upstream.accepts_nothing()

    proxy.pass_through()

    assert receive_exactly(server, 25) == b"sent during the partition"
    late = upstream.accept()
    waiting.sendall(b"hello")
    assert receive_exactly(late, 5) == b"hello"


def test_reset_all_resets_every_current_connection_at_both_ends(
    proxy: LinkProxy, upstream: Upstream
) -> None:
    first_client, first_server = linked(proxy, upstream)
    second_client, second_server = linked(proxy, upstream)

    proxy.reset_all()

    for end in (first_client, first_server, second_client, second_server):
        assert read_to_the_end(end) == (b"", "reset")
    assert proxy.stats().resets == 2


def test_reset_all_resets_new_connections_at_once(proxy: LinkProxy, upstream: Upstream) -> None:
    proxy.reset_all()

    assert connect_and_read(proxy) == "reset"
    assert upstream.accepts_nothing()
    assert proxy.stats().resets == 1


def test_reset_after_bytes_cuts_a_connection_mid_chunk_then_resets_both_ends(
    proxy: LinkProxy, upstream: Upstream
) -> None:
    client, server = linked(proxy, upstream)

    proxy.reset_after(4000)
    client.sendall(b"x" * 10_000)

    received, end = read_to_the_end(server)
    assert end == "reset"
    assert len(received) <= 4000  # a RST may drop what the receiver had not read yet
    assert read_to_the_end(client) == (b"", "reset")
    stats = proxy.stats()
    assert (stats.forwarded_bytes, stats.resets, stats.cut_mid_chunk) == (4000, 1, 1)


def test_reset_after_bytes_counts_both_directions(proxy: LinkProxy, upstream: Upstream) -> None:
    client, server = linked(proxy, upstream)
    proxy.reset_after(5000)

    client.sendall(b"a" * 3000)
    assert receive_exactly(server, 3000) == b"a" * 3000
    server.sendall(b"b" * 3000)

    received, end = read_to_the_end(client)
    assert end == "reset"
    assert len(received) <= 2000
    assert proxy.stats().forwarded_bytes == 5000


def test_reset_after_bytes_applies_to_new_connections_too(
    proxy: LinkProxy, upstream: Upstream
) -> None:
    proxy.reset_after(1000)
    client, server = linked(proxy, upstream)

    client.sendall(b"y" * 999)
    assert receive_exactly(server, 999) == b"y" * 999
    client.sendall(b"zz")

    received, end = read_to_the_end(server)
    assert (received, end) in ((b"z", "reset"), (b"", "reset"))
    assert proxy.stats().cut_mid_chunk == 1


def test_back_to_pass_ends_the_byte_budget(proxy: LinkProxy, upstream: Upstream) -> None:
    client, server = linked(proxy, upstream)
    proxy.reset_after(100)

    proxy.pass_through()
    client.sendall(b"q" * 1000)

    assert receive_exactly(server, 1000) == b"q" * 1000
    assert proxy.stats().resets == 0


def test_a_reset_by_one_peer_is_passed_on_to_the_other(
    proxy: LinkProxy, upstream: Upstream
) -> None:
    client, server = linked(proxy, upstream)
    client.sendall(b"hi")
    assert receive_exactly(server, 2) == b"hi"

    server.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    server.close()  # RST

    assert read_to_the_end(client) == (b"", "reset")
    assert (proxy.stats().passed_on, proxy.stats().resets) == (1, 0)


def test_a_refused_upstream_resets_the_client() -> None:
    with socket.create_server(("127.0.0.1", 0)) as unused:
        port = unused.getsockname()[1]  # nothing listens there once closed
    with LinkProxy("127.0.0.1", port) as link:
        assert connect_and_read(link) == "reset"
        assert link.stats().passed_on == 1


def test_route_points_a_url_at_the_proxy(proxy: LinkProxy) -> None:
    port = proxy.port

    assert proxy.route("amqp://guest:guest@127.0.0.1:5672/%2F") == (
        f"amqp://guest:guest@127.0.0.1:{port}/%2F"
    )
    assert proxy.route("postgresql+psycopg://postgres@127.0.0.1:5432/db") == (
        f"postgresql+psycopg://postgres@127.0.0.1:{port}/db"
    )
