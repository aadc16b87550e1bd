"""Accounting for every payment of a fault-injection run. Pure: observations in, report out.

What a run observed is observations.py's; what must hold (the invariants I1-I6 of
docs/faults.md):

    lost                a confirmed payment without a terminal result (I1)
    duplicated effects  more than one effect for one payment (I2)
    conflicting         two different terminal statuses for one payment (I1), or two copies of
                        one event id whose bytes differ (I5)
    effects unreported  money moved but no succeeded / pending / in_doubt result says so
    charged unpublished money moved and no result event at all was published (I6)
    unexpected outcome  a terminal status other than the payment was built to get
    stuck               left in a work or retry queue, or still pending / in doubt although a
                        reconciler ran (I4)
    undeserved DLQ      a dead letter for a payment with no rejected / expired / in_doubt result,
                        e.g. a poison message the broker dead-lettered at its delivery limit (I4)
    untrusted results   a result event that fails verification
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from common.models import PaymentResult, PaymentStatus
from paymq_tools.chaos.observations import Observations, Published, ReceivedEvent

_ACCOUNTS_FOR_EFFECT = {PaymentStatus.SUCCEEDED, PaymentStatus.PENDING, PaymentStatus.IN_DOUBT}
_DESERVES_DEAD_LETTER = {PaymentStatus.REJECTED, PaymentStatus.EXPIRED, PaymentStatus.IN_DOUBT}
_UNRESOLVED = {PaymentStatus.PENDING, PaymentStatus.IN_DOUBT}


@dataclass(frozen=True)
class Report:
    payments: int
    confirmed: int
    final_statuses: Mapping[str, int]
    lost: tuple[str, ...]
    duplicated_effects: tuple[str, ...]
    conflicting_statuses: tuple[str, ...]
    unstable_events: tuple[str, ...]
    effects_unreported: tuple[str, ...]
    #: At least one provider effect and no result event at all (I6): whoever acked or
    #: abandoned the delivery left the money without a word to the merchant.
    charged_unpublished: tuple[str, ...]
    unexpected_outcomes: tuple[str, ...]
    stuck: tuple[str, ...]
    undeserved_dead_letters: tuple[str, ...]
    #: Messages left in work or retry queues that belong to no published payment.
    stray_leftovers: int
    untrusted_events: int
    #: Unresolved at the end while no reconciler ran: accounted for, not a violation.
    in_doubt_unresolved: tuple[str, ...]
    in_doubt_resolved: int
    dead_lettered: Mapping[str, int]
    #: Extra copies of an event, byte-identical to the first (the broker redelivered it).
    redeliveries: int
    #: Extra copies with the same event id and other bytes (a payment processed again).
    reissued_events: int
    samples: Mapping[str, str] = field(default_factory=dict)
    #: Effects of published payments by the provider that made them.
    effects_by_provider: Mapping[str, int] = field(default_factory=dict)

    @property
    def conflicting(self) -> int:
        """Payments with conflicting statuses or an event whose copies differ."""
        return len(set(self.conflicting_statuses) | set(self.unstable_events))

    def violations(self) -> list[str]:
        found = [
            (self.lost, "lost: confirmed without a terminal result (I1)"),
            (self.duplicated_effects, "duplicated provider effects (I2)"),
            (self.conflicting_statuses, "conflicting terminal statuses (I1)"),
            (self.unstable_events, "result copies with one event id and different bytes (I5)"),
            (self.effects_unreported, "effects without a succeeded/pending/in_doubt result"),
            (self.charged_unpublished, "charged without a published result (I6)"),
            (self.unexpected_outcomes, "terminal status other than expected"),
            (self.stuck, "stuck in a queue or unresolved after reconciliation (I4)"),
            (self.undeserved_dead_letters, "dead-lettered without deserving it (I4)"),
        ]
        lines = [
            f"{len(ids)} {what}, e.g. {_sample(ids, self.samples)}" for ids, what in found if ids
        ]
        if self.stray_leftovers:
            lines.append(f"{self.stray_leftovers} unknown messages left in work or retry queues")
        if self.untrusted_events:
            lines.append(f"{self.untrusted_events} result events failed verification")
        return lines


def _sample(ids: tuple[str, ...], samples: Mapping[str, str]) -> str:
    first = ids[0]
    detail = samples.get(first)
    return f"{first} ({detail})" if detail else first


@dataclass
class _Payment:
    """Everything observed about one payment."""

    published: Published
    statuses: list[PaymentStatus] = field(default_factory=list)
    effects: int = 0
    dead_letters: list[str] = field(default_factory=list)
    leftover: bool = False

    @property
    def terminal(self) -> set[PaymentStatus]:
        return {s for s in self.statuses if s.terminal}

    @property
    def final(self) -> PaymentStatus | None:
        terminal = [s for s in self.statuses if s.terminal]
        if terminal:
            return terminal[-1]
        return self.statuses[-1] if self.statuses else None


def check(observed: Observations) -> Report:
    payments = {p.payment_id: _Payment(p) for p in observed.published}
    by_message = {p.message_id: p.payment_id for p in observed.published}
    copies = _join_events(observed.events, payments, by_message)
    for effect in observed.effects:
        payment = payments.get(str(effect.get("reference")))
        if payment is not None:
            payment.effects += 1
    for letter in observed.dead_letters:
        payment = payments.get(by_message.get(letter.message_id, ""))
        if payment is not None:
            payment.dead_letters.append(letter.reason)
    for message_id in observed.leftovers:
        payment = payments.get(by_message.get(message_id, ""))
        if payment is not None:
            payment.leftover = True
    return _report(observed, payments, copies)


@dataclass
class _Copies:
    redeliveries: int = 0
    reissued: int = 0
    #: Payment id -> how the differing copies of one of its events differ.
    unstable: dict[str, str] = field(default_factory=dict)
    untrusted: int = 0


def _join_events(
    events: Iterable[ReceivedEvent], payments: Mapping[str, _Payment], by_message: Mapping[str, str]
) -> _Copies:
    copies = _Copies()
    first_body: dict[str, bytes] = {}
    for event in events:
        result = event.result
        if result is None:
            copies.untrusted += 1
            continue
        if event.event_id in first_body:
            if first_body[event.event_id] == event.body:
                copies.redeliveries += 1
            else:
                copies.reissued += 1
                copies.unstable.setdefault(
                    _payment_id(result, by_message),
                    _difference(first_body[event.event_id], event.body),
                )
            continue
        first_body[event.event_id] = event.body
        payment = payments.get(_payment_id(result, by_message))
        if payment is not None:
            payment.statuses.append(result.status)
    return copies


def _difference(first: bytes, other: bytes) -> str:
    """Which fields of two copies of one event differ (the bodies are verified JSON objects)."""
    try:
        a, b = json.loads(first), json.loads(other)
        fields = sorted(k for k in a.keys() | b.keys() if a.get(k) != b.get(k))
    except (ValueError, AttributeError):
        return "copies differ"
    return "copies differ in " + ", ".join(fields)


def _payment_id(result: PaymentResult, by_message: Mapping[str, str]) -> str:
    if result.payment_id is not None:
        return str(result.payment_id)
    return by_message.get(result.request_message_id or "", "")


def _report(observed: Observations, payments: Mapping[str, _Payment], copies: _Copies) -> Report:
    everyone = list(payments.values())
    confirmed = [p for p in everyone if p.published.confirmed]
    reconciled = observed.reconciler_ran
    samples: dict[str, str] = {}

    def ids(
        selected: Iterable[_Payment], detail: Mapping[str, str] | None = None
    ) -> tuple[str, ...]:
        chosen = tuple(sorted(p.published.payment_id for p in selected))
        if chosen:
            first = chosen[0]
            extra = f"; {detail[first]}" if detail and first in detail else ""
            samples.setdefault(first, _describe(payments[first]) + extra)
        return chosen

    # Pending or in doubt at the end is not lost (its state is explicit) but it is stuck if a
    # reconciler ran; without one it is reported apart.
    unresolved = {p.published.payment_id for p in everyone if p.statuses and not p.terminal}
    known_messages = {p.published.message_id for p in everyone}
    return Report(
        effects_by_provider=dict(
            Counter(
                str(effect.get("provider", "sandbox"))
                for effect in observed.effects
                if str(effect.get("reference")) in payments
            )
        ),
        payments=len(everyone),
        confirmed=len(confirmed),
        final_statuses=dict(Counter(p.final.value if p.final else "none" for p in everyone)),
        lost=ids(
            p
            for p in confirmed
            if not p.terminal and not p.leftover and p.published.payment_id not in unresolved
        ),
        duplicated_effects=ids(p for p in everyone if p.effects > 1),
        conflicting_statuses=ids(p for p in everyone if len(p.terminal) > 1),
        unstable_events=ids(
            (payments[i] for i in copies.unstable if i in payments), copies.unstable
        ),
        effects_unreported=ids(
            p for p in everyone if p.effects and not _ACCOUNTS_FOR_EFFECT & set(p.statuses)
        ),
        charged_unpublished=ids(p for p in everyone if p.effects and not p.statuses),
        unexpected_outcomes=ids(
            p
            for p in everyone
            if p.terminal and p.final is not None and p.final.value != p.published.expect.value
        ),
        stuck=ids(
            p
            for p in everyone
            if p.leftover or (reconciled and p.published.payment_id in unresolved)
        ),
        undeserved_dead_letters=ids(
            p for p in everyone if p.dead_letters and not _DESERVES_DEAD_LETTER & set(p.statuses)
        ),
        stray_leftovers=sum(1 for m in observed.leftovers if m not in known_messages),
        untrusted_events=copies.untrusted,
        in_doubt_unresolved=() if reconciled else tuple(sorted(unresolved)),
        in_doubt_resolved=sum(1 for p in everyone if _UNRESOLVED & set(p.statuses) and p.terminal),
        dead_lettered=dict(Counter(r for p in everyone for r in p.dead_letters)),
        redeliveries=copies.redeliveries,
        reissued_events=copies.reissued,
        samples=samples,
    )


def _describe(payment: _Payment) -> str:
    parts = [f"results {','.join(s.value for s in payment.statuses) or 'none'}"]
    parts.append(f"effects {payment.effects}")
    if payment.dead_letters:
        parts.append(f"dead-lettered {','.join(payment.dead_letters)}")
    if payment.leftover:
        parts.append("left in a queue")
    if not payment.published.confirmed:
        parts.append("publish unconfirmed")
    return "; ".join(parts)
