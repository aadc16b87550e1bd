"""Shared fixtures for the pure layer: one key set per session, a fixed clock, factories for
signed messages, and fakes of our own seams (a payment channel, a card provider).

Key ids in the session key set:
    producer-1    active producer key for every channel
    producer-dc   active producer key allowed for digital_currency only
    producer-old  retired producer key
    worker-1      worker key (signs result events)
    seal-1        x25519 sealing key of the card workers
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from common.clock import FixedClock
from common.details import CHANNELS
from common.envelope import InboundMessage, OutboundMessage, open_message, sign_message
from common.keygen import generate_key, init_keys, set_status
from common.keyring import TRUSTED_DIR, Keyring, KeyRole, KeyStatus
from common.metrics import Metrics
from common.models import PaymentRequest, PaymentResult, PaymentStatus
from common.money import Money
from common.sealing import load_sealing_private_keys
from common.signing import REQUEST_TYPE, RESULT_TYPE, SignedFields, Signer
from common.topology import Topology
from producer.encode import Draft, SealingKey, encode_request
from store.claims import Claims
from store.database import create_store_engine, upgrade
from store.views import PaymentViews
from workers.channels.base import ExecutionContext
from workers.config import HandlerConfig
from workers.handler import Disposition, Handler
from workers.providers.base import CardCharge, ProviderReceipt
from workers.providers.breaker import CircuitBreaker
from workers.providers.route import Binding, Route
from workers.retries import RetryPolicy

NOW_MS = 1_900_000_000_000  # 2030-03-17T17:46:40Z
MAX_BODY_BYTES = 65_536
DEFAULT_DRAFT: dict[str, Any] = {
    "amount": Money(amount_minor=1050, currency="USD"),
    "merchant_reference": "order-1",
    "idempotency_key": "order-1-key",
    "card_token": "tok_visa",
}


def to_inbound(message: OutboundMessage, **changes: Any) -> InboundMessage:
    """What a consumer would receive for `message`, with `changes` applied on top."""
    received = InboundMessage(
        body=message.body,
        exchange=message.exchange,
        routing_key=message.routing_key,
        content_type=message.content_type,
        message_id=message.message_id,
        message_type=message.message_type,
        headers=dict(message.headers),
    )
    return dataclasses.replace(received, **changes)


class FakeChannel:
    """A PaymentChannel that records every call and answers from a script of receipts and
    errors; once the script is used up it succeeds."""

    primary_provider = "fake"

    def __init__(self, name: str = "card") -> None:
        self.name = name
        self.calls: list[tuple[PaymentRequest, ExecutionContext]] = []
        self._script: list[ProviderReceipt | Exception] = []

    def script(self, *answers: ProviderReceipt | Exception) -> None:
        self._script.extend(answers)

    def execute(self, request: PaymentRequest, context: ExecutionContext) -> ProviderReceipt:
        self.calls.append((request, context))
        answer = self._script.pop(0) if self._script else None
        if isinstance(answer, Exception):
            raise answer
        # Like a real provider, the same idempotency key gives the same reference.
        return answer or ProviderReceipt(
            provider="fake", reference=f"ref-{context.idempotency_key}"
        )


class FakeCardProvider:
    """A CardProvider that records charges and succeeds, reporting the card's last four."""

    name = "fake-cards"

    def __init__(self) -> None:
        self.charges: list[tuple[CardCharge, str]] = []

    def accepts(self, charge: CardCharge) -> bool:
        return True

    def charge(self, charge: CardCharge, *, idempotency_key: str) -> ProviderReceipt:
        self.charges.append((charge, idempotency_key))
        last4 = charge.card.last4 if charge.card is not None else None
        return ProviderReceipt(provider=self.name, reference="ch_1", card_last4=last4)


def route_of(channel: str, *providers: Any) -> Route[Any]:
    """A route through `providers`, each behind a breaker that never opens here."""
    clock = FixedClock(0)
    breakers = {
        p.name: CircuitBreaker(p.name, clock, failures_to_open=99, open_ms=1) for p in providers
    }
    return Route(channel, list(providers), breakers)


