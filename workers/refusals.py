"""A request refused before any claim: a bad signature, a key not (or no longer) trusted, a
malformed body, an idempotency key already used.

Such a message is noted in the store under its message id and body digest, with a `rejected`
result of its own and a dead-letter copy (dispositions.Dispositions.unstored): its fields are
not trusted, so the result names no payment. One kind of refused message is known all the
same: one the HTTP API published. The API stores every message it signs, under the payment id
it chose (store/submissions.py). A delivery that is exactly that message (the same message id,
type, body bytes and signed headers, signature included) is the API's own, whoever delivered
it: a forger changing any of them no longer matches, and one who replays it unchanged only
delivers the API's message again. So its refusal settles that payment, in the store, like any
other outcome: `rejected` with the payment id, reference and amount the API gave it, visible
through `GET /payments/{id}` and in the event every subscriber (the webhooks too) receives, and
final, since a payment has one result: a later copy of the same message repeats it.

If the payment was already claimed when its message came to be refused (a key retired while
it was in a retry tier, say), the claim says what is known: an earlier attempt whose outcome
is unknown puts it `in_doubt`, for the reconciler to ask the provider (I6); a payment settled
meanwhile only has its result repeated.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from pydantic import ValidationError

from common.clock import Clock, to_ms
from common.envelope import (
    HEADER_CREATED_AT_MS,
    HEADER_EXPIRES_AT_MS,
    HEADER_KEY_ID,
    HEADER_ROUTE,
    HEADER_SIGNATURE,
    InboundMessage,
)
from common.errors import MessageRejected, StoreUnavailable
from common.logcontext import bind_payment
from common.models import PaymentRequest, PaymentStatus
from common.redact import mask_pans
from store.claims import Claims
from store.records import AlreadyDone, Busy, Conflict, NewPayment, Rejection
from store.submissions import Submission
from workers.config import HandlerConfig
from workers.dispositions import Disposition, Dispositions
from workers.identity import new_payment
from workers.results import Outcome

_SIGNED_HEADERS = (
    HEADER_KEY_ID,
    HEADER_ROUTE,
    HEADER_CREATED_AT_MS,
    HEADER_EXPIRES_AT_MS,
    HEADER_SIGNATURE,
)
#: A bug of ours while checking: the message stays replayable once it is fixed, never linked.
_NEVER_LINKED = frozenset({"internal_error"})


class Refusals:
    def __init__(
        self,
        config: HandlerConfig,
        *,
        store: Claims,
        out: Dispositions,
        clock: Clock,
        look_again_ms: Callable[[Busy], int],
    ) -> None:
        self._config = config
        self._store = store
        self._out = out
        self._clock = clock
        self._look_again_ms = look_again_ms

    def refuse(
        self, message: InboundMessage, request: PaymentRequest | None, error: MessageRejected
    ) -> Disposition:
        """Settle the HTTP API's payment if this is its message; otherwise note the refusal in
        the store first, so whoever published it can learn of it there. With the store down
        the message waits in a retry tier, as a payment would."""
        if request is None and message.message_id and error.code not in _NEVER_LINKED:
            try:
                submission = self._store.submission(message.message_id)
            except StoreUnavailable:
                return self._wait_for_store(message)
            linked = self._linked(message, submission)
            if linked is not None:
                return self._settle(message, *linked, error)
        return self._note(message, request, error)

    def _linked(
        self, message: InboundMessage, submission: Submission | None
    ) -> tuple[PaymentRequest, NewPayment] | None:
        """The API's payment, if `message` is exactly the message it published on this
        worker's channel, and the submission says whose scope it is in."""
        if submission is None or submission.scope is None:
            return None
        stored = submission.message
        if (
            submission.channel != self._config.channel
            or stored.message_type != message.message_type
            or stored.body != message.body
            or any(stored.headers.get(h) != message.headers.get(h) for h in _SIGNED_HEADERS)
        ):
            return None
        try:  # the API's own bytes, as it validated them; a body it did not is not linked
            request = PaymentRequest.model_validate_json(stored.body)
        except ValidationError:
            return None
        if str(request.payment_id) != submission.payment_id:
            return None
        return request, new_payment(
            request,
            scope=submission.scope,
            request_message_id=message.message_id or "",
            channel=self._config.channel,
            created_ms=to_ms(request.created_at),
        )

    def _settle(
        self,
        message: InboundMessage,
        request: PaymentRequest,
        new: NewPayment,
        error: MessageRejected,
    ) -> Disposition:
        bind_payment(new.payment_id)
        try:
            claim = self._store.claim(new)
        except StoreUnavailable as exc:
            return self._out.store_down(message, request, exc)
        if isinstance(claim, AlreadyDone):
            return self._out.repeat(request, claim.state, claim.result)
        if isinstance(claim, Busy):
            until_ms = self._look_again_ms(claim)
            return self._out.later(message, request, until_ms, "being handled by another worker")
        if isinstance(claim, Conflict):  # never for the API's own scope; do not guess
            return self._note(message, None, error)
        # An attempt whose outcome is unknown may have moved money: the provider is asked.
        status = PaymentStatus.IN_DOUBT if claim.outcome_unknown else PaymentStatus.REJECTED
        outcome = Outcome(status, claim.attempts, error=error)
        return self._out.record(message, request, outcome, claim, dead_letter=True)

    def _note(
        self, message: InboundMessage, request: PaymentRequest | None, error: MessageRejected
    ) -> Disposition:
        if message.message_id:
            rejection = Rejection(
                request_message_id=message.message_id,
                body_sha256=hashlib.sha256(message.body).hexdigest(),
                payment_id=str(request.payment_id) if request is not None else None,
                code=error.code,
                reason=mask_pans(error.reason),
            )
            try:
                self._store.note_rejection(rejection)
            except StoreUnavailable:
                return self._wait_for_store(message, request)
        return self._out.unstored(message, request, error)

    def _wait_for_store(
        self, message: InboundMessage, request: PaymentRequest | None = None
    ) -> Disposition:
        until_ms = self._clock.now_ms() + self._config.retry.delays_ms[0]
        return self._out.later(message, request, until_ms, "waits for the payment store")
