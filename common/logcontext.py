"""Which payment and message a log line is about, without passing them to every call.

    with log_context(message_id=message.message_id):
        ...                                   # lines carry message_id
        bind_payment(str(request.payment_id))  # from here on, payment_id too
    # both are back to what they were

Context variables follow the code that runs: a pool thread handling one delivery sees only its
own ids. `ContextFilter` copies them onto every record (None outside any context), where the
JSON formatter prints them (paymq/logs.py); a record given ids through `extra=` keeps its own.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from common.tracing import current_ids

_payment_id: ContextVar[str | None] = ContextVar("paymq_payment_id", default=None)
_message_id: ContextVar[str | None] = ContextVar("paymq_message_id", default=None)


@contextmanager
def log_context(*, message_id: str | None = None, payment_id: str | None = None) -> Iterator[None]:
    payment_token = _payment_id.set(payment_id)
    message_token = _message_id.set(message_id)
    try:
        yield
    finally:
        _payment_id.reset(payment_token)
        _message_id.reset(message_token)


def bind_payment(payment_id: str) -> None:
    """Name the payment for the rest of the enclosing `log_context`."""
    _payment_id.set(payment_id)


class ContextFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "payment_id", None) is None:
            record.payment_id = _payment_id.get()
        if getattr(record, "message_id", None) is None:
            record.message_id = _message_id.get()
        ids = current_ids()  # with tracing on: the span the line was written in
        if ids is not None:
            record.trace_id, record.span_id = ids
        return True
