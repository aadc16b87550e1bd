"""A payment as the API answers it: the store's description once a worker has taken it
(store/views.py); before that, what its signed request says, `accepted`, or `rejected` with
the worker's code and reason if a worker refused it before taking it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from common.clock import rfc3339, to_ms
from common.models import PaymentRequest
from producer.api.schemas import PaymentView
from store.records import Rejection
from store.submissions import Submission


def payment_view(
    submission: Submission,
    *,
    describe: Callable[[str], dict[str, Any] | None],
    rejection_of: Callable[[Submission], Rejection | None],
) -> PaymentView:
    """Raises StoreUnavailable when the store does not answer."""
    described = describe(submission.payment_id)
    if described is not None:
        # The caller's own Idempotency-Key, not the worker's `<api key id>:<key>`.
        return PaymentView.model_validate(
            described | {"idempotency_key": submission.idempotency_key}
        )
    rejection = rejection_of(submission)
    request = PaymentRequest.model_validate_json(submission.message.body)
    return PaymentView(
        payment_id=request.payment_id,
        state="accepted" if rejection is None else "rejected",
        channel=request.channel,
        amount=request.amount,
        merchant_reference=request.merchant_reference,
        idempotency_key=submission.idempotency_key,
        created_at=rfc3339(to_ms(request.created_at)),
        code=None if rejection is None else rejection.code,
        reason=None if rejection is None else rejection.reason,
    )
