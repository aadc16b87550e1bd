"""The demo's verdict: every payment's result, the provider's ledger and the dead-letter queue
checked against what each case should produce. Printing only; the checks are plain functions."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from common.envelope import HEADER_DEAD_LETTER_CODE, InboundMessage
from common.models import PaymentResult
from paymq_tools.demo.cases import Case

console = Console(highlight=False)

#: Statuses whose message is kept in the dead-letter queue with its reason.
DEAD_LETTERED = ("rejected", "expired", "in_doubt")


@dataclass(frozen=True)
class Observed:
    results: dict[str, PaymentResult]  # by request message id
    effects: Counter[str]  # sandbox effects by payment id
    dead_letters: list[InboundMessage] | None  # None: not inspected (shared topology)
    #: Stripe PaymentIntents by payment id; None: not inspected (no access to the API)
    stripe_intents: Counter[str] | None = None
    #: On-chain transfers by payment id, from the destinations' balances; None: no chain.
    chain_transfers: Counter[str] | None = None

    def moved(self, payment_id: str) -> int:
        """Times the money of a payment moved, at the sandbox or on chain."""
        on_chain = self.chain_transfers[payment_id] if self.chain_transfers is not None else 0
        return self.effects[payment_id] + on_chain


def problems(cases: list[Case], seen: Observed) -> list[str]:
    found = []
    for case in cases:
        got = seen.results.get(case.message.message_id)
        if got is None:
            found.append(f"{case.name}: no result")
        elif got.status.value != case.expect_status or (
            case.expect_code is not None and got.code != case.expect_code
        ):
            found.append(
                f"{case.name}: expected {case.expect_status}/{case.expect_code}, "
                f"got {got.status.value}/{got.code}"
            )
        if got is not None and case.expect_provider not in (None, got.provider):
            found.append(f"{case.name}: taken by {got.provider}, expected {case.expect_provider}")
        if (
            seen.stripe_intents is not None
            and case.payment_id is not None
            and case.expect_provider == "stripe"
            and seen.stripe_intents[case.payment_id] != 1
        ):
            found.append(
                f"{case.name}: {seen.stripe_intents[case.payment_id]} PaymentIntents, expected 1"
            )
        if case.payment_id is not None and seen.moved(case.payment_id) != case.expect_effects:
            found.append(
                f"{case.name}: the provider moved money {seen.moved(case.payment_id)} "
                f"times, expected {case.expect_effects}"
            )
    if seen.dead_letters is not None:
        found.extend(_dead_letter_problems(cases, seen.dead_letters))
    return found


def _dead_letter_problems(cases: list[Case], dead_letters: list[InboundMessage]) -> list[str]:
    codes = {m.message_id: m.headers.get(HEADER_DEAD_LETTER_CODE) for m in dead_letters}
    found = []
    for case in cases:
        expected = case.expect_status in DEAD_LETTERED
        if expected and codes.get(case.message.message_id) != case.expect_code:
            found.append(f"{case.name}: not in the dead-letter queue with its reason")
        if not expected and case.message.message_id in codes:
            found.append(f"{case.name}: dead-lettered but should not be")
    return found


def report(cases: list[Case], seen: Observed) -> int:
    table = Table(title="payments by channel and status")
    for column in ("channel", "status", "count"):
        table.add_column(column)
    tally = Counter((r.channel, r.status.value) for r in seen.results.values())
    for (channel, status), count in sorted(tally.items()):
        table.add_row(channel, status, str(count))
    console.print(table)
    for case in cases:
        got = seen.results.get(case.message.message_id)
        ok = got is not None and got.status.value == case.expect_status
        mark = "[green]✓[/green]" if ok else "[red]✗[/red]"
        if got is None:
            console.print(f" {mark} {case.name:40} —")
            continue
        detail = f" ({got.code})" if got.code else ""
        tries = f", {got.attempts} attempts" if got.attempts > 1 else ""
        where = f" at {got.provider}" if got.provider else ""
        if case.payout_to is not None and got.provider_reference:
            where += f", tx {got.provider_reference[:12]}…"
        console.print(f" {mark} {case.name:40} {got.status.value}{detail}{where}{tries}")
    _print_effects(cases, seen)
    if seen.stripe_intents is not None:
        sent = [c.payment_id for c in cases if c.expect_provider == "stripe" and c.payment_id]
        intents = sum(seen.stripe_intents[payment_id] for payment_id in sent)
        console.print(f"Stripe: {intents} PaymentIntents for {len(sent)} payments sent there")
    if seen.dead_letters is not None:
        reasons = Counter(str(m.headers.get(HEADER_DEAD_LETTER_CODE)) for m in seen.dead_letters)
        listed = ", ".join(f"{code} {n}" for code, n in sorted(reasons.items()))
        console.print(f"dead-letter queue: {len(seen.dead_letters)} ({listed})")
    found = problems(cases, seen)
    if found:
        console.print(f"[red]{len(found)} problems:[/red]")
        for problem in found:
            console.print(f"  - {problem}")
        return 1
    console.print(f"[bold green]all {len(cases)} payments got the result they should[/bold green]")
    return 0


def _print_effects(cases: list[Case], seen: Observed) -> None:
    """Money moved, as the sandbox's ledger and the chain's balances show it."""
    at_sandbox = [c for c in cases if c.payment_id and c.payout_to is None]
    moved = sum(seen.effects[c.payment_id] for c in at_sandbox if c.payment_id)
    should = sum(c.expect_effects for c in at_sandbox)
    console.print(f"sandbox ledger: {moved} charges/payouts for {should} payments that should pay")
    if seen.chain_transfers is not None:
        on_chain = [c for c in cases if c.payment_id and c.payout_to is not None]
        landed = sum(seen.chain_transfers[c.payment_id] for c in on_chain if c.payment_id)
        should = sum(c.expect_effects for c in on_chain)
        console.print(f"chain: {landed} transfers landed for {should} payouts that should pay")
