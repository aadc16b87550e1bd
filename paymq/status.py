"""`paymq status`: payments' state and history from the store, masked, found by what the
operator was told: a payment id, a merchant reference or an idempotency key.

The rule: a lookup without `by` tries the text as a payment id, then as a merchant reference
and an idempotency key (the producer's, `<api key id>:<key>` for the HTTP API's, or the
Idempotency-Key an HTTP caller sent). A payment found by its id prints as one document (one
JSON object); found by reference or key, payments print as a list (`{"payments": [...],
"has_more": ...}`, the HTTP API's shape), newest first, and the only one a search finds is
shown in full."""

from __future__ import annotations

import json
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape

from common.money import Money
from common.redact import mask_pans
from common.settings import Settings
from store.database import engine_for, require_current
from store.records import LookupBy, Page
from store.views import PaymentViews

console = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class Lookup:
    text: str
    #: What to compare the text with; None: a payment id first, then references and keys.
    by: Collection[LookupBy] | None
    #: At most this many payments, the newest, when the text is not a payment id.
    limit: int

    def described(self) -> str:
        kinds = {
            LookupBy.MERCHANT_REFERENCE: "merchant reference",
            LookupBy.IDEMPOTENCY_KEY: "idempotency key",
        }
        shown = escape(mask_pans(repr(self.text)))
        if self.by is None:
            return f"with id, merchant reference or idempotency key {shown}"
        return f"with {' or '.join(kinds[by] for by in sorted(self.by))} {shown}"


@dataclass(frozen=True)
class Found:
    payments: list[dict[str, Any]]
    #: Found by its payment id: one document, not a list.
    by_id: bool = False
    more: bool = False


def find(views: PaymentViews, lookup: Lookup) -> Found:
    if lookup.by is None:
        described = views.describe(lookup.text)
        if described is not None:
            return Found([described], by_id=True)
    page: Page[str] = views.find(lookup.text, lookup.by or set(LookupBy), limit=lookup.limit)
    payments = [views.describe(payment_id) for payment_id in page.items]
    return Found([p for p in payments if p is not None], more=page.more)


def show_status(settings: Settings, lookup: Lookup, *, as_json: bool) -> int:
    engine = engine_for(settings.store)
    try:
        require_current(engine)
        found = find(PaymentViews(engine), lookup)
    finally:
        engine.dispose()
    if as_json:
        document: Any = (
            found.payments[0]
            if found.by_id
            else {"payments": found.payments, "has_more": found.more}
        )
        print(json.dumps(document, indent=2))
    elif len(found.payments) == 1 and not found.more:
        show_one(found.payments[0])
    elif found.payments:
        show_many(found, lookup)
    if not found.payments:
        err.print(f"[red]no payment {lookup.described()} in the store[/red]")
        return 1
    return 0


def _amount(described: dict[str, Any]) -> Money:
    return Money.model_validate(described["amount"])


def show_one(d: dict[str, Any]) -> None:
    amount = _amount(d)
    console.print(
        f"[bold]{d['payment_id']}[/bold]  {d['channel']}  [bold]{d['state']}[/bold]  "
        f"{amount.format()} ({amount.amount_minor} minor units)  "
        f"ref {escape(d['merchant_reference'])}"
    )
    console.print(
        f"  idempotency key {escape(d['idempotency_key'])} (producer {escape(d['producer'])}), "
        f"{d['attempts']} provider attempts"
        + (", an outcome was unknown" if d["outcome_unknown"] else "")
    )
    console.print(f"  created {d['created_at']}, updated {d['updated_at']}")
    if d["provider_reference"]:
        console.print(f"  provider {d['provider']}: {escape(d['provider_reference'])}")
    elif d["provider"]:
        pinned = " (pinned: it may have acted)" if d["outcome_unknown"] else ""
        console.print(f"  provider {d['provider']}{pinned}")
    if d["code"]:
        console.print(f"  code {escape(d['code'])}")
    if d["next_check"]:
        console.print(f"  next reconciliation check {d['next_check']}")
    console.print("  history:")
    for t in d["history"]:
        reason = f"  ({escape(t['reason'])})" if t["reason"] else ""
        console.print(f"    {t['at']}  {t['from']} -> {t['to']}{reason}")
    for a in d["provider_attempts"]:
        ref = f" {escape(a['provider_reference'])}" if a["provider_reference"] else ""
        code = f" {escape(a['code'])}" if a["code"] else ""
        console.print(f"    attempt {a['attempt']} {a['at']}  {a['outcome']}{code}{ref}")
    event = d["result_event"]
    if event:
        console.print(f"  result event {event['event_id']}: {event['status']}")


def show_many(found: Found, lookup: Lookup) -> None:
    count = len(found.payments)
    console.print(
        f"{count} payment{'s' if count > 1 else ''} {lookup.described()}, newest first "
        "(`paymq status <payment id>` shows one):"
    )
    for d in found.payments:
        console.print(
            f"  {d['payment_id']}  {d['created_at']}  {d['channel']}  [bold]{d['state']}[/bold]  "
            f"{_amount(d).format()}  ref {escape(d['merchant_reference'])}  "
            f"key {escape(d['idempotency_key'])}",
            soft_wrap=True,
        )
    if found.more:
        console.print(f"  more match: --limit to show more than {lookup.limit}")
