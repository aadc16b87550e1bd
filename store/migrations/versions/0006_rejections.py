"""rejections: requests refused before any claim, so their publisher can learn of it

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rejections",
        sa.Column("request_message_id", sa.String(128), primary_key=True),
        sa.Column("body_sha256", sa.String(64), primary_key=True),
        sa.Column("payment_id", sa.String(36)),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("created_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_rejections_payment", "rejections", ["payment_id"])


def downgrade() -> None:
    op.drop_index("ix_rejections_payment", "rejections")
    op.drop_table("rejections")
