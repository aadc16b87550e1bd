"""The sandbox's state and its decisions: charge or decline, record the effect, keep the answer.

Pure: no sockets, no event loop. What varies (the clock, random ids) is passed in, so the
decisions can be tested without a server.
"""

import hashlib
import hmac
import json
import secrets
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from sandbox import scenarios, testvalues
from sandbox.errors import card_declined, payout_declined, processing_error
from sandbox.faults import FaultBook, FaultRule, parse_fault_rule
from sandbox.idempotency import Claim, IdempotencyStore
from sandbox.ledger import Charge, Ledger, Payout
from sandbox.replies import Reply, json_reply
from sandbox.testvalues import Outcome, OutcomeKind
from sandbox.validation import CardSource, ChargeRequest, PayoutRequest, TokenSource

_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"))

Clock = Callable[[], datetime]
HexSource = Callable[[int], str]  # nbytes -> 2*nbytes hex digits


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def charge_outcome(source: TokenSource | CardSource, now: datetime) -> Outcome:
    if isinstance(source, TokenSource):
        return testvalues.card_token_outcome(source.token)
    # A card is good through the last day of its expiry month.
    if (source.exp_year, source.exp_month) < (now.year, now.month):
        return testvalues.declined("expired_card")
    return testvalues.card_number_outcome(source.number)


class SandboxState:
    def __init__(self, clock: Clock = utc_now, new_hex: HexSource = secrets.token_hex) -> None:
        self._clock = clock
        self._new_hex = new_hex
        # Keyed, not a bare sha256: a plain hash of a body holding a card number could be
        # brute-forced back to the number (the space of valid numbers is small).
        self._fingerprint_mac = hmac.new(secrets.token_bytes(32), digestmod=hashlib.sha256)
        self.ledger = Ledger()
        self.idempotency = IdempotencyStore()
        self.faults = FaultBook()
        self.latency_ms = 0

    def fingerprint(self, body: Mapping[str, object]) -> bytes:
        mac = self._fingerprint_mac.copy()  # a copy skips re-deriving the key pads per request
        mac.update(_CANONICAL.encode(body).encode())
        return mac.digest()

    def charge(self, request: ChargeRequest, claim: Claim) -> Reply:
        now = self._clock()  # one moment for both the expiry check and created_at
        outcome = charge_outcome(request.source, now)
        if outcome.kind is OutcomeKind.SUCCEEDED:
            last4 = request.source.last4 if isinstance(request.source, CardSource) else None
            charge = Charge(
                id="ch_" + self._new_hex(12),
                reference=request.reference,
                amount_minor=request.amount_minor,
                currency=request.currency,
                last4=last4,
                idempotency_key=claim.key,
                created_at=iso_utc(now),
            )
            self.ledger.record(charge)
            return _settled(claim, json_reply(201, charge.as_object()))
        if outcome.kind is OutcomeKind.DECLINED:
            return _settled(claim, card_declined(str(outcome.decline_code)).reply())
        claim.release()
        return processing_error().reply()

    def now(self) -> datetime:
        return self._clock()

    def payout(self, request: PayoutRequest, claim: Claim) -> Reply:
        outcome = testvalues.payout_address_outcome(request.destination_address)
        if outcome.kind in (OutcomeKind.SUCCEEDED, OutcomeKind.PENDING):
            now = self._clock()
            pending = outcome.kind is OutcomeKind.PENDING
            settles_at = now + timedelta(seconds=testvalues.PENDING_SETTLE_S) if pending else None
            payout = Payout(
                id="po_" + self._new_hex(12),
                reference=request.reference,
                network=request.network,
                asset=request.asset,
                amount_minor=request.amount_minor,
                destination_address=request.destination_address,
                tx_hash="0x" + self._new_hex(32),
                idempotency_key=claim.key,
                created_at=iso_utc(now),
                settles_at=settles_at,
            )
            self.ledger.record(payout)
            return _settled(claim, json_reply(202 if pending else 201, payout.as_object(now)))
        if outcome.kind is OutcomeKind.DECLINED:
            return _settled(claim, payout_declined(str(outcome.decline_code)).reply())
        claim.release()
        return processing_error().reply()

    def add_fault(self, body: Mapping[str, object]) -> FaultRule:
        rule = parse_fault_rule(body, "flt_" + self._new_hex(12))
        self.faults.add(rule)
        return rule

    def take_fault(self, path: str, body: Mapping[str, object]) -> FaultRule | None:
        """The fault rule this charge or payout meets, one use consumed; None if none. A body
        naming a scenario (scenarios.py) first adds the scenario's rule for its reference,
        once."""
        reference = body.get("reference")
        if not isinstance(reference, str):
            return self.faults.take(path, None)
        found = scenarios.triggered(path, body)
        if found is not None and not self.faults.triggered(path, reference):
            trigger, scenario = found
            self.faults.add(
                FaultRule(
                    id="flt_" + self._new_hex(12),
                    action=scenario.action,
                    times=scenario.times,
                    remaining=scenario.times,
                    reference=reference,
                    path=path,
                    status=scenario.status,
                    retry_after_s=scenario.retry_after_s,
                    delay_s=scenario.delay_s,
                    trigger=trigger,
                )
            )
        return self.faults.take(path, reference)

    def reset(self) -> None:
        """Forget effects, stored answers and fault rules; latency is configuration and stays."""
        self.ledger.clear()
        self.idempotency.clear()
        self.faults.clear()


def _settled(claim: Claim, reply: Reply) -> Reply:
    claim.settle(reply)
    return reply
