"""paymq's one error taxonomy.

Every failure a payment can meet is one of three kinds, and the kind alone decides what a worker
does with it:

    PaymqError
    ├── PermanentError              retrying cannot help: publish a terminal result, never retry
    │   ├── MessageRejected         not executed: the message has no authority or no meaning (I3)
    │   │   ├── BodyTooLarge
    │   │   ├── UnsupportedContentType
    │   │   ├── MalformedMessage    bad JSON, duplicate keys, NaN, floats in amounts, schema errors
    │   │   ├── SignatureInvalid    missing, truncated or wrong signature; tampered bytes
    │   │   ├── UnknownKey          key id not in the keyring
    │   │   ├── KeyNotAllowed       key retired, or not allowed for this channel or role
    │   │   ├── WrongChannel        signed for another channel than the queue it arrived on
    │   │   ├── SealedDataInvalid   card data that does not open with our key and header
    │   │   └── PanInClear          a card number in clear in a free-text field (a ValueError too)
    │   ├── MessageExpired          signed expiry passed before execution
    │   ├── PaymentDeclined         the provider said no (insufficient funds, do not honor...)
    │   ├── ProviderRejected        the provider refused the request itself (4xx, not a decline)
    │   ├── Unroutable              the broker had no queue for the routing key
    │   ├── WebhookSignatureInvalid a webhook's headers are missing, malformed, stale or forged
    │   └── NoEffectAtProvider      the provider's record: no money moved, nor ever will
    ├── RetryableError              surely did not happen: safe to try again later
    │   ├── ProviderUnavailable     refused or failed before the request was sent; 503 before effect
    │   │   ├── CircuitOpen         nothing sent: every provider that could take it is open
    │   │   ├── FeesAboveCap        chain fees above the configured cap: nothing signed
    │   │   ├── ChainIdMismatch     the Ethereum node serves another chain
    │   │   ├── HotWalletUnderfunded
    │   │   └── TokenMisconfigured  the token contract is not the configured ERC-20
    │   ├── RateLimited             429; carries the provider's Retry-After
    │   ├── BrokerUnavailable       cannot connect to RabbitMQ
    │   ├── StoreUnavailable        the payment store did not answer (try the message later)
    │   ├── ClaimLost               our claim ran out and another delivery took the payment
    │   │                           over: nothing recorded; the message looks again later
    │   └── PublishFailed           nacked, unconfirmed at connection loss, or timed out
    └── OutcomeUnknown              may have happened (timeout after sending, 5xx, reset):
        ├── ProviderTimeout         retry only with the same idempotency key, never mark failed
        ├── ProviderServerError
        ├── ProviderConnectionLost
        ├── SignedTransactionInDoubt the store failed while a signed transaction was committed
        └── TransactionNotAccepted  a signed chain transaction the node has not taken (yet)

Outside it, so that no handler of payment failures (`except PaymqError`) ever takes one for an
answer about a payment:

    SetupError                      the process cannot start as set up, or a command was
    │                               called wrong: nothing to do with any one payment
    ├── ConfigurationError          a key, keyring, setting or topology missing or unusable
    └── UsageError                  (paymq/clikit.py) the command line asks for what does not
                                    exist

    CommandFailed                   (paymq/clikit.py) a command's own work failed; the base of
    └── ToolError                   (tools/paymq_tools/errors.py) the tools' failures: a child
                                    process, a broker node, a database, a dev chain, a bench

    InvalidTransition               (a ValueError) a move the payment state machine forbids
                                    (store/states.py): a bug of ours, never an answer about a
                                    payment

The `paymq` command ends on any of PaymqError, SetupError and CommandFailed with one line and
an exit status (paymq/clikit.py).

Foreign exceptions are translated at the module that talks to their library, to the most
specific class here, each keeping the foreign error as its cause (`raise ... from exc`):
pika in common/amqp/errors.py, SQLAlchemy in store/outage.py, http.client in
workers/providers/http.py, Stripe's SDK in workers/providers/stripe_outcomes.py, web3 in
workers/providers/ethereum_node.py (requests, for webhooks, in webhooks/sender.py, as attempt
outcomes). Only where the cause would carry card data or a key into a traceback (a validation
error quoting its input, a JSON error holding a body, the cryptography around private keys) is
it dropped, with `from None` and a comment saying why.
"""

from __future__ import annotations


class PaymqError(Exception):
    """Base of every failure a payment can meet (setting up fails with SetupError instead)."""

    #: A short machine-readable reason, carried in result events and dead-letter headers.
    code: str = "error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def reason(self) -> str:
        """Human-readable reason, safe to log and publish (never carries secrets)."""
        return str(self)


# --- permanent -------------------------------------------------------------------------------


class PermanentError(PaymqError):
    """Retrying cannot change the outcome."""


class MessageRejected(PermanentError):
    """The message has no authority or no meaning; it is never executed."""

    code = "rejected"


class BodyTooLarge(MessageRejected):
    code = "body_too_large"


class UnsupportedContentType(MessageRejected):
    code = "unsupported_content_type"


class MalformedMessage(MessageRejected):
    code = "malformed"


