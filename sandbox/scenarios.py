"""Provider scenarios a payment request asks for itself: card tokens and payout addresses that
make the sandbox misbehave for that payment, as Stripe's test cards and `stripe trigger` do.

Fault rules (faults.py) are aimed at a payment by its `reference`, which is paymq's payment id:
whoever pays through paymq's HTTP API never chooses it, so cannot aim a rule. A scenario
travels in the request instead. The first request of a reference that names one adds a fault
rule aimed at that reference, after the rules already there, and listed with them (`trigger`
says which token or address made it); it is used up like any other, so the retries that
follow meet the provider's usual behaviour once its uses are spent.

These values mean something only to the sandbox: a real provider knows none of them.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from sandbox.faults import FaultAction

#: Longer than paymq's default provider read timeout (PAYMQ_PROVIDER_READ_TIMEOUT_S, 10 s).
TIMEOUT_HOLD_S = 30.0
#: Enough uses that every attempt a caller makes meets the fault.
EVERY_TIME = 1_000_000


@dataclass(frozen=True, slots=True)
class Scenario:
    action: FaultAction
    times: int = 1
    status: int = 500
    retry_after_s: int = 1
    delay_s: float = TIMEOUT_HOLD_S


RATE_LIMITED = Scenario(FaultAction.RATE_LIMIT)
ERROR_BEFORE_EFFECT = Scenario(FaultAction.ERROR_BEFORE_EFFECT)
ERROR_AFTER_EFFECT = Scenario(FaultAction.ERROR_AFTER_EFFECT)
RESET_AFTER_EFFECT = Scenario(FaultAction.RESET_AFTER_EFFECT)
TIMEOUT_AFTER_EFFECT = Scenario(FaultAction.TIMEOUT_AFTER_EFFECT)

CARD_TOKEN_SCENARIOS: Mapping[str, Scenario] = {
    "tok_rate_limited": RATE_LIMITED,
    "tok_server_error_before_charge": ERROR_BEFORE_EFFECT,
    "tok_server_error_after_charge": ERROR_AFTER_EFFECT,
    "tok_reset_after_charge": RESET_AFTER_EFFECT,
    "tok_timeout_after_charge": TIMEOUT_AFTER_EFFECT,
    # Every attempt meets a 500 and nothing is charged: a caller that cannot rule out a charge
    # keeps the payment in doubt until a lookup by reference finds none.
    "tok_in_doubt": Scenario(FaultAction.ERROR_BEFORE_EFFECT, times=EVERY_TIME),
}

# Hex digits without a letter: each address is its own EIP-55 checksum form. Keys lower-case,
# as addresses are compared without regard to case.
PAYOUT_ADDRESS_SCENARIOS: Mapping[str, Scenario] = {
    "0x0000000000000000000000000000000000000429": RATE_LIMITED,
    "0x0000000000000000000000000000000000000500": ERROR_BEFORE_EFFECT,
    "0x0000000000000000000000000000000000000502": ERROR_AFTER_EFFECT,
    "0x0000000000000000000000000000000000000504": TIMEOUT_AFTER_EFFECT,
}


def triggered(path: str, body: Mapping[str, object]) -> tuple[str, Scenario] | None:
    """The token or address in a (validated) charge or payout body that names a scenario, and
    the scenario; None if it names none."""
    if path == "/v1/charges":
        source = body.get("source")
        token = source.get("token") if isinstance(source, Mapping) else None
        if isinstance(token, str) and token in CARD_TOKEN_SCENARIOS:
            return token, CARD_TOKEN_SCENARIOS[token]
        return None
    address = body.get("destination_address")
    if isinstance(address, str) and address.lower() in PAYOUT_ADDRESS_SCENARIOS:
        return address, PAYOUT_ADDRESS_SCENARIOS[address.lower()]
    return None
