"""The HTTP transport of provider adapters: one kept-alive `http.client` connection per thread.

Why not requests or urllib3's pool: a worker makes one provider call per payment, and on this
path their layering costs two to four times the CPU of the standard library's client
(measured with `paymq bench` and py-spy). Each worker thread owns its connection, so
there is no pool lock; headers and body leave in one send.

What can have happened is decided here, once, for every adapter (`provider_errors`), from
http.client's and the socket's errors (OSError, http.client.HTTPException):

    while connecting      anything                 -> ProviderUnavailable    (surely not sent)
    while sending         anything                 -> ProviderUnavailable    (nothing usable sent)
    awaiting the answer   a timeout                -> ProviderTimeout        (may have happened)
                          anything else            -> ProviderConnectionLost (may have happened)

Each keeps the error it translates as its cause (`raise ... from exc`), for whoever debugs it.
"""

from __future__ import annotations

import contextlib
import http.client
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import urlsplit

from common.errors import (
    PaymqError,
    ProviderConnectionLost,
    ProviderTimeout,
    ProviderUnavailable,
)

_FRESH_S = 1.0
#: What http.client and the socket raise when a call fails.
HTTP_ERRORS = (OSError, http.client.HTTPException)


class Stage(Enum):
    """How far a call got when it failed: what the provider may have received."""

    CONNECTING = "cannot connect to the provider"
    SENDING = "could not send to the provider"
    AWAITING_ANSWER = "connection broke before the answer"


@contextlib.contextmanager
def provider_errors(stage: Stage, *, discard: Callable[[], None]) -> Iterator[None]:
    """Translate what http.client raises in the block (see `translated`), keeping it as the
    cause; the connection is `discard`ed first, never to be used again."""
    try:
        yield
    except HTTP_ERRORS as exc:
        discard()
        raise translated(exc, stage) from exc


def translated(exc: BaseException, stage: Stage) -> PaymqError:
    """The taxonomy's error for an http.client or socket error at this stage of a call."""
    if stage is not Stage.AWAITING_ANSWER:
        # Nothing of the request reached the provider in a usable form.
        return ProviderUnavailable(f"{stage.value}: {exc!r}")
    if isinstance(exc, TimeoutError):
        return ProviderTimeout("no answer within the read timeout after sending")
    return ProviderConnectionLost(f"{stage.value}: {exc!r}")


class _OneWrite:
    """http.client sends a request's head and body with two writes; on a kept-alive connection
    one write is enough, and each system call shows in the CPU per payment. `send` is the
    documented way data reaches the socket, so collecting it here changes nothing else."""

    _collected: list[bytes] | None = None
    #: When the last answer arrived on this connection (monotonic seconds).
    last_used_s: float = 0.0

    def send(self, data: Any) -> None:
        if self._collected is not None:
            self._collected.append(bytes(data))
        else:
            super().send(data)  # type: ignore[misc]

    def request_in_one_write(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> None:
        self._collected = []
        try:
            self.request(method, url, body=body, headers=headers)  # type: ignore[attr-defined]
            data = b"".join(self._collected)
        finally:
            self._collected = None
        self.send(data)


class _Connection(_OneWrite, http.client.HTTPConnection):
    pass


class _TlsConnection(_OneWrite, http.client.HTTPSConnection):
    pass


_AnyConnection = _Connection | _TlsConnection


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
        self._open_connections: set[_AnyConnection] = set()
        self._lock = threading.Lock()
        self._closed = False

    def post(self, path: str, body: bytes, headers: dict[str, str]) -> HttpResponse:
        return self.request("POST", path, body, headers)

    def get(self, path: str) -> HttpResponse:
        return self.request("GET", path, b"", {})

    def request(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> HttpResponse:
        connection = self._connection()
        with provider_errors(Stage.SENDING, discard=self._discard):
            connection.request_in_one_write(method, self._base_path + path, body, headers)
        with provider_errors(Stage.AWAITING_ANSWER, discard=self._discard):
            response = connection.getresponse()
            data = response.read()
        if response.will_close or self._closed:  # closed meanwhile: keep nothing open
            self._discard()
        connection.last_used_s = time.monotonic()
        return HttpResponse(response.status, data, response.getheader("Retry-After"))

    def _connection(self) -> _AnyConnection:
        connection: _AnyConnection | None = getattr(self._local, "connection", None)
        # A connection that answered within the last second is alive; checking an idle one for
        # a close by the server costs a system call, which busy connections need not pay.
        idle_s = time.monotonic() - connection.last_used_s if connection is not None else 0.0
        if connection is not None and idle_s > _FRESH_S and _dropped(connection):
            self._discard()
            connection = None
        if connection is None:
            connection = self._open()
            self._local.connection = connection
        return connection

    def _open(self) -> _AnyConnection:
        connection: _AnyConnection = (_TlsConnection if self._https else _Connection)(
            self._host, self._port, timeout=self._connect_timeout_s
        )
        with provider_errors(Stage.CONNECTING, discard=connection.close):
            connection.connect()
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
        """Close every thread's connection. A request still in flight (a worker stopped past
        its grace) fails on its closed connection, or, if it opened one since, closes it as it
        ends: nothing is left for the garbage collector."""
        with self._lock:
            self._closed = True
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
