"""`paymq status <payment id>`: a payment's state and history from the store, masked."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from common.clock import SystemClock, from_ms
from common.redact import mask_pans
from common.settings import Settings
from workers.store.database import create_store_engine, require_current
from workers.store.payments import PaymentStore

console = Console(highlight=False)


def _when(ms: int | None) -> str:
    return "-" if ms is None else f"{from_ms(ms):%Y-%m-%d %H:%M:%S.%f}"[:-3]


def _describe(store: PaymentStore, payment_id: str) -> dict[str, Any] | None:
    row = store.get(payment_id)
    if row is None:
        return None
    transitions, attempts = store.history(payment_id)
    result = bytes(row["result_body"]).decode() if row["result_body"] is not None else None
    return {
        "payment_id": row["payment_id"],
        "state": row["state"],
        "channel": row["channel"],
        "amount_minor": row["amount_minor"],
        "currency": row["currency"],
        "merchant_reference": mask_pans(row["merchant_reference"]),
        "idempotency_key": row["idempotency_key"],
        "producer": row["scope"],
        "attempts": row["attempts"],
        "outcome_unknown": bool(row["outcome_unknown"]),
        "provider": row["provider"],
        "provider_reference": row["provider_reference"],
        "code": row["code"],
        "next_check": _when(row["next_check_ms"]) if row["next_check_ms"] else None,
        "history": [
            {
                "at": _when(t["at_ms"]),
                "from": t["from_state"],
                "to": t["to_state"],
                "reason": mask_pans(t["reason"]) if t["reason"] else None,
            }
            for t in transitions
        ],
        "provider_attempts": [
            {
                "attempt": a["attempt"],
                "at": _when(a["at_ms"]),
                "outcome": a["outcome"],
                "code": a["code"],
                "provider_reference": a["provider_reference"],
            }
            for a in attempts
        ],
        "result_event": json.loads(mask_pans(result)) if result else None,
    }


def show_status(settings: Settings, payment_id: str, *, as_json: bool) -> int:
    engine = create_store_engine(settings.database_url)
    require_current(engine)
    store = PaymentStore(engine, SystemClock(), owner="paymq-status", lease_ms=0)
    described = _describe(store, payment_id)
    engine.dispose()
    if described is None:
        console.print(f"[red]no payment {payment_id} in the store[/red]")
        return 1
    if as_json:
        print(json.dumps(described, indent=2))
        return 0
    d = described
    console.print(
        f"[bold]{d['payment_id']}[/bold]  {d['channel']}  [bold]{d['state']}[/bold]  "
        f"{d['amount_minor']} {d['currency']} (minor units)  ref {d['merchant_reference']}"
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
