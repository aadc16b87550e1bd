"""`paymq status <payment id>`: a payment's state and history from the store, masked."""

from __future__ import annotations

import json

from rich.console import Console

from common.money import Money
from common.settings import Settings
from store.database import engine_for, require_current
from store.views import PaymentViews

console = Console(highlight=False)


def show_status(settings: Settings, payment_id: str, *, as_json: bool) -> int:
    engine = engine_for(settings.store)
    try:
        require_current(engine)
        described = PaymentViews(engine).describe(payment_id)
    finally:
        engine.dispose()
    if described is None:
        console.print(f"[red]no payment {payment_id} in the store[/red]")
        return 1
    if as_json:
        print(json.dumps(described, indent=2))
        return 0
    d = described
    amount = Money.model_validate(d["amount"])
    console.print(
        f"[bold]{d['payment_id']}[/bold]  {d['channel']}  [bold]{d['state']}[/bold]  "
        f"{amount.format()} ({amount.amount_minor} minor units)  ref {d['merchant_reference']}"
    )
    console.print(
        f"  idempotency key {d['idempotency_key']} (producer {d['producer']}), "
        f"{d['attempts']} provider attempts"
        + (", an outcome was unknown" if d["outcome_unknown"] else "")
    )
    if d["provider_reference"]:
        console.print(f"  provider {d['provider']}: {d['provider_reference']}")
    elif d["provider"]:
        pinned = " (pinned: it may have acted)" if d["outcome_unknown"] else ""
        console.print(f"  provider {d['provider']}{pinned}")
    if d["code"]:
        console.print(f"  code {d['code']}")
    if d["next_check"]:
        console.print(f"  next reconciliation check {d['next_check']}")
    console.print("  history:")
    for t in d["history"]:
        reason = f"  ({t['reason']})" if t["reason"] else ""
        console.print(f"    {t['at']}  {t['from']} -> {t['to']}{reason}")
    for a in d["provider_attempts"]:
        ref = f" {a['provider_reference']}" if a["provider_reference"] else ""
        code = f" {a['code']}" if a["code"] else ""
        console.print(f"    attempt {a['attempt']} {a['at']}  {a['outcome']}{code}{ref}")
    event = d["result_event"]
    if event:
        console.print(f"  result event {event['event_id']}: {event['status']}")
    return 0
