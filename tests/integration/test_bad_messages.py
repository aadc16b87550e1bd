"""Every kind of bad message gets a terminal result, lands in the dead-letter queue with its
reason, and never reaches the provider (I3)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.amqp.admin import BrokerAdmin
from common.clock import SystemClock
from common.details import CHANNELS, DigitalCurrencyDetails
from common.envelope import (
    HEADER_DEAD_LETTER_CODE,
    HEADER_DEAD_LETTER_REASON,
    OutboundMessage,
)
from common.keygen import generate_key, set_status
from common.keyring import Keyring, KeyRole, KeyStatus
from common.models import PaymentRequest
from common.money import Money
from common.sealing import CardData
from common.settings import Settings
from common.signing import Signer
from common.subscriber import ResultStream
from common.topology import Topology
from producer.encode import Draft, SealingKey, encode_request
from sandbox.client import SandboxControl
from tests.integration.conftest import RunningWorker
from tests.integration.helpers import collect_results, drain, resign, wait_until

pytestmark = pytest.mark.integration

PRODUCER_KEY_ID = "producer-1"
_MINUTE_MS = 60_000


@dataclass(frozen=True)
class Kit:
    """What it takes to make (bad) payment requests against the test's topology."""

    keys_dir: Path
    topology: Topology
    signer: Signer
    sealing_key: SealingKey

    def encode(
        self, draft: Draft, *, signer: Signer | None = None, age_ms: int = 0
    ) -> tuple[PaymentRequest, OutboundMessage]:
        created_at_ms = SystemClock().now_ms() - age_ms
        return encode_request(
            draft,
            signer=signer or self.signer,
            topology=self.topology,
            created_at_ms=created_at_ms,
            expires_at_ms=created_at_ms + (_MINUTE_MS if age_ms == 0 else age_ms // 2),
            sealing_key=self.sealing_key,
        )

    def new_producer_key(self, *, channels: tuple[str, ...] = CHANNELS) -> Signer:
        key_id = f"producer-test-{uuid.uuid4().hex[:10]}"
        generate_key(
            self.keys_dir, key_id=key_id, owner="producer", role=KeyRole.PRODUCER, channels=channels
        )
        return Signer.load(self.keys_dir, key_id)


@dataclass(frozen=True)
class BadCase:
    message: OutboundMessage
    payment_id: uuid.UUID
    status: str
    code: str
    #: The payload was trusted enough to name the payment in the result.
    identified: bool = False
    worker_settings: dict[str, Any] = field(default_factory=dict)


def _draft(**source: Any) -> Draft:
    reference = f"bad-{uuid.uuid4().hex[:10]}"
    return Draft(
        amount=Money.from_major("12.34", "USD"),
        merchant_reference=reference,
        idempotency_key=reference,
        **(source or {"card_token": "tok_visa"}),
    )


def _signed_by(kit: Kit, signer: Signer, code: str) -> BadCase:
    draft = _draft()
    _, message = kit.encode(draft, signer=signer)
    return BadCase(message, draft.payment_id, "rejected", code)


def _edited(kit: Kit, old: bytes, new: bytes, code: str, *, signed: bool) -> BadCase:
    """A good message whose body bytes are edited afterwards, then signed again or not."""
    draft = _draft()
    _, message = kit.encode(draft)
    body = message.body.replace(old, new, 1)
    assert body != message.body
    edited = resign(kit.signer, message, body) if signed else replace(message, body=body)
    return BadCase(edited, draft.payment_id, "rejected", code)


BAD_MESSAGES: list[Callable[[Kit], BadCase]] = []


def bad(make: Callable[[Kit], BadCase]) -> Callable[[Kit], BadCase]:
    BAD_MESSAGES.append(make)
    return make


@bad
def forged_signature(kit: Kit) -> BadCase:
    impostor = Signer(PRODUCER_KEY_ID, Ed25519PrivateKey.generate())  # the real key id
    return _signed_by(kit, impostor, "signature_invalid")


@bad
def tampered_body(kit: Kit) -> BadCase:
    edit = (b'"amount_minor":1234', b'"amount_minor":9234')
    return _edited(kit, *edit, "signature_invalid", signed=False)


@bad
def unknown_key_id(kit: Kit) -> BadCase:
    stranger = Signer(f"stranger-{uuid.uuid4().hex[:8]}", Ed25519PrivateKey.generate())
    return _signed_by(kit, stranger, "unknown_key")


@bad
def retired_key(kit: Kit) -> BadCase:
    signer = kit.new_producer_key()
    set_status(kit.keys_dir, signer.key_id, KeyStatus.RETIRED)
    return _signed_by(kit, signer, "key_not_allowed")


@bad
def worker_key_signing_a_request(kit: Kit) -> BadCase:
    return _signed_by(kit, Signer.load(kit.keys_dir, "worker-1"), "key_not_allowed")


@bad
def key_not_allowed_for_the_channel(kit: Kit) -> BadCase:
    return _signed_by(kit, kit.new_producer_key(channels=("digital_currency",)), "key_not_allowed")


@bad
def payout_sent_to_the_card_queue(kit: Kit) -> BadCase:
    address = "0x52908400098527886E0F7030069857D2E4169EE7"
    payout = DigitalCurrencyDetails(network="ethereum", asset="ETH", destination_address=address)
    draft = replace(_draft(payout=payout), amount=Money.from_major("0.01", "ETH"))
    _, message = kit.encode(draft)
    misrouted = replace(message, routing_key="card")
    return BadCase(misrouted, draft.payment_id, "rejected", "wrong_channel")


@bad
def expired_before_execution(kit: Kit) -> BadCase:
    draft = _draft()
    _, message = kit.encode(draft, age_ms=20 * _MINUTE_MS)  # expired ten minutes ago
    return BadCase(message, draft.payment_id, "expired", "expired", identified=True)


@bad
def float_amount(kit: Kit) -> BadCase:
    edit = (b'"amount_minor":1234', b'"amount_minor":1234.0')
    return _edited(kit, *edit, "malformed", signed=True)


@bad
def duplicate_json_key(kit: Kit) -> BadCase:
    # A parser keeping the last "amount" would see 12.34 USD; one keeping the first, 0.01.
    edit = (b"{", b'{"amount":{"amount_minor":1,"currency":"USD"},')
    return _edited(kit, *edit, "malformed", signed=True)


@bad
def oversized_body(kit: Kit) -> BadCase:
    case = _signed_by(kit, kit.signer, "body_too_large")
    limit = {"max_body_bytes": len(case.message.body) - 1}
    return replace(case, worker_settings=limit)


@bad
def wrong_content_type(kit: Kit) -> BadCase:
    case = _signed_by(kit, kit.signer, "unsupported_content_type")
    return replace(case, message=replace(case.message, content_type="text/plain"))


@bad
def sealed_card_pasted_into_another_message(kit: Kit) -> BadCase:
    card = CardData(number="4242424242424242", exp_month=12, exp_year=2031, cvc="123")
    donor, _ = kit.encode(_draft(card=card))
    draft = _draft(card=card)
    request, message = kit.encode(draft)
    # The donor's sealed card opens only under the donor's signed header.
    pasted = request.model_copy(update={"details": donor.details}).model_dump_json().encode()
    return BadCase(
        resign(kit.signer, message, pasted),
        draft.payment_id,
        "rejected",
        "sealed_data_invalid",
        True,
    )


@pytest.fixture
def kit(topology: Settings, keys_dir: Path, keyring: Keyring) -> Kit:
    return Kit(
        keys_dir=keys_dir,
        topology=topology.broker.topology(),
        signer=Signer.load(keys_dir, PRODUCER_KEY_ID),
        sealing_key=SealingKey(*keyring.sealing_key("card")),
    )


@pytest.mark.parametrize("make_case", BAD_MESSAGES, ids=lambda make: make.__name__)
def test_bad_message_is_refused_dead_lettered_and_never_reaches_the_provider(
    make_case: Callable[[Kit], BadCase],
    kit: Kit,
    topology: Settings,
    start_worker: Callable[..., RunningWorker],
    results: ResultStream,
    control: SandboxControl,
    admin: BrokerAdmin,
) -> None:
    # Given a bad message (its keys set up before the worker loads its keyring) and a card worker
    case = make_case(kit)
    worker = start_worker("card", settings=topology.replace(**case.worker_settings))
    # When it is published
    admin.publish(case.message)
    # Then its result says why it was refused, and names the payment only if it could be trusted
    [result] = collect_results(results, 1)
    assert (result.status, result.code) == (case.status, case.code), result.reason
    assert result.request_message_id == case.message.message_id
    assert result.reason
    assert result.attempts == 0
    if case.identified:
        assert result.payment_id == case.payment_id
    else:
        assert result.payment_id is None
        assert result.amount is None
    # and once the delivery is acked, the dead-letter queue holds it, bytes intact (but for
    # a body refused for its size: not kept), with reasons
    wait_until(lambda: worker.consumer.processed == 1, what="the delivery to be acked")
    topo = topology.broker.topology()
    [dead] = drain(admin, topo.dead_letter_queue)
    assert dead.message_id == case.message.message_id
    assert dead.body == (b"" if case.code == "body_too_large" else case.message.body)
    assert dead.headers[HEADER_DEAD_LETTER_CODE] == case.code
    assert dead.headers[HEADER_DEAD_LETTER_REASON] not in (None, "")
    # and the provider never heard of the payment, and nothing is left in the work queue
    assert control.effects(str(case.payment_id)) == []
    assert admin.stats(topo.work_queue("card")).messages == 0
