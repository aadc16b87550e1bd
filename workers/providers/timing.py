"""Provider call latency into paymq_provider_call_seconds, labelled by how the call ended."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry.trace import SpanKind

from common.errors import OutcomeUnknown, PaymentDeclined, PaymqError, RetryableError
from common.metrics import Metrics
from common.tracing import tracer


class CallTimer:
    def __init__(self) -> None:
        #: ok, declined, refused (another permanent answer), retryable, unknown (it may have
        #: acted) or error (not a provider answer: a bug of ours).
        self.outcome = "ok"


def outcome_label(error: BaseException) -> str:
    if isinstance(error, PaymentDeclined):
        return "declined"
    if isinstance(error, OutcomeUnknown):
        return "unknown"
    if isinstance(error, RetryableError):
        return "retryable"
    if isinstance(error, PaymqError):
        return "refused"
    return "error"


@contextmanager
def timed_call(metrics: Metrics, provider: str, operation: str) -> Iterator[CallTimer]:
    """Time the block as one `operation` (execute, lookup, cancel) at `provider`; a raised
    error names the outcome, and the block may set `outcome` for an answer it returns."""
    call = CallTimer()
    with tracer.start_as_current_span(f"{operation} {provider}", kind=SpanKind.CLIENT) as span:
        started_s = time.perf_counter()
        try:
            yield call
        except BaseException as exc:
            call.outcome = outcome_label(exc)
            raise
        finally:
            elapsed_s = time.perf_counter() - started_s
            metrics.provider_call.labels(provider, operation, call.outcome).observe(elapsed_s)
            span.set_attribute("paymq.outcome", call.outcome)
