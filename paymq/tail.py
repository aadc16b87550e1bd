"""`paymq results tail`: verified result events as a table or JSON lines."""

from __future__ import annotations

import time

from rich.console import Console

from common.models import PaymentResult
from common.settings import Settings
from common.subscriber import ResultStream, ResultVerifier
from common.trustedkeys import trusted_keyring

console = Console(highlight=False)

_COLOURS = {"succeeded": "green", "declined": "yellow", "pending": "cyan"}


def row(result: PaymentResult) -> str:
    colour = _COLOURS.get(result.status.value, "red")
    amount = result.amount.format() if result.amount else "-"
    who = str(result.payment_id) if result.payment_id else f"msg {result.request_message_id}"
    code = f" {result.code}" if result.code else ""
    ref = f" {result.provider_reference}" if result.provider_reference else ""
    return (
        f"{result.occurred_at:%H:%M:%S} {result.channel:16} [{colour}]{result.status.value:9}"
        f"[/{colour}] {amount:>16} {who}{code}{ref}"
    )


def tail(
    settings: Settings, *, as_json: bool, durable: bool, count: int, quiet_timeout_s: float
) -> int:
    verifier = ResultVerifier(
        trusted_keyring(settings.keys.keys_dir), max_body_bytes=settings.messages.max_body_bytes
    )
    seen = 0
    last_event = time.monotonic()
    with ResultStream(
        settings.broker.amqp_url, settings.broker.topology(), verifier, durable=durable
    ) as stream:
        if not as_json:
            console.print(f"[dim]listening on {stream.queue} (Ctrl-C to stop)[/dim]")
        for event in stream.events():
            if event is None:
                if quiet_timeout_s and time.monotonic() - last_event > quiet_timeout_s:
                    break
                continue
            last_event = time.monotonic()
            seen += 1
            if event.result is not None and as_json:
                print(event.result.model_dump_json())
            elif event.result is not None:
                console.print(row(event.result))
            else:
                console.print(
                    f"[red]UNTRUSTED[/red] {event.message.routing_key} "
                    f"message {event.message.message_id}: {event.error}"
                )
            if count and seen >= count:
                break
    return 0
