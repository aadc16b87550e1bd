"""The provider HTTP transport decides, once, what a failed call may have done.

The connection is faked at the transport's own seam (`_connection`), except where what is
tested is the sockets themselves: there a loopback server stands for the provider.
"""

from __future__ import annotations

import http.client
import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from common.errors import (
    PaymqError,
    ProviderConnectionLost,
    ProviderTimeout,
    ProviderUnavailable,
)
from workers.providers.http import (
    HttpResponse,
    HttpTransport,
    Stage,
    _Connection,
    provider_errors,
)


class FakeResponse:
    def __init__(self, status: int, body: bytes, headers: dict[str, str], will_close: bool):
        self.status, self._body, self._headers, self.will_close = status, body, headers, will_close
        self.read_error: BaseException | None = None

    def read(self) -> bytes:
        if self.read_error is not None:
            raise self.read_error
        return self._body

    def getheader(self, name: str) -> str | None:
        return self._headers.get(name)


class FakeConnection:
    def __init__(self, response: FakeResponse) -> None:
        self.response = response
        self.request_error: BaseException | None = None
        self.response_error: BaseException | None = None
        self.sent: list[tuple[str, str, bytes, dict[str, str]]] = []
        self.closed = False

        self.last_used_s = 0.0

    def request_in_one_write(
        self, method: str, url: str, body: bytes, headers: dict[str, str]
    ) -> None:
        if self.request_error is not None:
            raise self.request_error
        self.sent.append((method, url, body, headers))

    def getresponse(self) -> FakeResponse:
        if self.response_error is not None:
            raise self.response_error
        return self.response

    def close(self) -> None:
        self.closed = True


class FakeTransport(HttpTransport):
    def __init__(self, base_url: str, connection: FakeConnection) -> None:
        super().__init__(base_url, connect_timeout_s=1.0, read_timeout_s=2.0)
        self.fake = connection

    def _connection(self) -> Any:
        self._local.connection = self.fake
        return self.fake


def transport(
    *,
    status: int = 201,
    body: bytes = b'{"id": "ch_1"}',
    headers: dict[str, str] | None = None,
    will_close: bool = False,
    base_url: str = "http://provider:8099",
) -> FakeTransport:
    response = FakeResponse(status, body, headers or {}, will_close)
    return FakeTransport(base_url, FakeConnection(response))


def post(transport: HttpTransport) -> HttpResponse:
    return transport.post("/v1/charges", b"{}", {"Idempotency-Key": "k"})


def test_an_answer_is_returned_with_status_body_and_retry_after():
    fake = transport(status=429, body=b"{}", headers={"Retry-After": "3"})
    assert post(fake) == HttpResponse(429, b"{}", "3")
    assert fake.fake.sent == [("POST", "/v1/charges", b"{}", {"Idempotency-Key": "k"})]
    assert not fake.fake.closed


def test_the_base_url_path_prefixes_every_request():
    fake = transport(base_url="https://provider.example/api/")
    post(fake)
    assert fake.fake.sent[0][1] == "/api/v1/charges"


def test_a_connection_the_server_will_close_is_not_kept():
    fake = transport(will_close=True)
    post(fake)
    assert fake.fake.closed


@pytest.mark.parametrize("url", ["ftp://provider", "http://", "provider:8099"])
def test_a_provider_url_that_is_not_http_is_refused(url: str):
    with pytest.raises(ValueError, match="provider URL"):
        HttpTransport(url, connect_timeout_s=1, read_timeout_s=1)


@pytest.mark.parametrize("error", [ConnectionRefusedError(), BrokenPipeError(), OSError("x")])
def test_a_request_that_could_not_be_sent_surely_had_no_effect(error: OSError):
    fake = transport()
    fake.fake.request_error = error
    with pytest.raises(ProviderUnavailable):
        post(fake)
    assert fake.fake.closed


def test_a_timeout_after_sending_is_a_provider_timeout():
    fake = transport()
    fake.fake.response_error = TimeoutError("timed out")
    with pytest.raises(ProviderTimeout):
        post(fake)
    assert fake.fake.closed


@pytest.mark.parametrize(
    "error",
    [
        ConnectionResetError(),
        http.client.RemoteDisconnected("closed"),
        http.client.BadStatusLine("x"),
        http.client.IncompleteRead(b"", 10),
    ],
)
def test_a_connection_broken_before_the_answer_is_connection_lost(error: Exception):
    fake = transport()
    fake.fake.response_error = error
    with pytest.raises(ProviderConnectionLost):
        post(fake)
    assert fake.fake.closed


def test_a_body_cut_short_is_connection_lost():
    fake = transport()
    fake.fake.response.read_error = http.client.IncompleteRead(b"{", 10)
    with pytest.raises(ProviderConnectionLost):
        post(fake)


