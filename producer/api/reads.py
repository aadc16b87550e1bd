"""The API's reads: payments by merchant reference or Idempotency-Key, and one payment by id,
each as views.payment_view shows it, and only to the API key that submitted it.

No `from __future__ import annotations` here: FastAPI reads the routes' annotations at run time,
and they name the local `caller` dependency."""

import uuid
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI, Query

from producer.api.deps import ApiDeps
from producer.api.http_errors import AUTH_ERRORS, api_error, store_errors
from producer.api.keys import ApiKey
from producer.api.schemas import (
    DEFAULT_LIMIT,
    IDEMPOTENCY_KEY_PATTERN,
    MAX_LIMIT,
    ErrorOut,
    PaymentList,
    PaymentView,
)
from producer.api.views import payment_view
from store.records import LookupBy


def add_read_routes(app: FastAPI, deps: ApiDeps, caller: Callable[..., ApiKey]) -> None:
    @app.get(
        "/payments",
        response_model=PaymentList,
        response_model_by_alias=True,
        responses={
            **AUTH_ERRORS,
            422: {
                "model": ErrorOut,
                "description": "Not exactly one of merchant_reference and idempotency_key, or "
                "a parameter out of its bounds.",
            },
            503: {"model": ErrorOut, "description": "Store down: repeat the request."},
        },
    )
    def find_payments(
        key: Annotated[ApiKey, Depends(caller)],
        merchant_reference: Annotated[
            str | None, Query(min_length=1, max_length=128, description="Its merchant reference.")
        ] = None,
        idempotency_key: Annotated[
            str | None,
            Query(
                pattern=IDEMPOTENCY_KEY_PATTERN, description="The Idempotency-Key it was sent with."
            ),
        ] = None,
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description="At most this many, the newest.")
        ] = DEFAULT_LIMIT,
    ) -> PaymentList:
        """The payments this key submitted with a merchant reference, or with an
        Idempotency-Key (exactly one of the two), newest first, as GET /payments/{id} shows
        each."""
        given = {
            by: text
            for by, text in (
                (LookupBy.MERCHANT_REFERENCE, merchant_reference),
                (LookupBy.IDEMPOTENCY_KEY, idempotency_key),
            )
            if text is not None
        }
        if len(given) != 1:
            tail = ", not both" if given else ""
            message = f"query: give merchant_reference or idempotency_key{tail}"
            raise api_error(422, "invalid_request", message)
        [(by, text)] = given.items()
        with store_errors():
            page = deps.matching(key.id, by, text, limit=limit)
            views = [
                payment_view(s, describe=deps.describe, rejection_of=deps.rejection_of)
                for s in page.items
            ]
        return PaymentList(payments=views, has_more=page.more)

    @app.get(
        "/payments/{payment_id}",
        response_model=PaymentView,
        response_model_by_alias=True,
        responses={**AUTH_ERRORS, 404: {"model": ErrorOut, "description": "No such payment."}},
    )
    def get_payment(payment_id: uuid.UUID, key: Annotated[ApiKey, Depends(caller)]) -> PaymentView:
        """A payment submitted with this key: state, history and result, card data masked."""
        with store_errors():
            submission = deps.submission_of(str(payment_id))
            if submission is None or submission.api_key_id != key.id:
                raise api_error(404, "not_found", f"no payment {payment_id} for this key")
            return payment_view(submission, describe=deps.describe, rejection_of=deps.rejection_of)
