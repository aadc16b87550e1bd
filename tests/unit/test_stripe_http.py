"""The Stripe adapter (workers/providers/stripe_card.py) against real local sockets.

Nothing is patched: the official SDK talks HTTP to servers on 127.0.0.1 that refuse, stay
silent, hang up, or answer as Stripe would. Each server records what reached it, so the tests
also show that one charge is one request (the SDK's own retries are off) carrying our
idempotency key and our payment id.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import pytest
import requests
import stripe

from common.errors import (
    OutcomeUnknown,
    PaymentDeclined,
    ProviderConnectionLost,
    ProviderRejected,
    ProviderServerError,
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
)
from common.money import Money
from common.sealing import CardData
from workers.providers.base import CardCharge, ProviderReceipt
from workers.providers.stripe_card import StripeProvider

KEY = "pay-1-key"
TOKEN_CHARGE = CardCharge(
    reference="pay-1",
    amount=Money(amount_minor=1234, currency="EUR"),
    token="pm_card_visa",
)
CARD_CHARGE = CardCharge(
    reference="pay-2",
    amount=Money(amount_minor=1234, currency="EUR"),
    card=CardData(number="4242424242424242", exp_month=12, exp_year=2030, cvc="123"),
)
SUCCEEDED = {"id": "pi_1", "object": "payment_intent", "status": "succeeded"}
#: The longest any socket here waits for its peer: a bound for a broken test, never a pace.
PEER_TIMEOUT_S = 5.0


# --- servers ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    idempotency_key: str | None
    #: Whether an API key came along, kept as a flag so no assertion can print it.
    authorized: bool
    form: dict[str, list[str]]


class FakeStripe(ThreadingHTTPServer):
    """Answers each request with the next scripted answer, and records what it received."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _StripeHandler)
        self.answers: list[Answer] = []
        self.received: list[Received] = []
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, *answers: Answer) -> None:
        self.answers.extend(answers)

    def take(self, request: Received) -> Answer:
        with self._lock:
            self.received.append(request)
            if not self.answers:
                return Answer(500, {"error": {"type": "api_error", "message": "unscripted"}})
            return self.answers.pop(0)


