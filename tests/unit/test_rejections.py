"""Refusals before any claim are noted in the store (table rejections), so whoever published the
request can learn of them; a refused message the HTTP API published itself settles that
payment, linked by the submission the API stored (workers/refusals.py)."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import select

from common.envelope import HEADER_KEY_ID, HEADER_SIGNATURE, InboundMessage
from common.errors import ProviderTimeout
from common.keygen import generate_key
from common.keyring import Keyring, KeyRole, KeyStatus
from common.models import PaymentRequest, PaymentStatus, result_event_id
from common.signing import Signer
from producer.encode import Draft, encode_request
from store.records import StoredResult
from store.schema import payments, rejections
from store.submissions import Submission, Submissions
from tests.unit.conftest import DEFAULT_DRAFT, FakeChannel, to_inbound

if TYPE_CHECKING:
    from tests.unit.conftest import Worker


def test_a_request_refused_before_the_claim_is_noted_under_its_id_and_exact_bytes(
    make_request: Callable[..., tuple[object, InboundMessage]],
    worker: Worker,
) -> None:
    # Given a request signed by a key nobody trusts
    _, signed = make_request()
    message = dataclasses.replace(signed, headers={**signed.headers, HEADER_KEY_ID: "stranger"})
    # When a worker refuses it
    handled = worker.handle(message)
    assert handled.result.code == "unknown_key"
    # Then the refusal is kept for exactly those bytes under that message id, and only those
    digest = hashlib.sha256(message.body).hexdigest()
    assert message.message_id is not None
    noted = worker.views.rejection_of(message.message_id, digest)
    assert noted is not None
    assert (noted.code, noted.payment_id) == ("unknown_key", None)  # signature never verified
    assert "stranger" in noted.reason
    assert (
        worker.views.rejection_of(message.message_id, hashlib.sha256(b"other").hexdigest()) is None
    )


def test_a_message_id_no_column_can_hold_is_noted_cut_short_and_without_nul(
    make_request: Callable[..., tuple[object, InboundMessage]],
    worker: Worker,
) -> None:
    # Given a refused message whose id is longer than the column and holds a NUL (which
    # PostgreSQL text refuses: the note would fail for ever and the refusal wait in a tier)
    _, signed = make_request()
    message = dataclasses.replace(signed, message_id="m\x00" + "x" * 300)
    # When a worker refuses it (its signature covers the id)
    handled = worker.handle(message)
    # Then it is refused at once, and noted under an id the column holds
    assert handled.result.code == "signature_invalid"
    with worker.store.engine.connect() as connection:
        [noted] = connection.execute(select(rejections.c.request_message_id)).scalars().all()
    assert len(noted) == 128
    assert "\x00" not in noted


def api_message(
    worker: Worker, signer: Signer, *, scope: str | None = "api-gateway"
) -> tuple[PaymentRequest, InboundMessage]:
    """A payment the HTTP API signed with `signer` and stored as its submission, as received."""
    created_ms = worker.clock.now_ms() - 1_000
    request, outbound = encode_request(
        Draft(**{**DEFAULT_DRAFT, "idempotency_key": "shop:order-1"}),
        signer=signer,
        topology=worker.topology,
        created_at_ms=created_ms,
        expires_at_ms=created_ms + 3_600_000,
        sealing_key=None,
    )
    submission = Submission(
        api_key_id="shop",
        idempotency_key="order-1",
        body_sha256="0" * 64,
        payment_id=str(request.payment_id),
        channel="card",
        message=StoredResult.of(outbound),
        merchant_reference=request.merchant_reference,
        scope=scope,
    )
    Submissions(worker.store.engine, worker.clock).add(submission)
    return request, to_inbound(outbound)


def new_gateway_key(tmp_path: Path) -> Signer:
    """A gateway key made where no worker's keyring has it (a rotation done halfway)."""
    generate_key(tmp_path, key_id="gateway-new", role=KeyRole.GATEWAY, channels=("card",))
    return Signer.load(tmp_path, "gateway-new")


