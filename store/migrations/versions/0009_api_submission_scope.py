"""api_submissions.scope and an index on message_id: a request a worker refuses is linked back
to the payment the HTTP API made

A worker refusing a message before any claim (its key unknown, say) looks up the HTTP API's
submission under the message's id: when the API published exactly those bytes, the refusal
settles that payment, claimed under the gateway key's owner, which the API now stores (the
worker cannot read it from a key it does not trust). Rows from before have no scope, and
their refusals stay unlinked.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_submissions") as batch:
        batch.add_column(sa.Column("scope", sa.String(64)))
    op.create_index("ix_api_submissions_message", "api_submissions", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_api_submissions_message", "api_submissions")
    with op.batch_alter_table("api_submissions") as batch:
        batch.drop_column("scope")
