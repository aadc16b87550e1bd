"""Taking a payment over HTTP exactly once per API key and Idempotency-Key.

The first request signs the payment (the gateway's producer key), stores the signed message
with a digest of the body, then publishes it with confirms. A repeated request finds the stored
submission: the same body answers the same payment (publishing the stored bytes again while no
worker has taken it, so a publish that failed is repaired), another body is a conflict. The
workers' own idempotency (the payment store) stands behind this: the message is the same, so
it can never pay twice."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from common.envelope import OutboundMessage
from common.errors import PermanentError
from common.models import PaymentRequest
from producer.api.keys import ApiKey
from producer.api.schemas import CardTokenIn, PaymentIn
from producer.encode import Draft
from store.records import StoredResult
from store.submissions import Submission, Submissions


class IdempotencyConflict(PermanentError):
    code = "idempotency_conflict"


@dataclass(frozen=True)
class Taken:
    submission: Submission
    #: An earlier request with this key and body already made the payment.
    replayed: bool


def body_digest(body: PaymentIn) -> str:
    """SHA-256 of the body as parsed, serialized one way: key order and spacing of the
    caller's JSON do not matter, content does."""
    return hashlib.sha256(body.model_dump_json().encode()).hexdigest()


def draft_of(key: ApiKey, idempotency_key: str, body: PaymentIn) -> Draft:
    details = body.details
    return Draft(
        amount=body.amount,
        merchant_reference=body.merchant_reference,
        # Scoped by API key: two callers may use one idempotency key.
        idempotency_key=f"{key.id}:{idempotency_key}",
        card_token=details.token if isinstance(details, CardTokenIn) else None,
        payout=None if isinstance(details, CardTokenIn) else details,
        metadata=body.metadata,
        payment_id=uuid.uuid4(),
    )


class Intake:
    def __init__(
        self,
        submissions: Submissions,
        *,
        prepare: Callable[[Draft, int | None], tuple[PaymentRequest, OutboundMessage]],
        publish: Callable[[OutboundMessage], None],
        taken_by_worker: Callable[[Submission], bool],
        scope: str | None = None,
    ) -> None:
        self._submissions = submissions
        self._prepare = prepare
        self._publish = publish
        self._taken_by_worker = taken_by_worker
        #: The gateway key's owner, kept with each submission: a worker that cannot verify the
        #: message (its key unknown there) still settles the payment in the right scope.
        self._scope = scope

    def take(self, key: ApiKey, idempotency_key: str, body: PaymentIn) -> Taken:
        """Raises IdempotencyConflict, ValueError (a body the contract refuses), or the
        publisher's errors (BrokerUnavailable, PublishFailed: the request may be repeated)."""
        digest = body_digest(body)
        submission = self._submissions.find(key.id, idempotency_key)
        replayed = submission is not None
        if submission is None:
            request, message = self._prepare(
                draft_of(key, idempotency_key, body), body.expires_in_s
            )
            new = Submission(
                api_key_id=key.id,
                idempotency_key=idempotency_key,
                body_sha256=digest,
                payment_id=str(request.payment_id),
                channel=request.channel,
                message=StoredResult.of(message),
                merchant_reference=request.merchant_reference,
                scope=self._scope,
            )
            submission = self._submissions.add(new)
            replayed = submission.payment_id != new.payment_id
        if submission.body_sha256 != digest:
            raise IdempotencyConflict(
                f"Idempotency-Key {idempotency_key!r} was used with another body for payment "
                f"{submission.payment_id}"
            )
        # Published again while no worker has taken or refused it: repairs a lost publish.
        if not replayed or not self._taken_by_worker(submission):
            self._publish(submission.message.message())
        return Taken(submission, replayed)
