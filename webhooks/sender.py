"""One webhook attempt: POST a result event's bytes to an endpoint, signed, and say what came of
it as an AttemptOutcome (a value, so that outcomes can be counted). Redirects are not followed
and the response body is never read: only its status counts. Connections reach only the
addresses the guard allows (webhooks/transport.py).

What requests raises is read here only (`failure_of`), most specific first:

    AddressNotAllowed (the guard's)        -> ADDRESS_NOT_ALLOWED, with the address's category
    requests.Timeout (connect or read)     -> TIMEOUT
    requests.ConnectionError               -> CONNECTION_ERROR (refused, reset, DNS, TLS)
    any other requests.RequestException    -> ERROR

The outcome's `error` is short and safe to store and log (a category or requests' class name,
never a host, an address or a body); the exception itself stays on the outcome as its `cause`,
for whoever debugs it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from enum import StrEnum

import requests

from common.clock import Clock
from common.webhooks import sign_webhook
from webhooks.endpoints import Endpoint
from webhooks.transport import AddressGuard, AddressNotAllowed, guarded_session


class AttemptResult(StrEnum):
    DELIVERED = "delivered"  # 2xx
    REFUSED = "refused"  # any other status: 3xx (not followed), 4xx, 5xx
    TIMEOUT = "timeout"  # no connection or no answer in time
    CONNECTION_ERROR = "connection_error"  # refused, reset, DNS, TLS
    #: Not sent: the host resolved only to addresses the policy refuses (loopback, private...).
    ADDRESS_NOT_ALLOWED = "address_not_allowed"
    ERROR = "error"  # anything else requests raised


@dataclass(frozen=True)
class AttemptOutcome:
    result: AttemptResult
    #: Short and safe to store and log: "HTTP 500", "ReadTimeout", "address not allowed:
    #: loopback"; None when delivered.
    error: str | None
    status_code: int | None
    elapsed_ms: int
    #: What requests (or the address guard) raised, when the attempt failed with an exception.
    cause: Exception | None = field(default=None, compare=False, repr=False)

    @property
    def delivered(self) -> bool:
        return self.result is AttemptResult.DELIVERED


class Sender:
    """POSTs webhooks; thread-safe (one requests.Session per thread)."""

    def __init__(
        self,
        clock: Clock,
        *,
        user_agent: str,
        connect_timeout_s: float,
        read_timeout_s: float,
        guard: AddressGuard,
    ) -> None:
        self._clock = clock
        self._user_agent = user_agent
        self._timeouts = (connect_timeout_s, read_timeout_s)
        self._guard = guard
        self._local = threading.local()

    def attempt(self, endpoint: Endpoint, event_id: str, body: bytes) -> AttemptOutcome:
        headers = {
            "content-type": "application/json",
            "user-agent": self._user_agent,
            **sign_webhook(endpoint.secret, event_id, body, self._clock.now_ms() // 1000),
        }
        started = time.monotonic()
        try:
            with self._session().post(
                endpoint.url,
                data=body,
                headers=headers,
                timeout=self._timeouts,
                allow_redirects=False,
                stream=True,  # the body is never read, however large
            ) as response:
                status = response.status_code
        except (AddressNotAllowed, requests.RequestException) as exc:
            result, error = failure_of(exc)
            return self._outcome(result, error, None, started, cause=exc)
        if 200 <= status < 300:
            return self._outcome(AttemptResult.DELIVERED, None, status, started)
        return self._outcome(AttemptResult.REFUSED, f"HTTP {status}", status, started)

    def close(self) -> None:
        session = getattr(self._local, "session", None)
        if session is not None:
            session.close()

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = guarded_session(self._guard)
            self._local.session = session
        return session

    @staticmethod
    def _outcome(
        result: AttemptResult,
        error: str | None,
        status: int | None,
        started: float,
        *,
        cause: Exception | None = None,
    ) -> AttemptOutcome:
        elapsed_ms = int((time.monotonic() - started) * 1000)
        return AttemptOutcome(result, error, status, elapsed_ms, cause)


def failure_of(exc: AddressNotAllowed | requests.RequestException) -> tuple[AttemptResult, str]:
    """What a failed attempt counts as, and its reason, short and safe to store and log."""
    if isinstance(exc, AddressNotAllowed):  # the category only: never the host nor the address
        return AttemptResult.ADDRESS_NOT_ALLOWED, str(exc)
    if isinstance(exc, requests.Timeout):  # before ConnectionError: ConnectTimeout is both
        return AttemptResult.TIMEOUT, type(exc).__name__
    if isinstance(exc, requests.ConnectionError):
        return AttemptResult.CONNECTION_ERROR, type(exc).__name__
    return AttemptResult.ERROR, type(exc).__name__
