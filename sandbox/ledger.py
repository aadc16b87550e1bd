"""The ledger: every charge and payout that moved money, in the order it happened.

One record is one effect. Tests count effects per reference to prove "exactly once".
"""

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Charge:
    id: str
    reference: str
    amount_minor: int
    currency: str
    last4: str | None  # never the full card number
    idempotency_key: str
    created_at: str

    def as_object(self) -> dict[str, object]:
        result: dict[str, object] = {
            "id": self.id,
            "object": "charge",
            "status": "succeeded",
            "reference": self.reference,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
        }
        if self.last4 is not None:
            result["last4"] = self.last4
        result["created_at"] = self.created_at
        return result

    def as_effect(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": "charge",
            "reference": self.reference,
            "amount_minor": self.amount_minor,
            "currency": self.currency,
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Payout:
    id: str
    reference: str
    network: str
    asset: str
    amount_minor: int
    destination_address: str
    tx_hash: str
    idempotency_key: str
    created_at: str
    #: When a pending payout (a transfer waiting for confirmations) settles; None: at once.
    settles_at: datetime | None = None

    def status(self, now: datetime | None) -> str:
        if self.settles_at is not None and (now is None or now < self.settles_at):
            return "pending"
        return "succeeded"

    def as_object(self, now: datetime | None = None) -> dict[str, object]:
        return {
            "id": self.id,
            "object": "payout",
            "status": self.status(now),
            "reference": self.reference,
            "network": self.network,
            "asset": self.asset,
            # A string always: wei amounts exceed what JSON numbers hold exactly in most clients.
            "amount_minor": str(self.amount_minor),
            "destination_address": self.destination_address,
            "tx_hash": self.tx_hash,
            "created_at": self.created_at,
        }

    def as_effect(self) -> dict[str, object]:
        return {
            "id": self.id,
            "kind": "payout",
            "reference": self.reference,
            "amount_minor": str(self.amount_minor),
            "currency": self.asset,
            "idempotency_key": self.idempotency_key,
            "created_at": self.created_at,
        }


Effect = Charge | Payout


class Ledger:
    def __init__(self) -> None:
        self._effects: list[Effect] = []
        self._by_id: dict[str, Effect] = {}
        self._by_reference: dict[str, list[Effect]] = {}

    def record(self, effect: Effect) -> None:
        self._effects.append(effect)
        self._by_id[effect.id] = effect
        self._by_reference.setdefault(effect.reference, []).append(effect)

    def effects(self, reference: str | None = None) -> list[Effect]:
        if reference is None:
            return list(self._effects)
        return list(self._by_reference.get(reference, ()))

    def charge(self, charge_id: str) -> Charge | None:
        effect = self._by_id.get(charge_id)
        return effect if isinstance(effect, Charge) else None

    def payout(self, payout_id: str) -> Payout | None:
        effect = self._by_id.get(payout_id)
        return effect if isinstance(effect, Payout) else None

    def charges(self, reference: str | None = None) -> list[Charge]:
        return [e for e in self.effects(reference) if isinstance(e, Charge)]

    def payouts(self, reference: str | None = None) -> list[Payout]:
        return [e for e in self.effects(reference) if isinstance(e, Payout)]

    def clear(self) -> None:
        self._effects.clear()
        self._by_id.clear()
        self._by_reference.clear()

    def __len__(self) -> int:
        return len(self._effects)
