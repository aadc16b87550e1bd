"""`paymq publish`: one payment from options, or a JSON Lines file with progress and a summary."""

from __future__ import annotations

import getpass
import json
import sys
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from common.envelope import OutboundMessage
from common.redact import mask_pans, problems
from common.settings import Settings
from producer.orders import PaymentOrder, read_orders
from producer.producer import Producer

console = Console()


@dataclass(frozen=True)
class OrderOptions:
    channel: str
    amount: str | None
    currency: str
    token: str | None
    #: Where the card data is: a JSON file's path, or "-" for standard input.
    card: str | None
    address: str | None
    network: str
    reference: str | None
    idempotency_key: str | None


def _order(options: OrderOptions) -> PaymentOrder:

    card = None if options.card is None else read_card(options.card)
    return PaymentOrder.model_validate(
        {
            "channel": options.channel,
            "amount": options.amount,
            "currency": options.currency,
            "merchant_reference": options.reference or f"cli-{uuid.uuid4().hex[:12]}",
            "idempotency_key": options.idempotency_key,
            "token": options.token,
            "card": card,
            "network": options.network,
            "destination_address": options.address,
        }
    )


def read_card(source: str) -> dict[str, Any]:
    """Card data from a JSON file, from standard input ("-"), or typed unechoed at a
    terminal: never from the command line, which any user of the machine can read."""
    if source == "-" and sys.stdin.isatty():
        return {
            "number": getpass.getpass("card number: "),
            "exp_month": _whole(input("expiry month (MM): ")),
            "exp_year": _whole(input("expiry year (YYYY): ")),
            "cvc": getpass.getpass("CVC: "),
        }
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text()
    except OSError as exc:
        raise ValueError(f"cannot read the card data from {source}: {exc.strerror}") from exc
    try:
        card = json.loads(text)
    except json.JSONDecodeError:
        # Not kept as the cause: it holds the card data it could not parse.
        raise ValueError("the card data is not JSON (see paymq publish --help)") from None
    if not isinstance(card, dict):
        raise ValueError('the card data must be a JSON object: {"number", "exp_month", ...}')
    return card


def _whole(text: str) -> int:
    return int(text) if text.strip().isdigit() else 0


def invalid_reason(exc: ValueError) -> str:
    """Why a draft was refused, never with its input (a card number typed in the wrong place
    must not be printed back) nor the model's name."""
    if isinstance(exc, ValidationError):
        errors = exc.errors(include_input=False, include_url=False)
        return problems(errors, limit=None, whole="payment")
    return mask_pans(str(exc))


def publish_one(settings: Settings, options: OrderOptions) -> int:
    with Producer.from_settings(settings) as producer:
        try:
            request, message = producer.prepare(_order(options).draft())
        except ValueError as exc:  # pydantic's ValidationError and PanInClear are ValueErrors
            console.print(f"[red]invalid:[/red] {invalid_reason(exc)}", highlight=False)
            return 1
        producer.publish(message)
    console.print(
        f"published payment {request.payment_id} ({request.amount.format()}, {request.channel}) "
        f"as message {message.message_id}",
        highlight=False,
    )
    return 0


def publish_file(settings: Settings, path: Path) -> int:
    if not path.is_file():
        console.print(f"[red]error:[/red] no such file {path}")
        return 1
    failures: list[tuple[str, str]] = []
    messages: list[tuple[str, OutboundMessage]] = []
    with Producer.from_settings(settings) as producer:
        for line in read_orders(path):
            if line.draft is None:
                failures.append((f"line {line.line_number}", line.error or "invalid"))
                continue
            try:
                _, message = producer.prepare(line.draft)
            except ValueError as exc:
                failures.append((f"line {line.line_number}", invalid_reason(exc)))
                continue
            messages.append((f"line {line.line_number}", message))
        columns = (
            TextColumn("publishing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("publish", total=len(messages))
            outcomes = producer.publish_many(
                [m for _, m in messages],
                on_progress=lambda done, _total: progress.update(task, completed=done),
            )
    for (where, _), outcome in zip(messages, outcomes, strict=True):
        if not outcome.ok:
            failures.append((where, str(outcome.error)))
    published = sum(o.ok for o in outcomes)
    console.print(f"published {published}, failed {len(failures)}", highlight=False)
    for reason, count in Counter(reason for _, reason in failures).most_common():
        console.print(f"  {count} x {reason}", highlight=False)
    for where, reason in failures[:20]:
        console.print(f"  {where}: {reason}", highlight=False)
    return 0 if not failures else 1
