"""`paymq dlq`: inspect the dead-letter queue and replay chosen messages safely.

A replay republishes the message exactly as it was signed (same bytes, message id and
signature) to the requests exchange, without the dead-letter and retry headers, and removes it
from the dead-letter queue once the broker confirmed the republish. A replayed payment that
already has a result only gets that result repeated: the store makes replays safe.
Looking spends no delivery: what a command leaves in the queue is put back as a copy
(common/amqp/browse.py), so RabbitMQ 4.x's default delivery limit never drops a dead letter
an operator has looked at too often.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from common.amqp.admin import BrokerAdmin
from common.amqp.browse import Held, QueueBrowser
from common.clock import from_ms, rfc3339
from common.envelope import (
    HEADER_DEAD_LETTER_CODE,
    HEADER_DEAD_LETTER_REASON,
    HEADER_DEAD_LETTERED_AT_MS,
    InboundMessage,
    OutboundMessage,
)
from common.redact import mask_pans
from common.settings import Settings

console = Console(highlight=False)

#: Headers a replay leaves behind: the next delivery starts afresh.
_DROPPED = (
    "paymq-dead-letter-",
    "paymq-dead-lettered-",
    "paymq-attempts",
    "paymq-outcome-unknown",
    "paymq-not-before",
    "paymq-retry-",
    "paymq-original-routing-key",
)
MAX_MESSAGES = 10_000


@dataclass(frozen=True)
class Selection:
    message_ids: frozenset[str] = frozenset()
    code: str | None = None
    everything: bool = False

    def matches(self, message: InboundMessage) -> bool:
        if self.everything:
            return True
        if message.message_id in self.message_ids:
            return True
        # The code `list` shows: paymq's own, or the broker's reason (delivery_limit).
        return self.code is not None and dead_letter_code(message) == self.code


def dead_letter_code(message: InboundMessage) -> str:
    """Why a message was dead-lettered: the worker's code, else the broker's own reason."""
    return str(message.headers.get(HEADER_DEAD_LETTER_CODE, _broker_reason(message)))


def _reason(message: InboundMessage) -> tuple[str, str, str]:
    headers = message.headers
    at_ms = headers.get(HEADER_DEAD_LETTERED_AT_MS)
    when = f"{from_ms(at_ms):%Y-%m-%d %H:%M:%S}" if isinstance(at_ms, int) else "-"
    reason = mask_pans(str(headers.get(HEADER_DEAD_LETTER_REASON, "")))
    return when, dead_letter_code(message), reason


def _header_shown(name: str, value: object) -> str:
    """A header as `dlq show` prints it: a time in milliseconds (`...-ms`) as an RFC 3339
    time, since a 13-digit timestamp passes the Luhn check one time in ten and would be masked
    as a card number; anything else with card numbers masked."""
    if name.endswith("-ms") and isinstance(value, int) and not isinstance(value, bool):
        try:
            return rfc3339(value)
        except (OverflowError, OSError, ValueError):  # no time: shown as text, masked
            pass
    return mask_pans(str(value))


def _broker_reason(message: InboundMessage) -> str:
    """Dead-lettered by the queue itself (delivery limit): RabbitMQ's x-death says why."""
    deaths = message.headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        reason = deaths[0].get("reason")
        return reason.decode() if isinstance(reason, bytes) else str(reason)
    return "unknown"


def list_dead_letters(settings: Settings, *, as_json: bool) -> int:
    queue = settings.broker.topology().dead_letter_queue
    with QueueBrowser(settings.broker.amqp_url, queue) as browser:
        held = browser.take(MAX_MESSAGES)
    rows = [(h.message, *_reason(h.message)) for h in held]
    if as_json:
        for message, when, code, reason in rows:
            print(
                json.dumps(
                    {
                        "message_id": message.message_id,
                        "channel": message.original_routing_key,
                        "dead_lettered_at": when,
                        "code": code,
                        "reason": reason,
                    }
                )
            )
        return 0
    table = Table(title=f"{queue}: {len(rows)} messages")
    for column in ("message id", "channel", "dead-lettered", "code", "reason"):
        table.add_column(column, overflow="fold")
    for message, when, code, reason in rows:
        table.add_row(
            message.message_id or "-", message.original_routing_key, when, code, reason[:80]
        )
    console.print(table)
    for code, count in Counter(code for _, _, code, _ in rows).most_common():
        console.print(f"  {count} x {code}")
    return 0


def show_dead_letter(settings: Settings, message_id: str) -> int:
    with QueueBrowser(
        settings.broker.amqp_url, settings.broker.topology().dead_letter_queue
    ) as browser:
        found = [h for h in browser.take(MAX_MESSAGES) if h.message.message_id == message_id]
    if not found:
        console.print(f"[red]no message {message_id} in the dead-letter queue[/red]")
        return 1
    message = found[0].message
    when, code, reason = _reason(message)
    console.print(
        f"message {message.message_id} ({message.message_type}) on {message.original_routing_key}"
    )
    console.print(f"dead-lettered {when}: {code} — {reason}")
    for name, value in sorted(message.headers.items()):
        if name != "x-death":
            console.print(f"  {name}: {_header_shown(name, value)[:120]}")
    console.print(mask_pans(message.body.decode("utf-8", "replace")))
    return 0


def _replay_copy(settings: Settings, message: InboundMessage) -> OutboundMessage:
    headers = {
        name: value
        for name, value in message.headers.items()
        if isinstance(value, str | int) and not name.startswith(("x-", *_DROPPED))
    }
    return OutboundMessage(
        exchange=settings.broker.topology().requests_exchange,
        routing_key=message.original_routing_key,
        body=message.body,
        message_id=message.message_id or "",
        message_type=message.message_type or "",
        headers=headers,
        content_type=message.content_type or "",
    )


def replay_dead_letters(settings: Settings, selection: Selection) -> int:
    queue = settings.broker.topology().dead_letter_queue
    replayed = 0
    with (
        QueueBrowser(settings.broker.amqp_url, queue) as browser,
        BrokerAdmin(settings.broker.amqp_url) as admin,
    ):
        chosen: list[Held] = [h for h in browser.take(MAX_MESSAGES) if selection.matches(h.message)]
        for held in chosen:
            admin.publish(_replay_copy(settings, held.message))  # raises unless confirmed
            browser.ack(held.delivery_tag)
            replayed += 1
            console.print(
                f"replayed {held.message.message_id} to {held.message.original_routing_key}"
            )
    console.print(f"{replayed} replayed; the others stay in {queue}")
    return 0 if replayed or selection.everything else 1
