"""payments.claim_token: a fencing token per claim; indexes for the reconciler's sweeps

A claim's owner used to be the process's name, so a stale thread whose claim a redelivery to
the same process had taken over still passed for its owner. Every claim now gets a token of
its own, and only the current token may move the payment on.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payments") as batch:
        batch.add_column(sa.Column("claim_token", sa.String(32)))
    # The sweeps look for few rows among many: results not yet confirmed, and claims nobody
    # has touched for a long time (both partial where the database can).
    op.create_index(
        "ix_payments_unpublished",
        "payments",
        ["updated_ms"],
        postgresql_where=sa.text("result_unpublished"),
        sqlite_where=sa.text("result_unpublished"),
    )
    op.create_index("ix_payments_state_updated", "payments", ["state", "updated_ms"])


def downgrade() -> None:
    op.drop_index("ix_payments_state_updated", "payments")
    op.drop_index("ix_payments_unpublished", "payments")
    with op.batch_alter_table("payments") as batch:
        batch.drop_column("claim_token")