@pytest.mark.parametrize(
    ("stage", "error", "kind"),
    [
        (Stage.CONNECTING, ConnectionRefusedError(111, "refused"), ProviderUnavailable),
        (Stage.SENDING, BrokenPipeError(32, "broken pipe"), ProviderUnavailable),
        (Stage.AWAITING_ANSWER, TimeoutError("timed out"), ProviderTimeout),
        (Stage.AWAITING_ANSWER, http.client.RemoteDisconnected("closed"), ProviderConnectionLost),
    ],
    ids=["connecting", "sending", "timeout", "reset"],
)
def test_every_translation_keeps_the_http_error_as_its_cause(
    stage: Stage, error: Exception, kind: type[PaymqError]
):
    discarded: list[bool] = []
    with (
        pytest.raises(kind) as caught,
        provider_errors(stage, discard=lambda: discarded.append(True)),
    ):
        raise error
    assert caught.value.__cause__ is error
    assert discarded == [True]


def test_a_failed_call_raises_the_transport_error_with_its_cause():
    fake = transport()
    reset = ConnectionResetError(104, "reset by peer")
    fake.fake.response_error = reset
    with pytest.raises(ProviderConnectionLost) as caught:
        post(fake)
    assert caught.value.__cause__ is reset


def subclasses(root: type[BaseException]) -> list[type[BaseException]]:
    found, stack = set(), [root]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub.__module__ in ("builtins", "http.client", "ssl", "socket") and sub not in found:
                found.add(sub)
                stack.append(sub)
    return sorted(found | {root}, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


FAILURES = sorted(
    set(subclasses(OSError) + subclasses(http.client.HTTPException)),
    key=lambda cls: f"{cls.__module__}.{cls.__qualname__}",
)


def instance(cls: type[BaseException]) -> BaseException:
    """An instance whose repr works, whatever the constructor's arguments."""
    for args in [(), ("failure",), (b"", 10)]:
        try:
            error = cls(*args)
            repr(error)
        except (TypeError, AttributeError):
            continue
        return error
    raise AssertionError(f"cannot build {cls!r}")


@pytest.mark.parametrize("cls", FAILURES, ids=lambda cls: cls.__qualname__)
def test_no_failure_while_awaiting_the_answer_escapes_untranslated(cls: type[BaseException]):
    fake = transport()
    fake.fake.response_error = instance(cls)
    with pytest.raises(PaymqError):
        post(fake)


@pytest.mark.parametrize(
    "cls", [c for c in FAILURES if issubclass(c, OSError)], ids=lambda cls: cls.__qualname__
)
def test_no_os_error_while_sending_escapes_untranslated(cls: type[BaseException]):
    fake = transport()
    fake.fake.request_error = instance(cls)
    with pytest.raises(ProviderUnavailable):
        post(fake)


def test_no_http_client_error_while_sending_escapes_untranslated():
    for cls in FAILURES:
        if issubclass(cls, http.client.HTTPException) and not issubclass(cls, OSError):
            fake = transport()
            fake.fake.request_error = instance(cls)
            with pytest.raises(PaymqError):
                post(fake)
            assert fake.fake.closed


def test_the_walk_covers_the_failures_that_matter():
    names = {cls.__name__ for cls in FAILURES}
    assert {"TimeoutError", "ConnectionResetError", "RemoteDisconnected", "SSLError"} <= names
    assert {OSError, http.client.HTTPException} <= set(FAILURES)


class RecordingSocket:
    def __init__(self) -> None:
        self.writes: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.writes.append(bytes(data))


def test_a_request_leaves_in_a_single_write():
    connection = _Connection("provider.test", 80)
    sock = RecordingSocket()
    connection.sock = sock  # type: ignore[assignment]
    connection.request_in_one_write("POST", "/v1/charges", b'{"a":1}', {"X-Test": "1"})
    [write] = sock.writes
    assert write.startswith(b"POST /v1/charges HTTP/1.1\r\n")
    assert write.endswith(b'\r\n\r\n{"a":1}')


class Counting(http.server.ThreadingHTTPServer):
    """A loopback provider that keeps connections alive and counts those that ended."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Answering)
        self.ended = 0

    def ended_connections(self, expected: int) -> int:
        deadline = time.monotonic() + 5
        while self.ended < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.ended


class Answering(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def finish(self) -> None:
        super().finish()
        assert isinstance(self.server, Counting)
        self.server.ended += 1

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[Counting]:
    server = Counting()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_a_connection_is_kept_alive_until_the_transport_closes(provider: Counting):
    real = HttpTransport(
        f"http://127.0.0.1:{provider.server_port}", connect_timeout_s=2, read_timeout_s=2
    )
    assert post(real).status == 200
    assert post(real).status == 200
    assert provider.ended == 0  # one connection, still open
    real.close()
    assert provider.ended_connections(1) == 1


def test_a_request_made_after_close_leaves_no_connection_open(provider: Counting):
    # Given a transport closed while a pool thread was still about to call (a worker stopped
    # past its grace)
    real = HttpTransport(
        f"http://127.0.0.1:{provider.server_port}", connect_timeout_s=2, read_timeout_s=2
    )
    real.close()
    # When that thread calls: its answer is still read
    answers: list[int] = []
    late = threading.Thread(target=lambda: answers.append(post(real).status))
    late.start()
    late.join(5)
    assert answers == [200]
    # Then the connection it opened is closed as the call ends, not left to the collector
    assert provider.ended_connections(1) == 1
