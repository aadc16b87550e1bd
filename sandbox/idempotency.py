"""Idempotency store: one final answer per (endpoint, key), replayed byte for byte.

A request first *claims* its key. The claim is settled with the final answer (a success or a
decline) or released (validation error, processing error, injected error before the effect),
so only answers that describe money moved, or never to be moved, are replayed.
"""

from dataclasses import dataclass
from types import TracebackType

from sandbox.errors import idempotency_conflict, invalid_request
from sandbox.replies import Reply

MAX_KEY_LENGTH = 255


def checked_key(value: str | None) -> str:
    if not value:
        raise invalid_request(
            "idempotency_key_missing", "The Idempotency-Key header is required.", "Idempotency-Key"
        )
    if len(value) > MAX_KEY_LENGTH:
        raise invalid_request(
            "idempotency_key_invalid",
            f"The Idempotency-Key header allows at most {MAX_KEY_LENGTH} characters.",
            "Idempotency-Key",
        )
    return value


@dataclass(slots=True)
class _Entry:
    fingerprint: bytes
    reply: Reply | None  # None while the first request is still being processed


@dataclass(frozen=True, slots=True)
class Replay:
    reply: Reply


class Claim:
    """The right to answer for a key. Use as a context manager: leaving unsettled releases it."""

    __slots__ = ("_entries", "_entry", "_slot")

    def __init__(
        self, entries: dict[tuple[str, str], _Entry], slot: tuple[str, str], entry: _Entry
    ) -> None:
        self._entries = entries
        self._slot = slot
        self._entry = entry

    @property
    def key(self) -> str:
        return self._slot[1]

    def settle(self, reply: Reply) -> None:
        self._entry.reply = reply

    def release(self) -> None:
        # Identity check: after a reset the slot may belong to a newer request.
        if self._entry.reply is None and self._entries.get(self._slot) is self._entry:
            del self._entries[self._slot]

    def __enter__(self) -> "Claim":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


class IdempotencyStore:
    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], _Entry] = {}

    def begin(self, scope: str, key: str, fingerprint: bytes) -> Claim | Replay:
        """Claim the key, or get the stored answer; raises ApiError 422 or 409 on a conflict."""
        slot = (scope, key)
        entry = self._entries.get(slot)
        if entry is None:
            entry = self._entries[slot] = _Entry(fingerprint, None)
            return Claim(self._entries, slot, entry)
        if entry.fingerprint != fingerprint:
            raise idempotency_conflict(
                422,
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request body.",
            )
        if entry.reply is None:
            raise idempotency_conflict(
                409,
                "request_in_progress",
                "A request with this Idempotency-Key is still being processed. Retry later.",
            )
        return Replay(entry.reply)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)