def unbound(payment_id: str = "payment-1") -> Binding:
    """A new payment's binding: no provider recorded yet, nothing pinned, binds recorded."""
    return Binding(payment_id=payment_id, provider=None, pinned=False, bind=lambda _p, _r: None)


@pytest.fixture(scope="session")
def keys_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keys")
    init_keys(root, producer_key_id="producer-1", worker_key_id="worker-1", sealing_key_id="seal-1")
    generate_key(
        root,
        key_id="producer-dc",
        owner="payouts",
        role=KeyRole.PRODUCER,
        channels=("digital_currency",),
    )
    generate_key(root, key_id="producer-old", owner="old", role=KeyRole.PRODUCER, channels=CHANNELS)
    set_status(root, "producer-old", KeyStatus.RETIRED)
    return root


@pytest.fixture(scope="session")
def keyring(keys_dir: Path) -> Keyring:
    return Keyring.load(keys_dir / TRUSTED_DIR)


@pytest.fixture(scope="session")
def signer(keys_dir: Path) -> Callable[[str], Signer]:
    return lambda key_id: Signer.load(keys_dir, key_id)


@pytest.fixture(scope="session")
def sealing_key(keyring: Keyring) -> SealingKey:
    kid, public_key = keyring.sealing_key("card")
    return SealingKey(kid=kid, public_key=public_key)


@pytest.fixture(scope="session")
def sealing_private_keys(keys_dir: Path, keyring: Keyring) -> dict[str, Any]:
    return load_sealing_private_keys(keys_dir, keyring)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW_MS)


@pytest.fixture
def topology() -> Topology:
    return Topology(prefix="t", retry_delays_ms=(1_000, 5_000, 30_000))


@pytest.fixture
def make_request(
    signer: Callable[[str], Signer], sealing_key: SealingKey, topology: Topology, clock: FixedClock
) -> Callable[..., tuple[PaymentRequest, InboundMessage]]:
    """Encode a draft (DEFAULT_DRAFT updated with keyword fields) as a signed delivery."""

    def make(
        *,
        key_id: str = "producer-1",
        created_at_ms: int | None = None,
        expires_at_ms: int | None = None,
        message_id: str | None = None,
        **draft_fields: Any,
    ) -> tuple[PaymentRequest, InboundMessage]:
        created = clock.now_ms() - 1_000 if created_at_ms is None else created_at_ms
        request, outbound = encode_request(
            Draft(**{**DEFAULT_DRAFT, **draft_fields}),
            signer=signer(key_id),
            topology=topology,
            created_at_ms=created,
            expires_at_ms=created + 3_600_000 if expires_at_ms is None else expires_at_ms,
            sealing_key=sealing_key,
            message_id=message_id,
        )
        return request, to_inbound(outbound)

    return make


@pytest.fixture
def sign_body(
    signer: Callable[[str], Signer], topology: Topology, clock: FixedClock
) -> Callable[..., InboundMessage]:
    """Sign arbitrary body bytes as a payment request (for payloads encode_request refuses)."""

    def sign(body: bytes, *, route: str = "card", key_id: str = "producer-1") -> InboundMessage:
        created = clock.now_ms() - 1_000
        fields = SignedFields(REQUEST_TYPE, key_id, route, "msg-raw-1", created, created + 60_000)
        exchange = topology.requests_exchange
        return to_inbound(
            sign_message(signer(key_id), fields, body, exchange=exchange, routing_key=route)
        )

    return sign


@pytest.fixture
def fake_card_provider() -> FakeCardProvider:
    return FakeCardProvider()


