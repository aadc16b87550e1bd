"""Everything the API's routes need, built at the entry point (server.py) and handed in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from common.metrics import Metrics
from producer.api.intake import Intake
from producer.api.keys import ApiKeys
from store.records import LookupBy, Page, Rejection
from store.submissions import Submission


class Matching(Protocol):
    """An API key's submissions with a merchant reference or Idempotency-Key, newest first
    (Submissions.matching)."""

    def __call__(
        self, api_key_id: str, by: LookupBy, text: str, *, limit: int
    ) -> Page[Submission]: ...


@dataclass(frozen=True)
class ApiDeps:
    #: The API keys as they are now (the keys file, read again when it changes).
    keys: Callable[[], ApiKeys]
    intake: Intake
    #: The payment as the store shows it (store/views.py), None before a worker took it.
    describe: Callable[[str], dict[str, Any] | None]
    #: The submission that made a payment; None if it did not come through the API.
    submission_of: Callable[[str], Submission | None]
    matching: Matching
    #: A worker's refusal of a submission before taking it (a bad signature, an expired
    #: request, an idempotency key already used...); None if there is none.
    rejection_of: Callable[[Submission], Rejection | None]
    #: Each dependency's state: "ok" or what is wrong.
    readiness: Callable[[], Mapping[str, str]]
    #: Served at /metrics, with the API's request counters added.
    metrics: Metrics
    #: Larger request bodies are refused with 413 while they are read, before authentication.
    max_body_bytes: int = 65_536