def test_the_apis_own_message_refused_for_its_key_settles_its_payment_with_its_ids(
    worker: Worker, tmp_path: Path
) -> None:
    # Given a payment the API signed with a key the workers do not trust, and stored
    request, message = api_message(worker, new_gateway_key(tmp_path))
    payment_id = str(request.payment_id)
    # When a worker refuses its message
    handled = worker.handle(message)
    # Then the refusal is that payment's result, naming it as the API made it
    result = handled.result
    assert (result.status, result.code) == ("rejected", "unknown_key")
    assert result.payment_id == request.payment_id
    assert result.merchant_reference == "order-1"
    assert result.idempotency_key == "shop:order-1"
    assert result.amount == request.amount
    assert result.event_id == result_event_id(payment_id, PaymentStatus.REJECTED)
    assert len(handled.dead_letters) == 1
    # and the store shows the payment rejected, with its history and the event
    view = worker.views.describe(payment_id)
    assert view is not None
    assert (view["state"], view["code"], view["producer"]) == (
        "rejected",
        "unknown_key",
        "api-gateway",
    )
    assert "gateway-new" in view["reason"]
    assert [(t["from"], t["to"]) for t in view["history"]] == [
        ("received", "processing"),
        ("processing", "rejected"),
    ]
    assert view["result_event"]["event_id"] == str(result.event_id)
    # and it is final: the same message again repeats the same event, byte for byte
    again = worker.handle(message)
    assert [e.body for e in again.events] == [e.body for e in handled.events]
    assert again.dead_letters == []


def test_a_copy_of_the_apis_message_under_another_signature_is_not_linked(
    worker: Worker, tmp_path: Path
) -> None:
    # Given the API's stored message, delivered with its signature changed (its bytes and id
    # kept: anyone who saw it could send that)
    request, message = api_message(worker, new_gateway_key(tmp_path))
    forged = dataclasses.replace(
        message, headers={**message.headers, HEADER_SIGNATURE: "A" * 86 + "=="}
    )
    # When a worker refuses it
    handled = worker.handle(forged)
    # Then nothing links it to the payment: no payment settled, no payment named
    assert (handled.result.code, handled.result.payment_id) == ("unknown_key", None)
    assert worker.views.get(str(request.payment_id)) is None


def test_a_submission_stored_without_its_scope_leaves_the_refusal_unlinked(
    worker: Worker, tmp_path: Path
) -> None:
    # Given a submission stored before the API kept its key's owner
    _, message = api_message(worker, new_gateway_key(tmp_path), scope=None)
    # When a worker refuses its message
    handled = worker.handle(message)
    # Then it is refused as before: noted, no payment named
    assert (handled.result.code, handled.result.payment_id) == ("unknown_key", None)
    with worker.store.engine.connect() as connection:
        assert connection.execute(select(payments.c.payment_id)).first() is None


def test_a_payment_in_flight_whose_key_is_retired_goes_in_doubt_not_rejected(
    make_worker: Callable[..., Worker], keyring: Keyring, signer: Callable[[str], Signer]
) -> None:
    # Given an API payment whose first attempt timed out (the provider may have acted)
    channel = FakeChannel("card")
    channel.script(ProviderTimeout("no answer"))
    worker = make_worker(channel)
    request, message = api_message(worker, signer("gateway-1"))
    retry = worker.handle(message).retries[0]
    # When its retry comes back after the gateway key was retired
    retired = [
        k.model_copy(update={"status": KeyStatus.RETIRED}) if k.key_id == "gateway-1" else k
        for k in keyring.trusted_keys()
    ]
    later = make_worker(channel, keyring=Keyring(retired))
    handled = later.handle(to_inbound(retry))
    # Then the payment is not marked rejected on a guess: it goes in doubt, for the
    # reconciler to ask the provider, and names the refusal
    result = handled.result
    assert (result.status, result.code) == ("in_doubt", "key_not_allowed")
    assert result.payment_id == request.payment_id
    assert len(channel.calls) == 1