@dataclass
class Handled:
    """One handled delivery: its disposition and what it published, sorted by destination;
    result events are verified with the worker key and parsed into `results`."""

    disposition: Disposition
    events: list[OutboundMessage] = field(default_factory=list)
    dead_letters: list[OutboundMessage] = field(default_factory=list)
    retries: list[OutboundMessage] = field(default_factory=list)
    #: Fresh copies sent straight back to the work queue (through the requests exchange).
    refreshed: list[OutboundMessage] = field(default_factory=list)
    results: list[PaymentResult] = field(default_factory=list)

    @property
    def status(self) -> PaymentStatus | None:
        return self.disposition.status

    @property
    def result(self) -> PaymentResult:
        [result] = self.results
        return result


class Worker:
    """A Handler with a worker key and a fixed clock, around the given channel."""

    def __init__(
        self,
        channel: Any,
        *,
        keyring: Keyring,
        signer: Signer,
        clock: FixedClock,
        topology: Topology,
        store: Claims,
        refresh_after_deliveries: int = 0,
    ) -> None:
        self.channel = channel
        self.store = store
        #: What the store shows of a payment (for the tests' own checks).
        self.views = PaymentViews(store.engine)
        self.clock = clock
        self.topology = topology
        self._keyring = keyring
        config = HandlerConfig(
            channel=channel.name,
            topology=topology,
            retry=RetryPolicy(delays_ms=topology.retry_delays_ms, max_attempts=3),
            max_body_bytes=MAX_BODY_BYTES,
            max_clock_skew_ms=300_000,
            refresh_after_deliveries=refresh_after_deliveries,
        )
        self.metrics = Metrics()
        self.handler = Handler(
            config,
            channel,
            keyring=keyring,
            signer=signer,
            clock=clock,
            store=store,
            metrics=self.metrics,
        )

    def handle(self, message: InboundMessage) -> Handled:
        handled = Handled(self.handler.handle(message))
        for outbound in handled.disposition.publish:
            if outbound.exchange == self.topology.results_exchange:
                handled.events.append(outbound)
                handled.results.append(self.open_result(outbound))
            elif outbound.exchange == self.topology.dead_letter_exchange:
                handled.dead_letters.append(outbound)
            elif outbound.exchange == self.topology.requests_exchange:
                handled.refreshed.append(outbound)
            else:
                assert outbound.exchange.startswith(f"{self.topology.prefix}.retry.")
                handled.retries.append(outbound)
        return handled

    def open_result(self, event: OutboundMessage) -> PaymentResult:
        verified = open_message(
            to_inbound(event),
            self._keyring,
            expected_type=RESULT_TYPE,
            role=KeyRole.WORKER,
            channel=event.routing_key.rpartition(".")[0],
            route=event.routing_key,
            max_body_bytes=MAX_BODY_BYTES,
        )
        return PaymentResult.model_validate_json(verified.body)


@pytest.fixture
def make_worker(
    keyring: Keyring,
    signer: Callable[[str], Signer],
    clock: FixedClock,
    topology: Topology,
    store: Claims,
) -> Callable[..., Worker]:
    """A worker around `channel`; `options` may replace its keyring (a rotation) among others."""
    defaults = {
        "keyring": keyring,
        "signer": signer("worker-1"),
        "clock": clock,
        "topology": topology,
        "store": store,
    }
    return lambda channel, **options: Worker(channel, **{**defaults, **options})


@pytest.fixture
def store(tmp_path: Path, clock: FixedClock) -> Iterator[Claims]:
    """A real payment store (SQLite in the test's own directory) on the test's clock."""
    engine = create_store_engine(f"sqlite:///{tmp_path / 'paymq.db'}")
    upgrade(engine)
    claims = Claims(engine, clock, owner="test-worker", lease_ms=60_000)
    yield claims
    claims.close()
    claims.engine.dispose()


@pytest.fixture
def worker(make_worker: Callable[[Any], Worker]) -> Worker:
    """A card worker around a FakeChannel (`worker.channel`)."""
    return make_worker(FakeChannel("card"))


@pytest.fixture(scope="session")
def inbound() -> Callable[..., InboundMessage]:
    return to_inbound
