"""chain_wallets and chain_transactions: nonces and signed transactions of on-chain payouts

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "chain_wallets",
        sa.Column("chain_id", sa.BigInteger, primary_key=True),
        sa.Column("address", sa.String(42), primary_key=True),
        sa.Column("next_nonce", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "chain_transactions",
        sa.Column("payment_id", sa.String(36), primary_key=True),
        sa.Column("chain_id", sa.BigInteger, nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("nonce", sa.BigInteger, nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("raw_tx", sa.LargeBinary, nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("chain_id", "address", "nonce", name="uq_chain_transactions_nonce"),
        sa.UniqueConstraint("tx_hash", name="uq_chain_transactions_hash"),
    )


def downgrade() -> None:
    op.drop_table("chain_transactions")
    op.drop_table("chain_wallets")