class _StripeHandler(BaseHTTPRequestHandler):
    server: FakeStripe

    def do_POST(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        answer = self.server.take(
            Received(
                method=self.command,
                path=self.path,
                idempotency_key=self.headers.get("Idempotency-Key"),
                authorized=(self.headers.get("Authorization") or "").startswith("Bearer sk_"),
                form=parse_qs(body, keep_blank_values=True),
            )
        )
        data = json.dumps(answer.body).encode()
        self.send_response(answer.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in answer.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the tests read `received`, not the access log."""


class MuteServer:
    """Accepts connections and reads each request whole, then never answers it, or hangs up."""

    def __init__(self, *, hang_up: bool) -> None:
        self._hang_up = hang_up
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._stop = threading.Event()
        self._held: list[socket.socket] = []
        self.requests_read = 0
        self._thread = threading.Thread(target=self._serve, name="mute-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _serve(self) -> None:
        # A short accept timeout only so that close() is noticed; requests never wait on it.
        self._listener.settimeout(0.05)
        while not self._stop.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            connection.settimeout(PEER_TIMEOUT_S)
            _read_request(connection)
            self.requests_read += 1
            if self._hang_up:
                connection.close()
            else:
                self._held.append(connection)

    def close(self) -> None:
        """Stop serving and drop every held connection; closing twice is harmless."""
        self._stop.set()
        self._thread.join(PEER_TIMEOUT_S)
        for connection in self._held:
            connection.close()
        self._listener.close()


def _read_request(connection: socket.socket) -> None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = connection.recv(65_536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(body) < length:
        chunk = connection.recv(65_536)
        if not chunk:
            return
        body += chunk


def closed_port_url() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- fixtures --------------------------------------------------------------------------------

ProviderAt = Callable[..., StripeProvider]
MuteServers = Callable[..., MuteServer]


@pytest.fixture
def stripe_server() -> Iterator[FakeStripe]:
    server = FakeStripe()
    # A short poll interval only so that shutdown() returns promptly; requests never wait on it.
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, name="fake-stripe", daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(PEER_TIMEOUT_S)


@pytest.fixture
def mute_server() -> Iterator[MuteServers]:
    servers: list[MuteServer] = []

    def start(*, hang_up: bool) -> MuteServer:
        servers.append(MuteServer(hang_up=hang_up))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def provider_at() -> Iterator[ProviderAt]:
    providers: list[StripeProvider] = []

    def build(url: str, *, read_timeout_s: float = PEER_TIMEOUT_S) -> StripeProvider:
        providers.append(
            StripeProvider(
                "sk_test_paymq",
                api_base=url,
                connect_timeout_s=PEER_TIMEOUT_S,
                read_timeout_s=read_timeout_s,
            )
        )
        return providers[-1]

    yield build
    for provider in providers:
        provider.close()


def charge_failing(provider: StripeProvider, charge: CardCharge = TOKEN_CHARGE) -> Exception:
    with pytest.raises(Exception) as caught:  # noqa: PT011 - each test checks the type itself
        provider.charge(charge, idempotency_key=KEY)
    return caught.value


# --- no answer -------------------------------------------------------------------------------


def test_a_refused_connection_is_provider_unavailable(provider_at: ProviderAt) -> None:
    error = charge_failing(provider_at(closed_port_url()))
    assert type(error) is ProviderUnavailable


def test_a_translated_error_keeps_stripes_error_and_its_network_error_as_causes(
    provider_at: ProviderAt,
) -> None:
    error = charge_failing(provider_at(closed_port_url()))
    assert isinstance(error.__cause__, stripe.APIConnectionError)
    assert isinstance(error.__cause__.__cause__, requests.ConnectionError)


def test_a_server_that_never_answers_is_a_provider_timeout_after_one_request(
    provider_at: ProviderAt, mute_server: MuteServers
) -> None:
    server = mute_server(hang_up=False)
    error = charge_failing(provider_at(server.url, read_timeout_s=0.3))
    assert type(error) is ProviderTimeout
    server.close()  # joins the server's thread: everything it read is counted
    assert server.requests_read == 1


def test_a_server_that_hangs_up_after_reading_is_connection_lost_after_one_request(
    provider_at: ProviderAt, mute_server: MuteServers
) -> None:
    server = mute_server(hang_up=True)
    error = charge_failing(provider_at(server.url))
    assert type(error) is ProviderConnectionLost
    server.close()
    assert server.requests_read == 1


# --- answers ---------------------------------------------------------------------------------


def test_a_token_charge_is_one_payment_intent_create_with_our_key_and_payment_id(
    provider_at: ProviderAt, stripe_server: FakeStripe
) -> None:
    stripe_server.script(Answer(200, SUCCEEDED))
    receipt = provider_at(stripe_server.url).charge(TOKEN_CHARGE, idempotency_key=KEY)
    assert receipt == ProviderReceipt("stripe", "pi_1", settled=True)
    [request] = stripe_server.received
    assert (request.method, request.path) == ("POST", "/v1/payment_intents")
    assert request.idempotency_key == KEY
    assert request.authorized
    assert request.form["metadata[paymq_payment_id]"] == ["pay-1"]
    assert request.form["confirm"] == ["true"]
    assert request.form["payment_method"] == ["pm_card_visa"]
    assert (request.form["amount"], request.form["currency"]) == (["1234"], ["eur"])


def test_a_500_is_an_unknown_outcome_after_one_request(
    provider_at: ProviderAt, stripe_server: FakeStripe
) -> None:
    stripe_server.script(Answer(500, {"error": {"type": "api_error", "message": "boom"}}))
    error = charge_failing(provider_at(stripe_server.url))
    assert type(error) is ProviderServerError
    assert len(stripe_server.received) == 1


def test_a_429_is_rate_limited_for_stripes_retry_after(
    provider_at: ProviderAt, stripe_server: FakeStripe
) -> None:
    body = {"error": {"type": "invalid_request_error", "code": "rate_limit", "message": "slow"}}
    stripe_server.script(Answer(429, body, headers=(("Retry-After", "7"),)))
    error = charge_failing(provider_at(stripe_server.url))
    assert isinstance(error, RateLimited)
    assert error.retry_after_s == 7
    assert len(stripe_server.received) == 1


def test_a_401_is_provider_unavailable_as_an_auth_failure(
    provider_at: ProviderAt, stripe_server: FakeStripe
) -> None:
    body = {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided"}}
    stripe_server.script(Answer(401, body))
    error = charge_failing(provider_at(stripe_server.url))
    assert type(error) is ProviderUnavailable
    assert error.code == "provider_auth_failed"
    assert len(stripe_server.received) == 1


def test_a_400_is_rejected_with_stripes_error_code(
    provider_at: ProviderAt, stripe_server: FakeStripe
) -> None:
    body = {
        "error": {
            "type": "invalid_request_error",
            "code": "parameter_missing",
            "message": "Missing required param: amount.",
        }
    }
    stripe_server.script(Answer(400, body))
    error = charge_failing(provider_at(stripe_server.url))
    assert type(error) is ProviderRejected
    assert error.code == "parameter_missing"
    assert len(stripe_server.received) == 1


def test_a_402_is_a_decline_with_the_decline_code_and_the_declined_intent(
    provider_at: ProviderAt, stripe_server: FakeStripe
) -> None:
    body = {
        "error": {
            "type": "card_error",
            "code": "card_declined",
            "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.",
            "payment_intent": {
                "id": "pi_declined",
                "object": "payment_intent",
                "status": "requires_payment_method",
            },
        }
    }
    stripe_server.script(Answer(402, body))
    error = charge_failing(provider_at(stripe_server.url))
    assert isinstance(error, PaymentDeclined)
    assert (error.code, error.provider_reference) == ("insufficient_funds", "pi_declined")
    assert len(stripe_server.received) == 1


# --- card data -------------------------------------------------------------------------------


def test_card_data_becomes_a_payment_method_then_the_intent_charges_it(
    provider_at: ProviderAt, stripe_server: FakeStripe
) -> None:
    stripe_server.script(
        Answer(200, {"id": "pm_1", "object": "payment_method"}),
        Answer(200, SUCCEEDED),
    )
    receipt = provider_at(stripe_server.url).charge(CARD_CHARGE, idempotency_key=KEY)
    assert receipt == ProviderReceipt("stripe", "pi_1", settled=True, card_last4="4242")
    method, payment = stripe_server.received
    assert (method.path, method.idempotency_key) == ("/v1/payment_methods", f"{KEY}:pm")
    assert method.form["type"] == ["card"]
    assert method.form["card[exp_month]"] == ["12"]
    assert (payment.path, payment.idempotency_key) == ("/v1/payment_intents", KEY)
    assert payment.form["payment_method"] == ["pm_1"]
    assert payment.form["metadata[paymq_payment_id]"] == ["pay-2"]


def test_a_500_creating_the_payment_method_is_provider_unavailable_not_unknown(
    provider_at: ProviderAt, stripe_server: FakeStripe
) -> None:
    stripe_server.script(Answer(500, {"error": {"type": "api_error", "message": "boom"}}))
    error = charge_failing(provider_at(stripe_server.url), CARD_CHARGE)
    assert type(error) is ProviderUnavailable
    assert not isinstance(error, OutcomeUnknown)
    # What Stripe said stays behind it: our unknown outcome, then the SDK's error.
    assert isinstance(error.__cause__, ProviderServerError)
    assert isinstance(error.__cause__.__cause__, stripe.APIError)
    [request] = stripe_server.received
    assert request.path == "/v1/payment_methods"
