"""dead_letter_discards: the audit record of every dead letter an operator discarded

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letter_discards",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("body_sha256", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(255), nullable=False),
        sa.Column("message_type", sa.String(255), nullable=False),
        sa.Column("code", sa.String(64), nullable=False),
        sa.Column("dead_letter_reason", sa.String(500), nullable=False),
        sa.Column("reason", sa.String(500), nullable=False),
        sa.Column("discarded_by", sa.String(128), nullable=False),
        sa.Column("discarded_ms", sa.BigInteger, nullable=False),
        sa.Column("headers", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
    )
    op.create_index("ix_dead_letter_discards_message", "dead_letter_discards", ["message_id"])
    op.create_index("ix_dead_letter_discards_at", "dead_letter_discards", ["discarded_ms"])


def downgrade() -> None:
    op.drop_index("ix_dead_letter_discards_at", "dead_letter_discards")
    op.drop_index("ix_dead_letter_discards_message", "dead_letter_discards")
    op.drop_table("dead_letter_discards")
