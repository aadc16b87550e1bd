"""`paymq publish`: one payment from options, or a JSON Lines file with progress and a summary
(docs/publishing.md). With --json, standard output holds one JSON object per order, and
everything meant for a person goes to standard error."""

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
from common.models import PaymentRequest
from common.redact import mask_pans, problems
from common.settings import Settings
from producer.orders import PaymentOrder, read_orders
from producer.producer import Producer


def _console(as_json: bool) -> Console:
    """Where lines for a person go: standard output, or standard error when it holds JSON."""
    return Console(stderr=as_json, highlight=False)


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


@dataclass(frozen=True)
class OrderOutcome:
    """What became of one order: its payment once signed, and why it was not published."""

    #: The order's line in the file; None for a payment given by options.
    line: int | None
    request: PaymentRequest | None = None
    message_id: str | None = None
    #: None once the broker confirmed the payment's message.
    error: str | None = None

    def as_json(self) -> str:
        """One line of `paymq publish --json`; every key always there (null when unknown)."""
        request = self.request
        return json.dumps(
            {
                "line": self.line,
                "published": self.error is None,
                "payment_id": None if request is None else str(request.payment_id),
                "merchant_reference": None if request is None else request.merchant_reference,
                "idempotency_key": None if request is None else request.idempotency_key,
                "channel": None if request is None else request.channel,
                "message_id": self.message_id,
                "error": self.error,
            }
        )


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


def publish_one(settings: Settings, options: OrderOptions, *, as_json: bool = False) -> int:
    console = _console(as_json)
    with Producer.from_settings(settings) as producer:
        try:
            request, message = producer.prepare(_order(options).draft())
        except ValueError as exc:  # pydantic's ValidationError and PanInClear are ValueErrors
            reason = invalid_reason(exc)
            console.print(f"[red]invalid:[/red] {reason}")
            if as_json:
                print(OrderOutcome(None, error=reason).as_json())
            return 1
        producer.publish(message)
    if as_json:
        print(OrderOutcome(None, request, message.message_id).as_json())
    else:
        console.print(
            f"published payment {request.payment_id} ({request.amount.format()}, "
            f"{request.channel}) as message {message.message_id}"
        )
    return 0


def publish_file(settings: Settings, path: Path, *, as_json: bool = False) -> int:
    console = _console(as_json)
    if not path.is_file():
        console.print(f"[red]error:[/red] no such file {path}")
        return 1
    outcomes: list[OrderOutcome] = []
    signed: list[tuple[int, PaymentRequest, OutboundMessage]] = []
    with Producer.from_settings(settings) as producer:
        for line in read_orders(path):
            if line.draft is None:
                outcomes.append(OrderOutcome(line.line_number, error=line.error or "invalid"))
                continue
            try:
                request, message = producer.prepare(line.draft)
            except ValueError as exc:
                outcomes.append(OrderOutcome(line.line_number, error=invalid_reason(exc)))
                continue
            signed.append((line.line_number, request, message))
        columns = (
            TextColumn("publishing"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("publish", total=len(signed))
            published = producer.publish_many(
                [message for _, _, message in signed],
                on_progress=lambda done, _total: progress.update(task, completed=done),
            )
    for (number, request, message), confirm in zip(signed, published, strict=True):
        error = None if confirm.ok else str(confirm.error)
        outcomes.append(OrderOutcome(number, request, message.message_id, error))
    outcomes.sort(key=lambda order: order.line or 0)
    if as_json:
        for order in outcomes:
            print(order.as_json())
    _summarise(console, outcomes)
    return 0 if all(order.error is None for order in outcomes) else 1


def _summarise(console: Console, outcomes: list[OrderOutcome]) -> None:
    failures = [(f"line {o.line}", o.error) for o in outcomes if o.error is not None]
    console.print(f"published {len(outcomes) - len(failures)}, failed {len(failures)}")
    for reason, count in Counter(reason for _, reason in failures).most_common():
        console.print(f"  {count} x {reason}")
    for where, reason in failures[:20]:
        console.print(f"  {where}: {reason}")
