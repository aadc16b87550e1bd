"""The store's tables (SQLAlchemy Core). Migrations in migrations/versions create them."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

payments = Table(
    "payments",
    metadata,
    Column("payment_id", String(36), primary_key=True),
    # Idempotency is per producer (the signing key's owner): two producers may use one key.
    Column("scope", String(64), nullable=False),
    Column("idempotency_key", String(255), nullable=False),
    # What the payment asks for; the same key with another hash is a conflict.
    Column("request_hash", String(64), nullable=False),
    Column("request_message_id", String(128), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("merchant_reference", String(128), nullable=False),
    Column("amount_minor", String(40), nullable=False),  # text: amounts reach 10^38
    Column("currency", String(5), nullable=False),
    Column("state", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("outcome_unknown", Boolean, nullable=False, default=False),
    Column("provider", String(32)),
    Column("provider_reference", String(255)),
    Column("code", String(64)),
    # Who may act on the payment, and until when (a worker that died loses it then). The token
    # is new on every claim: only its holder may move the payment on (a fencing token).
    Column("claim_owner", String(64)),
    Column("claim_until_ms", BigInteger),
    Column("claim_token", String(32)),
    # Reconciliation of pending and in-doubt payments.
    Column("next_check_ms", BigInteger),
    Column("checks", Integer, nullable=False, default=0),
    Column("payment_created_ms", BigInteger, nullable=False),  # the request's created_at
    Column("created_ms", BigInteger, nullable=False),
    Column("updated_ms", BigInteger, nullable=False),
    # The signed result event, stored to be republished byte for byte (I5).
    Column("result_exchange", String(255)),
    Column("result_routing_key", String(255)),
    Column("result_message_id", String(128)),
    Column("result_type", String(64)),
    Column("result_headers", Text),
    Column("result_body", LargeBinary),
    # Set from the moment a result is stored until the broker confirms its publish: the
    # reconciler republishes what stays set (whatever happened to the delivery that carried it).
    Column("result_unpublished", Boolean, nullable=False, default=False),
    UniqueConstraint("scope", "idempotency_key", name="uq_payments_idempotency"),
    Index("ix_payments_due", "state", "next_check_ms"),
    Index(
        "ix_payments_unpublished",
        "updated_ms",
        postgresql_where=text("result_unpublished"),
        sqlite_where=text("result_unpublished"),
    ),
    Index("ix_payments_state_updated", "state", "updated_ms"),
    # Operators look payments up by what their callers know (`paymq status order-1001`).
    Index("ix_payments_reference", "merchant_reference"),
    Index("ix_payments_idempotency_key", "idempotency_key"),
)

attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("payment_id", String(36), ForeignKey("payments.payment_id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("code", String(64)),
    Column("provider_reference", String(255)),
    Index("ix_attempts_payment", "payment_id"),
)

transitions = Table(
    "transitions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("payment_id", String(36), ForeignKey("payments.payment_id"), nullable=False),
    Column("at_ms", BigInteger, nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("reason", String(500)),
    Index("ix_transitions_payment", "payment_id"),
)

# On-chain payouts (workers/providers/ethereum.py). A wallet's next nonce is allocated here, in
# the transaction that stores the transaction signed with it, so threads and processes sharing
# one hot wallet never sign two transactions with one nonce.
chain_wallets = Table(
    "chain_wallets",
    metadata,
    Column("chain_id", BigInteger, primary_key=True),
    Column("address", String(42), primary_key=True),
    Column("next_nonce", BigInteger, nullable=False),
)

#: The one signed transaction of a payout, stored before it is broadcast (and re-broadcast
#: byte for byte, never signed again).
chain_transactions = Table(
    "chain_transactions",
    metadata,
    Column("payment_id", String(36), primary_key=True),
    Column("chain_id", BigInteger, nullable=False),
    Column("address", String(42), nullable=False),
    Column("nonce", BigInteger, nullable=False),
    Column("tx_hash", String(66), nullable=False),
    Column("raw_tx", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    UniqueConstraint("chain_id", "address", "nonce", name="uq_chain_transactions_nonce"),
    UniqueConstraint("tx_hash", name="uq_chain_transactions_hash"),
)

#: Payments taken by the HTTP API (producer/api/): the signed request as first published, so
#: the same API key and idempotency key answer the same payment and republish the same bytes.
api_submissions = Table(
    "api_submissions",
    metadata,
    Column("api_key_id", String(64), primary_key=True),
    Column("idempotency_key", String(255), primary_key=True),
    Column("body_sha256", String(64), nullable=False),
    Column("payment_id", String(36), nullable=False),
    Column("channel", String(32), nullable=False),
    Column("exchange", String(255), nullable=False),
    Column("routing_key", String(255), nullable=False),
    Column("message_id", String(128), nullable=False),
    Column("message_type", String(64), nullable=False),
    Column("headers", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    # The request's, so a caller finds its payments by it before any worker has taken them.
    Column("merchant_reference", String(128), nullable=False),
    # The gateway key's owner: the scope workers claim the payment in. A worker that refuses
    # the message (its key unknown to it) still settles the payment under it. Null on rows
    # written before it was kept.
    Column("scope", String(64)),
    UniqueConstraint("payment_id", name="uq_api_submissions_payment"),
    Index("ix_api_submissions_reference", "api_key_id", "merchant_reference"),
    Index("ix_api_submissions_idempotency_key", "idempotency_key"),
    # A refused message is looked up by its id.
    Index("ix_api_submissions_message", "message_id"),
)

#: Webhook deliveries (webhooks/): one row per result event and endpoint. The primary
#: key makes a redelivered event a no-op; the lease keeps two senders off one row at a time.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("event_id", String(36), primary_key=True),
    Column("endpoint_id", String(64), primary_key=True),
    Column("payment_id", String(36)),  # null for a result about a message never trusted
    Column("channel", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    # The result event's signed body, byte for byte: what every attempt POSTs.
    Column("body", LargeBinary, nullable=False),
    Column("state", String(16), nullable=False),  # pending | delivering | delivered | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_ms", BigInteger, nullable=False),
    Column("lease_owner", String(64)),
    Column("lease_until_ms", BigInteger),
    # "HTTP 500", "ReadTimeout": never a response body, never a secret.
    Column("last_error", String(200)),
    Column("created_ms", BigInteger, nullable=False),
    Column("delivered_ms", BigInteger),
    Index("ix_webhook_deliveries_due", "state", "next_attempt_ms"),
)

#: Requests refused before any claim (bad signature, expired, an idempotency key already used,
#: ...): the payments table never holds them, so that whoever published one (the HTTP API for
#: its submissions, `paymq status`) can still learn it was rejected. Keyed by message id; the
#: body's digest ties the row to the exact bytes refused, so a forged message that reuses a
#: message id cannot pass for the refusal of another's request.
rejections = Table(
    "rejections",
    metadata,
    Column("request_message_id", String(128), primary_key=True),
    Column("body_sha256", String(64), primary_key=True),
    # Only when the signature was verified; else the body's payment id proves nothing.
    Column("payment_id", String(36)),
    Column("code", String(64), nullable=False),
    # The refusal's reason as the result event states it (never the request's free text).
    Column("reason", String(500), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Index("ix_rejections_payment", "payment_id"),
)

#: Dead letters an operator discarded (`paymq dlq discard`): the audit record of who removed
#: which message from the dead-letter queue, when and why, with the message itself. Written
#: and committed before the message is acked, so no dead letter leaves without its record.
dead_letter_discards = Table(
    "dead_letter_discards",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(255), nullable=False),
    Column("body_sha256", String(64), nullable=False),
    Column("channel", String(255), nullable=False),
    Column("message_type", String(255), nullable=False),
    Column("code", String(64), nullable=False),
    Column("dead_letter_reason", String(500), nullable=False),
    Column("reason", String(500), nullable=False),
    Column("discarded_by", String(128), nullable=False),
    Column("discarded_ms", BigInteger, nullable=False),
    Column("headers", Text, nullable=False),
    Column("body", LargeBinary, nullable=False),
    Index("ix_dead_letter_discards_message", "message_id"),
    Index("ix_dead_letter_discards_at", "discarded_ms"),
)
