"""payments, attempts and transitions

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payments",
        sa.Column("payment_id", sa.String(36), primary_key=True),
        sa.Column("scope", sa.String(64), nullable=False),
        sa.Column("idempotency_key", sa.String(255), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("request_message_id", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("merchant_reference", sa.String(128), nullable=False),
        sa.Column("amount_minor", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(5), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("outcome_unknown", sa.Boolean, nullable=False),
        sa.Column("provider", sa.String(32)),
        sa.Column("provider_reference", sa.String(255)),
        sa.Column("code", sa.String(64)),
        sa.Column("claim_owner", sa.String(64)),
        sa.Column("claim_until_ms", sa.BigInteger),
        sa.Column("next_check_ms", sa.BigInteger),
        sa.Column("checks", sa.Integer, nullable=False),
        sa.Column("payment_created_ms", sa.BigInteger, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
        sa.Column("result_exchange", sa.String(255)),
        sa.Column("result_routing_key", sa.String(255)),
        sa.Column("result_message_id", sa.String(128)),
        sa.Column("result_type", sa.String(64)),
        sa.Column("result_headers", sa.Text),
        sa.Column("result_body", sa.LargeBinary),
        sa.Column("result_unpublished", sa.Boolean, nullable=False),
        sa.UniqueConstraint("scope", "idempotency_key", name="uq_payments_idempotency"),
    )
    op.create_index("ix_payments_due", "payments", ["state", "next_check_ms"])
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "payment_id", sa.String(36), sa.ForeignKey("payments.payment_id"), nullable=False
        ),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("outcome", sa.String(32), nullable=False),
        sa.Column("code", sa.String(64)),
        sa.Column("provider_reference", sa.String(255)),
    )
    op.create_index("ix_attempts_payment", "attempts", ["payment_id"])
    op.create_table(
        "transitions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "payment_id", sa.String(36), sa.ForeignKey("payments.payment_id"), nullable=False
        ),
        sa.Column("at_ms", sa.BigInteger, nullable=False),
        sa.Column("from_state", sa.String(16), nullable=False),
        sa.Column("to_state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(500)),
    )
    op.create_index("ix_transitions_payment", "transitions", ["payment_id"])


def downgrade() -> None:
    op.drop_table("transitions")
    op.drop_table("attempts")
    op.drop_table("payments")