class SignatureInvalid(MessageRejected):
    code = "signature_invalid"


class UnknownKey(MessageRejected):
    code = "unknown_key"


class KeyNotAllowed(MessageRejected):
    code = "key_not_allowed"


class WrongChannel(MessageRejected):
    code = "wrong_channel"


class SealedDataInvalid(MessageRejected):
    code = "sealed_data_invalid"


class PanInClear(MessageRejected, ValueError):
    """A card number in clear in a free-text field (common/pan.py). A ValueError too: the
    producer refuses it like any other draft the contract refuses."""

    code = "pan_in_clear"


class MessageExpired(PermanentError):
    code = "expired"


class PaymentDeclined(PermanentError):
    """The provider declined; `code` is the provider's decline code."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        provider_reference: str | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(message, code=code)
        #: Which provider declined, and its reference for the declined attempt, when known.
        self.provider = provider
        self.provider_reference = provider_reference


class ProviderRejected(PermanentError):
    """The provider refused the request as invalid (a 4xx that is not a decline)."""

    code = "provider_rejected"


class Unroutable(PermanentError):
    code = "unroutable"


class WebhookSignatureInvalid(PermanentError):
    """A received webhook cannot be trusted: a header missing or malformed, a signature that does
    not match, or a timestamp outside the tolerance (common/webhooks.py). Raised to receivers."""

    code = "webhook_signature_invalid"


class NoEffectAtProvider(PermanentError):
    """The provider's record shows the payment moved no money and never will: it never heard
    of it, or (on a chain) the transaction reverted, or its nonce went to another transaction."""

    code = "no_effect_at_provider"


# --- retryable -------------------------------------------------------------------------------


class RetryableError(PaymqError):
    """Surely did not happen; safe to try again after a delay."""


class ProviderUnavailable(RetryableError):
    code = "provider_unavailable"


class CircuitOpen(ProviderUnavailable):
    """Nothing was sent: every provider that could take the payment has its circuit open. Not
    a provider attempt; the payment waits `retry_after_s`, until a circuit may let it through."""

    code = "circuit_open"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class FeesAboveCap(ProviderUnavailable):
    """The chain's base fee plus the tip exceed the configured cap: nothing is signed now."""

    code = "fees_above_cap"


class ChainIdMismatch(ProviderUnavailable):
    """The Ethereum node serves another chain than the one configured: nothing is sent."""

    code = "chain_id_mismatch"


class HotWalletUnderfunded(ProviderUnavailable):
    """The hot wallet cannot pay this payout and its gas: nothing is signed now."""

    code = "hot_wallet_underfunded"


class TokenMisconfigured(ProviderUnavailable):
    """The configured token contract is not the ERC-20 it is set up as: nothing is sent."""

    code = "token_misconfigured"


class RateLimited(RetryableError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class BrokerUnavailable(RetryableError):
    code = "broker_unavailable"


class StoreUnavailable(RetryableError):
    code = "store_unavailable"


class ClaimLost(RetryableError):
    """This claim is no longer the payment's current one: it ran out and another delivery
    (in this process or another) took the payment over. The store recorded nothing for it;
    the delivery publishes the result stored since, or looks again after a retry tier, as
    when the store is unavailable."""

    code = "claim_lost"


class PublishFailed(RetryableError):
    code = "publish_failed"


# --- outcome unknown -------------------------------------------------------------------------


class OutcomeUnknown(PaymqError):
    """The provider may have acted. Never mark failed on a guess: retry with the same
    idempotency key or ask the provider, and if still unknown, the payment is in doubt."""

    code = "outcome_unknown"


class ProviderTimeout(OutcomeUnknown):
    code = "provider_timeout"


class ProviderServerError(OutcomeUnknown):
    code = "provider_server_error"


class ProviderConnectionLost(OutcomeUnknown):
    code = "provider_connection_lost"


class SignedTransactionInDoubt(OutcomeUnknown):
    """The store failed while a signed chain transaction was being committed: it may be stored,
    and then it will be broadcast, so the payout may still move money. Never failed on this; the
    next attempt or the reconciler finds out."""

    code = "signed_transaction_in_doubt"


class TransactionNotAccepted(OutcomeUnknown):
    """A signed transaction exists but the node would not take it (fees, funds): it can still
    land once broadcast again, so the payment is never failed on this; it is broadcast again."""

    code = "transaction_not_accepted"


# --- outside the tree: setting up ------------------------------------------------------------


class SetupError(Exception):
    """The process cannot start as set up, or a command was called wrong. Not a PaymqError: a
    handler of payment failures must never take a setup problem for a payment's outcome."""

    #: A short machine-readable reason, as PaymqError's.
    code: str = "setup"


class ConfigurationError(SetupError):
    """A key, keyring, setting or topology is missing or unusable; raised at start-up or by a
    command, never for one payment."""

    code = "configuration"


# --- outside the tree: bugs of ours ----------------------------------------------------------


class InvalidTransition(ValueError):
    """A payment move the state machine forbids (store/states.py). Raised before anything is
    written; it means a bug in the caller, not a failure of the payment."""
