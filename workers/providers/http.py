"""The HTTP transport of provider adapters: one kept-alive `http.client` connection per thread.

Why not requests or urllib3's pool: a worker makes one provider call per payment, and on this
path their layering costs two to four times the CPU of the standard library's client
(PERFORMANCE.md; measured again by `paymq bench`). Each worker thread owns its connection, so
there is no pool lock; headers and body leave in one send.

What can have happened is decided here, once, for every adapter:
- the connection could not be opened            -> ProviderUnavailable (surely not sent)
- the request was sent, then a timeout           -> ProviderTimeout      (may have happened)
- the connection broke before a full response    -> ProviderConnectionLost (may have happened)
"""

from __future__ import annotations

import http.client
import select
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from common.errors import (
    ProviderConnectionLost,
    ProviderTimeout,
    ProviderUnavailable,
)


@dataclass(frozen=True)
class HttpResponse:
    status: int
    body: bytes
    retry_after: str | None


class HttpTransport:
    def __init__(self, base_url: str, *, connect_timeout_s: float, read_timeout_s: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"provider URL must be http(s)://host[:port], not {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._base_path = parts.path.rstrip("/")
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._local = threading.local()
        # Every thread's connection, so close() can release them all at shutdown.
        self._open_connections: set[http.client.HTTPConnection] = set()
        self._lock = threading.Lock()

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> HttpResponse:
        connection = self._connection()
        try:
            connection.request("POST", self._base_path + path, body=body, headers=headers)
        except (OSError, http.client.HTTPException) as exc:
            # Nothing of the request reached the provider in a usable form.
            self._discard()
            raise ProviderUnavailable(f"could not send to the provider: {exc!r}") from None
        try:
            response = connection.getresponse()
            data = response.read()
        except TimeoutError:
            self._discard()
            raise ProviderTimeout("no answer within the read timeout after sending") from None
        except (OSError, http.client.HTTPException) as exc:
            self._discard()
            raise ProviderConnectionLost(f"connection broke before the answer: {exc!r}") from None
        if response.will_close:
            self._discard()
        return HttpResponse(response.status, data, response.getheader("Retry-After"))

    def _connection(self) -> http.client.HTTPConnection:
        connection: http.client.HTTPConnection | None = getattr(self._local, "connection", None)
        if connection is not None and _dropped(connection):
            self._discard()
            connection = None
        if connection is None:
            connection = self._open()
            self._local.connection = connection
        return connection

    def _open(self) -> http.client.HTTPConnection:
        factory = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        connection = factory(self._host, self._port, timeout=self._connect_timeout_s)
        try:
            connection.connect()
        except OSError as exc:
            connection.close()
            raise ProviderUnavailable(f"cannot connect to the provider: {exc!r}") from None
        if connection.sock is not None:
            connection.sock.settimeout(self._read_timeout_s)
            connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            self._open_connections.add(connection)
        return connection

    def _discard(self) -> None:
        connection = getattr(self._local, "connection", None)
        self._local.connection = None
        if connection is not None:
            with self._lock:
                self._open_connections.discard(connection)
            connection.close()

    def close(self) -> None:
        """Close every thread's connection; call once no request is in flight."""
        with self._lock:
            connections, self._open_connections = self._open_connections, set()
        for connection in connections:
            connection.close()


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """A kept-alive connection the server closed meanwhile is readable (EOF): do not reuse it,
    or the next request would fail in a way that looks like an unknown outcome."""
    sock = connection.sock
    if sock is None:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)
