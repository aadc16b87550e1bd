"""`paymq dlq discard`: remove dead letters that must not be replayed, each with an audit record.

The record (store/discards.py) says who discarded which message, when and why, and keeps the
message itself; it is committed to the payment store before the message is acked, so a
message leaves the dead-letter queue only once its record is durable. What the command takes
and does not discard is put back untouched (common/amqp/browse.py). `paymq dlq discarded`
reads the records.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from common.amqp.browse import QueueBrowser
from common.clock import Clock, rfc3339
from common.deadletters import holds_card_number
from common.envelope import HEADER_DEAD_LETTER_REASON, InboundMessage
from common.pan import contains_pan
from common.redact import mask_pans
from common.settings import Settings
from paymq.clikit import UsageError
from paymq.dlq import MAX_MESSAGES, Selection, dead_letter_code
from store.database import engine_for, require_current
from store.discards import Discards
from store.records import Discard

console = Console(highlight=False)

MAX_REASON_CHARS = 500
MAX_OPERATOR_CHARS = 128


@dataclass(frozen=True)
class Discarding:
    """Who discards, and why: both recorded with every message discarded."""

    reason: str
    by: str

    def __post_init__(self) -> None:
        reason, by = self.reason.strip(), self.by.strip()
        if not reason:
            raise UsageError("--reason is empty: say why these dead letters are discarded")
        if len(reason) > MAX_REASON_CHARS:
            raise UsageError(f"--reason is longer than {MAX_REASON_CHARS} characters")
        if contains_pan(reason):
            raise UsageError("--reason holds what looks like a card number: leave it out")
        if not by:
            raise UsageError("--by is empty: name who discards these dead letters")
        if len(by) > MAX_OPERATOR_CHARS:
            raise UsageError(f"--by is longer than {MAX_OPERATOR_CHARS} characters")
        if any(unicodedata.category(c).startswith("C") for c in reason + by):
            raise UsageError("--reason and --by must be printable text")
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "by", by)


def discard_record(message: InboundMessage, discarding: Discarding, *, at_ms: int) -> Discard:
    """The audit record of one discarded dead letter. Its body is kept as it was, except that
    card numbers in clear are masked: the store is no place for them either."""
    body = message.body
    if holds_card_number(body):
        body = mask_pans(body.decode("utf-8", errors="replace")).encode()
    headers = {
        name: value
        for name, value in message.headers.items()
        if isinstance(value, str | int) and not isinstance(value, bool)
        if name != "x-delivery-count"
    }
    return Discard(
        message_id=(message.message_id or "")[:255],
        body_sha256=hashlib.sha256(message.body).hexdigest(),
        channel=message.original_routing_key[:255],
        message_type=(message.message_type or "")[:255],
        code=dead_letter_code(message)[:64],
        dead_letter_reason=mask_pans(str(message.headers.get(HEADER_DEAD_LETTER_REASON, "")))[:500],
        reason=discarding.reason,
        discarded_by=discarding.by,
        discarded_ms=at_ms,
        headers=headers,
        body=body,
    )


def discard_dead_letters(
    settings: Settings,
    selection: Selection,
    discarding: Discarding,
    *,
    confirm: Callable[[str], bool],
    clock: Clock,
) -> int:
    """Discard the chosen dead letters once `confirm` agrees: each one's record is committed,
    then the message acked. 0 if any was discarded (or --all found the queue empty), 1 if
    none matched or it was declined."""
    queue = settings.broker.topology().dead_letter_queue
    engine = engine_for(settings.store)
    try:
        require_current(engine)  # before anything is taken: a stale schema stops here
        discards = Discards(engine)
        with QueueBrowser(settings.broker.amqp_url, queue) as browser:
            chosen = [h for h in browser.take(MAX_MESSAGES) if selection.matches(h.message)]
            if not chosen:
                console.print(f"no message in {queue} matches; nothing discarded")
                return 0 if selection.everything else 1
            _show([h.message for h in chosen])
            question = (
                f"Discard these {len(chosen)} dead letters for good, recorded as "
                f"discarded by {discarding.by}: {discarding.reason!r}?"
            )
            if not confirm(question):
                console.print("nothing discarded")
                return 1
            for held in chosen:
                discards.record(discard_record(held.message, discarding, at_ms=clock.now_ms()))
                browser.ack(held.delivery_tag)  # only once its record is committed
                console.print(f"discarded {held.message.message_id or '-'}")
        console.print(f"{len(chosen)} discarded by {discarding.by}; the others stay in {queue}")
        return 0
    finally:
        engine.dispose()


def _show(messages: list[InboundMessage]) -> None:
    table = Table(title="to discard")
    for column in ("message id", "channel", "code"):
        table.add_column(column, overflow="fold")
    for message in messages:
        table.add_row(
            message.message_id or "-", message.original_routing_key, dead_letter_code(message)
        )
    console.print(table)


def list_discards(settings: Settings, *, limit: int, as_json: bool) -> int:
    """The latest discards, newest first."""
    engine = engine_for(settings.store)
    try:
        require_current(engine)
        found = Discards(engine).recent(limit)
    finally:
        engine.dispose()
    if as_json:
        for d in found:
            print(json.dumps(_described(d)))
        return 0
    table = Table(title=f"{len(found)} discarded dead letters, newest first")
    for column in ("discarded", "by", "message id", "channel", "code", "reason"):
        table.add_column(column, overflow="fold")
    for d in found:
        described = _described(d)
        table.add_row(
            described["discarded_at"], d.discarded_by, d.message_id, d.channel, d.code, d.reason
        )
    console.print(table)
    return 0


def _described(d: Discard) -> dict[str, str]:
    return {
        "discarded_at": rfc3339(d.discarded_ms),
        "discarded_by": d.discarded_by,
        "reason": d.reason,
        "message_id": d.message_id,
        "body_sha256": d.body_sha256,
        "channel": d.channel,
        "code": d.code,
        "dead_letter_reason": d.dead_letter_reason,
    }
